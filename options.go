package pipelinestop

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

// Defaults of Options. Each is used when the field is zero (or invalid).
const (
	// DefaultRetryBudget bounds how long Stop keeps retrying conflicts,
	// throttling and unavailability. It outlasts conflict races of several
	// seconds; the context bounds it further.
	DefaultRetryBudget = time.Minute
	// DefaultRetryMinDelay is the delay before Stop's second attempt after
	// throttling or unavailability.
	DefaultRetryMinDelay = 100 * time.Millisecond
	// DefaultRetryMaxDelay caps any one delay between Stop's attempts.
	DefaultRetryMaxDelay = time.Second
	// DefaultConflictInterval is the time between the starts of Stop's
	// attempts while SageMaker answers ConflictException: a stop made during
	// a conflict race lands within 200 ms (plus one answer) of the race's
	// end, with one call per 200 ms while it lasts, as many as a loop
	// that calls every 200 ms.
	DefaultConflictInterval = 200 * time.Millisecond
	// DefaultRetryMultiplier grows the delay between Stop's attempts. It is
	// small so that a stop issued during a conflict race lands soon after
	// the race ends.
	DefaultRetryMultiplier = 1.2
	// DefaultRetryJitter randomises each retry delay by up to ±20%, so
	// replicas stopping together do not retry in lockstep.
	DefaultRetryJitter = 0.2
	// DefaultFirstDelay is the time waited before Wait's second status
	// poll (the first is made at once).
	DefaultFirstDelay = 800 * time.Millisecond
	// DefaultMinDelay is the least delay between Wait's status polls.
	DefaultMinDelay = 200 * time.Millisecond
	// DefaultMaxDelay caps the delay between Wait's status polls: a
	// 20-minute stop takes about 65 polls, not hundreds, and is seen at
	// most 30 s late.
	DefaultMaxDelay = 30 * time.Second
	// DefaultDelayMultiplier is the factor by which the time waited grows
	// from one of Wait's polls to the next: a terminal status is seen at
	// most a fifth of the time waited late (a tenth in the median), with
	// about 30 polls for a 2-minute stop, a quarter of polling every
	// second.
	DefaultDelayMultiplier = 1.2
	// DefaultStepsInterval is the least time between two listings of an
	// execution's steps while it is Stopping. The first Stopping poll always
	// lists them.
	DefaultStepsInterval = 10 * time.Second
	// DefaultConcurrency bounds StopAll's SageMaker calls in flight in
	// each Region.
	DefaultConcurrency = 8
)

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
	// request. StopAll derives a token per execution from Token when set,
	// DeriveToken(Token, executionARN). It must pass ValidateToken, in Stop
	// and StopAll alike.
	//
	// The round rule: when SageMaker accepts the stop but the execution
	// still reads Executing (the token was accepted in an earlier round,
	// before a RetryPipelineExecution), Stop stops it once more with
	// DeriveToken(Token, round), or DeriveToken("StopPipelineExecution",
	// executionARN, round) for the default, where round is the execution's
	// LastModifiedTime in RFC 3339 with nanoseconds, UTC (see
	// StopResult.Restopped).
	Token string

	// FailIfNotRunning makes Stop return ErrNotRunning when the execution
	// had already ended without being stopped (Succeeded, Failed, ...).
	// Default false: such a stop succeeds and the result tells the status.
	FailIfNotRunning bool

	// RetryBudget bounds the time Stop spends retrying. Default
	// DefaultRetryBudget; the context bounds it too.
	RetryBudget time.Duration
	// RetryMinDelay is the delay before the second attempt after
	// throttling or unavailability. Default DefaultRetryMinDelay.
	RetryMinDelay time.Duration
	// RetryMaxDelay caps one retry delay, ConflictInterval included.
	// Default DefaultRetryMaxDelay.
	RetryMaxDelay time.Duration
	// RetryMultiplier grows the retry delay after throttling or
	// unavailability. Default DefaultRetryMultiplier, also for a value
	// below 1, NaN or ±Inf.
	RetryMultiplier float64
	// ConflictInterval is the time between the starts of two attempts
	// while SageMaker answers ConflictException (ErrConflict): such
	// retries are evenly spaced and not jittered, so a stop lands at most
	// ConflictInterval (plus one answer) after a conflict race ends, with
	// one call per interval while it lasts. Under StopAll each attempt
	// still waits for its slot and its turn of the shared pacer. Default
	// DefaultConflictInterval, or RetryMaxDelay when that is smaller.
	ConflictInterval time.Duration
	// RetryJitter randomises retry delays after throttling or
	// unavailability by this fraction. Default
	// DefaultRetryJitter, also for NaN or ±Inf; a negative value turns
	// jitter off and a value of 1 or more is taken as 0.99.
	RetryJitter float64
	// Retryable reports whether an error (as returned by Classify) is worth
	// another attempt with the same token. Default DefaultRetryable.
	Retryable func(error) bool

	// FirstDelay is the time from the start of a wait (of the stop, for
	// StopAndWait) to its second status poll; the first is made at once.
	// Default DefaultFirstDelay, or MinDelay when MinDelay is set and
	// FirstDelay is not (MinDelay was the first delay before FirstDelay
	// existed). Never less than MinDelay.
	FirstDelay time.Duration
	// MinDelay is the least delay between status polls. Default
	// DefaultMinDelay.
	MinDelay time.Duration
	// MaxDelay caps the delay between status polls. Default
	// DefaultMaxDelay.
	MaxDelay time.Duration
	// DelayMultiplier sets the later polls: after FirstDelay, Wait polls
	// each time the time waited has grown by this factor, that is after a
	// delay of (DelayMultiplier-1) x the time waited so far, at least
	// MinDelay and at most MaxDelay. A terminal status is then seen at
	// most (DelayMultiplier-1) x its time late; 1 polls every MinDelay.
	// Default DefaultDelayMultiplier, also for a value below 1, NaN or
	// ±Inf.
	DelayMultiplier float64
	// StepsInterval is the least time between two listings of the steps
	// of a Stopping execution; Wait also lets at least three polls pass
	// between listings, so steps are always listed less often than the
	// status is polled. Default DefaultStepsInterval.
	StepsInterval time.Duration

	// Watcher, if set, makes Wait (and StopAndWait, and StopAll with
	// Wait) wait for SageMaker's EventBridge events instead of polling
	// while the Watcher's Run is under way (before it starts, or after it
	// ended, Wait polls as without one, and switches when a Run starts): it subscribes to the execution's events, makes one
	// DescribePipelineExecution, and then describes again only when an
	// event says the execution ended (to confirm it: events are hints) and
	// every SafetyInterval in case an event was lost. Step events keep
	// Outcome.Blocking current without listing the steps; the steps are
	// listed only at a safety poll of a Stopping execution when no step
	// event told about them. Default nil: Wait polls (MinDelay, MaxDelay,
	// DelayMultiplier).
	Watcher *Watcher
	// SafetyInterval is how often a Wait with a Watcher polls anyway.
	// Default DefaultSafetyInterval.
	SafetyInterval time.Duration

	// Callbacks says what a Wait (Wait, StopAndWait, StopAll with Wait)
	// does about callback steps that hold a Stopping execution: wait for
	// someone to answer them (CallbackWait, the default), or answer them
	// itself with a failure once CallbackGrace has passed since the wait
	// (or the stop) began (CallbackFail). Lambda steps cannot be answered:
	// the execution waits for the function or its timeout.
	Callbacks CallbackPolicy
	// CallbackGrace is the time a real consumer has to answer a callback
	// step before CallbackFail answers it. Default DefaultCallbackGrace.
	CallbackGrace time.Duration
	// CallbackReason is the failure reason CallbackFail sends. Default: a
	// sentence saying that pipelinestop stopped the execution and nobody
	// answered the step within CallbackGrace.
	CallbackReason string

	// Concurrency bounds StopAll's SageMaker calls in flight in each
	// Region (each Region is paced on its own, see StopAll). Default
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
	// (a retryer, an endpoint, a region). They are applied after the
	// option that sends the call to the execution's Region (see
	// DisableRegionRouting), so a Region set here wins.
	ClientOptions []func(*sagemaker.Options)

	// DisableRegionRouting turns Region routing off: every SageMaker call
	// goes where the client sends it (its Region and endpoint, or its
	// BaseEndpoint), whatever Region the execution's ARN names. It is for
	// callers who route calls themselves: a VPC endpoint or a proxy that
	// serves one Region, or a client per Region chosen by the caller.
	//
	// Default false: each call about an execution (Stop, Wait,
	// StopAndWait, StopAll, and the Acknowledger's answers given
	// CallbackExecutionARN) is sent to the Region in the execution's ARN
	// with the per-call option
	// func(o *sagemaker.Options) { o.Region = region }, so that the SDK
	// resolves that Region's endpoint, partition included, and signs for
	// it; a call about an execution of the client's own Region is made
	// exactly as without routing. An execution whose Region is in another
	// partition than the client's is an error matching
	// ErrPartitionMismatch, before any call. A client with a BaseEndpoint
	// keeps it: the call goes there, signed (SigV4 credential scope) for
	// the execution's Region, which is what a per-Region emulator or proxy
	// that reads the scope wants, and what a VPC endpoint of one Region
	// refuses; see "Regions and partitions" in the package documentation.
	DisableRegionRouting bool

	// CallbackExecutionARN is the execution whose callback step the
	// Acknowledger's Succeed and Fail answer: when set, the answer goes to
	// that execution's Region (see DisableRegionRouting), and an invalid
	// ARN is an error matching ErrInvalidARN before any call. AckStopping,
	// the Consumer and the BatchHandler set it from the message's
	// PipelineExecutionARN; a caller of Succeed or Fail who holds the
	// message passes
	// func(o *pipelinestop.Options) { o.CallbackExecutionARN = msg.PipelineExecutionARN }.
	// Default "": the answer goes to the client's Region. The Stopper does
	// not use it (its calls name their execution).
	CallbackExecutionARN string

	// Clock tells the time and waits. Default: the system clock.
	Clock Clock
}

// CallbackPolicy says what a wait does about callback steps that hold a
// Stopping execution; see Options.Callbacks.
type CallbackPolicy int

// Callback policies.
const (
	// CallbackWait waits for someone to answer the callback steps.
	CallbackWait CallbackPolicy = iota
	// CallbackFail answers them with SendPipelineExecutionStepFailure once
	// Options.CallbackGrace has passed, through the Acknowledger's rules
	// (its idempotent token; a step that a real consumer answered first is
	// left alone, so a step is never answered both ways).
	CallbackFail
)

// DefaultCallbackGrace is the default of Options.CallbackGrace: time for a
// running consumer to answer a Stopping message first.
const DefaultCallbackGrace = 30 * time.Second

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
	if o.FirstDelay <= 0 {
		o.FirstDelay = DefaultFirstDelay
		if o.MinDelay > 0 {
			o.FirstDelay = o.MinDelay
		}
	}
	setDur(&o.MinDelay, DefaultMinDelay)
	setDur(&o.MaxDelay, DefaultMaxDelay)
	setDur(&o.StepsInterval, DefaultStepsInterval)
	setDur(&o.SafetyInterval, DefaultSafetyInterval)
	setDur(&o.CallbackGrace, DefaultCallbackGrace)
	if o.CallbackReason == "" {
		o.CallbackReason = fmt.Sprintf("stopped by pipelinestop: the execution was being stopped and "+
			"no answer to this callback step came within %s", o.CallbackGrace)
	}
	if o.RetryMaxDelay < o.RetryMinDelay {
		o.RetryMaxDelay = o.RetryMinDelay
	}
	if o.ConflictInterval <= 0 {
		o.ConflictInterval = min(DefaultConflictInterval, o.RetryMaxDelay)
	}
	o.ConflictInterval = min(o.ConflictInterval, o.RetryMaxDelay)
	if o.MaxDelay < o.MinDelay {
		o.MaxDelay = o.MinDelay
	}
	o.FirstDelay = min(max(o.FirstDelay, o.MinDelay), o.MaxDelay)
	// NaN and ±Inf are invalid (NaN passes every comparison as false, and
	// either one turned into a delay would make it negative): defaults.
	if !finite(o.RetryMultiplier) || o.RetryMultiplier < 1 {
		o.RetryMultiplier = DefaultRetryMultiplier
	}
	if !finite(o.RetryJitter) || o.RetryJitter == 0 {
		o.RetryJitter = DefaultRetryJitter
	} else if o.RetryJitter < 0 || o.RetryJitter >= 1 {
		o.RetryJitter = min(max(o.RetryJitter, 0), 0.99)
	}
	if !finite(o.DelayMultiplier) || o.DelayMultiplier < 1 {
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

// finite reports whether f is neither NaN nor ±Inf.
func finite(f float64) bool { return !math.IsNaN(f) && !math.IsInf(f, 0) }

// pollDelay returns the delay before Wait's next status poll when elapsed
// has passed since the wait began: the next poll comes when the time
// waited reaches FirstDelay, and later when it has grown by
// DelayMultiplier, each delay at least MinDelay and at most MaxDelay.
func (o *Options) pollDelay(elapsed time.Duration) time.Duration {
	elapsed = max(elapsed, 0)
	d := o.FirstDelay - elapsed
	if grown := float64(elapsed) * (o.DelayMultiplier - 1); !(grown < float64(o.MaxDelay)) { // also NaN
		d = o.MaxDelay
	} else {
		d = max(d, time.Duration(grown))
	}
	return min(max(d, o.MinDelay), o.MaxDelay)
}

// retryPolicy is the policy of Stop's (and the Acknowledger's) retries:
// conflicts evenly spaced by ConflictInterval, other errors with
// exponential backoff and jitter.
func (o *Options) retryPolicy() retry.Policy {
	return retry.Policy{
		InitialDelay: o.RetryMinDelay,
		MaxDelay:     o.RetryMaxDelay,
		Multiplier:   o.RetryMultiplier,
		Jitter:       o.RetryJitter,
		Budget:       o.RetryBudget,
		Classes:      []retry.Class{{Match: isConflict, Interval: o.ConflictInterval}},
	}
}

// isConflict reports whether err is a conflict (ErrConflict).
func isConflict(err error) bool { return errors.Is(err, ErrConflict) }
