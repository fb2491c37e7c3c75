package retry

import (
	"context"
	"sync"
	"time"
)

// Pacer spaces the calls of many callers to one throttled operation so
// that together they go at about the rate the service admits, found by
// trying.
//
// It starts unpaced. The first throttled answer sets its rate to the rate
// of the answers the service accepted since the first call (at least
// one), which is at least what it admits (it includes any burst). From
// then on it changes as this table says (the constants below state the
// numbers, here and for the package's documentation):
//
//	answer                          rate                                 next turn
//	accepted                        x (1 + pacerGain); x (1 +            unchanged
//	                                pacerFastGain) while below
//	                                pacerFastUntil x the rate before
//	                                the last deep cut; never below
//	                                pacerCut x the rate of the last
//	                                pacerWindow accepted answers
//	throttled, a regular turn       x pacerCut; x pacerDeepCut (but      now + pacerRetryGap x
//	given at the current rate       not below the rate of the last       the new interval (an
//	                                pacerWindow accepted answers) when   early turn)
//	                                pacerDeepThrottles of the last
//	                                pacerAnswers answers were throttled
//	throttled, the early turn       unchanged                            now + the interval
//	throttled, a turn given before  unchanged (that cut answered it)     unchanged
//	the last cut
//	(a turn given at now)           unchanged                            now + the interval
//
// Turns are counted from when the last one was actually given, not from
// when it was due: against a token bucket of burst 1 (which admits a call
// only 1/R after the one it admitted last) a caller that wakes late must
// not make the next call arrive early. A throttled call came a little
// early for the bucket, which will have refilled soon: the early turn
// after it takes the lost turn back for a tenth of an interval instead of
// a whole one, and the cut is small. So the rate can hover just below
// what the service admits, where timing jitter still draws a throttled
// answer now and then: the cut and the gain balance at about one
// throttled call in (1-pacerCut)/pacerGain + 1 ≈ 16. The deep cut, the
// fast gain and the estimate of the admitted rate (what a bucket saturated
// with calls admits) are for the start, when the first estimate is far
// too high.
//
// Callers waiting for a turn queue in the order they asked (a retried
// call queues behind the calls already waiting), and only the first of
// them waits for the clock: when it is given its turn it wakes the next
// one, and a throttled answer (which moves the next turn) wakes it to look
// again. The Pacer does not bound how many calls wait for a turn: its
// callers do, with an Admission taken before the turn (see
// Hooks.Admission). A Pacer is safe for concurrent use, and keeps no
// goroutine of its own.
type Pacer struct {
	mu       sync.Mutex
	rate     float64   // calls per second; 0 means not paced yet
	next     time.Time // earliest time the next turn may be given
	first    time.Time // the first call's start
	gen      uint64    // counts the changes of rate by throttling
	accepted int       // answers accepted before the first throttle
	early    bool      // whether the next turn is the early one after a throttle
	ceiling  float64   // the rate before the last deep cut; 0 after a regular cut
	queue    []*pacerWaiter
	// answers holds whether each of the last pacerAnswers answers was
	// throttled (a ring, written at answerAt).
	answers  [pacerAnswers]bool
	answerAt int
	// admitted holds the turns' times of the last pacerWindow accepted
	// answers (a ring, written at admittedAt).
	admitted   [pacerWindow]time.Time
	admittedAt int
}

// pacerWaiter is a caller waiting in a Pacer's queue.
type pacerWaiter struct {
	wake chan struct{} // a buffer of one: a wake-up is never lost
}

// The pacer's constants: the one place that states them. The Stopper's
// documentation and BENCHMARKS.md refer here.
const (
	// pacerCut is what a throttled answer multiplies the rate by: a cut
	// of 3%.
	pacerCut = 0.97
	// pacerGain is the share of the rate that an accepted answer adds to
	// it: 0.2% a call, so a cut is won back in about 15 accepted calls,
	// whatever the rate.
	pacerGain = 0.002
	// pacerRetryGap is the part of the interval that the early turn after
	// a throttled one waits.
	pacerRetryGap = 0.1
	// pacerDeepCut replaces pacerCut when pacerDeepThrottles of the last
	// pacerAnswers answers were throttled: the rate is far above what the
	// service admits (as after the unpaced start) and comes down in a few
	// cuts rather than dozens.
	pacerDeepCut       = 0.7
	pacerDeepThrottles = 3
	pacerAnswers       = 8
	// pacerWindow is how many accepted answers the estimate of the
	// admitted rate is taken over.
	pacerWindow = 4
	// pacerFastGain replaces pacerGain while the rate is below
	// pacerFastUntil x the rate before the last deep cut (1% a call): a
	// deep cut that went too far is soon undone.
	pacerFastGain  = 0.01
	pacerFastUntil = pacerCut
	// pacerMinRate is the least rate: one call a second.
	pacerMinRate = 1.0
)

// NewPacer returns a pacer that has not paced any call yet.
func NewPacer() *Pacer { return &Pacer{} }

// Turn is a call's place in a Pacer's order.
type Turn struct {
	// At is when the call was given its turn.
	At  time.Time
	gen uint64
	// early is set on the turn given a gap after a throttled one: its
	// answer says whether the gap was long enough, not whether the rate is.
	early bool
}

// Wait blocks until the caller's turn, or until ctx ends. Every Wait that
// returns nil should be followed by one Done with the Turn.
func (p *Pacer) Wait(ctx context.Context, clock Clock) (Turn, error) {
	if err := ctx.Err(); err != nil {
		return Turn{}, err
	}
	w := &pacerWaiter{wake: make(chan struct{}, 1)}
	p.mu.Lock()
	now := clock.Now()
	if p.first.IsZero() {
		p.first = now
	}
	p.queue = append(p.queue, w)
	for {
		var d time.Duration
		if p.queue[0] == w {
			if p.rate == 0 || !p.next.After(now) {
				turn := p.give(now)
				p.mu.Unlock()
				return turn, nil
			}
			d = p.next.Sub(now)
		}
		p.mu.Unlock()
		var timer <-chan time.Time
		if d > 0 {
			timer = clock.After(d)
		}
		select {
		case <-ctx.Done():
			p.mu.Lock()
			p.leave(w)
			p.mu.Unlock()
			return Turn{}, ctx.Err()
		case <-timer:
		case <-w.wake:
		}
		p.mu.Lock()
		now = clock.Now()
	}
}

// give gives the first waiter its turn at now and wakes the next one.
// Callers hold p.mu.
func (p *Pacer) give(now time.Time) Turn {
	p.queue[0] = nil
	p.queue = p.queue[1:]
	turn := Turn{At: now, gen: p.gen, early: p.early}
	p.early = false
	if p.rate > 0 {
		p.next = now.Add(p.interval())
	}
	p.wakeFirst()
	return turn
}

// leave takes w out of the queue (its context ended) and, if it was
// first, wakes the next one. Callers hold p.mu.
func (p *Pacer) leave(w *pacerWaiter) {
	for i, q := range p.queue {
		if q == w {
			p.queue = append(p.queue[:i], p.queue[i+1:]...)
			if i == 0 {
				p.wakeFirst()
			}
			return
		}
	}
}

// wakeFirst wakes the first waiter, if any, to look at the clock again.
// Callers hold p.mu.
func (p *Pacer) wakeFirst() {
	if len(p.queue) == 0 {
		return
	}
	select {
	case p.queue[0].wake <- struct{}{}:
	default: // already woken
	}
}

// interval is the time between turns at the current rate. Callers hold
// p.mu.
func (p *Pacer) interval() time.Duration {
	return time.Duration(float64(time.Second) / p.rate)
}

// Done records how the call given turn ended at now: throttled, or
// admitted (any other answer, an error included, is a call the service let
// through).
func (p *Pacer) Done(turn Turn, now time.Time, throttled bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.record(throttled)
	switch {
	case throttled && p.rate == 0:
		span := max(now.Sub(p.first), time.Millisecond)
		// At least one call a span: with nothing accepted yet the service
		// still admits something, and a rate too high is soon cut.
		p.rate = max(float64(max(p.accepted, 1))/span.Seconds(), pacerMinRate)
		p.gen++
	case throttled && turn.early:
		// The gap after a throttled call was too short: the next turn
		// waits a whole interval, and the rate stands.
		p.next = now.Add(p.interval())
		p.wakeFirst()
		return
	case throttled && turn.gen == p.gen:
		rate := p.rate * pacerCut
		p.ceiling = 0
		if p.recentThrottles() >= pacerDeepThrottles {
			// Far above what the service admits, which is then about the
			// rate of the answers it accepted: no lower than that.
			rate = max(p.rate*pacerDeepCut, min(p.admittedRate(), rate))
			p.ceiling = p.rate
			// The next deep cut needs throttles at the new rate.
			p.answers = [pacerAnswers]bool{}
		}
		p.rate = max(rate, pacerMinRate)
		p.gen++
		// The turn lost to this answer is taken back: the next one is
		// given a small gap after it (and not before one already due).
		p.next = now.Add(time.Duration(pacerRetryGap * float64(p.interval())))
		p.early = true
		p.wakeFirst()
	case throttled:
		// Given its turn before the last cut: that cut answered it.
	case p.rate == 0:
		p.accepted++
	case p.rate < p.ceiling*pacerFastUntil:
		// A deep cut may have gone too far: regain fast up to near the
		// rate it cut.
		p.rate += p.rate * pacerFastGain
	default:
		p.rate += p.rate * pacerGain
	}
	if !throttled {
		// The turn's time, not the answer's: answers can bunch up (a
		// stalled process reads several at once), the calls' starts not.
		p.admitted[p.admittedAt] = turn.At
		p.admittedAt = (p.admittedAt + 1) % pacerWindow
		// Below what the service has just admitted (after deep cuts that
		// went too far): back up at once to just below it.
		if est := p.admittedRate() * pacerCut; p.rate > 0 && p.rate < est {
			p.rate = est
		}
	}
}

// record notes whether an answer was throttled. Callers hold p.mu.
func (p *Pacer) record(throttled bool) {
	p.answers[p.answerAt] = throttled
	p.answerAt = (p.answerAt + 1) % pacerAnswers
}

// recentThrottles returns how many of the last pacerAnswers answers were
// throttled. Callers hold p.mu.
func (p *Pacer) recentThrottles() int {
	n := 0
	for _, t := range p.answers {
		if t {
			n++
		}
	}
	return n
}

// admittedRate returns the rate at which the calls of the last
// pacerWindow accepted answers were made, 0 when there were fewer. It
// takes the earliest and the latest of their turns, not the first and
// last answers recorded: calls in flight together are answered in any
// order. Callers hold p.mu.
func (p *Pacer) admittedRate() float64 {
	oldest, newest := p.admitted[0], p.admitted[0]
	for _, at := range p.admitted {
		if at.IsZero() {
			return 0
		}
		if at.Before(oldest) {
			oldest = at
		}
		if at.After(newest) {
			newest = at
		}
	}
	if !newest.After(oldest) {
		return 0
	}
	return float64(pacerWindow-1) / newest.Sub(oldest).Seconds()
}

// Rate returns the current rate in calls per second; 0 means not paced.
func (p *Pacer) Rate() float64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rate
}

// waiting returns how many callers wait for a turn (for tests).
func (p *Pacer) waiting() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.queue)
}
