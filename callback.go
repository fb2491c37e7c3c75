package pipelinestop

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"runtime/debug"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

//go:generate go tool mockgen -typed -destination internal/mocks/callback.go -package mocks github.com/pipelinestop/pipelinestop CallbackAPIClient

// CallbackToken is a callback step's token: the secret that answers the
// step. It prints redacted with every fmt verb and in slog records
// (String, GoString, Format and LogValue show at most its first two
// characters); convert it with string(t) where the real value is needed.
type CallbackToken string

// redacted returns the token with all but its first two characters hidden.
func (t CallbackToken) redacted() string {
	if len(t) <= 2 {
		return "**********"
	}
	return string(t[:2]) + "********"
}

// String returns the redacted token.
func (t CallbackToken) String() string { return t.redacted() }

// GoString returns the redacted token, quoted.
func (t CallbackToken) GoString() string { return fmt.Sprintf("%q", t.redacted()) }

// Format prints the redacted token for every verb.
func (t CallbackToken) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", t.redacted())
		return
	}
	_, _ = f.Write([]byte(t.redacted()))
}

// LogValue makes slog record the redacted token.
func (t CallbackToken) LogValue() slog.Value { return slog.StringValue(t.redacted()) }

// Validate reports whether t has the documented form of a callback token:
// exactly CallbackTokenLength characters, each an ASCII letter or digit.
// The error matches ErrInvalidCallback and shows the token redacted.
func (t CallbackToken) Validate() error {
	if len(t) != CallbackTokenLength {
		return fmt.Errorf("%w: callback token %v is %d characters long; it must be %d letters or digits",
			ErrInvalidCallback, t, len(t), CallbackTokenLength)
	}
	for i := 0; i < len(t); i++ {
		if c := t[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return fmt.Errorf("%w: callback token %v has a character other than a letter or digit at position %d",
				ErrInvalidCallback, t, i)
		}
	}
	return nil
}

// Redact returns s with every occurrence of the raw token replaced by its
// redacted form. The package redacts every message it logs or returns this
// way; handlers can do the same with text they log themselves.
func (t CallbackToken) Redact(s string) string {
	if t == "" {
		return s
	}
	return strings.ReplaceAll(s, string(t), t.redacted())
}

// scrubErr returns err with every occurrence of the raw token in its
// message redacted; it unwraps to err, so errors.Is and errors.As still
// see through it.
func (t CallbackToken) scrubErr(err error) error {
	if err == nil || t == "" {
		return err
	}
	return &scrubbedError{err: err, token: t}
}

// scrubbedError is an error whose message has a callback token redacted.
type scrubbedError struct {
	err   error
	token CallbackToken
}

func (e *scrubbedError) Error() string { return e.token.Redact(e.err.Error()) }
func (e *scrubbedError) Unwrap() error { return e.err }

// Limits of callback messages and of the answers to callback steps, as
// documented by SQS and SageMaker.
const (
	// CallbackTokenLength is the length of a callback token.
	CallbackTokenLength = 10
	// MaxCallbackMessageSize is the largest SQS message body accepted by
	// ParseCallbackMessage: 256 KiB, the SQS limit for years. AWS announced
	// 1 MiB messages; a callback message is a few hundred bytes plus the
	// step's arguments, so a larger body is far more likely a wrong message
	// on the queue than a real one, and it is rejected.
	MaxCallbackMessageSize = 256 * 1024
	// MaxOutputParameters is the most output parameters one
	// SendPipelineExecutionStepSuccess call takes.
	MaxOutputParameters = 50
	// MaxOutputNameLength is the longest output parameter name, in
	// characters.
	MaxOutputNameLength = 256
	// MaxOutputValueLength is the longest output parameter value, in
	// characters.
	MaxOutputValueLength = 1024
	// MaxFailureReasonLength is the longest failure reason, in bytes here
	// (SageMaker counts characters; a reason within this many bytes is
	// within the limit either way).
	MaxFailureReasonLength = 256
)

// Statuses of a callback message.
const (
	// CallbackStatusExecuting is the status of the message a callback step
	// sends when it starts: do the work and answer.
	CallbackStatusExecuting = "Executing"
	// CallbackStatusStopping is the status of the message a callback step
	// sends when its execution is being stopped: clean up and answer, so
	// that the execution can stop.
	CallbackStatusStopping = "Stopping"
)

// DefaultFailureReason is the failure reason sent when Fail is given an
// empty one.
const DefaultFailureReason = "the callback step failed without a reason"

// CallbackMessage is the body of an SQS message sent by a SageMaker
// Pipelines callback step.
type CallbackMessage struct {
	// Token answers the step. It prints redacted.
	Token CallbackToken
	// PipelineExecutionARN is the execution the step belongs to.
	PipelineExecutionARN string
	// Arguments are the step's arguments as raw JSON values: a value can
	// be any JSON type, not only a string. Nil when the message has none.
	Arguments map[string]json.RawMessage
	// Status is CallbackStatusExecuting or CallbackStatusStopping.
	Status string
}

// IsStopping reports whether the message says the execution is being
// stopped: the step must be cleaned up and answered, and its work not
// started.
func (m *CallbackMessage) IsStopping() bool {
	return m != nil && m.Status == CallbackStatusStopping
}

// ParseCallbackMessage parses and validates the body of a callback step's
// SQS message:
//
//	{"token": "...", "pipelineExecutionArn": "...", "arguments": {...}, "status": "Executing"}
//
// Each key is accepted lowercase as documented in the message samples
// ("status") or capitalised as in the API reference ("Status"). When a body
// holds both spellings of a key with different values the message is
// ambiguous and rejected: answering a step on a guess could skip its work
// or stop it by mistake. A missing status means Executing (the earliest
// messages had none); the status is matched case-insensitively and
// normalised, and any status other than Executing and Stopping is
// rejected. The token must be CallbackTokenLength letters or digits, the
// ARN a valid pipeline execution ARN, the arguments (if present) a JSON
// object, and the body at most MaxCallbackMessageSize bytes.
//
// Every error matches ErrInvalidCallback (an ARN error also matches
// ErrInvalidARN) and shows the token redacted.
func ParseCallbackMessage(body string) (*CallbackMessage, error) {
	if len(body) > MaxCallbackMessageSize {
		return nil, fmt.Errorf("%w: the message body is %d bytes, more than the SQS limit of %d",
			ErrInvalidCallback, len(body), MaxCallbackMessageSize)
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &fields); err != nil {
		return nil, fmt.Errorf("%w: the message body is not a JSON object: %v", ErrInvalidCallback, jsonProblem(err))
	}
	var raw struct {
		token, arn, status string
		args               json.RawMessage
	}
	for _, f := range []struct {
		key string
		dst any
	}{
		{"token", &raw.token},
		{"pipelineExecutionArn", &raw.arn},
		{"arguments", &raw.args},
		{"status", &raw.status},
	} {
		v, err := field(fields, f.key)
		if err != nil {
			return nil, err
		}
		if v == nil {
			continue
		}
		if p, ok := f.dst.(*json.RawMessage); ok {
			*p = v
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return nil, fmt.Errorf("%w: %q is not a JSON string", ErrInvalidCallback, f.key)
		}
	}
	m := &CallbackMessage{Token: CallbackToken(raw.token), PipelineExecutionARN: raw.arn}
	if raw.token == "" {
		return nil, fmt.Errorf("%w: the message has no token", ErrInvalidCallback)
	}
	if err := m.Token.Validate(); err != nil {
		return nil, err
	}
	if raw.arn == "" {
		return nil, fmt.Errorf("%w: the message for callback token %v has no pipelineExecutionArn", ErrInvalidCallback, m.Token)
	}
	// The quoted ARN and part must not carry the token (a body with its
	// fields mixed up).
	if _, err := parseExecutionARN(raw.arn, m.Token); err != nil {
		return nil, fmt.Errorf("%w: the message for callback token %v: %w", ErrInvalidCallback, m.Token, err)
	}
	switch {
	case raw.status == "" || strings.EqualFold(raw.status, CallbackStatusExecuting):
		m.Status = CallbackStatusExecuting
	case strings.EqualFold(raw.status, CallbackStatusStopping):
		m.Status = CallbackStatusStopping
	default:
		return nil, fmt.Errorf("%w: the message for callback token %v has status %.40q; want %s or %s",
			ErrInvalidCallback, m.Token, m.Token.Redact(raw.status), CallbackStatusExecuting, CallbackStatusStopping)
	}
	if len(raw.args) > 0 && !bytes.Equal(raw.args, []byte("null")) {
		if err := json.Unmarshal(raw.args, &m.Arguments); err != nil {
			return nil, fmt.Errorf("%w: the arguments of the message for callback token %v are not a JSON object",
				ErrInvalidCallback, m.Token)
		}
	}
	return m, nil
}

// field returns the value of key in fields, spelled as given or with its
// first letter upper case; it is an error when both spellings are present
// with different values.
func field(fields map[string]json.RawMessage, key string) (json.RawMessage, error) {
	capital := strings.ToUpper(key[:1]) + key[1:]
	lower, okLower := fields[key]
	upper, okUpper := fields[capital]
	switch {
	case okLower && okUpper && !bytes.Equal(lower, upper):
		return nil, fmt.Errorf("%w: the message has both %q and %q with different values", ErrInvalidCallback, key, capital)
	case okLower:
		return lower, nil
	case okUpper:
		return upper, nil
	}
	return nil, nil
}

// jsonProblem describes a JSON decoding error without quoting the input.
func jsonProblem(err error) string {
	var syntax *json.SyntaxError
	if errors.As(err, &syntax) {
		return fmt.Sprintf("invalid JSON at byte %d", syntax.Offset)
	}
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) {
		return fmt.Sprintf("found a JSON %s", typeErr.Value)
	}
	return "invalid JSON"
}

// CallbackAPIClient is the part of the SageMaker API an Acknowledger uses.
// *sagemaker.Client satisfies it.
type CallbackAPIClient interface {
	SendPipelineExecutionStepSuccess(ctx context.Context, in *sagemaker.SendPipelineExecutionStepSuccessInput, optFns ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepSuccessOutput, error)
	SendPipelineExecutionStepFailure(ctx context.Context, in *sagemaker.SendPipelineExecutionStepFailureInput, optFns ...func(*sagemaker.Options)) (*sagemaker.SendPipelineExecutionStepFailureOutput, error)
}

var _ CallbackAPIClient = (*sagemaker.Client)(nil)

// Operation names of the answers.
const (
	opSucceed = "SendPipelineExecutionStepSuccess"
	opFail    = "SendPipelineExecutionStepFailure"
)

// Acknowledger answers callback steps: SendPipelineExecutionStepSuccess and
// SendPipelineExecutionStepFailure with checked limits, idempotency tokens
// derived from the callback token, and the Stopper's retries. It uses the
// retry, observer and clock fields of Options (RetryBudget, RetryMinDelay,
// RetryMaxDelay, RetryMultiplier, RetryJitter, Retryable, OnEvent, Logger,
// ClientOptions, Clock); the others do not apply. It is safe for
// concurrent use.
type Acknowledger struct {
	client CallbackAPIClient
	opts   Options
}

// NewAcknowledger returns an Acknowledger that answers through client,
// usually a *sagemaker.Client. The option functions change the defaults
// for every call.
func NewAcknowledger(client CallbackAPIClient, optFns ...func(*Options)) *Acknowledger {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	return &Acknowledger{client: client, opts: o}
}

// options returns a copy of the Acknowledger's options with optFns applied.
func (a *Acknowledger) options(optFns []func(*Options)) Options {
	o := a.opts
	o.ClientOptions = slices.Clone(o.ClientOptions)
	for _, fn := range optFns {
		fn(&o)
	}
	return o.withDefaults()
}

var errNilCallbackClient = errors.New("pipelinestop: Acknowledger has no SageMaker client (NewAcknowledger was given nil)")

// Succeed answers the callback step with SendPipelineExecutionStepSuccess
// and the given output parameters (name to value; sent sorted by name).
//
// The token and the limits (at most MaxOutputParameters outputs, names of
// 1 to MaxOutputNameLength characters, values of at most
// MaxOutputValueLength characters) are checked before any call; a breach is
// an error matching ErrInvalidCallback that names the output. The
// ClientRequestToken is DeriveToken("SendPipelineExecutionStepSuccess",
// token): an answer repeated after an SQS redelivery, by a restarted
// process or another replica, is the same request. Conflicts, throttling
// and unavailability are retried like Stopper.Stop's. ResourceNotFound
// matches ErrNotFound; a step that was already answered (or no longer
// waits) matches ErrAlreadyAnswered, which callers treat as done. Errors
// are *Error values whose text never holds the raw token.
func (a *Acknowledger) Succeed(ctx context.Context, token CallbackToken, outputs map[string]string, optFns ...func(*Options)) error {
	if err := checkOutputs(token, outputs); err != nil {
		return fmt.Errorf("send pipeline execution step success: %w", err)
	}
	params := make([]types.OutputParameter, 0, len(outputs))
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		params = append(params, types.OutputParameter{Name: aws.String(name), Value: aws.String(outputs[name])})
	}
	in := &sagemaker.SendPipelineExecutionStepSuccessInput{
		CallbackToken:      aws.String(string(token)),
		ClientRequestToken: aws.String(DeriveToken(opSucceed, string(token))),
		OutputParameters:   params,
	}
	o := a.options(optFns)
	return a.answer(ctx, &o, opSucceed, token, func(ctx context.Context) error {
		_, err := a.client.SendPipelineExecutionStepSuccess(ctx, in, o.ClientOptions...)
		return err
	})
}

// Fail answers the callback step with SendPipelineExecutionStepFailure.
// An empty reason is sent as DefaultFailureReason; invalid UTF-8 is
// replaced; a reason longer than MaxFailureReasonLength bytes is cut at a
// UTF-8 character boundary and ends in "..." (see FailureReason). The
// ClientRequestToken is DeriveToken("SendPipelineExecutionStepFailure",
// token). Retries and errors are as for Succeed.
func (a *Acknowledger) Fail(ctx context.Context, token CallbackToken, reason string, optFns ...func(*Options)) error {
	if err := token.Validate(); err != nil {
		return fmt.Errorf("send pipeline execution step failure: %w", err)
	}
	in := &sagemaker.SendPipelineExecutionStepFailureInput{
		CallbackToken:      aws.String(string(token)),
		ClientRequestToken: aws.String(DeriveToken(opFail, string(token))),
		FailureReason:      aws.String(FailureReason(reason)),
	}
	o := a.options(optFns)
	return a.answer(ctx, &o, opFail, token, func(ctx context.Context) error {
		_, err := a.client.SendPipelineExecutionStepFailure(ctx, in, o.ClientOptions...)
		return err
	})
}

// answer makes one answer call with retries, as Stopper.stop does.
func (a *Acknowledger) answer(ctx context.Context, o *Options, op string, token CallbackToken, call func(context.Context) error) error {
	if a.client == nil {
		return errNilCallbackClient
	}
	r := retry.Do(ctx, o.Clock, o.retryPolicy(), retry.Hooks{
		Retryable: o.Retryable,
		OnRetry: func(attempt int, delay time.Duration, err error) {
			o.emit(ctx, Event{Type: EventRetry, Op: op, CallbackToken: token, Attempt: attempt, Delay: delay, Err: err})
		},
	}, func(ctx context.Context, attempt int) error {
		o.emit(ctx, Event{Type: EventAttempt, Op: op, CallbackToken: token, Attempt: attempt})
		if err := call(ctx); err != nil {
			e := classify(err, "")
			e.Message = token.Redact(e.Message)
			return e
		}
		return nil
	})
	if r.Err == nil && r.Canceled == nil {
		o.emit(ctx, Event{Type: EventAnswered, Op: op, CallbackToken: token, Attempt: r.Attempts})
		return nil
	}
	err := finalError(op, "", r)
	if errors.Is(err, ErrAlreadyAnswered) || errors.Is(err, ErrNotFound) {
		o.emit(ctx, Event{Type: EventAnswered, Op: op, CallbackToken: token, Attempt: r.Attempts, Err: err})
	}
	return err
}

// checkOutputs checks the token and the documented limits of outputs.
func checkOutputs(token CallbackToken, outputs map[string]string) error {
	if err := token.Validate(); err != nil {
		return err
	}
	if len(outputs) > MaxOutputParameters {
		return fmt.Errorf("%w: %d output parameters, more than the limit of %d",
			ErrInvalidCallback, len(outputs), MaxOutputParameters)
	}
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		switch n := utf8.RuneCountInString(name); {
		case n == 0:
			return fmt.Errorf("%w: an output parameter has an empty name", ErrInvalidCallback)
		case n > MaxOutputNameLength:
			return fmt.Errorf("%w: output parameter %.40q... has a name of %d characters, more than the limit of %d",
				ErrInvalidCallback, token.Redact(name), n, MaxOutputNameLength)
		}
		if n := utf8.RuneCountInString(outputs[name]); n > MaxOutputValueLength {
			return fmt.Errorf("%w: output parameter %q has a value of %d characters, more than the limit of %d",
				ErrInvalidCallback, token.Redact(name), n, MaxOutputValueLength)
		}
	}
	return nil
}

// FailureReason returns reason as Fail sends it: DefaultFailureReason when
// empty, invalid UTF-8 replaced by U+FFFD, and cut to at most
// MaxFailureReasonLength bytes at a UTF-8 character boundary, ending in
// "..." when cut.
func FailureReason(reason string) string {
	reason = strings.ToValidUTF8(reason, "\uFFFD")
	if strings.TrimSpace(reason) == "" {
		return DefaultFailureReason
	}
	if len(reason) <= MaxFailureReasonLength {
		return reason
	}
	const ellipsis = "..."
	cut := MaxFailureReasonLength - len(ellipsis)
	for cut > 0 && !utf8.RuneStart(reason[cut]) {
		cut--
	}
	return reason[:cut] + ellipsis
}

// Answer says how AckStopping answered a callback step.
type Answer int

// Answers of AckStopping.
const (
	// AnsweredSuccess: the cleanup returned nil and the step was answered
	// with SendPipelineExecutionStepSuccess.
	AnsweredSuccess Answer = iota + 1
	// AnsweredFailure: the cleanup returned an error (or panicked) and the
	// step was answered with SendPipelineExecutionStepFailure.
	AnsweredFailure
)

// String returns "success", "failure", or "none" for the zero Answer.
func (a Answer) String() string {
	switch a {
	case AnsweredSuccess:
		return "success"
	case AnsweredFailure:
		return "failure"
	}
	return "none"
}

// AckResult says what AckStopping did.
type AckResult struct {
	// Answer is the answer sent (or attempted, when AckStopping also
	// returns an error). It is zero when nothing was sent because the
	// message was invalid.
	Answer Answer
	// Reason is the failure reason sent, as cut by FailureReason; "" for
	// a success.
	Reason string
	// CleanupErr is the cleanup's error, or a *PanicError when it
	// panicked; nil when the cleanup succeeded.
	CleanupErr error
}

// PanicError is a panic recovered from a handler or cleanup function.
type PanicError struct {
	// Value is the value passed to panic.
	Value any
	// Stack is the goroutine's stack when it panicked.
	Stack []byte
}

// Error says that the function panicked, and with what.
func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// AckStopping runs cleanup for a callback step's message, then answers the
// step: with success when cleanup returns nil, with failure and the
// cleanup's error as the reason otherwise. A panic in cleanup is recovered
// and answered as a failure (AckResult.CleanupErr is then a *PanicError).
// A nil cleanup means there is nothing to clean up.
//
// It is meant for Stopping messages: an execution that is being stopped
// waits for this answer, and either answer lets it stop. The result says
// which answer was sent; the error is the answer call's (see Succeed and
// Fail), so errors.Is(err, ErrAlreadyAnswered) means the step was done
// already. The cleanup's own error is in the result, not in the error.
func (a *Acknowledger) AckStopping(ctx context.Context, msg *CallbackMessage, cleanup func(context.Context, *CallbackMessage) error, optFns ...func(*Options)) (AckResult, error) {
	if msg == nil {
		return AckResult{}, fmt.Errorf("acknowledge stopping: %w: the message is nil", ErrInvalidCallback)
	}
	if err := msg.Token.Validate(); err != nil {
		return AckResult{}, fmt.Errorf("acknowledge stopping: %w", err)
	}
	var res AckResult
	if cleanup != nil {
		res.CleanupErr = callRecover(func() error { return cleanup(ctx, msg) })
	}
	if res.CleanupErr == nil {
		res.Answer = AnsweredSuccess
		return res, a.Succeed(ctx, msg.Token, nil, optFns...)
	}
	res.Answer = AnsweredFailure
	res.Reason = FailureReason(msg.Token.Redact(res.CleanupErr.Error()))
	return res, a.Fail(ctx, msg.Token, res.Reason, optFns...)
}

// callRecover calls fn and turns a panic into a *PanicError.
func callRecover(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
