package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

//go:generate go tool mockgen -typed -destination internal/mocks/stopper.go -package mocks github.com/pipelinestop/pipelinestop StopAPIClient

// StopAPIClient is the part of the SageMaker API a Stopper uses.
// *sagemaker.Client satisfies it.
type StopAPIClient interface {
	StopPipelineExecution(ctx context.Context, in *sagemaker.StopPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error)
	DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error)
	ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error)
}

var _ StopAPIClient = (*sagemaker.Client)(nil)

// Defaults of Options. Each is used when the field is zero (or invalid).
const (
	// DefaultRetryBudget bounds how long Stop keeps retrying conflicts,
	// throttling and unavailability. It outlasts conflict races of several
	// seconds; the context bounds it further.
	DefaultRetryBudget = time.Minute
	// DefaultRetryMinDelay is the delay before Stop's second attempt.
	DefaultRetryMinDelay = 100 * time.Millisecond
	// DefaultRetryMaxDelay caps any one delay between Stop's attempts, so a
	// conflict race is noticed to be over within about a second.
	DefaultRetryMaxDelay = time.Second
	// DefaultRetryMultiplier grows the delay between Stop's attempts. It is
	// small so that a stop issued during a conflict race lands soon after
	// the race ends.
	DefaultRetryMultiplier = 1.2
	// DefaultRetryJitter randomises each retry delay by up to ±20%, so
	// replicas stopping together do not retry in lockstep.
	DefaultRetryJitter = 0.2
	// DefaultMinDelay is the first delay between Wait's status polls: a stop
	// that takes 2 seconds is seen in about 2 seconds.
	DefaultMinDelay = 500 * time.Millisecond
	// DefaultMaxDelay caps the delay between Wait's status polls: a
	// 20-minute stop takes about 60 polls, not hundreds.
	DefaultMaxDelay = 30 * time.Second
	// DefaultDelayMultiplier grows the delay between Wait's polls, keeping
	// the lag between a terminal status and its detection near a tenth of
	// the time waited.
	DefaultDelayMultiplier = 1.2
	// DefaultStepsInterval is the least time between two listings of an
	// execution's steps while it is Stopping. The first Stopping poll always
	// lists them.
	DefaultStepsInterval = 10 * time.Second
	// DefaultConcurrency bounds StopAll's SageMaker calls in flight.
	DefaultConcurrency = 8
)

// stepsEveryPolls is the least number of status polls between two
// listings of a Stopping execution's steps.
const stepsEveryPolls = 3

// Clock tells the time and waits. Options.Clock defaults to the system
// clock; tests inject a fake one so they never sleep for real.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// Options configure a Stopper (and an Acknowledger). New applies the
// defaults first, then its option functions; every method applies its own
// option functions to a copy, so one Stopper serves many goroutines with
// different settings.
type Options struct {
	// Token is the ClientRequestToken for StopPipelineExecution. Default:
	// DeriveToken("StopPipelineExecution", executionARN), the same in every
	// process, so a restarted process or a second replica repeats the same
	// request. StopAll derives a token per execution from Token when set.
	Token string

	// FailIfNotRunning makes Stop return ErrNotRunning when the execution
	// had already ended without being stopped (Succeeded, Failed, ...).
	// Default false: such a stop succeeds and the result tells the status.
	FailIfNotRunning bool

	// RetryBudget bounds the time Stop spends retrying. Default
	// DefaultRetryBudget; the context bounds it too.
	RetryBudget time.Duration
	// RetryMinDelay is the delay before the second attempt. Default
	// DefaultRetryMinDelay.
	RetryMinDelay time.Duration
	// RetryMaxDelay caps one retry delay. Default DefaultRetryMaxDelay.
	RetryMaxDelay time.Duration
	// RetryMultiplier grows the retry delay. Default DefaultRetryMultiplier.
	RetryMultiplier float64
	// RetryJitter randomises retry delays by this fraction. Default
	// DefaultRetryJitter; a negative value turns jitter off.
	RetryJitter float64
	// Retryable reports whether an error (as returned by Classify) is worth
	// another attempt with the same token. Default DefaultRetryable.
	Retryable func(error) bool

	// MinDelay is the first delay between status polls. Default
	// DefaultMinDelay.
	MinDelay time.Duration
	// MaxDelay caps the delay between status polls. Default
	// DefaultMaxDelay.
	MaxDelay time.Duration
	// DelayMultiplier grows the delay between status polls. Default
	// DefaultDelayMultiplier.
	DelayMultiplier float64
	// StepsInterval is the least time between two listings of the steps
	// of a Stopping execution; Wait also lets at least three polls pass
	// between listings, so steps are always listed less often than the
	// status is polled. Default DefaultStepsInterval.
	StepsInterval time.Duration

	// Concurrency bounds StopAll's SageMaker calls in flight. Default
	// DefaultConcurrency.
	Concurrency int
	// Wait makes StopAll wait for every execution to reach a terminal
	// status. Default false.
	Wait bool

	// OnEvent, if set, is called for every Event, synchronously, from the
	// goroutine doing the work. It must be quick and safe for concurrent
	// use when one Stopper serves several goroutines.
	OnEvent func(Event)
	// Logger receives a record for every Event. Default: discard.
	Logger *slog.Logger

	// ClientOptions are passed to every SageMaker call, to tune one call
	// (a retryer, an endpoint, a region).
	ClientOptions []func(*sagemaker.Options)

	// Clock tells the time and waits. Default: the system clock.
	Clock Clock
}

// withDefaults returns o with zero and invalid fields replaced by defaults.
func (o Options) withDefaults() Options {
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&o.RetryBudget, DefaultRetryBudget)
	setDur(&o.RetryMinDelay, DefaultRetryMinDelay)
	setDur(&o.RetryMaxDelay, DefaultRetryMaxDelay)
	setDur(&o.MinDelay, DefaultMinDelay)
	setDur(&o.MaxDelay, DefaultMaxDelay)
	setDur(&o.StepsInterval, DefaultStepsInterval)
	if o.RetryMaxDelay < o.RetryMinDelay {
		o.RetryMaxDelay = o.RetryMinDelay
	}
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = o.MinDelay
	}
	if o.RetryMultiplier < 1 {
		o.RetryMultiplier = DefaultRetryMultiplier
	}
	if o.RetryJitter == 0 {
		o.RetryJitter = DefaultRetryJitter
	} else if o.RetryJitter < 0 || o.RetryJitter >= 1 {
		o.RetryJitter = min(max(o.RetryJitter, 0), 0.99)
	}
	if o.DelayMultiplier < 1 {
		o.DelayMultiplier = DefaultDelayMultiplier
	}
	if o.Retryable == nil {
		o.Retryable = DefaultRetryable
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Clock == nil {
		o.Clock = systemClock{}
	}
	return o
}

// retryPolicy is the backoff policy of Stop's retries.
func (o *Options) retryPolicy() retry.Policy {
	return retry.Policy{
		InitialDelay: o.RetryMinDelay,
		MaxDelay:     o.RetryMaxDelay,
		Multiplier:   o.RetryMultiplier,
		Jitter:       o.RetryJitter,
		Budget:       o.RetryBudget,
	}
}

// Stopper stops SageMaker pipeline executions and waits for them to end.
// It is safe for concurrent use.
type Stopper struct {
	client StopAPIClient
	opts   Options
}

// New returns a Stopper that calls SageMaker through client, usually a
// *sagemaker.Client. The option functions change the defaults for every
// call.
func New(client StopAPIClient, optFns ...func(*Options)) *Stopper {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	return &Stopper{client: client, opts: o}
}

// options returns a copy of the Stopper's options with optFns applied.
func (s *Stopper) options(optFns []func(*Options)) Options {
	o := s.opts
	o.ClientOptions = slices.Clone(o.ClientOptions)
	for _, fn := range optFns {
		fn(&o)
	}
	return o.withDefaults()
}

var errNilClient = errors.New("pipelinestop: Stopper has no SageMaker client (New was given nil)")

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

// IsTerminal reports whether an execution with this status will not change
// any more: every status other than Executing and Stopping, including
// CompletedWithFailures and values this SDK version does not know yet.
func IsTerminal(status types.PipelineExecutionStatus) bool {
	return status != "" && status != types.PipelineExecutionStatusExecuting &&
		status != types.PipelineExecutionStatusStopping
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

func (s *Stopper) stop(ctx context.Context, client StopAPIClient, arn string, o *Options, pacer *retry.Pacer) (*StopResult, error) {
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
	if pacer != nil {
		// The pacer must see every throttled answer, and a call must not
		// hold a StopAll slot through the SDK's own backoff: this loop
		// retries throttling, 5xx and connection errors itself. The
		// caller's ClientOptions come after, so they can undo this.
		stopOptions = append([]func(*sagemaker.Options){noSDKRetries}, o.ClientOptions...)
	}
	r := retry.Do(ctx, o.Clock, o.retryPolicy(), retry.Hooks{
		Retryable: o.Retryable,
		Pacer:     pacer,
		Throttled: func(err error) bool { return errors.Is(err, ErrThrottled) },
		OnRetry: func(attempt int, delay time.Duration, err error) {
			o.emit(ctx, Event{Type: EventRetry, Op: opStop, ExecutionARN: arn, Attempt: attempt, Delay: delay, Err: err})
		},
	}, func(ctx context.Context, attempt int) error {
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

// Outcome says how an execution ended, as seen by Wait.
type Outcome struct {
	// ExecutionARN is the execution waited for.
	ExecutionARN string
	// Status is the terminal status: Stopped, Failed (for example a Lambda
	// step that timed out while stopping), Succeeded, CompletedWithFailures,
	// or a value this SDK version does not know.
	Status types.PipelineExecutionStatus
	// FailureReason is SageMaker's reason for a Failed execution.
	FailureReason string
	// Elapsed is the time spent waiting (and stopping, for StopAndWait).
	Elapsed time.Duration
	// Polls is the number of DescribePipelineExecution calls made.
	Polls int
	// Blocking are the steps last seen holding the execution in Stopping,
	// if it was ever seen Stopping.
	Blocking []BlockingStep
	// Stop is the stop's result, for StopAndWait and StopAll.
	Stop *StopResult
}

// BlockingStep is a step that holds an execution in Stopping: a step that
// has not ended yet.
type BlockingStep struct {
	// Name is the step's name.
	Name string
	// Type is "Callback", "Lambda", or another step type known from the
	// step's metadata ("TrainingJob", "ProcessingJob", ...), or "".
	Type string
	// Status is the step's status.
	Status types.StepStatus
	// StartTime is when the step started, if known.
	StartTime time.Time
	// QueueURL is the SQS queue of a callback step: someone must answer
	// the step with SendPipelineExecutionStepSuccess or
	// SendPipelineExecutionStepFailure before the execution can stop.
	QueueURL string
	// FunctionARN is the function of a Lambda step: the execution stops
	// when it returns (Stopped) or times out (Failed).
	FunctionARN string
	// CallbackToken is the callback step's token. It prints redacted.
	CallbackToken CallbackToken
}

// String says why the step blocks the stop and what to do about it. It
// never includes the callback token.
func (b BlockingStep) String() string {
	switch b.Type {
	case "Callback":
		return fmt.Sprintf("callback step %q (%s) waits for an answer to its message on %s: "+
			"answer it with SendPipelineExecutionStepSuccess or SendPipelineExecutionStepFailure",
			b.Name, b.Status, orUnknown(b.QueueURL))
	case "Lambda":
		return fmt.Sprintf("Lambda step %q (%s) runs %s: the execution stops when the function returns, "+
			"or fails when the step times out", b.Name, b.Status, orUnknown(b.FunctionARN))
	case "":
		return fmt.Sprintf("step %q is %s", b.Name, b.Status)
	default:
		return fmt.Sprintf("%s step %q is %s", b.Type, b.Name, b.Status)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}

// WaitError is returned when the context ends before the execution reaches
// a terminal status. It matches ErrWaitTimeout and the context's error
// with errors.Is, and says what the execution was last seen doing.
type WaitError struct {
	// ExecutionARN is the execution waited for.
	ExecutionARN string
	// Status is the last status seen, or "" if no poll succeeded.
	Status types.PipelineExecutionStatus
	// Blocking are the steps last seen holding the execution in Stopping.
	Blocking []BlockingStep
	// Elapsed is the time spent waiting.
	Elapsed time.Duration
	// Polls is the number of status polls made.
	Polls int
	// LastErr is the last poll's error, if the last poll failed.
	LastErr error
	// Err is the context's error.
	Err error
}

// Error names the execution, the last status and what blocks it.
func (e *WaitError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "wait for pipeline execution %s: %v after %s and %d polls", e.ExecutionARN, e.Err,
		e.Elapsed.Round(time.Millisecond), e.Polls)
	if e.Status != "" {
		fmt.Fprintf(&b, "; last status %s", e.Status)
	} else {
		b.WriteString("; status never seen")
	}
	if len(e.Blocking) > 0 {
		b.WriteString("; blocked by ")
		for i, s := range e.Blocking {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(s.String())
		}
	}
	if e.LastErr != nil {
		fmt.Fprintf(&b, "; last poll failed: %v", e.LastErr)
	}
	return b.String()
}

// Unwrap returns ErrWaitTimeout, the context's error and the last poll's
// error, leaving out those that are nil.
func (e *WaitError) Unwrap() []error {
	errs := []error{ErrWaitTimeout}
	for _, err := range []error{e.Err, e.LastErr} {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// Wait polls the execution until it reaches a terminal status (see
// IsTerminal) and returns how it ended. A Failed or Succeeded execution is
// an Outcome, not an error. The delay between polls grows from
// Options.MinDelay to Options.MaxDelay. While the execution is Stopping,
// Wait lists its steps (every page, at most once per Options.StepsInterval)
// and reports the steps that hold it: a callback step waiting for an
// answer, or a Lambda step still running.
//
// Transient poll errors (throttling, unavailability) are waited out.
// ResourceNotFound and other permanent errors are returned as *Error. When
// ctx ends first the error is a *WaitError.
func (s *Stopper) Wait(ctx context.Context, executionARN string, optFns ...func(*Options)) (*Outcome, error) {
	o := s.options(optFns)
	if s.client == nil {
		return nil, errNilClient
	}
	if err := validateARN(executionARN); err != nil {
		return nil, fmt.Errorf("wait for pipeline execution: %w", err)
	}
	return s.wait(ctx, s.client, executionARN, &o, o.Clock.Now())
}

func (s *Stopper) wait(ctx context.Context, client StopAPIClient, arn string, o *Options, start time.Time) (*Outcome, error) {
	out := &Outcome{ExecutionARN: arn}
	in := &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)}
	delay := o.MinDelay
	var lastErr error
	var stepsListedAt time.Time
	pollsSinceSteps := 0
	for {
		out.Polls++
		d, err := client.DescribePipelineExecution(ctx, in, o.ClientOptions...)
		switch {
		case err != nil && ctx.Err() != nil:
			return out, s.waitError(out, o, start, lastErr, ctx.Err())
		case err != nil:
			cerr := classify(err, arn)
			if !o.Retryable(cerr) {
				out.Elapsed = o.Clock.Now().Sub(start)
				return out, cerr
			}
			lastErr = cerr
			o.emit(ctx, Event{Type: EventRetry, Op: opDescribe, ExecutionARN: arn, Attempt: out.Polls, Delay: delay, Err: cerr})
		default:
			lastErr = nil
			status := d.PipelineExecutionStatus
			if status != out.Status {
				out.Status = status
				o.emit(ctx, Event{Type: EventStatus, Op: opDescribe, ExecutionARN: arn, Status: status,
					Elapsed: o.Clock.Now().Sub(start)})
			}
			out.FailureReason = aws.ToString(d.FailureReason)
			if IsTerminal(status) {
				out.Elapsed = o.Clock.Now().Sub(start)
				return out, nil
			}
			now := o.Clock.Now()
			pollsSinceSteps++
			if status == types.PipelineExecutionStatusStopping && (stepsListedAt.IsZero() ||
				now.Sub(stepsListedAt) >= o.StepsInterval && pollsSinceSteps >= stepsEveryPolls) {
				stepsListedAt, pollsSinceSteps = now, 0
				steps, err := blockingSteps(ctx, client, arn, o)
				if err != nil && ctx.Err() != nil {
					return out, s.waitError(out, o, start, lastErr, ctx.Err())
				}
				if err == nil && !slices.Equal(steps, out.Blocking) {
					out.Blocking = steps
					o.emit(ctx, Event{Type: EventBlocked, Op: opListSteps, ExecutionARN: arn, Status: status,
						Blocking: steps, Elapsed: now.Sub(start)})
				}
			}
		}
		if err := retry.Sleep(ctx, o.Clock, delay); err != nil {
			return out, s.waitError(out, o, start, lastErr, err)
		}
		delay = min(time.Duration(float64(delay)*o.DelayMultiplier), o.MaxDelay)
	}
}

func (s *Stopper) waitError(out *Outcome, o *Options, start time.Time, lastErr, ctxErr error) *WaitError {
	out.Elapsed = o.Clock.Now().Sub(start)
	return &WaitError{ExecutionARN: out.ExecutionARN, Status: out.Status, Blocking: out.Blocking,
		Elapsed: out.Elapsed, Polls: out.Polls, LastErr: lastErr, Err: ctxErr}
}

// blockingSteps lists every page of the execution's steps and returns
// those that have not ended.
func blockingSteps(ctx context.Context, client StopAPIClient, arn string, o *Options) ([]BlockingStep, error) {
	p := sagemaker.NewListPipelineExecutionStepsPaginator(client, &sagemaker.ListPipelineExecutionStepsInput{
		PipelineExecutionArn: aws.String(arn), MaxResults: aws.Int32(100)})
	var steps []BlockingStep
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, o.ClientOptions...)
		if err != nil {
			return nil, classify(err, arn)
		}
		for _, st := range page.PipelineExecutionSteps {
			switch st.StepStatus {
			case types.StepStatusStarting, types.StepStatusExecuting, types.StepStatusStopping:
			default:
				continue
			}
			steps = append(steps, NewBlockingStep(st))
		}
	}
	return steps, nil
}

// NewBlockingStep describes a step listed by ListPipelineExecutionSteps
// the way Wait reports the steps that block a stop: its name, status,
// type (from its metadata) and, for callback and Lambda steps, the queue
// URL or function ARN (and the callback token, which prints redacted).
// It is for callers who list steps themselves.
func NewBlockingStep(st types.PipelineExecutionStep) BlockingStep {
	b := BlockingStep{Name: aws.ToString(st.StepName), Status: st.StepStatus, StartTime: aws.ToTime(st.StartTime)}
	md := st.Metadata
	if md == nil {
		return b
	}
	switch {
	case md.Callback != nil:
		b.Type = "Callback"
		b.QueueURL = aws.ToString(md.Callback.SqsQueueUrl)
		b.CallbackToken = CallbackToken(aws.ToString(md.Callback.CallbackToken))
	case md.Lambda != nil:
		b.Type = "Lambda"
		b.FunctionARN = aws.ToString(md.Lambda.Arn)
	case md.TrainingJob != nil:
		b.Type = "TrainingJob"
	case md.ProcessingJob != nil:
		b.Type = "ProcessingJob"
	case md.TransformJob != nil:
		b.Type = "TransformJob"
	case md.TuningJob != nil:
		b.Type = "TuningJob"
	case md.AutoMLJob != nil:
		b.Type = "AutoMLJob"
	case md.EMR != nil:
		b.Type = "EMR"
	case md.Model != nil:
		b.Type = "Model"
	case md.RegisterModel != nil:
		b.Type = "RegisterModel"
	case md.Condition != nil:
		b.Type = "Condition"
	case md.QualityCheck != nil:
		b.Type = "QualityCheck"
	case md.ClarifyCheck != nil:
		b.Type = "ClarifyCheck"
	case md.Endpoint != nil:
		b.Type = "Endpoint"
	case md.EndpointConfig != nil:
		b.Type = "EndpointConfig"
	case md.Fail != nil:
		b.Type = "Fail"
	}
	return b
}

// StopAndWait stops the execution (see Stop) and waits for a terminal
// status (see Wait). Outcome.Stop holds the stop's result. A stop that ends
// Failed, for example because a Lambda step timed out while stopping, is
// an Outcome with that status and reason, not an error.
func (s *Stopper) StopAndWait(ctx context.Context, executionARN string, optFns ...func(*Options)) (*Outcome, error) {
	o := s.options(optFns)
	return s.stopAndWait(ctx, s.client, executionARN, &o, nil)
}

func (s *Stopper) stopAndWait(ctx context.Context, client StopAPIClient, arn string, o *Options, pacer *retry.Pacer) (*Outcome, error) {
	start := o.Clock.Now()
	res, err := s.stop(ctx, client, arn, o, pacer)
	if err != nil {
		if res == nil {
			return nil, err
		}
		return &Outcome{ExecutionARN: arn, Stop: res, Status: res.Status, Elapsed: res.Elapsed}, err
	}
	out, err := s.wait(ctx, client, arn, o, start)
	out.Stop = res
	return out, err
}

// BatchResult is what StopAll did for one execution.
type BatchResult struct {
	// ExecutionARN is the execution, as given.
	ExecutionARN string
	// Stop is Stop's result, or nil when the ARN or token was invalid.
	Stop *StopResult
	// Outcome is set when Options.Wait was set and the wait ended.
	Outcome *Outcome
	// Err is this execution's error, or nil.
	Err error
}

// StopAll stops many executions at once, for shutdown hooks. Every ARN
// gets a BatchResult, in the order given; the error joins every
// execution's error with errors.Join (nil when all succeeded). At most
// Options.Concurrency SageMaker calls are in flight.
//
// When SageMaker throttles, all the stops slow down together: their
// StopPipelineExecution calls share one pacer that finds the rate
// SageMaker admits (lowered by a tenth with each throttled call, raised
// about 5% a second while calls are accepted), a throttled stop is
// retried as soon as its turn comes, and the time a stop waits for its
// turn does not count against its Options.RetryBudget. These calls are
// made with the SDK's own retries off (RetryMaxAttempts 1;
// Options.ClientOptions can set it again), since StopAll retries
// throttling, 5xx and connection errors itself with the same token.
//
// With Options.Wait set, StopAll also waits for each execution to reach a
// terminal status. A repeated ARN is stopped once and reported at each of
// its places. StopAll returns only after every goroutine it started has
// ended.
func (s *Stopper) StopAll(ctx context.Context, executionARNs []string, optFns ...func(*Options)) ([]BatchResult, error) {
	o := s.options(optFns)
	results := make([]BatchResult, len(executionARNs))
	first := make(map[string]int, len(executionARNs))
	client := &limitedClient{StopAPIClient: s.client, sem: make(chan struct{}, o.Concurrency)}
	pacer := retry.NewPacer(o.Concurrency)
	var wg sync.WaitGroup
	for i, arn := range executionARNs {
		results[i].ExecutionARN = arn
		if _, dup := first[arn]; dup {
			continue
		}
		first[arn] = i
		wg.Add(1)
		go func() {
			defer wg.Done()
			co := o
			if o.Token != "" {
				co.Token = DeriveToken(o.Token, arn)
			}
			r := &results[i]
			if s.client == nil {
				r.Err = errNilClient
				return
			}
			if !o.Wait {
				r.Stop, r.Err = s.stop(ctx, client, arn, &co, pacer)
				return
			}
			r.Outcome, r.Err = s.stopAndWait(ctx, client, arn, &co, pacer)
			if r.Outcome != nil {
				r.Stop = r.Outcome.Stop
			}
		}()
	}
	wg.Wait()
	var errs []error
	for i := range results {
		if j := first[results[i].ExecutionARN]; j != i {
			results[i] = results[j]
			continue
		}
		if results[i].Err != nil {
			errs = append(errs, results[i].Err)
		}
	}
	return results, errors.Join(errs...)
}

// limitedClient bounds the calls in flight through a StopAPIClient.
type limitedClient struct {
	StopAPIClient
	sem chan struct{}
}

// limited makes call while holding one of c's slots.
func limited[T any](ctx context.Context, c *limitedClient, call func() (T, error)) (T, error) {
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
	defer func() { <-c.sem }()
	return call()
}

func (c *limitedClient) StopPipelineExecution(ctx context.Context, in *sagemaker.StopPipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	return limited(ctx, c, func() (*sagemaker.StopPipelineExecutionOutput, error) {
		return c.StopAPIClient.StopPipelineExecution(ctx, in, optFns...)
	})
}

func (c *limitedClient) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	return limited(ctx, c, func() (*sagemaker.DescribePipelineExecutionOutput, error) {
		return c.StopAPIClient.DescribePipelineExecution(ctx, in, optFns...)
	})
}

func (c *limitedClient) ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	return limited(ctx, c, func() (*sagemaker.ListPipelineExecutionStepsOutput, error) {
		return c.StopAPIClient.ListPipelineExecutionSteps(ctx, in, optFns...)
	})
}

// Operation names used in events and errors.
const (
	opStop      = "StopPipelineExecution"
	opDescribe  = "DescribePipelineExecution"
	opListSteps = "ListPipelineExecutionSteps"
)

// EventType says what an Event reports.
type EventType int

// Event types of the Stopper. The callback acknowledger and the consumer
// add their own after these.
const (
	// EventAttempt: a call is about to be made (Attempt counts from 1).
	EventAttempt EventType = iota + 1
	// EventRetry: a call failed with Err and is retried after Delay.
	EventRetry
	// EventStopped: Stop succeeded; Status says what it found.
	EventStopped
	// EventStatus: Wait saw the execution's status change to Status.
	EventStatus
	// EventBlocked: Wait saw the steps holding a Stopping execution change
	// to Blocking.
	EventBlocked
	// EventAnswered: SageMaker accepted an answer to the callback step
	// CallbackToken (Op says which), or Err says the step was already
	// answered or is gone.
	EventAnswered
	// EventMalformed: the Consumer received a message (MessageID) that is
	// not a valid callback message (Err); it becomes visible again after
	// Delay, or is deleted when Delay is 0.
	EventMalformed
	// EventRetryLater: a message (MessageID) could not be finished now
	// (Err); it becomes visible again after Delay.
	EventRetryLater
	// EventPending: the handler said another system answers the step later;
	// the message (MessageID) was deleted without an answer.
	EventPending
	// EventPanic: a handler panicked (Err); the step is answered as failed.
	EventPanic
	// EventQueueError: an SQS call (Op) failed with Err, for the message
	// MessageID when it concerns one entry of a batch.
	EventQueueError
	// EventHandlerCanceled: a Stopping message arrived for a step whose
	// Executing handler was running; its context was canceled.
	EventHandlerCanceled
)

var eventNames = map[EventType]string{
	EventAttempt: "attempt",
	EventRetry:   "retry",
	EventStopped: "stopped",
	EventStatus:  "status",
	EventBlocked: "blocked",

	EventAnswered:        "answered",
	EventMalformed:       "malformed",
	EventRetryLater:      "retry_later",
	EventPending:         "pending",
	EventPanic:           "panic",
	EventQueueError:      "queue_error",
	EventHandlerCanceled: "handler_canceled",
}

// String returns the event type's name, such as "retry".
func (t EventType) String() string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event reports progress to Options.OnEvent and Options.Logger. Only the
// fields that matter for its Type are set.
type Event struct {
	// Type says what happened.
	Type EventType
	// Time is when it happened, by Options.Clock.
	Time time.Time
	// Op is the SageMaker operation concerned.
	Op string
	// ExecutionARN is the execution concerned.
	ExecutionARN string
	// Attempt counts a call's attempts, or Wait's polls, from 1.
	Attempt int
	// Delay is the wait before the next attempt (EventRetry).
	Delay time.Duration
	// Err is the error that caused a retry.
	Err error
	// Status is the execution's status.
	Status types.PipelineExecutionStatus
	// Blocking are the steps holding a Stopping execution.
	Blocking []BlockingStep
	// Elapsed is the time since the call began.
	Elapsed time.Duration
	// CallbackToken is the callback step concerned. It prints redacted.
	CallbackToken CallbackToken
	// MessageID is the SQS message concerned.
	MessageID string
}

// emit sends ev to the OnEvent hook and the logger.
func (o *Options) emit(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = o.Clock.Now()
	}
	// A handler's or cleanup's error can quote the token it failed on.
	ev.Err = ev.CallbackToken.scrubErr(ev.Err)
	if o.OnEvent != nil {
		o.OnEvent(ev)
	}
	level := slog.LevelInfo
	switch ev.Type {
	case EventAttempt:
		level = slog.LevelDebug
	case EventRetry, EventMalformed, EventRetryLater, EventQueueError:
		level = slog.LevelWarn
	case EventPanic:
		level = slog.LevelError
	}
	if !o.Logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("event", ev.Type.String())}
	if ev.Op != "" {
		attrs = append(attrs, slog.String("op", ev.Op))
	}
	if ev.ExecutionARN != "" {
		attrs = append(attrs, slog.String("execution_arn", ev.ExecutionARN))
	}
	if ev.Attempt > 0 {
		attrs = append(attrs, slog.Int("attempt", ev.Attempt))
	}
	if ev.Delay > 0 {
		attrs = append(attrs, slog.Duration("delay", ev.Delay))
	}
	if ev.Status != "" {
		attrs = append(attrs, slog.String("status", string(ev.Status)))
	}
	if ev.Elapsed > 0 {
		attrs = append(attrs, slog.Duration("elapsed", ev.Elapsed))
	}
	if ev.CallbackToken != "" {
		attrs = append(attrs, slog.Any("callback_token", ev.CallbackToken))
	}
	if ev.MessageID != "" {
		attrs = append(attrs, slog.String("message_id", ev.MessageID))
	}
	for _, b := range ev.Blocking {
		attrs = append(attrs, slog.String("blocking_step", b.String()))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	o.Logger.LogAttrs(ctx, level, "pipelinestop "+ev.Type.String(), attrs...)
}
