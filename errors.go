package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awsretry "github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Sentinel errors. Every error returned by this package that has one of these
// causes matches it with errors.Is, while errors.As still reaches the SDK's
// own error (for example *types.ConflictException or smithy.APIError).
var (
	// ErrConflict means SageMaker answered ConflictException: the execution
	// was moving between steps, or another request changed it at the same
	// time. It is transient for StopPipelineExecution and is retried.
	ErrConflict = errors.New("pipelinestop: conflict")

	// ErrNotFound means SageMaker answered ResourceNotFound: the execution
	// (or callback token) does not exist in this account and Region.
	ErrNotFound = errors.New("pipelinestop: not found")

	// ErrNotRunning means the execution was not Executing, so there was
	// nothing to stop. Stop returns it only when Options.FailIfNotRunning is
	// set and the execution had already ended without being stopped.
	ErrNotRunning = errors.New("pipelinestop: execution not running")

	// ErrThrottled means SageMaker throttled the request (ThrottlingException
	// and the other throttling codes the SDK knows). It is retried.
	ErrThrottled = errors.New("pipelinestop: throttled")

	// ErrUnavailable means the service answered with a 5xx status or could
	// not be reached at all, after the SDK's own retries. It is retried.
	ErrUnavailable = errors.New("pipelinestop: service unavailable")

	// ErrInvalidARN means a pipeline execution ARN was malformed. It is
	// reported before any call is made; the *ARNError says what is wrong.
	ErrInvalidARN = errors.New("pipelinestop: invalid execution ARN")

	// ErrPartitionMismatch means a call about an execution cannot be
	// routed to the execution's Region: the Region is in another partition
	// than the client's Region (say an aws-cn execution and a client in
	// us-east-1, of partition aws: credentials of one partition do not sign
	// for another), or, in an *ARNError that also matches ErrInvalidARN, the
	// ARN's Region is not of the partition the ARN names. It is reported
	// before any call is made. See "Regions and partitions" in the package
	// documentation.
	ErrPartitionMismatch = errors.New("pipelinestop: execution in another partition")

	// ErrInvalidToken means a ClientRequestToken was not 32 to 128 printable
	// ASCII characters. It is reported before any call is made.
	ErrInvalidToken = errors.New("pipelinestop: invalid client request token")

	// ErrWaitTimeout means the context ended before the execution reached a
	// terminal status. The error is a *WaitError that also matches the
	// context's error and carries the last status and blocking steps.
	ErrWaitTimeout = errors.New("pipelinestop: wait ended before a terminal status")

	// ErrInvalidCallback means an SQS message body was not a valid callback
	// step message, or an answer to a callback step broke a documented limit.
	// It is reported before any call is made.
	ErrInvalidCallback = errors.New("pipelinestop: invalid callback")

	// ErrAlreadyAnswered means a callback step had already been answered
	// with a different answer (or was no longer waiting) when an answer was
	// sent: the same answer repeated is replayed with success, since its
	// ClientRequestToken is derived from it. Callers treat the step as
	// done; the answer sent was not the one the step kept.
	ErrAlreadyAnswered = errors.New("pipelinestop: callback step already answered")
)

// notRunningMessage is the part of SageMaker's ValidationException message
// that tells an execution that is no longer Executing apart from other
// validation errors, which share the error code.
const notRunningMessage = "Only pipelines with 'Executing' status can be stopped"

// unavailableCodes are API error codes that mean a server-side fault.
var unavailableCodes = map[string]bool{
	"InternalFailure":         true,
	"InternalServerError":     true,
	"InternalError":           true,
	"ServiceUnavailable":      true,
	"ServiceUnavailableError": true,
	"RequestTimeout":          true,
	"RequestTimeoutException": true,
}

// Error is the error this package returns for a failed SageMaker call. It
// records what was called and what the service said, and it unwraps to both
// its sentinel (Kind) and the SDK's error, so that
//
//	errors.Is(err, pipelinestop.ErrNotFound)
//	errors.As(err, &notFound) // notFound *types.ResourceNotFound
//
// both hold for one value. When the call was given up because the context
// ended during a retry delay, the error also matches the context's error.
type Error struct {
	// Op is the SageMaker operation, for example "StopPipelineExecution".
	Op string
	// ExecutionARN is the pipeline execution the call was about, if any.
	ExecutionARN string
	// Code is the API error code, for example "ConflictException"; empty
	// when the service was not reached.
	Code string
	// Message is the service's error message, with credential material
	// redacted (see RedactCredentials).
	Message string
	// RequestID is the AWS request ID of the failed request, if known.
	RequestID string
	// StatusCode is the HTTP status code of the answer, or 0.
	StatusCode int
	// Attempts is how many times this package made the call, counting the
	// failed one. The SDK's own retries inside one attempt are not counted.
	Attempts int
	// Kind is the sentinel this error matches (ErrConflict, ErrNotFound, ...),
	// or nil when the error fits none of them.
	Kind error
	// Err is the error the SDK returned, typically a *smithy.OperationError.
	// Its own message is the SDK's, unscrubbed: it can quote credential
	// material (the output of a failed credential_process), so print e,
	// not e.Err.
	Err error
	// Canceled is the context's error when the call was given up because
	// the context ended while waiting to retry, else nil.
	Canceled error
}

// Error returns a one-line description: the operation, the execution, the
// sentinel's meaning, the service's code and message and the request ID.
// Credential material in it is redacted (see RedactCredentials): the SDK
// quotes, for example, the malformed output of a credential_process,
// secret access key included.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(opPrefix(e.Op))
	if e.ExecutionARN != "" {
		b.WriteString(" ")
		b.WriteString(e.ExecutionARN)
	}
	b.WriteString(": ")
	if e.Canceled != nil {
		fmt.Fprintf(&b, "%v after %d attempts; last error: ", e.Canceled, e.Attempts)
	} else if e.Attempts > 1 {
		fmt.Fprintf(&b, "gave up after %d attempts: ", e.Attempts)
	}
	switch {
	case e.Code != "":
		b.WriteString(e.Code)
		if e.Message != "" {
			b.WriteString(": ")
			b.WriteString(e.Message)
		}
	case e.Message != "":
		b.WriteString(e.Message)
	case e.Err != nil:
		b.WriteString(e.Err.Error())
	default:
		b.WriteString("unknown error")
	}
	if e.RequestID != "" {
		b.WriteString(" (request ID ")
		b.WriteString(e.RequestID)
		b.WriteString(")")
	}
	return RedactCredentials(b.String())
}

// Unwrap returns the sentinel, the SDK's error and the context's error, in
// that order, leaving out those that are nil.
func (e *Error) Unwrap() []error {
	errs := make([]error, 0, 3)
	for _, err := range []error{e.Kind, e.Err, e.Canceled} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// opPrefix turns an operation name into a short lowercase prefix such as
// "stop pipeline execution".
func opPrefix(op string) string {
	if op == "" {
		return "pipelinestop"
	}
	var b strings.Builder
	for i, r := range op {
		if r >= 'A' && r <= 'Z' {
			if i > 0 {
				b.WriteByte(' ')
			}
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// Classify turns an error returned by a SageMaker or SQS client call into
// this package's *Error, so that callers who call the SDK themselves get the
// same errors.Is tests as the Stopper's callers:
//
//	_, err := client.StopPipelineExecution(ctx, in)
//	if errors.Is(pipelinestop.Classify(err), pipelinestop.ErrConflict) { ... }
//
// Classify returns nil for nil, returns err unchanged when it already holds
// an *Error or is a context error, and otherwise returns an *Error whose
// Kind is the matching sentinel, or nil when no sentinel fits (a validation
// error, an access error, ...).
func Classify(err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return err
	}
	if isContextError(err) {
		return err
	}
	return classify(err, "")
}

// classify builds an *Error for err, which must be non-nil.
func classify(err error, executionARN string) *Error {
	e := &Error{ExecutionARN: executionARN, Err: err}
	var opErr *smithy.OperationError
	if errors.As(err, &opErr) {
		e.Op = opErr.Operation()
	}
	var respErr *smithyhttp.ResponseError
	if errors.As(err, &respErr) {
		e.StatusCode = respErr.HTTPStatusCode()
	}
	var awsRespErr *awshttp.ResponseError
	if errors.As(err, &awsRespErr) {
		e.RequestID = awsRespErr.ServiceRequestID()
	}
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		e.Code = apiErr.ErrorCode()
		e.Message = RedactCredentials(apiErr.ErrorMessage())
	}
	e.Kind = kindOf(e, err)
	return e
}

// kindOf picks the sentinel for a classified error.
func kindOf(e *Error, err error) error {
	switch {
	case e.Code == "ConflictException":
		if isAnswerOp(e.Op) && strings.Contains(strings.ToLower(e.Message), "already") {
			return ErrAlreadyAnswered
		}
		return ErrConflict
	case e.Code == "ResourceNotFound" || e.Code == "ResourceNotFoundException":
		return ErrNotFound
	case e.Code == "ValidationException" && strings.Contains(e.Message, notRunningMessage):
		return ErrNotRunning
	case e.Code == "ValidationException" && isAnswerOp(e.Op) &&
		strings.Contains(strings.ToLower(e.Message), "already"):
		return ErrAlreadyAnswered
	case isThrottleCode(e.Code):
		return ErrThrottled
	case unavailableCodes[e.Code] || e.StatusCode >= 500:
		return ErrUnavailable
	case e.Code == "" && isConnectionError(err):
		return ErrUnavailable
	}
	return nil
}

// isThrottleCode reports whether code is an API error code that the SDK's
// standard retryer treats as throttling: its own set,
// retry.DefaultThrottleErrorCodes, so that the two never disagree.
func isThrottleCode(code string) bool {
	_, ok := awsretry.DefaultThrottleErrorCodes[code]
	return ok
}

// isAnswerOp reports whether op answers a callback step.
func isAnswerOp(op string) bool {
	return op == "SendPipelineExecutionStepSuccess" || op == "SendPipelineExecutionStepFailure"
}

// isConnectionError reports whether err means the service was not reached
// or the connection broke: transient faults worth another attempt.
func isConnectionError(err error) bool {
	var sendErr *smithyhttp.RequestSendError
	var quotaErr ratelimit.QuotaExceededError
	var netErr net.Error
	return errors.As(err, &sendErr) || errors.As(err, &quotaErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF)
}

// isContextError reports whether err is (or wraps) a context error.
func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// DefaultRetryable is the default for Options.Retryable. It reports whether
// a classified error is worth another attempt with the same
// ClientRequestToken: conflicts, throttling and unavailability are;
// everything else (not found, validation, access denied, ...) is not.
func DefaultRetryable(err error) bool {
	return errors.Is(err, ErrConflict) || errors.Is(err, ErrThrottled) || errors.Is(err, ErrUnavailable)
}

// errNoOutput is the error for a client call that returned neither an
// output nor an error, which the SDK's clients never do: a broken client
// (or test double). It matches no sentinel, so it is not retried: the
// same client would answer the same again.
func errNoOutput(op, arn string) *Error {
	return &Error{Op: op, ExecutionARN: arn, Message: "the client returned no output and no error"}
}
