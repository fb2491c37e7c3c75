package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
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
	pipelines    map[string]*pipeline  // by name
	executions   map[string]*execution // by ARN
	tokens       map[string]*stepRun   // by callback token
	startTokens  map[string]string     // pipeline name + "\x00" + token -> execution ARN
	deleteTokens map[string]bool       // pipeline name + "\x00" + token of accepted deletes
	pipelineSeq  int
	stepTimings  map[string]StepTiming
	// lambdaOutputs are the outputs Lambda steps return, by step name.
	lambdaOutputs map[string]map[string]string
	timers        map[*time.Timer]struct{}
	closed        bool
	changed       chan struct{} // closed and replaced on every state change
}

func newPipelineState() *pipelineState {
	return &pipelineState{
		pipelines:     map[string]*pipeline{},
		executions:    map[string]*execution{},
		tokens:        map[string]*stepRun{},
		startTokens:   map[string]string{},
		stepTimings:   map[string]StepTiming{},
		lambdaOutputs: map[string]map[string]string{},
		deleteTokens:  map[string]bool{},
		timers:        map[*time.Timer]struct{}{},
		changed:       make(chan struct{}),
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
	seq           int // creation order, for ListPipelines
	createdBy     userContext
	modifiedBy    userContext
	version       int64 // PipelineVersionId: 1, then one more per UpdatePipeline
	modified      time.Time
	definitionSrc string
	def           *definition
	roleArn       string
	description   string
	displayName   string
	createToken   string
	maxParallel   int // ParallelismConfiguration.MaxParallelExecutionSteps; 0: no limit
	created       time.Time
	lastRun       time.Time
	executions    []*execution // in start order
}

type execution struct {
	arn           string
	seq           int // index in pipeline.executions
	pipeline      *pipeline
	def           *definition    // the pipeline's definition when the execution started
	definitionSrc string         // its JSON
	params        map[string]any // pipeline parameter values, typed
	skipped       map[string]bool
	maxParallel   int // 0: no limit
	version       int64
	experiment    *experimentConfig
	createdBy     userContext
	modifiedBy    userContext
	displayName   string
	description   string
	status        string
	failureReason string
	created       time.Time
	modified      time.Time
	ended         time.Time // when the execution last reached a terminal status; zero while it runs
	conflictUntil time.Time

	steps    []*stepRun // started steps, in start order, retried runs included
	byName   map[string]*stepRun
	attempts map[string]int // earlier runs of each step, counted by retries

	retryTokens []string // ClientRequestTokens of accepted retries

	stopToken      string
	stopTokensSeen []string
	effectiveStops int
	stopSuccesses  int
}

type stepRun struct {
	def           *stepDef
	ex            *execution
	status        string
	attempt       int // 1, then one more for each RetryPipelineExecution that reran the step
	start, end    time.Time
	failureReason string
	token         string // callback steps
	args          any    // the step's Arguments, resolved when it started
	outcome       *bool  // condition steps
	errorMessage  string // fail steps
	outputs       []outputParameter
	stopDelay     time.Duration
	timers        []*time.Timer
	answers       []Answer
	refused       []Answer // answers refused because the step had ended
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
	prev := s.status
	s.status = status
	if !s.running() {
		s.end = time.Now()
		e.cancelTimers(s)
	}
	e.log.Debug("step status", "execution", s.ex.arn, "step", s.def.Name, "status", status)
	e.touch(s.ex)
	e.emitStepEvent(s, prev) // every step status change passes here
}

func (e *Emulator) setExecution(ex *execution, status, reason string) {
	prev := ex.status
	ex.status = status
	if reason != "" {
		ex.failureReason = reason
	}
	e.log.Debug("execution status", "execution", ex.arn, "status", status, "reason", reason)
	e.touch(ex)
	if terminal(status) {
		ex.ended = ex.modified
	} else {
		ex.ended = time.Time{}
	}
	e.emitExecutionEvent(ex, prev) // every execution status change passes here
}

// advance starts every step that is ready (its dependencies Succeeded and,
// in a branch, its Condition step chose that branch), skips the steps
// that can no longer run, and finishes the execution when every step
// Succeeded or was skipped. Condition steps end as they start, so it
// repeats until nothing changes.
func (e *Emulator) advance(ex *execution) {
	for changed := true; changed; {
		if ex.status != StatusExecuting {
			return
		}
		changed = false
		for _, d := range ex.def.steps {
			if _, started := ex.byName[d.Name]; started || ex.skipped[d.Name] {
				continue
			}
			switch ex.readiness(d) {
			case stepSkip:
				ex.skipped[d.Name] = true
				changed = true
			case stepReady:
				if ex.maxParallel > 0 && ex.running() >= ex.maxParallel {
					continue
				}
				e.startStep(ex, d)
				changed = true
				if ex.status != StatusExecuting {
					return
				}
			}
		}
	}
	for _, d := range ex.def.steps {
		if s, started := ex.byName[d.Name]; !ex.skipped[d.Name] && (!started || s.status != StatusSucceeded) {
			return
		}
	}
	e.setExecution(ex, StatusSucceeded, "")
}

// Readiness of a step that has not started.
const (
	stepWait = iota
	stepReady
	stepSkip
)

func (ex *execution) readiness(d *stepDef) int {
	for _, dep := range d.deps {
		if ex.skipped[dep] {
			return stepSkip
		}
		if s, ok := ex.byName[dep]; !ok || s.status != StatusSucceeded {
			return stepWait
		}
	}
	if d.guard != "" {
		if c := ex.byName[d.guard]; c.outcome == nil || *c.outcome != d.branch {
			return stepSkip
		}
	}
	return stepReady
}

// running counts the steps that run now.
func (ex *execution) running() int {
	n := 0
	for _, s := range ex.byName {
		if s.running() {
			n++
		}
	}
	return n
}

// lookup returns the value of a Get path for a step of ex that starts now.
func (ex *execution) lookup(path string) (any, error) {
	head, rest, _ := strings.Cut(path, ".")
	switch head {
	case "Parameters":
		return ex.params[rest], nil
	case "Execution":
		switch rest {
		case "PipelineExecutionId":
			return ex.id(), nil
		case "PipelineExecutionArn":
			return ex.arn, nil
		case "PipelineName":
			return ex.pipeline.name, nil
		case "PipelineArn":
			return ex.pipeline.arn, nil
		case "StartDateTime":
			return ex.created.UTC().Format(isoMillis), nil
		default: // CurrentDateTime
			return time.Now().UTC().Format(isoMillis), nil
		}
	}
	name, prop, _ := strings.Cut(rest, ".")
	src := ex.byName[name]
	if src == nil {
		return nil, fmt.Errorf("property %s read before step %s ran", path, name)
	}
	switch src.def.Type {
	case StepTypeCallback, StepTypeLambda:
		m := outputRefPattern.FindStringSubmatch(prop)
		out := m[1] + m[2]
		for _, o := range src.outputs {
			if o.Name == out {
				v, err := typedOutput(o.Value, src.def.outputType(out))
				if err != nil {
					return nil, fmt.Errorf("output %s of step %s: %v", out, name, err)
				}
				return v, nil
			}
		}
		return nil, fmt.Errorf("step %s did not set its output %s", name, out)
	case StepTypeCondition:
		return *src.outcome, nil
	}
	return path, nil // a generic step's property: its path, see doc.go
}

// isoMillis formats the Execution date-time variables.
const isoMillis = "2006-01-02T15:04:05.000Z"

// id is the execution's ID: the last part of its ARN.
func (ex *execution) id() string { return ex.arn[strings.LastIndex(ex.arn, "/")+1:] }

func (e *Emulator) startStep(ex *execution, d *stepDef) {
	s := &stepRun{def: d, ex: ex, start: time.Now(), attempt: 1 + ex.attempts[d.Name]}
	ex.steps = append(ex.steps, s)
	ex.byName[d.Name] = s
	e.setStep(s, StatusExecuting)
	args, err := resolve(d.args, ex.lookup)
	if err != nil {
		e.failStep(s, "Cannot resolve the step's arguments: "+err.Error())
		return
	}
	s.args = args
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
	case StepTypeCondition:
		outcome := true
		for _, c := range args.(map[string]any)["Conditions"].([]any) {
			v, err := evalCondition(c)
			if err != nil {
				e.failStep(s, "Condition evaluation failed: "+err.Error())
				return
			}
			if !v {
				outcome = false
				break
			}
		}
		s.outcome = &outcome
		e.setStep(s, StatusSucceeded)
	case StepTypeFail:
		s.errorMessage = stringValue(args.(map[string]any)["ErrorMessage"])
		e.failStep(s, s.errorMessage)
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
		if s.def.Type == StepTypeLambda {
			s.outputs = e.lambdaOutputs(s.def)
		}
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
	e.setExecution(ex, StatusFailed, ExecutionFailureReason)
}

// ExecutionFailureReason is the FailureReason of an execution that failed
// because a step failed, as SageMaker writes it; the step's own reason is
// the step's FailureReason.
const ExecutionFailureReason = "Step failure: One or multiple steps failed."

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

// retry puts a Failed execution back to Executing: the steps that did not
// succeed run again (as new entries in the step list, with AttemptCount
// one higher), the steps that succeeded keep their results.
func (e *Emulator) retry(ex *execution) {
	for name, s := range ex.byName {
		if s.status != StatusSucceeded {
			ex.attempts[name] = s.attempt
			delete(ex.byName, name)
		}
	}
	ex.failureReason = ""
	e.setExecution(ex, StatusExecuting, "")
	e.advance(ex)
}

// lambdaOutputs returns the outputs a Lambda step's function returns: the
// declared outputs set with SetLambdaOutputs, in declaration order.
func (e *Emulator) lambdaOutputs(d *stepDef) []outputParameter {
	set := e.state.lambdaOutputs[d.Name]
	var out []outputParameter
	for _, o := range d.OutputParameters {
		if v, ok := set[o.OutputName]; ok {
			out = append(out, outputParameter{Name: o.OutputName, Value: v})
		}
	}
	return out
}

// callbackMessage is the SQS body a callback step sends.
type callbackMessage struct {
	Token                string `json:"token"`
	PipelineExecutionArn string `json:"pipelineExecutionArn"`
	Arguments            any    `json:"arguments"`
	Status               string `json:"status"`
}

// sendCallback sends the step's message with the given status: to the
// external sender's outbox when configured, else to the emulator's queue.
func (e *Emulator) sendCallback(s *stepRun, status string) error {
	body, err := json.Marshal(callbackMessage{
		Token:                s.token,
		PipelineExecutionArn: s.ex.arn,
		Arguments:            s.args,
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
