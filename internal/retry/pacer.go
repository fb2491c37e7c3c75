package retry

import (
	"context"
	"sync"
	"time"
)

// Pacer spaces the calls of many callers to one throttled operation so
// that together they go at about the rate the service admits, found by
// trying (additive increase, multiplicative decrease).
//
// It starts unpaced. The first throttled answer sets its rate to the rate
// of the answers the service accepted since the first call (at least
// one), which is at least what it admits (it includes any burst). Each
// later throttled answer to a call given its turn at the current rate
// multiplies the rate by pacerCut; each accepted answer adds pacerStep to
// it (the constants below state the numbers, here and for the package's
// documentation). The rate so hovers just below what the service admits: spacing calls a
// little closer than the service refills its token bucket would make about
// every other call a refused one.
//
// Calls are given turns in the order they ask, so a retried call queues
// behind the calls already waiting. The Pacer does not bound how many
// calls wait for a turn: its callers do, with an Admission taken before
// the turn (see Hooks.Admission), so that few turns are handed out at a
// rate that has just been lowered. A Pacer is safe for concurrent use.
type Pacer struct {
	mu       sync.Mutex
	rate     float64   // calls per second; 0 means not paced yet
	next     time.Time // earliest start of the next call
	first    time.Time // the first call's start
	gen      uint64    // counts the changes of rate by throttling
	accepted int       // answers accepted before the first throttle
}

// The pacer's constants: the one place that states them. The Stopper's
// documentation and BENCHMARKS.md refer here.
const (
	// pacerCut is what a throttled answer multiplies the rate by: a cut
	// of a tenth.
	pacerCut = 0.9
	// pacerStep is what an accepted answer adds to the rate, in calls per
	// second: at a rate of r calls a second, r accepted answers a second
	// raise it by 0.05 r, about 5% a second.
	pacerStep = 0.05
	// pacerMinRate is the least rate: one call a second.
	pacerMinRate = 1.0
)

// NewPacer returns a pacer that has not paced any call yet.
func NewPacer() *Pacer { return &Pacer{} }

// Turn is a call's place in a Pacer's order.
type Turn struct {
	// At is when the call may start.
	At  time.Time
	gen uint64
}

// Wait blocks until the caller's turn, or until ctx ends. Every Wait that
// returns nil should be followed by one Done with the Turn.
func (p *Pacer) Wait(ctx context.Context, clock Clock) (Turn, error) {
	now := clock.Now()
	p.mu.Lock()
	if p.first.IsZero() {
		p.first = now
	}
	turn := Turn{At: now, gen: p.gen}
	if p.rate > 0 {
		turn.At = p.next
		if turn.At.Before(now) {
			turn.At = now
		}
		p.next = turn.At.Add(time.Duration(float64(time.Second) / p.rate))
	}
	p.mu.Unlock()
	if err := Sleep(ctx, clock, turn.At.Sub(now)); err != nil {
		return Turn{}, err
	}
	return turn, nil
}

// Done records how the call given turn ended at now: throttled, or
// admitted (any other answer, an error included, is a call the service let
// through).
func (p *Pacer) Done(turn Turn, now time.Time, throttled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case throttled && p.rate == 0:
		span := max(now.Sub(p.first), time.Millisecond)
		// At least one call a span: with nothing accepted yet the service
		// still admits something, and a rate too high is soon cut.
		p.rate = max(float64(max(p.accepted, 1))/span.Seconds(), pacerMinRate)
		p.gen++
	case throttled && turn.gen == p.gen:
		p.rate = max(p.rate*pacerCut, pacerMinRate)
		p.gen++
	case throttled:
		// Given its turn before the last cut: that cut answered it.
	case p.rate == 0:
		p.accepted++
	default:
		p.rate += pacerStep
	}
}

// Rate returns the current rate in calls per second; 0 means not paced.
func (p *Pacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}
