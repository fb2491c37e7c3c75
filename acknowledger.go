package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"runtime/debug"
	"slices"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

//go:generate go tool mockgen -typed -destination internal/mocks/callback.go -package mocks github.com/pipelinestop/pipelinestop CallbackAPIClient

// CallbackAPIClient is the part of the SageMaker API an Acknowledger uses.
// *sagemaker.Client satisfies it. The answers' outputs are not read: an
// answer returned with neither an output nor an error counts as accepted.
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
// retry, observer, routing and clock fields of Options (RetryBudget,
// RetryMinDelay, RetryMaxDelay, RetryMultiplier, RetryJitter, Retryable,
// OnEvent, Logger, ClientOptions, DisableRegionRouting,
// CallbackExecutionARN, Clock); the others do not apply. It is safe for
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

// errNilCallbackClient is the error of every method of an Acknowledger
// without a client: a zero Acknowledger, a nil *Acknowledger, or
// NewAcknowledger(nil).
var errNilCallbackClient = errors.New("pipelinestop: Acknowledger has no SageMaker client (make it with NewAcknowledger and a non-nil client)")

// orZero returns a, or a zero Acknowledger when a is nil, so that every
// method of a nil *Acknowledger returns errNilCallbackClient instead of
// panicking.
func (a *Acknowledger) orZero() *Acknowledger {
	if a == nil {
		return &Acknowledger{}
	}
	return a
}

// Succeed answers the callback step with SendPipelineExecutionStepSuccess
// and the given output parameters (name to value; sent sorted by name).
//
// The token and the limits (at most MaxOutputParameters outputs, names of
// 1 to MaxOutputNameLength characters, values of at most
// MaxOutputValueLength characters) are checked before any call; a breach is
// an error matching ErrInvalidCallback that names the output.
//
// The ClientRequestToken is derived from the whole answer:
// DeriveToken("SendPipelineExecutionStepSuccess", token, name1, value1,
// name2, value2, ...) with the outputs sorted by name. The same answer
// repeated after an SQS redelivery, by a restarted process or another
// replica, is the same request, and SageMaker answers it with the same
// success. A different answer (other outputs, or a failure after a
// success) is a different request, which SageMaker refuses once the step
// was answered: it matches ErrAlreadyAnswered, and its text says
// "already answered with a different answer" (or that the step no longer
// waits), never a success for an answer the step did not keep.
//
// Conflicts, throttling and unavailability are retried like
// Stopper.Stop's. ResourceNotFound matches ErrNotFound. ErrAlreadyAnswered
// means the step needs no answer any more: the Consumer treats it as done;
// a caller who must know that this answer was the one kept treats it as a
// refusal. Errors are *Error values whose text never holds the raw token.
//
// The answer goes to the client's Region, or, when
// Options.CallbackExecutionARN is set (pass the message's
// PipelineExecutionARN), to that execution's Region (see
// Options.DisableRegionRouting): a callback token is only known in the
// Region of its execution. An execution of another partition than the
// client's is an error matching ErrPartitionMismatch, before any call.
func (a *Acknowledger) Succeed(ctx context.Context, token CallbackToken, outputs map[string]string, optFns ...func(*Options)) error {
	a = a.orZero()
	if err := checkOutputs(token, outputs); err != nil {
		return fmt.Errorf("send pipeline execution step success: %w", err)
	}
	params := make([]types.OutputParameter, 0, len(outputs))
	for _, name := range slices.Sorted(maps.Keys(outputs)) {
		params = append(params, types.OutputParameter{Name: aws.String(name), Value: aws.String(outputs[name])})
	}
	in := &sagemaker.SendPipelineExecutionStepSuccessInput{
		CallbackToken:      aws.String(string(token)),
		ClientRequestToken: aws.String(successToken(token, params)),
		OutputParameters:   params,
	}
	o := a.options(optFns)
	if err := o.routeAnswer(a.client, token, opSucceed); err != nil {
		return err
	}
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
// token, reason as sent): the same failure repeated is the same request, a
// different one (another reason, or a failure after a success) matches
// ErrAlreadyAnswered once the step was answered. Retries and errors are as
// for Succeed.
func (a *Acknowledger) Fail(ctx context.Context, token CallbackToken, reason string, optFns ...func(*Options)) error {
	a = a.orZero()
	if err := token.Validate(); err != nil {
		return fmt.Errorf("send pipeline execution step failure: %w", err)
	}
	sent := FailureReason(reason)
	in := &sagemaker.SendPipelineExecutionStepFailureInput{
		CallbackToken:      aws.String(string(token)),
		ClientRequestToken: aws.String(DeriveToken(opFail, string(token), sent)),
		FailureReason:      aws.String(sent),
	}
	o := a.options(optFns)
	if err := o.routeAnswer(a.client, token, opFail); err != nil {
		return err
	}
	return a.answer(ctx, &o, opFail, token, func(ctx context.Context) error {
		_, err := a.client.SendPipelineExecutionStepFailure(ctx, in, o.ClientOptions...)
		return err
	})
}

// successToken is the ClientRequestToken of a success answer: derived
// from the callback token and every output sent, in the order sent
// (sorted by name). DeriveToken length-prefixes each part, and names and
// values alternate, so two different sets of outputs never give the same
// parts. A success without outputs keeps the token of earlier versions,
// DeriveToken("SendPipelineExecutionStepSuccess", token).
func successToken(token CallbackToken, params []types.OutputParameter) string {
	parts := make([]string, 0, 2+2*len(params))
	parts = append(parts, opSucceed, string(token))
	for _, p := range params {
		parts = append(parts, aws.ToString(p.Name), aws.ToString(p.Value))
	}
	return DeriveToken(parts...)
}

// differentAnswer is put before the message of an answer that SageMaker
// refused as already answered: the answer's token is derived from its
// content, so an identical answer would have been replayed with success.
const differentAnswer = "the step was already answered with a different answer, or no longer waits"

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
	var err error
	if r.Err != nil || r.Canceled != nil {
		err = finalError(op, "", r)
		var e *Error
		if errors.As(err, &e) && e.Kind == ErrAlreadyAnswered {
			e.Message = differentAnswer + ": " + e.Message
		}
	}
	if answeredOrGone(err) {
		o.emit(ctx, Event{Type: EventAnswered, Op: op, CallbackToken: token, Attempt: r.Attempts, Err: err})
	}
	return err
}

// answeredOrGone reports whether err, the error of an answer to a callback
// step, means that the step needs no more answers: nil (SageMaker accepted
// the answer), ErrAlreadyAnswered (the step was answered before, or no
// longer waits) or ErrNotFound (the step, or its execution, is gone). Its
// message can then be deleted; any other error leaves the step waiting.
// It is the one statement of that rule, for the Acknowledger's
// EventAnswered and for the Consumer.
func answeredOrGone(err error) bool {
	return err == nil || errors.Is(err, ErrAlreadyAnswered) || errors.Is(err, ErrNotFound)
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
	// message was invalid or the Acknowledger has no client (then the
	// cleanup did not run either).
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
// The answer goes to the Region of msg.PipelineExecutionARN (see
// Options.CallbackExecutionARN).
func (a *Acknowledger) AckStopping(ctx context.Context, msg *CallbackMessage, cleanup func(context.Context, *CallbackMessage) error, optFns ...func(*Options)) (AckResult, error) {
	if msg == nil {
		return AckResult{}, fmt.Errorf("acknowledge stopping: %w: the message is nil", ErrInvalidCallback)
	}
	if err := msg.Token.Validate(); err != nil {
		return AckResult{}, fmt.Errorf("acknowledge stopping: %w", err)
	}
	if a == nil || a.client == nil {
		// No answer could be sent: do not clean up for nothing.
		return AckResult{}, errNilCallbackClient
	}
	// The answer goes to the Region of the message's execution; the
	// caller's options come after, and can say otherwise.
	optFns = append([]func(*Options){answerFor(msg.PipelineExecutionARN)}, optFns...)
	var res AckResult
	if cleanup != nil {
		res.CleanupErr = callRecover(func() error { return cleanup(ctx, msg) })
	}
	if res.CleanupErr == nil {
		res.Answer = AnsweredSuccess
		return res, a.Succeed(ctx, msg.Token, nil, optFns...)
	}
	res.Answer = AnsweredFailure
	res.Reason = FailureReason(msg.Token.redactSecrets(res.CleanupErr.Error()))
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
