package pipelinestop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"unicode/utf8"
)

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
// message redacted, and any credentials (see RedactCredentials); it unwraps to err, so errors.Is and errors.As still
// see through it.
func (t CallbackToken) scrubErr(err error) error {
	if err == nil || t == "" && !credentialPattern.MatchString(err.Error()) {
		return err
	}
	return &scrubbedError{err: err, token: t}
}

// scrubbedError is an error whose message has a callback token and any
// credentials redacted (see redactSecrets).
type scrubbedError struct {
	err   error
	token CallbackToken
}

func (e *scrubbedError) Error() string { return e.token.redactSecrets(e.err.Error()) }
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
