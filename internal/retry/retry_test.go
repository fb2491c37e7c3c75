package retry_test

import (
	"context"
	"errors"
	"math"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/retry"
)

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

var errTransient = errors.New("transient")

func policy() retry.Policy {
	return retry.Policy{InitialDelay: 100 * time.Millisecond, MaxDelay: time.Second, Multiplier: 2, Jitter: 0, Budget: 10 * time.Second}
}

func retryable(err error) bool { return errors.Is(err, errTransient) }

func TestDoSucceedsAfterRetries(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	var delays []time.Duration
	r := retry.Do(context.Background(), clock, policy(), retry.Hooks{
		Retryable: retryable,
		OnRetry:   func(_ int, d time.Duration, _ error) { delays = append(delays, d) },
	}, func(_ context.Context, attempt int) error {
		if attempt < 5 {
			return errTransient
		}
		return nil
	})
	if r.Err != nil || r.Attempts != 5 || r.Canceled != nil || r.Exhausted {
		t.Fatalf("result %+v", r)
	}
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond}
	if len(delays) != len(want) {
		t.Fatalf("delays %v", delays)
	}
	for i := range want {
		if delays[i] != want[i] {
			t.Fatalf("delays %v, want %v", delays, want)
		}
	}
}

func TestDoStopsOnPermanentError(t *testing.T) {
	perm := errors.New("permanent")
	r := retry.Do(context.Background(), fakeclock.NewAuto(epoch), policy(), retry.Hooks{Retryable: retryable},
		func(context.Context, int) error { return perm })
	if r.Attempts != 1 || r.Err != perm {
		t.Fatalf("result %+v", r)
	}
}

func TestDoBudget(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	r := retry.Do(context.Background(), clock, policy(), retry.Hooks{Retryable: retryable},
		func(context.Context, int) error { return errTransient })
	if !r.Exhausted || !errors.Is(r.Err, errTransient) {
		t.Fatalf("result %+v", r)
	}
	if spent := clock.Now().Sub(epoch); spent > 10*time.Second {
		t.Fatalf("spent %v past the budget", spent)
	}
}

func TestDoDeadline(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	ctx, cancel := context.WithDeadline(context.Background(), epoch.Add(time.Second))
	defer cancel()
	r := retry.Do(ctx, clock, policy(), retry.Hooks{Retryable: retryable},
		func(context.Context, int) error { return errTransient })
	if !errors.Is(r.Canceled, context.DeadlineExceeded) || !errors.Is(r.Err, errTransient) {
		t.Fatalf("result %+v", r)
	}
	if clock.Now().After(epoch.Add(time.Second)) {
		t.Fatalf("slept past the deadline to %v", clock.Now())
	}
}

func TestSleepPrefersEndedContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 100 {
		if err := retry.Sleep(ctx, fakeclock.NewAuto(epoch), time.Second); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep = %v, want context.Canceled", err)
		}
	}
}

// bucket is a service that admits rate calls a second (a token bucket
// of burst 1) and throttles the rest, on a fake clock. With jitter, each
// call reaches it a random delay (up to jitter) after it was sent: the
// timing jitter of a real machine, which makes calls sent 1/rate apart
// arrive closer than that about half the time.
type bucket struct {
	clock     *fakeclock.Auto
	rng       *rand.Rand    // with jitter: draws each call's delay
	jitter    time.Duration // the most a call is delayed on its way (0: none)
	rate      float64
	tokens    float64
	last      time.Time
	admitted  int
	throttled int
}

var errThrottled = errors.New("throttled")

func (b *bucket) call() error {
	arrival := b.clock.Now()
	if b.jitter > 0 {
		arrival = arrival.Add(time.Duration(b.rng.Int64N(int64(b.jitter) + 1)))
	}
	if arrival.After(b.last) {
		b.tokens = min(1, b.tokens+arrival.Sub(b.last).Seconds()*b.rate)
		b.last = arrival
	}
	if b.tokens < 1 {
		b.throttled++
		return errThrottled
	}
	b.tokens--
	b.admitted++
	return nil
}

// TestPacerFindsTheAdmittedRate stops n things one after another through
// a shared pacer against services that admit 5, 20 and 200 calls a second
// (token buckets of burst 1, the hardest to pace: calls spaced a little
// closer than the refill lose every other call): the pacer must find the
// rate, so the run takes at most 1.15 x n/rate of simulated time, and
// throttled calls are retried without backoff delays.
func TestPacerFindsTheAdmittedRate(t *testing.T) {
	for _, rate := range []float64{5, 20, 200} {
		clock := fakeclock.NewAuto(epoch)
		svc := &bucket{clock: clock, rate: rate, tokens: 1, last: epoch}
		pacer := retry.NewPacer()
		const n = 400
		for i := range n {
			r := retry.Do(context.Background(), clock, policy(), retry.Hooks{
				Retryable: func(err error) bool { return errors.Is(err, errThrottled) },
				Throttled: func(err error) bool { return errors.Is(err, errThrottled) },
				Pacer:     pacer,
				OnRetry: func(_ int, d time.Duration, _ error) {
					if d != 0 {
						t.Fatalf("a throttled call waited a backoff delay of %v", d)
					}
				},
			}, func(context.Context, int) error { return svc.call() })
			if r.Err != nil {
				t.Fatalf("rate %v: call %d: %+v", rate, i, r)
			}
		}
		ideal := time.Duration(float64(n) / rate * float64(time.Second))
		took := clock.Now().Sub(epoch)
		t.Logf("rate %v/s: %d calls took %v (ideal %v), %d throttled, pacer at %.1f/s", rate, n, took, ideal, svc.throttled, pacer.Rate())
		if took > ideal*115/100 {
			t.Errorf("rate %v/s: %d calls took %v, more than 1.15 x %v", rate, n, took, ideal)
		}
		if svc.throttled > n/2 {
			t.Errorf("rate %v/s: %d throttled calls for %d admitted: the pacer does not settle", rate, svc.throttled, n)
		}
		if p := pacer.Rate(); p < 0.8*rate || p > 1.25*rate {
			t.Errorf("rate %v/s: the pacer settled at %.1f/s", rate, p)
		}
	}
}

// TestAdmissionLimitsCallsInFlight checks that an Admission of n lets n
// callers through at once and the next one when a slot is given back.
func TestAdmissionLimitsCallsInFlight(t *testing.T) {
	a := retry.NewAdmission(2)
	for range 2 {
		if err := a.Acquire(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a third call passed with two in flight: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- a.Acquire(context.Background()) }()
	a.Release()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a slot given back did not let the waiting call through")
	}
}

// TestDoHoldsNoSlotWhileWaitingToRetry checks that a loop waiting out a
// retry delay holds no Admission slot: with one slot, another loop makes
// its call while the first one waits, without the clock moving.
func TestDoHoldsNoSlotWhileWaitingToRetry(t *testing.T) {
	clock := fakeclock.NewManual(epoch)
	a := retry.NewAdmission(1)
	hooks := retry.Hooks{Retryable: retryable, Admission: a}
	first := make(chan retry.Result, 1)
	go func() {
		first <- retry.Do(context.Background(), clock, policy(), hooks, func(_ context.Context, attempt int) error {
			if attempt == 1 {
				return errTransient
			}
			return nil
		})
	}()
	if !clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("the first loop did not wait to retry")
	}
	second := make(chan retry.Result, 1)
	go func() {
		second <- retry.Do(context.Background(), clock, policy(), hooks, func(context.Context, int) error { return nil })
	}()
	select {
	case r := <-second:
		if r.Err != nil || r.Attempts != 1 {
			t.Fatalf("second loop: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a loop waiting to retry held the only slot")
	}
	clock.Advance(time.Minute)
	select {
	case r := <-first:
		if r.Err != nil || r.Attempts != 2 {
			t.Fatalf("first loop: %+v", r)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the first loop did not retry")
	}
}

// TestDoHoldsSlotThroughPacerTurn checks that an attempt takes its
// Admission slot before it waits for the Pacer's turn: with one slot and a
// paced Pacer, a second loop cannot get a turn while the first one waits
// for its own, so the Pacer never hands out more turns than there are
// slots.
func TestDoHoldsSlotThroughPacerTurn(t *testing.T) {
	clock := fakeclock.NewManual(epoch)
	p := retry.NewPacer()
	// Throttled after 10 s with nothing accepted: one call a second.
	turn, err := p.Wait(context.Background(), clock)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Second)
	p.Done(turn, clock.Now(), true)
	// The next turn is now; the one after it a second later.
	if _, err := p.Wait(context.Background(), clock); err != nil {
		t.Fatal(err)
	}
	a := retry.NewAdmission(1)
	hooks := retry.Hooks{Retryable: retryable, Admission: a, Pacer: p}
	done := make(chan retry.Result, 2)
	var calls atomic.Int32
	op := func(context.Context, int) error { calls.Add(1); return nil }
	go func() { done <- retry.Do(context.Background(), clock, policy(), hooks, op) }()
	if !clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("the first loop did not wait for its turn")
	}
	go func() { done <- retry.Do(context.Background(), clock, policy(), hooks, op) }()
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := a.Acquire(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("the slot was free while a loop waited for its turn: %v", err)
	}
	if clock.WaitForWaiter(50 * time.Millisecond) {
		t.Fatal("a second loop waited for a turn without a slot")
	}
	finish := func() {
		t.Helper()
		clock.Advance(time.Second)
		select {
		case r := <-done:
			if r.Err != nil {
				t.Fatalf("%+v", r)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("a paced loop did not finish")
		}
	}
	finish()
	// The second loop, given the slot, now waits for its turn.
	if !clock.WaitForWaiter(5 * time.Second) {
		t.Fatal("the second loop did not wait for its turn")
	}
	finish()
	if n := calls.Load(); n != 2 {
		t.Fatalf("%d calls, want 2", n)
	}
}

// TestDoBudgetExcludesPacerWait checks that waiting for the pacer is not
// spent from the budget: calls paced a second apart still get their
// retries under a budget of half a second.
func TestDoBudgetExcludesPacerWait(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	p := retry.NewPacer()
	// A first call throttled after 20 s, with none accepted, paces the
	// pacer at its least rate, one call a second.
	turn, err := p.Wait(context.Background(), clock)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second)
	p.Done(turn, clock.Now(), true)
	if r := p.Rate(); r != 1 {
		t.Fatalf("pacer at %v/s, want 1/s", r)
	}
	pol := policy()
	pol.Budget = 500 * time.Millisecond
	start := clock.Now()
	r := retry.Do(context.Background(), clock, pol, retry.Hooks{
		Retryable: retryable, Pacer: p,
	}, func(_ context.Context, attempt int) error {
		if attempt < 3 {
			return errTransient
		}
		return nil
	})
	if r.Err != nil || r.Attempts != 3 || r.Exhausted {
		t.Fatalf("result %+v after %v", r, clock.Now().Sub(start))
	}
	if took := clock.Now().Sub(start); took < 1500*time.Millisecond {
		t.Fatalf("the attempts were not paced a second apart: %v", took)
	}
}

// TestPacerCutsOncePerRate checks that calls given their turns at one rate
// and throttled together lower the rate once, not once each: otherwise a
// burst of throttled answers would drive the rate to its floor.
func TestPacerCutsOncePerRate(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	p := retry.NewPacer()
	turn, err := p.Wait(context.Background(), clock)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10 * time.Millisecond)
	p.Done(turn, clock.Now(), true) // first throttle: 1 call in 10 ms
	if r := p.Rate(); r != 100 {
		t.Fatalf("pacer at %v/s after the first throttle, want 100/s", r)
	}
	var turns []retry.Turn
	for range 4 {
		turn, err := p.Wait(context.Background(), clock)
		if err != nil {
			t.Fatal(err)
		}
		turns = append(turns, turn)
	}
	for _, turn := range turns {
		p.Done(turn, clock.Now(), true)
	}
	if r := p.Rate(); math.Abs(r-97) > 1e-9 {
		t.Fatalf("four throttled calls of one rate left the pacer at %v/s, want one cut of 3%% to 97/s", r)
	}
}

// TestDoBoundedWithInvalidFloats: a NaN or infinite multiplier or jitter
// must not turn into negative delays, which would retry without waiting and
// never spend the budget. The op cancels the loop after 10,000 attempts so
// the test ends either way.
func TestDoBoundedWithInvalidFloats(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    func(*retry.Policy)
	}{
		{"multiplier NaN", func(p *retry.Policy) { p.Multiplier = math.NaN() }},
		{"multiplier +Inf", func(p *retry.Policy) { p.Multiplier = math.Inf(1) }},
		{"multiplier -Inf", func(p *retry.Policy) { p.Multiplier = math.Inf(-1) }},
		{"jitter NaN", func(p *retry.Policy) { p.Jitter = math.NaN() }},
		{"jitter +Inf", func(p *retry.Policy) { p.Jitter = math.Inf(1) }},
		{"jitter -Inf", func(p *retry.Policy) { p.Jitter = math.Inf(-1) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy()
			p.Budget = time.Second
			tc.p(&p)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			clock := fakeclock.NewAuto(epoch)
			r := retry.Do(ctx, clock, p, retry.Hooks{Retryable: retryable}, func(_ context.Context, attempt int) error {
				if attempt >= 10000 {
					cancel()
				}
				return errTransient
			})
			if !r.Exhausted || r.Attempts > 20 {
				t.Fatalf("result %+v after %v; want the 1 s budget spent in a few attempts", r, clock.Now().Sub(epoch))
			}
		})
	}
}

var errConflict = errors.New("conflict")

// TestDoClassSpacesAttemptsEvenly checks a class's schedule: attempts that
// fail with it start Interval apart (the time an answer takes is part of
// the interval), other errors keep the backoff, and a condition that lasts
// w is left within one interval plus one answer with at most
// ceil(w/Interval)+1 attempts.
func TestDoClassSpacesAttemptsEvenly(t *testing.T) {
	const interval, answer = 200 * time.Millisecond, 7 * time.Millisecond
	p := policy()
	p.Jitter, p.Budget = 0.2, time.Minute
	p.Classes = []retry.Class{{Match: func(err error) bool { return errors.Is(err, errConflict) }, Interval: interval}}
	isRetryable := func(err error) bool { return errors.Is(err, errConflict) || errors.Is(err, errTransient) }
	for _, w := range []time.Duration{0, 1, 150 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
		999 * time.Millisecond, time.Second, 1500 * time.Millisecond, 2 * time.Second, 3*time.Second + 7, 5 * time.Second, 20 * time.Second} {
		clock := fakeclock.NewAuto(epoch)
		var starts []time.Time
		var delays []time.Duration
		r := retry.Do(context.Background(), clock, p, retry.Hooks{
			Retryable: isRetryable,
			OnRetry:   func(_ int, d time.Duration, _ error) { delays = append(delays, d) },
		}, func(context.Context, int) error {
			starts = append(starts, clock.Now())
			clock.Advance(answer)
			if clock.Now().Sub(epoch) <= w { // the answer comes while it lasts
				return errConflict
			}
			return nil
		})
		if r.Err != nil {
			t.Fatalf("window %v: %+v", w, r)
		}
		for i, d := range delays {
			if d > interval {
				t.Errorf("window %v: delay %d is %v, more than %v", w, i, d, interval)
			}
		}
		for i := 1; i < len(starts); i++ {
			if gap := starts[i].Sub(starts[i-1]); gap != interval {
				t.Errorf("window %v: attempts %d and %d start %v apart, want %v", w, i-1, i, gap, interval)
			}
		}
		end := clock.Now().Sub(epoch)
		if late := end - w; late > interval+answer {
			t.Errorf("window %v: done %v after it ended, more than %v + one answer", w, late, interval)
		}
		if most := int(math.Ceil(float64(w)/float64(interval))) + 1; r.Attempts > most {
			t.Errorf("window %v: %d attempts, more than ceil(w/%v)+1 = %d", w, r.Attempts, interval, most)
		}
	}

	// Other errors keep the (jittered, growing) backoff.
	clock := fakeclock.NewAuto(epoch)
	var delays []time.Duration
	retry.Do(context.Background(), clock, p, retry.Hooks{
		Retryable: isRetryable,
		OnRetry:   func(_ int, d time.Duration, _ error) { delays = append(delays, d) },
	}, func(_ context.Context, attempt int) error {
		if attempt < 4 {
			return errTransient
		}
		return nil
	})
	if len(delays) != 3 || delays[2] < 320*time.Millisecond {
		t.Errorf("transient delays %v: want the backoff (100 ms x2, +-20%%)", delays)
	}
}

// TestDoClassAttemptsTakeTurns checks that a class's retries still go
// through the Admission and the Pacer: every attempt holds a slot, and a
// pacer slowed to one call a second spaces attempts whose class asks for
// 200 ms, so evenly spaced conflict retries cannot bypass StopAll's
// throttling.
func TestDoClassAttemptsTakeTurns(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	pacer := retry.NewPacer()
	turn, err := pacer.Wait(context.Background(), clock)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(20 * time.Second)
	pacer.Done(turn, clock.Now(), true)
	if r := pacer.Rate(); r != 1 {
		t.Fatalf("pacer at %v/s, want 1/s", r)
	}
	p := policy()
	p.Classes = []retry.Class{{Match: func(err error) bool { return errors.Is(err, errConflict) }, Interval: 200 * time.Millisecond}}
	a := retry.NewAdmission(1)
	var starts []time.Time
	r := retry.Do(context.Background(), clock, p, retry.Hooks{
		Retryable: func(err error) bool { return errors.Is(err, errConflict) }, Admission: a, Pacer: pacer,
	}, func(_ context.Context, attempt int) error {
		starts = append(starts, clock.Now())
		// The attempt holds the only slot: nobody else can call now.
		ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
		defer cancel()
		if err := a.Acquire(ctx); err == nil {
			a.Release()
			t.Errorf("attempt %d ran without holding a slot", attempt)
		}
		if attempt < 5 {
			return errConflict
		}
		return nil
	})
	if r.Err != nil || r.Attempts != 5 {
		t.Fatalf("%+v", r)
	}
	for i := 1; i < len(starts); i++ {
		if gap := starts[i].Sub(starts[i-1]); gap < 500*time.Millisecond {
			t.Errorf("attempts %d and %d %v apart: the pacer (about 1/s) was bypassed", i-1, i, gap)
		}
	}
}
