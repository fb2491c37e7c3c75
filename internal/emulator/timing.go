package emulator

import (
	"math"
	"time"
)

// Default durations used when a Timing field is zero.
const (
	DefaultStepDuration  = time.Second
	DefaultStopDelay     = 200 * time.Millisecond
	DefaultLambdaRunTime = 2 * time.Second
	DefaultLambdaTimeout = 120 * time.Second
)

// Forever is a duration that never elapses: a step whose run time is Forever
// runs until it is stopped, answered or completed with CompleteStep.
const Forever = time.Duration(math.MaxInt64)

// Timing sets how long simulated work takes. A zero field takes its default;
// a negative field means no time at all (the transition happens at once).
type Timing struct {
	// StepDuration is how long a generic step runs before it succeeds.
	// Default DefaultStepDuration.
	StepDuration time.Duration

	// StopDelay is how long a stopped generic step stays Stopping before it
	// is Stopped. Default DefaultStopDelay.
	StopDelay time.Duration

	// LambdaRunTime is how long a Lambda step's function runs. Default
	// DefaultLambdaRunTime.
	LambdaRunTime time.Duration

	// LambdaTimeout is how long a Lambda step may run before it fails,
	// counted from the step's start. Default DefaultLambdaTimeout.
	LambdaTimeout time.Duration

	// ConflictWindow is how long after each step transition
	// StopPipelineExecution answers ConflictException. Default 0 (never).
	ConflictWindow time.Duration
}

// StepTiming overrides the Timing for the steps with a given name. A zero
// field keeps the emulator's Timing; a negative field means no time at all.
type StepTiming struct {
	// Duration is the step's run time: StepDuration for a generic step,
	// LambdaRunTime for a Lambda step.
	Duration time.Duration

	// StopDelay overrides Timing.StopDelay.
	StopDelay time.Duration

	// LambdaTimeout overrides Timing.LambdaTimeout.
	LambdaTimeout time.Duration
}

func (t Timing) withDefaults() Timing {
	t.StepDuration = pick(t.StepDuration, DefaultStepDuration)
	t.StopDelay = pick(t.StopDelay, DefaultStopDelay)
	t.LambdaRunTime = pick(t.LambdaRunTime, DefaultLambdaRunTime)
	t.LambdaTimeout = pick(t.LambdaTimeout, DefaultLambdaTimeout)
	t.ConflictWindow = pick(t.ConflictWindow, 0)
	return t
}

// pick returns v when it is positive, 0 when negative and def when zero.
func pick(v, def time.Duration) time.Duration {
	switch {
	case v > 0:
		return v
	case v < 0:
		return 0
	default:
		return def
	}
}

// SetStepTiming overrides the timing of every step named stepName, in any
// pipeline of any Region, for steps that start after the call. A zero
// StepTiming removes the override.
func (e *Emulator) SetStepTiming(stepName string, t StepTiming) {
	e.regions.each(func(c *Emulator) { c.setStepTiming(stepName, t) })
}

func (e *Emulator) setStepTiming(stepName string, t StepTiming) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if t == (StepTiming{}) {
		delete(e.state.stepTimings, stepName)
		return
	}
	e.state.stepTimings[stepName] = t
}

// SetConflictWindow changes Timing.ConflictWindow in every Region while
// the emulator runs. It applies to transitions that happen after the call;
// zero or negative turns it off.
func (e *Emulator) SetConflictWindow(d time.Duration) {
	e.regions.each(func(c *Emulator) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cfg.Timing.ConflictWindow = max(d, 0)
	})
}

// stepTiming resolves the durations for one step: run time, stop delay,
// Lambda timeout. Callers hold e.mu.
func (e *Emulator) stepTiming(name string, lambda bool) (run, stopDelay, timeout time.Duration) {
	t := e.cfg.Timing
	run = t.StepDuration
	if lambda {
		run = t.LambdaRunTime
	}
	stopDelay, timeout = t.StopDelay, t.LambdaTimeout
	if o, ok := e.state.stepTimings[name]; ok {
		run = pick(o.Duration, run)
		stopDelay = pick(o.StopDelay, stopDelay)
		timeout = pick(o.LambdaTimeout, timeout)
	}
	return run, stopDelay, timeout
}
