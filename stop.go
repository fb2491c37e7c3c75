package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

// StopResult says what Stop did.
type StopResult struct {
	// ExecutionARN is the execution that was stopped.
	ExecutionARN string
	// Token is the ClientRequestToken sent on every attempt.
	Token string
	// Accepted is true when SageMaker accepted StopPipelineExecution with
	// Token. It is false when the execution was no longer Executing: then
	// Status tells what it was.
	Accepted bool
	// Status is Stopping when the stop was accepted (SageMaker moves an
	// Executing execution to Stopping), else the status looked up after
	// SageMaker refused the stop: Stopping or Stopped (it was already being
	// stopped), or another terminal status (nothing was left to stop).
	Status types.PipelineExecutionStatus
	// Attempts is how many StopPipelineExecution calls were made.
	Attempts int
	// Elapsed is the time Stop took.
	Elapsed time.Duration
}

// AlreadyStopping reports whether the execution was already Stopping or
// Stopped when this stop was made (by another caller or an earlier run).
func (r *StopResult) AlreadyStopping() bool {
	return !r.Accepted && (r.Status == types.PipelineExecutionStatusStopping || r.Status == types.PipelineExecutionStatusStopped)
}

// NotRunning reports whether the execution had ended without being
// stopped (Succeeded, Failed, CompletedWithFailures, ...), so there was
// nothing to stop.
func (r *StopResult) NotRunning() bool {
	return !r.Accepted && !r.AlreadyStopping()
}

// Stop asks SageMaker to stop the execution and retries what is transient.
//
// It checks the ARN and token before any call and sends the same
// ClientRequestToken on every attempt (see Options.Token). Conflicts,
// throttling and unavailability are retried with exponential backoff and
// jitter until Options.RetryBudget is spent or ctx ends; Stop never sleeps
// past ctx's deadline. ResourceNotFound returns ErrNotFound at once. When
// SageMaker says the execution is not Executing, Stop looks its status up:
// Stopping or Stopped is success (StopResult.AlreadyStopping); any other
// status is success too (StopResult.NotRunning), or ErrNotRunning when
// Options.FailIfNotRunning is set. Other errors are returned as *Error.
//
// The result is non-nil whenever the ARN and token are valid, also with an
// error, so callers can log the attempts made and the token used.
func (s *Stopper) Stop(ctx context.Context, executionARN string, optFns ...func(*Options)) (*StopResult, error) {
	o := s.options(optFns)
	return s.stop(ctx, s.client, executionARN, &o, nil)
}

// stop is Stop with the client and options given, and b when the stop is
// one of a StopAll's (nil otherwise).
func (s *Stopper) stop(ctx context.Context, client StopAPIClient, arn string, o *Options, b *batch) (*StopResult, error) {
	if client == nil {
		return nil, errNilClient
	}
	if err := validateARN(arn); err != nil {
		return nil, fmt.Errorf("stop pipeline execution: %w", err)
	}
	token := o.Token
	if token == "" {
		token = DeriveToken("StopPipelineExecution", arn)
	}
	if err := ValidateToken(token); err != nil {
		return nil, fmt.Errorf("stop pipeline execution %s: %w", arn, err)
	}
	res := &StopResult{ExecutionARN: arn, Token: token}
	start := o.Clock.Now()
	in := &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String(arn), ClientRequestToken: aws.String(token)}
	stopOptions := o.ClientOptions
	hooks := retry.Hooks{
		Retryable: o.Retryable,
		Throttled: func(err error) bool { return errors.Is(err, ErrThrottled) },
		OnRetry: func(attempt int, delay time.Duration, err error) {
			o.emit(ctx, Event{Type: EventRetry, Op: opStop, ExecutionARN: arn, Attempt: attempt, Delay: delay, Err: err})
		},
	}
	if b != nil {
		// Each attempt takes its batch slot and its pacer turn (see
		// batch), and makes its calls on client directly: the slot it
		// holds covers the lookup of a refused stop too.
		hooks.Admission, hooks.Pacer = b.admission, b.pacer
		// The pacer must see every throttled answer, and a call must not
		// hold a StopAll slot through the SDK's own backoff: this loop
		// retries throttling, 5xx and connection errors itself. The
		// caller's ClientOptions come after, so they can undo this.
		stopOptions = append([]func(*sagemaker.Options){noSDKRetries}, o.ClientOptions...)
	}
	r := retry.Do(ctx, o.Clock, o.retryPolicy(), hooks, func(ctx context.Context, attempt int) error {
		o.emit(ctx, Event{Type: EventAttempt, Op: opStop, ExecutionARN: arn, Attempt: attempt})
		_, err := client.StopPipelineExecution(ctx, in, stopOptions...)
		if err == nil {
			res.Accepted, res.Status = true, types.PipelineExecutionStatusStopping
			return nil
		}
		cerr := classify(err, arn)
		if !errors.Is(cerr, ErrNotRunning) {
			return cerr
		}
		return s.lookUpNotRunning(ctx, client, res, cerr, o)
	})
	res.Attempts = r.Attempts
	res.Elapsed = o.Clock.Now().Sub(start)
	if r.Err != nil || r.Canceled != nil {
		return res, finalError(opStop, arn, r)
	}
	o.emit(ctx, Event{Type: EventStopped, Op: opStop, ExecutionARN: arn, Attempt: r.Attempts,
		Status: res.Status, Elapsed: res.Elapsed})
	if o.FailIfNotRunning && res.NotRunning() {
		return res, &Error{Op: opStop, ExecutionARN: arn, Kind: ErrNotRunning, Attempts: r.Attempts,
			Code:    "ValidationException",
			Message: fmt.Sprintf("the execution is %s, not Executing: there was nothing to stop", res.Status)}
	}
	return res, nil
}

// noSDKRetries makes the SDK try a call once.
func noSDKRetries(o *sagemaker.Options) { o.RetryMaxAttempts = 1 }

// lookUpNotRunning handles SageMaker's "Only pipelines with 'Executing'
// status can be stopped": it records the execution's status in res and
// returns nil, or an error to retry when the execution is (again)
// Executing, or the lookup's own error.
func (s *Stopper) lookUpNotRunning(ctx context.Context, client StopAPIClient, res *StopResult, notRunning *Error, o *Options) error {
	d, err := client.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{
		PipelineExecutionArn: aws.String(res.ExecutionARN)}, o.ClientOptions...)
	if err != nil {
		return classify(err, res.ExecutionARN)
	}
	if d.PipelineExecutionStatus == types.PipelineExecutionStatusExecuting || d.PipelineExecutionStatus == "" {
		// SageMaker refused the stop but the execution reads as Executing:
		// a race between the two calls. Treat it as a conflict.
		e := *notRunning
		e.Kind = ErrConflict
		e.Message += " (but the execution reads as Executing: retrying)"
		return &e
	}
	res.Status = d.PipelineExecutionStatus
	return nil
}

// finalError builds the error of a retry loop that did not succeed.
func finalError(op, arn string, r retry.Result) error {
	var e Error
	var last *Error
	switch {
	case errors.As(r.Err, &last):
		e = *last
	case r.Err != nil:
		e = *classify(r.Err, arn)
	default:
		e = Error{Op: op, ExecutionARN: arn, Message: "gave up before the first attempt"}
	}
	if e.Op == "" {
		e.Op = op
	}
	e.Attempts = r.Attempts
	e.Canceled = r.Canceled
	return &e
}
