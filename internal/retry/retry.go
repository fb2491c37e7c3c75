// Package retry runs an operation again after transient errors (Do), with
// exponential backoff and jitter, a time budget and an injectable clock.
//
// Two optional parts let many loops share one service: an Admission
// bounds the attempts (and other calls) in flight, and a Pacer spaces the
// attempts of the loops that share it at the rate the service admits when
// it throttles them. Only StopAll uses them, one of each per call: its
// stops share both, and its waits' polls share the Admission.
//
// It is internal to pipelinestop: the Stopper, the Acknowledger and the
// Consumer all use Do, so that their retry behaviour is the same.
package retry

import (
	"context"
	"math"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Clock tells the time and waits. pipelinestop.Clock satisfies it.
type Clock interface {
	Now() time.Time
	After(d time.Duration) <-chan time.Time
}

// Policy says how long to wait between attempts and for how long to try.
type Policy struct {
	// InitialDelay is the delay before the second attempt.
	InitialDelay time.Duration
	// MaxDelay caps any one delay.
	MaxDelay time.Duration
	// Multiplier grows the delay after each attempt.
	Multiplier float64
	// Jitter is the randomization factor: each delay is drawn from
	// [d*(1-Jitter), d*(1+Jitter)].
	Jitter float64
	// Budget bounds the time from the first attempt to the start of the
	// last one; 0 means no bound other than the context.
	Budget time.Duration
	// Classes give some errors a schedule of their own: the first class
	// whose Match reports true for an attempt's error sets the delay
	// before the next attempt; other errors use the backoff above.
	Classes []Class
}

// Class is a kind of retryable error whose attempts are spaced evenly:
// an attempt that fails with it is followed by the next one Interval after
// it started (not after its answer), without jitter, so that a condition
// that ends at an unknown time is seen at most Interval (plus one answer)
// after it ends, with one attempt per Interval while it lasts.
type Class struct {
	// Match reports whether an error belongs to the class.
	Match func(error) bool
	// Interval is the time between the starts of two attempts; a
	// value <= 0 retries at once.
	Interval time.Duration
}

// classDelay returns the delay before the next attempt after err, for an
// attempt that started at started (now is the time of its answer), and
// whether a class set it.
func (p Policy) classDelay(err error, started, now time.Time) (time.Duration, bool) {
	for _, c := range p.Classes {
		if c.Match != nil && c.Match(err) {
			return max(c.Interval-now.Sub(started), 0), true
		}
	}
	return 0, false
}

// newBackOff returns a fresh backoff for one call: ExponentialBackOff is
// not safe for concurrent use, so it is never shared.
func (p Policy) newBackOff(clock Clock) *backoff.ExponentialBackOff {
	b := &backoff.ExponentialBackOff{
		InitialInterval:     p.InitialDelay,
		RandomizationFactor: p.Jitter,
		Multiplier:          p.Multiplier,
		MaxInterval:         p.MaxDelay,
		MaxElapsedTime:      0, // the budget and the context bound the call
		Stop:                backoff.Stop,
		Clock:               clock,
	}
	// Callers check their options; this keeps a bad value from turning
	// into negative delays (NaN converts to a negative duration), which
	// would also defeat the budget.
	if !(b.Multiplier >= 1) || math.IsInf(b.Multiplier, 0) {
		b.Multiplier = 1
	}
	if !(b.RandomizationFactor >= 0) || math.IsInf(b.RandomizationFactor, 0) {
		b.RandomizationFactor = 0
	}
	b.RandomizationFactor = min(b.RandomizationFactor, 1)
	b.Reset()
	return b
}

// Op is one attempt. attempt counts from 1.
type Op func(ctx context.Context, attempt int) error

// Hooks customise a retry loop.
type Hooks struct {
	// Retryable reports whether an attempt's error is worth another try.
	Retryable func(error) bool
	// OnRetry is called before waiting delay to make attempt+1.
	OnRetry func(attempt int, delay time.Duration, err error)
	// Pacer, if set, is shared with other loops: every attempt waits for
	// its turn, and a throttled attempt slows every loop sharing it down.
	// A throttled attempt is retried as soon as the pacer allows, without
	// its own backoff delay, and the time spent waiting for the pacer does
	// not count against the budget.
	Pacer *Pacer
	// Throttled reports whether an error is throttling (for the Pacer).
	Throttled func(error) bool
	// Admission, if set, bounds the attempts in flight of every loop (and
	// other call) sharing it: an attempt takes a slot before it waits for
	// the Pacer's turn, so that the Pacer hands out at most that many turns
	// at one rate, and gives it back when its answer is in, before any retry
	// delay. The time spent waiting for a slot does not count against the
	// budget either.
	Admission *Admission
}

// Result says how a loop ended.
type Result struct {
	// Attempts is the number of attempts made.
	Attempts int
	// Err is the last attempt's error, nil on success.
	Err error
	// Canceled is set when the loop gave up because the context ended (or
	// its deadline would pass before the next attempt): the context's
	// error, or context.DeadlineExceeded. Err then holds the last error.
	Canceled error
	// Exhausted is true when the loop gave up because the budget was spent.
	Exhausted bool
}

// Do calls op until it succeeds, fails with an error that is not
// retryable, the budget is spent or ctx ends. It never sleeps past ctx's
// deadline: when the next attempt would start after it, Do returns at once.
func Do(ctx context.Context, clock Clock, p Policy, h Hooks, op Op) Result {
	b := p.newBackOff(clock)
	start := clock.Now()
	var queued time.Duration // time spent waiting for a slot and the pacer
	var res Result
	for {
		throttled, started, err, waitErr := h.attempt(ctx, clock, op, res.Attempts+1, &queued)
		if waitErr != nil {
			res.Canceled = waitErr
			return res
		}
		res.Attempts++
		res.Err = err
		if err == nil {
			return res
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			res.Canceled = ctxErr
			return res
		}
		if h.Retryable == nil || !h.Retryable(err) {
			return res
		}
		now := clock.Now()
		var delay time.Duration
		if !throttled || h.Pacer == nil {
			var ok bool
			if delay, ok = p.classDelay(err, started, now); !ok {
				delay = max(b.NextBackOff(), 0)
			}
		}
		if p.Budget > 0 && now.Add(delay).Sub(start)-queued > p.Budget {
			res.Exhausted = true
			return res
		}
		if dl, ok := ctx.Deadline(); ok && now.Add(delay).After(dl) {
			res.Canceled = context.DeadlineExceeded
			return res
		}
		if h.OnRetry != nil {
			h.OnRetry(res.Attempts, delay, err)
		}
		if err := Sleep(ctx, clock, delay); err != nil {
			res.Canceled = err
			return res
		}
	}
}

// attempt makes attempt number n of op: it takes an Admission slot and
// waits for the Pacer's turn (adding the time waited to *queued), calls op,
// tells the Pacer how the call ended and gives the slot back. err is op's
// error and throttled says whether it is throttling; started is when op was
// called; waitErr is the context's error when ctx ended before op was
// called.
func (h *Hooks) attempt(ctx context.Context, clock Clock, op Op, n int, queued *time.Duration) (throttled bool, started time.Time, err, waitErr error) {
	before := clock.Now()
	if h.Admission != nil {
		if err := h.Admission.Acquire(ctx); err != nil {
			return false, started, nil, err
		}
		defer h.Admission.Release()
	}
	var turn Turn
	if h.Pacer != nil {
		var err error
		if turn, err = h.Pacer.Wait(ctx, clock); err != nil {
			return false, started, nil, err
		}
	}
	started = clock.Now()
	if h.Admission != nil || h.Pacer != nil {
		*queued += started.Sub(before)
	}
	err = op(ctx, n)
	throttled = err != nil && h.Throttled != nil && h.Throttled(err)
	if h.Pacer != nil {
		h.Pacer.Done(turn, clock.Now(), throttled)
	}
	return throttled, started, err, nil
}

// Sleep waits d on clock, or until ctx ends, and then returns ctx.Err().
// A context that has ended always wins, even when the timer fired at the
// same moment.
func Sleep(ctx context.Context, clock Clock, d time.Duration) error {
	if err := ctx.Err(); err != nil || d <= 0 {
		return err
	}
	select {
	case <-ctx.Done():
	case <-clock.After(d):
	}
	return ctx.Err()
}
