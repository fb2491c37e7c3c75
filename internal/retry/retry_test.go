package retry_test

import (
	"context"
	"errors"
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

func TestGateSharesBackoff(t *testing.T) {
	clock := fakeclock.NewAuto(epoch)
	g := retry.NewGate(policy(), clock)
	if err := g.Wait(context.Background(), clock); err != nil || !clock.Now().Equal(epoch) {
		t.Fatalf("an open gate waited: %v, %v", err, clock.Now())
	}
	g.Throttle(clock.Now())
	g.Throttle(clock.Now()) // grows the delay: 100ms then 200ms
	if err := g.Wait(context.Background(), clock); err != nil {
		t.Fatal(err)
	}
	if waited := clock.Now().Sub(epoch); waited != 200*time.Millisecond {
		t.Fatalf("waited %v, want 200ms", waited)
	}
	g.Success()
	g.Throttle(clock.Now())
	start := clock.Now()
	if err := g.Wait(context.Background(), clock); err != nil {
		t.Fatal(err)
	}
	if waited := clock.Now().Sub(start); waited != 100*time.Millisecond {
		t.Fatalf("after a success the delay should reset: waited %v", waited)
	}
}
