package emulator

import "time"

// SetSQSClock replaces the clock of the SQS rules (visibility, delays,
// retention, the 12-hour limit, the purge and name-reuse windows) in every
// Region so that a test can move time forward; nil restores the real
// clock. Long polls still wait in real time. Call it before the queues are
// used.
func (e *Emulator) SetSQSClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	e.regions.each(func(c *Emulator) { c.setSQSClock(now) })
}
