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
	// Token is the ClientRequestToken of the last stop request: the one
	// sent on every attempt (see Options.Token), or the round's token when
	// Stop stopped the execution again (Restopped).
	Token string
	// Accepted is true when SageMaker accepted StopPipelineExecution with
	// Token: the stop took effect now, or it repeated a request SageMaker
	// had accepted before (a restarted process, another replica), in which
	// case Status tells what has become of the execution since. It is
	// false when SageMaker refused the stop because the execution was no
	// longer Executing: then Status tells what it was.
	Accepted bool
	// Status is the execution's status as seen by the
	// DescribePipelineExecution call Stop makes after SageMaker answers
	// the stop, never assumed. After an accepted stop it is usually
	// Stopping, or Stopped when no step held the execution; a replayed
	// stop can see any later status (Stopped, Failed, ...). After a
	// refused stop it is Stopping or Stopped (it was already being
	// stopped, see AlreadyStopping) or another terminal status (nothing was
	// left to stop, see NotRunning). It is "" when the lookup after an
	// accepted stop failed (LookupErr says why; the stop itself
	// succeeded). Executing after an accepted stop is possible only when
	// Restopped (see there).
	Status types.PipelineExecutionStatus
	// Restopped is true when an accepted stop found the execution still
	// Executing: the acceptance replayed a request of an earlier round of
	// the execution (RetryPipelineExecution runs a Failed execution again
	// under the same ARN, and SageMaker completes one ClientRequestToken
	// no more than once). Stop then sent one more stop, with a token
	// derived from the execution's current round (see Options.Token), and
	// Accepted, Token and Status are that stop's. Stop makes at most one
	// such stop per call: if the execution still reads Executing after it
	// (a lookup that lags, or another retry in between), Status says so and
	// Wait tells the end.
	Restopped bool
	// LookupErr is the error of the status lookup after an accepted stop,
	// when it failed; Status is then "". It does not fail the stop.
	LookupErr error
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
// nothing to stop. It requires a terminal status seen (see IsTerminal): it
// is false when no status was seen, for example for an execution that
// does not exist (ErrNotFound).
func (r *StopResult) NotRunning() bool {
	return !r.Accepted && IsTerminal(r.Status) && !r.AlreadyStopping()
}

// Stop asks SageMaker to stop the execution and retries what is transient.
//
// It checks the ARN and token before any call and sends the same
// ClientRequestToken on every attempt (see Options.Token). Every call goes
// to the Region in the ARN (see Options.DisableRegionRouting); an
// execution of another partition than the client's Region is an *Error
// matching ErrPartitionMismatch, before any call. Conflicts are retried
// every Options.ConflictInterval, throttling and unavailability with
// exponential backoff and jitter, until Options.RetryBudget is spent or
// ctx ends; Stop never sleeps past ctx's deadline. ResourceNotFound returns
// ErrNotFound at once.
//
// Whatever SageMaker answers, Stop then looks the execution's status up
// with one DescribePipelineExecution and reports what it saw
// (StopResult.Status). When SageMaker says the execution is not
// Executing, Stopping or Stopped is success (StopResult.AlreadyStopping);
// any other status is success too (StopResult.NotRunning), or
// ErrNotRunning when Options.FailIfNotRunning is set. When SageMaker
// accepts the stop but the execution still reads Executing, the
// acceptance was the replay of an earlier round's stop (the execution was
// retried since): Stop stops it once more with the round's token
// (StopResult.Restopped). Other errors are returned as *Error.
//
// The result is non-nil whenever the ARN and token are valid, also with an
// error, so callers can log the attempts made and the token used.
func (s *Stopper) Stop(ctx context.Context, executionARN string, optFns ...func(*Options)) (*StopResult, error) {
	s = s.orZero()
	o := s.options(optFns)
	return s.stop(ctx, s.client, executionARN, &o, nil)
}

// stopCall is the state of one Stop: its client, options, batch (nil
// unless it is one of a StopAll's) and the result it builds.
type stopCall struct {
	client StopAPIClient
	arn    string
	o      *Options
	hooks  retry.Hooks
	// stopOptions are the ClientOptions of the StopPipelineExecution
	// calls (StopAll turns the SDK's retries off for them).
	stopOptions []func(*sagemaker.Options)
	res         *StopResult
	// round is the LastModifiedTime seen by the last lookup, nil if none.
	round *time.Time
}

// stop is Stop with the client and options given, and b when the stop is
// one of a StopAll's (nil otherwise).
func (s *Stopper) stop(ctx context.Context, client StopAPIClient, arn string, o *Options, b *batch) (*StopResult, error) {
	if client == nil {
		return nil, errNilClient
	}
	a, err := ParseExecutionARN(arn)
	if err != nil {
		return nil, fmt.Errorf("stop pipeline execution: %w", err)
	}
	token := o.Token
	if token == "" {
		token = DeriveToken(opStop, arn)
	}
	if err := ValidateToken(token); err != nil {
		return nil, fmt.Errorf("stop pipeline execution %s: %w", arn, err)
	}
	// Every call of this stop (and of the wait after it, which shares o)
	// goes to the execution's Region.
	if err := o.route(client, a, opStop); err != nil {
		return nil, err
	}
	c := &stopCall{client: client, arn: arn, o: o, stopOptions: o.ClientOptions,
		res: &StopResult{ExecutionARN: arn}}
	res := c.res
	start := o.Clock.Now()
	c.hooks = retry.Hooks{
		Retryable: o.Retryable,
		Throttled: func(err error) bool { return errors.Is(err, ErrThrottled) },
	}
	if b != nil {
		// Each attempt takes its batch slot and its pacer turn (see
		// batch), and makes its calls on client directly: the slot it
		// holds covers the status lookup after the stop's answer too.
		c.hooks.Admission, c.hooks.Pacer = b.admission, b.pacer
		// The pacer must see every throttled answer, and a call must not
		// hold a StopAll slot through the SDK's own backoff: this loop
		// retries throttling, 5xx and connection errors itself. The
		// caller's ClientOptions come after, so they can undo this.
		c.stopOptions = append([]func(*sagemaker.Options){noSDKRetries}, o.ClientOptions...)
	}
	r := c.send(ctx, token)
	if r.Err == nil && r.Canceled == nil && res.Accepted && res.Status == types.PipelineExecutionStatusExecuting {
		// The accepted token had completed before, in an earlier round
		// of the execution: stop this round, once.
		res.Restopped = true
		first := r.Attempts
		r = c.send(ctx, c.roundToken(token))
		r.Attempts += first
	}
	res.Attempts = r.Attempts
	res.Elapsed = o.Clock.Now().Sub(start)
	if r.Err != nil || r.Canceled != nil {
		return res, finalError(opStop, arn, r)
	}
	o.emit(ctx, Event{Type: EventStopped, Op: opStop, ExecutionARN: arn, Attempt: r.Attempts,
		Status: res.Status, Elapsed: res.Elapsed, Err: res.LookupErr})
	if o.FailIfNotRunning && res.NotRunning() {
		return res, &Error{Op: opStop, ExecutionARN: arn, Kind: ErrNotRunning, Attempts: r.Attempts,
			Code:    "ValidationException",
			Message: fmt.Sprintf("the execution is %s, not Executing: there was nothing to stop", res.Status)}
	}
	return res, nil
}

// send makes StopPipelineExecution calls with token until one is
// answered for good (retrying what is transient), and looks the status up
// after the answer. Attempt numbers in events continue those of an
// earlier send of the same Stop.
func (c *stopCall) send(ctx context.Context, token string) retry.Result {
	o, arn, res := c.o, c.arn, c.res
	res.Token, res.Accepted = token, false
	before := res.Attempts
	in := &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String(arn), ClientRequestToken: aws.String(token)}
	hooks := c.hooks
	hooks.OnRetry = func(attempt int, delay time.Duration, err error) {
		o.emit(ctx, Event{Type: EventRetry, Op: opStop, ExecutionARN: arn, Attempt: before + attempt, Delay: delay, Err: err})
	}
	r := retry.Do(ctx, o.Clock, o.retryPolicy(), hooks, func(ctx context.Context, attempt int) error {
		res.Attempts = before + attempt
		o.emit(ctx, Event{Type: EventAttempt, Op: opStop, ExecutionARN: arn, Attempt: before + attempt})
		_, err := c.client.StopPipelineExecution(ctx, in, c.stopOptions...)
		if err == nil {
			res.Accepted = true
			c.lookUpAccepted(ctx)
			return nil
		}
		res.Accepted = false
		cerr := classify(err, arn)
		if !errors.Is(cerr, ErrNotRunning) {
			return cerr
		}
		return c.lookUpNotRunning(ctx, cerr)
	})
	return r
}

// describe makes one DescribePipelineExecution call for the execution
// and records its LastModifiedTime as the execution's round.
func (c *stopCall) describe(ctx context.Context) (types.PipelineExecutionStatus, error) {
	d, err := c.client.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{
		PipelineExecutionArn: aws.String(c.arn)}, c.o.ClientOptions...)
	if err != nil {
		return "", classify(err, c.arn)
	}
	if d == nil {
		return "", errNoOutput(opDescribe, c.arn)
	}
	c.round = d.LastModifiedTime
	return d.PipelineExecutionStatus, nil
}

// lookUpAccepted records in res the status of an execution whose stop
// SageMaker accepted. A failed lookup leaves Status "" and is recorded in
// LookupErr: the stop succeeded all the same.
func (c *stopCall) lookUpAccepted(ctx context.Context) {
	st, err := c.describe(ctx)
	c.res.Status, c.res.LookupErr = st, err
}

// lookUpNotRunning handles SageMaker's "Only pipelines with 'Executing'
// status can be stopped": it records the execution's status in res and
// returns nil, or an error to retry when the execution is (again)
// Executing, or the lookup's own error.
func (c *stopCall) lookUpNotRunning(ctx context.Context, notRunning *Error) error {
	st, err := c.describe(ctx)
	if err != nil {
		return err
	}
	if st == types.PipelineExecutionStatusExecuting || st == "" {
		// SageMaker refused the stop but the execution reads as Executing:
		// a race between the two calls. Treat it as a conflict.
		e := *notRunning
		e.Kind = ErrConflict
		e.Message += " (but the execution reads as Executing: retrying)"
		return &e
	}
	c.res.Status, c.res.LookupErr = st, nil
	return nil
}

// roundToken is the token of a stop of the execution's current round,
// after the stop with token was accepted as a replay: derived from the
// execution's LastModifiedTime as last seen, so that replicas that see the
// same round send the same request. It is DeriveToken(
// "StopPipelineExecution", arn, round) for the derived token and
// DeriveToken(Options.Token, round) for a caller's. Without a
// LastModifiedTime it is a new random token: a second such stop is then
// refused as not Executing, and reported as AlreadyStopping.
func (c *stopCall) roundToken(token string) string {
	if c.round == nil {
		return NewToken()
	}
	round := c.round.UTC().Format(time.RFC3339Nano)
	if c.o.Token == "" {
		return DeriveToken(opStop, c.arn, round)
	}
	return DeriveToken(token, round)
}

// noSDKRetries makes the SDK try a call once.
func noSDKRetries(o *sagemaker.Options) { o.RetryMaxAttempts = 1 }

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
