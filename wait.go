package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

// stepsEveryPolls is the least number of status polls between two
// listings of a Stopping execution's steps.
const stepsEveryPolls = 3

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
	// Answered are the callback steps this wait answered with a failure
	// (Options.Callbacks CallbackFail) because nobody else did in time.
	Answered []BlockingStep
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
// an Outcome, not an error. It polls at once, again when Options.FirstDelay
// has passed, and then each time the time waited has grown by
// Options.DelayMultiplier (a delay of a fifth of the time waited with the
// defaults, from Options.MinDelay to Options.MaxDelay), so a terminal status
// is seen at most a fifth of the wait late, or MaxDelay. While the execution is Stopping,
// Wait lists its steps (every page, at most once per Options.StepsInterval)
// and reports the steps that hold it: a callback step waiting for an
// answer, or a Lambda step still running.
//
// Transient poll errors (throttling, unavailability) are waited out.
// ResourceNotFound and other permanent errors are returned as *Error. When
// ctx ends first the error is a *WaitError. Every call goes to the Region
// in the ARN, as Stop's do.
func (s *Stopper) Wait(ctx context.Context, executionARN string, optFns ...func(*Options)) (*Outcome, error) {
	s = s.orZero()
	o := s.options(optFns)
	if s.client == nil {
		return nil, errNilClient
	}
	a, err := ParseExecutionARN(executionARN)
	if err != nil {
		return nil, fmt.Errorf("wait for pipeline execution: %w", err)
	}
	if err := o.route(s.client, a, opDescribe); err != nil {
		return nil, err
	}
	return s.wait(ctx, s.client, executionARN, &o, o.Clock.Now())
}

func (s *Stopper) wait(ctx context.Context, client StopAPIClient, arn string, o *Options, start time.Time) (*Outcome, error) {
	out := &Outcome{ExecutionARN: arn}
	in := &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)}
	var sub *subscription
	if o.Watcher != nil {
		// Subscribe before the first poll: an event sent before the
		// subscription is never seen, but the poll sees its change.
		sub = o.Watcher.subscribe(arn)
		defer sub.close()
	}
	safetyPoll := false   // this poll is a Watcher wait's safety poll
	var forceAt time.Time // when CallbackFail answers the callback steps
	if o.Callbacks == CallbackFail {
		forceAt = start.Add(o.CallbackGrace)
	}
	var lastErr error
	var stepsListedAt time.Time
	pollsSinceSteps := 0
	for {
		out.Polls++
		d, err := client.DescribePipelineExecution(ctx, in, o.ClientOptions...)
		delay := o.pollDelay(o.Clock.Now().Sub(start)) // the polling delay, when no Watcher runs
		if err == nil && d == nil {
			// A broken client: not retried (see errNoOutput).
			out.Elapsed = o.Clock.Now().Sub(start)
			return out, errNoOutput(opDescribe, arn)
		}
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
			if status == types.PipelineExecutionStatusStopping && !forceAt.IsZero() && !now.Before(forceAt) {
				next, err := s.answerCallbacks(ctx, client, out, o)
				if err != nil && ctx.Err() != nil {
					return out, s.waitError(out, o, start, lastErr, ctx.Err())
				}
				forceAt = time.Time{}
				if next {
					forceAt = now.Add(o.StepsInterval) // try again
				}
			}
			pollsSinceSteps++
			listable := sub == nil || safetyPoll && !sub.hasSteps()
			if listable && status == types.PipelineExecutionStatusStopping && (stepsListedAt.IsZero() ||
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
		// With a running Watcher, wait for its events and poll every
		// SafetyInterval; without one (never started, or its Run ended),
		// poll as usual until a Run starts.
		started := o.Watcher.startSignal()
		runDone := o.Watcher.runDone()
		pause := delay
		if runDone != nil {
			pause = o.SafetyInterval
		}
		if !forceAt.IsZero() {
			pause = min(pause, max(forceAt.Sub(o.Clock.Now()), 0))
		}
		if runDone != nil {
			var err error
			if safetyPoll, err = s.waitForHint(ctx, o, sub, out, start, pause, runDone); err != nil {
				return out, s.waitError(out, o, start, lastErr, err)
			}
			continue
		}
		safetyPoll = true // no events: every poll may list the steps
		if err := sleepOrStart(ctx, o.Clock, pause, started); err != nil {
			return out, s.waitError(out, o, start, lastErr, err)
		}
	}
}

// sleepOrStart is retry.Sleep that also ends when started is closed (a
// Watcher's Run started); started may be nil.
func sleepOrStart(ctx context.Context, clock Clock, d time.Duration, started <-chan struct{}) error {
	if started == nil {
		return retry.Sleep(ctx, clock, d)
	}
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	select {
	case <-ctx.Done():
	case <-clock.After(d):
	case <-started:
	}
	return ctx.Err()
}

// waitForHint waits until an event says the execution ended, or until the
// next safety poll is due or the Watcher's Run ends (safety true), or ctx
// ends. Events that arrive meanwhile update out.Status (a status event that
// is not terminal is believed until the next poll) and out.Blocking.
func (s *Stopper) waitForHint(ctx context.Context, o *Options, sub *subscription, out *Outcome, start time.Time,
	pause time.Duration, runDone <-chan struct{}) (safety bool, err error) {
	timer := o.Clock.After(pause)
	for {
		h := sub.hints()
		if h.status != "" && !IsTerminal(h.status) && h.status != out.Status {
			out.Status = h.status
			o.emit(ctx, Event{Type: EventStatus, ExecutionARN: out.ExecutionARN, Status: h.status,
				Elapsed: o.Clock.Now().Sub(start)})
		}
		if h.stepsChanged && !slices.Equal(h.blocking, out.Blocking) {
			out.Blocking = h.blocking
			o.emit(ctx, Event{Type: EventBlocked, ExecutionARN: out.ExecutionARN, Status: out.Status,
				Blocking: h.blocking, Elapsed: o.Clock.Now().Sub(start)})
		}
		if h.ended {
			return false, nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-timer:
			return true, nil
		case <-runDone:
			return true, nil
		case <-sub.notify:
		}
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
	p := sagemaker.NewListPipelineExecutionStepsPaginator(stepsLister{client}, &sagemaker.ListPipelineExecutionStepsInput{
		PipelineExecutionArn: aws.String(arn), MaxResults: aws.Int32(100)})
	var steps []BlockingStep
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, o.ClientOptions...)
		var noOutput *Error
		if errors.As(err, &noOutput) {
			return nil, noOutput
		}
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

// stepsLister is the client the paginator of blockingSteps calls: a page
// answered with neither an output nor an error is an error (errNoOutput),
// where the SDK's paginator would read the missing page's NextToken.
type stepsLister struct{ client StopAPIClient }

func (l stepsLister) ListPipelineExecutionSteps(ctx context.Context, in *sagemaker.ListPipelineExecutionStepsInput, optFns ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	out, err := l.client.ListPipelineExecutionSteps(ctx, in, optFns...)
	if err == nil && out == nil {
		return nil, errNoOutput(opListSteps, aws.ToString(in.PipelineExecutionArn))
	}
	return out, err
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
//
// When the stop fails the wait does not start: the Outcome then holds the
// stop's result in Stop, Polls is 0 and Status is the status the stop saw
// ("" if none; a terminal status with ErrNotRunning). When the ARN or token
// is invalid the Outcome is nil.
func (s *Stopper) StopAndWait(ctx context.Context, executionARN string, optFns ...func(*Options)) (*Outcome, error) {
	s = s.orZero()
	o := s.options(optFns)
	out, res, err := s.stopAndWait(ctx, s.client, executionARN, &o, nil)
	if out == nil && res != nil {
		out = &Outcome{ExecutionARN: executionARN, Stop: res, Status: res.Status, Elapsed: res.Elapsed}
	}
	return out, err
}

// stopAndWait is StopAndWait with the client and options given, and b
// when it is one of a StopAll's (nil otherwise): then the wait's calls are
// admitted by b one at a time (see batch). It returns the wait's Outcome
// (nil when the wait did not start because the stop failed) and the
// stop's result (nil when the ARN or token was invalid).
func (s *Stopper) stopAndWait(ctx context.Context, client StopAPIClient, arn string, o *Options, b *batch) (*Outcome, *StopResult, error) {
	start := o.Clock.Now()
	res, err := s.stop(ctx, client, arn, o, b)
	if err != nil {
		return nil, res, err
	}
	out, err := s.wait(ctx, b.limit(client), arn, o, start)
	out.Stop = res
	return out, res, err
}

// errNoCallbackClient is returned when Options.Callbacks is CallbackFail
// but the Stopper's client cannot answer callback steps.
var errNoCallbackClient = errors.New("pipelinestop: Options.Callbacks is CallbackFail, but the Stopper's client " +
	"has no SendPipelineExecutionStepFailure (use a *sagemaker.Client)")

// answerCallbacks answers, with a failure, the callback steps that hold a
// Stopping execution (CallbackFail). It returns again=true when some answer
// failed and should be tried again later.
func (s *Stopper) answerCallbacks(ctx context.Context, client StopAPIClient, out *Outcome, o *Options) (again bool, err error) {
	cb, ok := s.client.(CallbackAPIClient)
	if !ok {
		o.emit(ctx, Event{Type: EventRetry, ExecutionARN: out.ExecutionARN, Err: errNoCallbackClient})
		return false, nil
	}
	steps, err := blockingSteps(ctx, client, out.ExecutionARN, o)
	if err != nil {
		return true, err
	}
	// o.ClientOptions already send the calls to the execution's Region
	// (Options.route): the answers go there too.
	ackOpts := *o
	ackOpts.CallbackExecutionARN = ""
	ack := &Acknowledger{client: cb, opts: ackOpts}
	for _, st := range steps {
		if st.Type != "Callback" || st.CallbackToken == "" {
			continue // a Lambda step cannot be answered
		}
		err := ack.Fail(ctx, st.CallbackToken, o.CallbackReason)
		switch {
		case err == nil:
			out.Answered = append(out.Answered, st)
		case answeredOrGone(err):
			// A real consumer answered first: leave it.
		default:
			again = true
		}
	}
	return again, nil
}
