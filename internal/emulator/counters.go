package emulator

import (
	"maps"
	"slices"
	"sync"
	"time"
)

// Answer is one accepted SendPipelineExecutionStepSuccess or
// SendPipelineExecutionStepFailure call for a callback token.
type Answer struct {
	// Outcome is "Success" or "Failure".
	Outcome string
	// ClientRequestToken is the call's token ("" when the caller sent none).
	ClientRequestToken string
	// OutputParameters are the Success call's outputs.
	OutputParameters map[string]string
	// FailureReason is the Failure call's reason.
	FailureReason string
	// Replay is true when the call repeated an earlier accepted answer with
	// the same ClientRequestToken and had no effect.
	Replay bool
	// Time is when the emulator accepted the call.
	Time time.Time
}

// Answer outcomes.
const (
	OutcomeSuccess = "Success"
	OutcomeFailure = "Failure"
)

type counters struct {
	mu       sync.Mutex
	requests map[string]int
}

func newCounters() *counters { return &counters{requests: map[string]int{}} }

func (c *counters) request(op string) {
	c.mu.Lock()
	c.requests[op]++
	c.mu.Unlock()
}

// Requests returns how many requests named op (for example
// "StopPipelineExecution" or "ReceiveMessage") this Region received (the
// Region of the request's credential scope, Config.Region for unsigned
// requests), including those answered with an injected fault. Requests
// with an unknown X-Amz-Target prefix count as "Unknown". TotalRequests
// sums every Region.
func (e *Emulator) Requests(op string) int {
	e.counters.mu.Lock()
	defer e.counters.mu.Unlock()
	return e.counters.requests[op]
}

// Counters returns a snapshot of this Region's request counts by
// operation; RegionCounters has every Region's.
func (e *Emulator) Counters() map[string]int {
	e.counters.mu.Lock()
	defer e.counters.mu.Unlock()
	return maps.Clone(e.counters.requests)
}

// StopTokens returns every distinct ClientRequestToken seen in a
// StopPipelineExecution call for executionARN, accepted or not, in the order
// first seen. Calls rejected by input validation before the execution was
// found are not recorded.
func (e *Emulator) StopTokens(executionARN string) []string {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	if ex, ok := e.state.executions[executionARN]; ok {
		return slices.Clone(ex.stopTokensSeen)
	}
	return nil
}

// AcceptedStopToken returns the ClientRequestToken of the stop that took
// effect on executionARN, or "" when none did.
func (e *Emulator) AcceptedStopToken(executionARN string) string {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	if ex, ok := e.state.executions[executionARN]; ok {
		return ex.stopToken
	}
	return ""
}

// EffectiveStops returns how many StopPipelineExecution calls changed the
// state of executionARN (0 or 1: only an Executing execution can be
// stopped). Replays of the accepted token answer success but do not count.
func (e *Emulator) EffectiveStops(executionARN string) int {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	if ex, ok := e.state.executions[executionARN]; ok {
		return ex.effectiveStops
	}
	return 0
}

// StopCalls returns how many StopPipelineExecution calls for executionARN
// were answered with success, replays included.
func (e *Emulator) StopCalls(executionARN string) int {
	e = e.forARN(executionARN)
	e.mu.Lock()
	defer e.mu.Unlock()
	if ex, ok := e.state.executions[executionARN]; ok {
		return ex.stopSuccesses
	}
	return 0
}

// RefusedAnswers returns the Success and Failure calls for callbackToken
// that were refused because the step had already ended (a second answer
// with another ClientRequestToken), in order.
func (e *Emulator) RefusedAnswers(callbackToken string) []Answer {
	e = e.forToken(callbackToken)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.state.tokens[callbackToken]; ok {
		return slices.Clone(s.refused)
	}
	return nil
}

// Answers returns the accepted Success and Failure calls for callbackToken
// in order, replays included (marked Replay). Rejected calls are not listed.
// A test asserts "no step answered twice with different outcomes" by
// checking that every entry after the first is a Replay.
func (e *Emulator) Answers(callbackToken string) []Answer {
	e = e.forToken(callbackToken)
	e.mu.Lock()
	defer e.mu.Unlock()
	if s, ok := e.state.tokens[callbackToken]; ok {
		out := make([]Answer, len(s.answers))
		for i, a := range s.answers {
			a.OutputParameters = maps.Clone(a.OutputParameters)
			out[i] = a
		}
		return out
	}
	return nil
}
