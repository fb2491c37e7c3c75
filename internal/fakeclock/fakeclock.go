// Package fakeclock provides clocks for tests that must not sleep for real.
package fakeclock

import (
	"sync"
	"time"
)

// Auto is a clock whose timers fire at once and move its time forward by
// their duration. Code that waits on it runs instantly while seeing the
// time it would have seen for real; tests can read how long it waited.
// It is safe for concurrent use.
type Auto struct {
	mu    sync.Mutex
	now   time.Time
	slept []time.Duration
	// OnAfter, if set, is called (without the lock held) for every wait,
	// after the time has moved.
	OnAfter func(d time.Duration)
}

// NewAuto returns an Auto clock that starts at start.
func NewAuto(start time.Time) *Auto { return &Auto{now: start} }

// Now returns the clock's time.
func (c *Auto) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After moves the time forward by d and returns a channel that has
// already received the new time.
func (c *Auto) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	if d > 0 {
		c.now = c.now.Add(d)
	}
	c.slept = append(c.slept, d)
	now := c.now
	f := c.OnAfter
	c.mu.Unlock()
	if f != nil {
		f(d)
	}
	ch := make(chan time.Time, 1)
	ch <- now
	return ch
}

// Advance moves the time forward by d without a wait.
func (c *Auto) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Waits returns the durations of every wait so far, in order.
func (c *Auto) Waits() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]time.Duration(nil), c.slept...)
}

// Manual is a clock whose time moves only when a test calls Advance.
// Timers fire when the time reaches them. It is safe for concurrent use.
type Manual struct {
	mu      sync.Mutex
	now     time.Time
	waiters []waiter
	added   chan struct{}
}

type waiter struct {
	at time.Time
	ch chan time.Time
}

// NewManual returns a Manual clock that starts at start.
func NewManual(start time.Time) *Manual {
	return &Manual{now: start, added: make(chan struct{}, 1024)}
}

// Now returns the clock's time.
func (c *Manual) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// After returns a channel that receives once the time has moved d ahead.
func (c *Manual) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, waiter{at: c.now.Add(d), ch: ch})
	select {
	case c.added <- struct{}{}:
	default:
	}
	return ch
}

// Advance moves the time forward by d and fires the timers that are due.
func (c *Manual) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if !w.at.After(c.now) {
			w.ch <- c.now
			continue
		}
		kept = append(kept, w)
	}
	c.waiters = kept
}

// Waiters returns how many timers are pending.
func (c *Manual) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// WaitForWaiter blocks until a timer has been created since the last
// call, or until timeout (real time) passes; it reports which.
func (c *Manual) WaitForWaiter(timeout time.Duration) bool {
	select {
	case <-c.added:
		return true
	case <-time.After(timeout):
		return false
	}
}
