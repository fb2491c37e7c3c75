package emulator

import (
	"encoding/json"
	"fmt"
	"time"
)

// Execution statuses.
const (
	StatusExecuting = "Executing"
	StatusStopping  = "Stopping"
	StatusStopped   = "Stopped"
	StatusFailed    = "Failed"
	StatusSucceeded = "Succeeded"
)

// pipelineState is the SageMaker side of the emulator. Every field is
// guarded by Emulator.mu.
type pipelineState struct {
	pipelines   map[string]*pipeline  // by name
	executions  map[string]*execution // by ARN
	tokens      map[string]*stepRun   // by callback token
	startTokens map[string]string     // pipeline name + "\x00" + token -> execution ARN
	stepTimings map[string]StepTiming
	timers      map[*time.Timer]struct{}
	closed      bool
	changed     chan struct{} // closed and replaced on every state change
}

func newPipelineState() *pipelineState {
	return &pipelineState{
		pipelines:   map[string]*pipeline{},
		executions:  map[string]*execution{},
		tokens:      map[string]*stepRun{},
		startTokens: map[string]string{},
		stepTimings: map[string]StepTiming{},
		timers:      map[*time.Timer]struct{}{},
		changed:     make(chan struct{}),
	}
}

func (st *pipelineState) stopTimers() {
	st.closed = true
	for t := range st.timers {
		t.Stop()
	}
	clear(st.timers)
}

func (st *pipelineState) notify() {
	close(st.changed)
	st.changed = make(chan struct{})
}

type pipeline struct {
	name, arn     string
	definitionSrc string
	def           *definition
	roleArn       string
	description   string
	displayName   string
	createToken   string
	created       time.Time
	lastRun       time.Time
	executions    []*execution // in start order
}

type execution struct {
	arn           string
	pipeline      *pipeline
	displayName   string
	description   string
	status        string
	failureReason string
	created       time.Time
	modified      time.Time
	conflictUntil time.Time

	steps  []*stepRun // started steps, in start order
	byName map[string]*stepRun

	stopToken      string
	stopTokensSeen []string
	effectiveStops int
	stopSuccesses  int
}

type stepRun struct {
	def           *stepDef
	ex            *execution
	status        string
	start, end    time.Time
	failureReason string
	token         string // callback steps
	outputs       []outputParameter
	stopDelay     time.Duration
	timers        []*time.Timer
	answers       []Answer
}

func (s *stepRun) running() bool {
	return s.status == StatusExecuting || s.status == StatusStopping
}

// after runs fn with e.mu held once d has passed, unless the emulator
// closed or the step's timers were cancelled. Forever never fires. Callers
// hold e.mu.
func (e *Emulator) after(s *stepRun, d time.Duration, fn func()) {
	if d == Forever {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(d, func() {
		e.mu.Lock()
		defer e.mu.Unlock()
		if _, live := e.state.timers[t]; !live || e.state.closed {
			return
		}
		delete(e.state.timers, t)
		fn()
	})
	e.state.timers[t] = struct{}{}
	s.timers = append(s.timers, t)
}

func (e *Emulator) cancelTimers(s *stepRun) {
	for _, t := range s.timers {
		t.Stop()
		delete(e.state.timers, t)
	}
	s.timers = nil
}

// touch records a transition of ex: it opens the conflict window and wakes
// waiters.
func (e *Emulator) touch(ex *execution) {
	now := time.Now()
	ex.modified = now
	ex.conflictUntil = now.Add(e.cfg.Timing.ConflictWindow)
	e.state.notify()
}

func (e *Emulator) setStep(s *stepRun, status string) {
	s.status = status
	if !s.running() {
		s.end = time.Now()
		e.cancelTimers(s)
	}
	e.log.Debug("step status", "execution", s.ex.arn, "step", s.def.Name, "status", status)
	e.touch(s.ex)
}

func (e *Emulator) setExecution(ex *execution, status, reason string) {
	ex.status = status
	if reason != "" {
		ex.failureReason = reason
	}
	e.log.Debug("execution status", "execution", ex.arn, "status", status, "reason", reason)
	e.touch(ex)
}

// advance starts every step whose dependencies all succeeded and finishes
// the execution when every step succeeded.
func (e *Emulator) advance(ex *execution) {
	if ex.status != StatusExecuting {
		return
	}
	done := 0
	for _, d := range ex.pipeline.def.steps {
		if s, started := ex.byName[d.Name]; started {
			if s.status == StatusSucceeded {
				done++
			}
			continue
		}
		ready := true
		for _, dep := range d.DependsOn {
			if s, ok := ex.byName[dep]; !ok || s.status != StatusSucceeded {
				ready = false
				break
			}
		}
		if ready {
			e.startStep(ex, d)
			if ex.status != StatusExecuting {
				return
			}
		}
	}
	if done == len(ex.pipeline.def.steps) {
		e.setExecution(ex, StatusSucceeded, "")
	}
}

func (e *Emulator) startStep(ex *execution, d *stepDef) {
	s := &stepRun{def: d, ex: ex, start: time.Now()}
	ex.steps = append(ex.steps, s)
	ex.byName[d.Name] = s
	e.setStep(s, StatusExecuting)
	switch d.Type {
	case StepTypeCallback:
		s.token = e.newCallbackToken()
		e.state.tokens[s.token] = s
		if err := e.sendCallback(s, StatusExecuting); err != nil {
			e.failStep(s, err.Error())
		}
	case StepTypeLambda:
		run, _, timeout := e.stepTiming(d.Name, true)
		e.after(s, run, func() { e.finishWork(s) })
		e.after(s, timeout, func() {
			e.failStep(s, fmt.Sprintf("Lambda step %s timed out after %s", d.Name, timeout))
		})
	default:
		run, stopDelay, _ := e.stepTiming(d.Name, false)
		s.stopDelay = stopDelay
		e.after(s, run, func() { e.finishWork(s) })
	}
}

func (e *Emulator) newCallbackToken() string {
	for {
		t := randomString(alnum, 10)
		if _, taken := e.state.tokens[t]; !taken {
			return t
		}
	}
}

// finishWork ends the work of a generic or Lambda step: it succeeds, or is
// Stopped when the execution is stopping.
func (e *Emulator) finishWork(s *stepRun) {
	switch s.status {
	case StatusExecuting:
		e.setStep(s, StatusSucceeded)
		e.advance(s.ex)
	case StatusStopping:
		e.setStep(s, StatusStopped)
		e.finishStop(s.ex)
	}
}

// failStep fails a running step and with it the execution; the other
// running steps are Stopped.
func (e *Emulator) failStep(s *stepRun, reason string) {
	if !s.running() {
		return
	}
	s.failureReason = reason
	e.setStep(s, StatusFailed)
	ex := s.ex
	for _, o := range ex.steps {
		if o.running() {
			e.setStep(o, StatusStopped)
		}
	}
	e.setExecution(ex, StatusFailed, fmt.Sprintf("Step %s failed: %s", s.def.Name, reason))
}

// stop moves an Executing execution to Stopping and each running step
// towards Stopped.
func (e *Emulator) stop(ex *execution) {
	e.setExecution(ex, StatusStopping, "")
	for _, s := range ex.steps {
		if s.status != StatusExecuting {
			continue
		}
		switch s.def.Type {
		case StepTypeCallback:
			e.setStep(s, StatusStopping)
			if err := e.sendCallback(s, StatusStopping); err != nil {
				e.log.Warn("send Stopping callback message", "execution", ex.arn, "step", s.def.Name, "err", err)
			}
		case StepTypeLambda:
			e.setStep(s, StatusStopping) // the function runs on; its timers stay
		default:
			e.cancelTimers(s)
			if s.stopDelay <= 0 {
				e.setStep(s, StatusStopped)
				continue
			}
			e.setStep(s, StatusStopping)
			e.after(s, s.stopDelay, func() {
				e.setStep(s, StatusStopped)
				e.finishStop(ex)
			})
		}
	}
	e.finishStop(ex)
}

// finishStop makes a Stopping execution Stopped once no step runs.
func (e *Emulator) finishStop(ex *execution) {
	if ex.status != StatusStopping {
		return
	}
	for _, s := range ex.steps {
		if s.running() {
			return
		}
	}
	e.setExecution(ex, StatusStopped, "")
}

// callbackMessage is the SQS body a callback step sends.
type callbackMessage struct {
	Token                string          `json:"token"`
	PipelineExecutionArn string          `json:"pipelineExecutionArn"`
	Arguments            json.RawMessage `json:"arguments"`
	Status               string          `json:"status"`
}

// sendCallback sends the step's message with the given status: to the
// external sender's outbox when configured, else to the emulator's queue.
func (e *Emulator) sendCallback(s *stepRun, status string) error {
	body, err := json.Marshal(callbackMessage{
		Token:                s.token,
		PipelineExecutionArn: s.ex.arn,
		Arguments:            s.def.Arguments,
		Status:               status,
	})
	if err != nil {
		return fmt.Errorf("encode callback message: %v", err)
	}
	sent := SentCallback{QueueURL: s.def.SqsQueueURL, Body: string(body), ExecutionARN: s.ex.arn, StepName: s.def.Name, Token: s.token, Status: status, Time: time.Now()}
	if e.outbox != nil {
		e.outbox.push(s.def.SqsQueueURL, string(body))
		e.sent.record(sent)
		return nil
	}
	if _, aerr := e.queues.send(s.def.SqsQueueURL, string(body), 0); aerr != nil {
		return fmt.Errorf("send callback message to %s: %s", s.def.SqsQueueURL, aerr.message)
	}
	e.sent.record(sent)
	return nil
}
