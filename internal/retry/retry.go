// Package retry runs an operation again after transient errors, with
// exponential backoff and jitter, a time budget, an injectable clock and a
// gate that several callers share when the service throttles them.
//
// It is internal to pipelinestop: the Stopper and the callback
// acknowledger both use it, so that their retry behaviour is the same.
package retry

import (
	"context"
	"sync"
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
	if b.Multiplier < 1 {
		b.Multiplier = 1
	}
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
	// Gate, if set, is shared with other loops: a throttled attempt makes
	// every loop sharing it wait.
	Gate *Gate
	// Throttled reports whether an error is throttling (for the Gate).
	Throttled func(error) bool
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
	var res Result
	for {
		if h.Gate != nil {
			if err := h.Gate.Wait(ctx, clock); err != nil {
				res.Canceled = err
				return res
			}
		}
		res.Attempts++
		err := op(ctx, res.Attempts)
		res.Err = err
		if err == nil {
			if h.Gate != nil {
				h.Gate.Success()
			}
			return res
		}
		if ctxErr := ctx.Err(); ctxErr != nil {
			res.Canceled = ctxErr
			return res
		}
		if h.Retryable == nil || !h.Retryable(err) {
			return res
		}
		if h.Gate != nil && h.Throttled != nil && h.Throttled(err) {
			h.Gate.Throttle(clock.Now())
		}
		delay := b.NextBackOff()
		now := clock.Now()
		if p.Budget > 0 && now.Add(delay).Sub(start) > p.Budget {
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

// Gate makes many callers back off together when the service throttles
// any of them: after a throttled answer nobody calls until the gate opens.
// The delay grows with each throttled answer and resets after a success.
// A Gate is safe for concurrent use.
type Gate struct {
	mu    sync.Mutex
	b     *backoff.ExponentialBackOff
	until time.Time
}

// NewGate returns an open gate whose delays follow p.
func NewGate(p Policy, clock Clock) *Gate {
	return &Gate{b: p.newBackOff(clock)}
}

// Throttle closes the gate until now plus the next backoff delay.
func (g *Gate) Throttle(now time.Time) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if u := now.Add(g.b.NextBackOff()); u.After(g.until) {
		g.until = u
	}
}

// Success resets the gate's delay after a call that was not throttled.
func (g *Gate) Success() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.b.Reset()
}

// Wait blocks until the gate is open or ctx ends.
func (g *Gate) Wait(ctx context.Context, clock Clock) error {
	for i := 0; ; i++ {
		g.mu.Lock()
		d := g.until.Sub(clock.Now())
		g.mu.Unlock()
		if d <= 0 {
			return ctx.Err()
		}
		if err := Sleep(ctx, clock, d); err != nil {
			return err
		}
	}
}
