package retry

import "context"

// Admission bounds how many calls are in flight at once: a counting
// semaphore that a caller takes a slot of before a call and gives back
// after its answer. It is the one bound on calls in flight of the loops
// that share it (Hooks.Admission) and of any other calls made through it.
//
// A slot is held only around a call (and, in Do, the wait for the Pacer's
// turn just before it): never through a retry delay or any other wait
// between calls, so a caller that waits does not keep the others from
// making their calls. A caller waiting for a slot is given one in about
// the order it asked (Go wakes the senders blocked on a channel in
// order). An Admission is safe for concurrent use.
type Admission struct {
	slots chan struct{}
}

// NewAdmission returns an Admission of n slots (at least one).
func NewAdmission(n int) *Admission {
	return &Admission{slots: make(chan struct{}, max(n, 1))}
}

// Acquire takes a slot, waiting until one is free or ctx ends; it returns
// ctx.Err() when ctx ends first. Every Acquire that returns nil must be
// followed by one Release.
func (a *Admission) Acquire(ctx context.Context) error {
	select {
	case a.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Release gives back a slot taken by Acquire.
func (a *Admission) Release() { <-a.slots }
