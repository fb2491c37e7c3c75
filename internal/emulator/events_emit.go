package emulator

import (
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"strings"
	"sync"
	"time"
)

// SageMaker's event source and detail types, exactly as SageMaker writes
// them.
const (
	EventSource               = "aws.sagemaker"
	DetailTypeExecutionStatus = "SageMaker Model Building Pipeline Execution Status Change"
	DetailTypeStepStatus      = "SageMaker Model Building Pipeline Execution Step Status Change"
)

// eventTime formats the envelope's time (EventBridge writes whole
// seconds) and detailTime the detail's timestamps.
const (
	eventTime  = "2006-01-02T15:04:05Z"
	detailTime = isoMillis
)

// EventFaults are faults injected into the delivery of SageMaker's
// status-change events. The zero value injects nothing: every event is
// delivered once, at once, in order. Random choices come from a generator
// seeded with Config.Seed (separate from the API faults' generator) and are
// drawn in emission order, so a scenario that changes statuses in the same
// order sees the same faults on every run.
type EventFaults struct {
	// Delay is added before each event is put on the bus, plus a uniform
	// random extra of up to DelaySpread drawn for every copy; a spread
	// larger than the time between two events reorders them.
	Delay, DelaySpread time.Duration

	// DuplicateRate is the fraction (0 to 1) of events sent twice. The
	// second copy has its own id and its own delay, as SageMaker "may send
	// multiple events for each state change".
	DuplicateRate float64

	// DropRate is the fraction (0 to 1) of events never sent.
	DropRate float64
}

// check reports a field that cannot be used.
func (f EventFaults) check() error {
	for name, v := range map[string]float64{"DuplicateRate": f.DuplicateRate, "DropRate": f.DropRate} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fmt.Errorf("emulator: EventFaults.%s %v is not a fraction from 0 to 1", name, v)
		}
	}
	if f.Delay < 0 || f.DelaySpread < 0 {
		return fmt.Errorf("emulator: EventFaults.Delay %v and DelaySpread %v must not be negative", f.Delay, f.DelaySpread)
	}
	return nil
}

// SetEventFaults replaces the faults injected into event delivery in
// every Region. Events already delayed keep their delay.
func (e *Emulator) SetEventFaults(f EventFaults) error {
	if err := f.check(); err != nil {
		return err
	}
	e.regions.each(func(c *Emulator) {
		c.events.mu.Lock()
		c.events.faults = f
		c.events.mu.Unlock()
	})
	return nil
}

// CurrentEventFaults returns the event faults in force.
func (e *Emulator) CurrentEventFaults() EventFaults {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return e.events.faults
}

// EmittedEvent is one status-change event SageMaker emitted, before
// faults: what the bus would carry if nothing were lost.
type EmittedEvent struct {
	// ID is the event's id.
	ID string
	// DetailType is DetailTypeExecutionStatus or DetailTypeStepStatus.
	DetailType string
	// ExecutionARN is the execution the event is about.
	ExecutionARN string
	// StepName is the step of a step event; empty for execution events.
	StepName string
	// Previous and Current are the statuses before and after the change;
	// Previous is empty for the first status of an execution or step run.
	Previous, Current string
	// Body is the event's JSON, as an SQS target receives it.
	Body string
	// Dropped says EventFaults.DropRate kept the event off the bus.
	Dropped bool
}

// EventStats counts what happened to events.
type EventStats struct {
	// Emitted counts status-change events produced (before faults).
	Emitted int
	// Dropped counts events not sent because of EventFaults.DropRate.
	Dropped int
	// Duplicated counts extra copies sent because of DuplicateRate.
	Duplicated int
	// Delivered counts messages put on target queues (one per matching
	// target per copy).
	Delivered int
	// Undeliverable counts matching targets an event could not reach: a
	// queue that does not exist, a target that is not an SQS queue of the
	// emulator, a queue policy that does not let EventBridge send (with
	// Config.RequireQueuePolicy), or a message SQS refused.
	Undeliverable int
}

// EmittedEvents returns every status-change event emitted so far, in
// emission order.
func (e *Emulator) EmittedEvents() []EmittedEvent {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return append([]EmittedEvent(nil), e.events.emitted...)
}

// EventStats returns the event counters.
func (e *Emulator) EventStats() EventStats {
	e.events.mu.Lock()
	defer e.events.mu.Unlock()
	return e.events.stats
}

// eventDelivery turns status changes into events and puts them on the bus,
// with faults. Its fields are guarded by mu, which is taken after
// Emulator.mu and never held while routing.
type eventDelivery struct {
	mu      sync.Mutex
	faults  EventFaults
	rng     *mathrand.Rand
	emitted []EmittedEvent
	stats   EventStats
	timers  map[*time.Timer]struct{}
	closed  bool
	pending sync.WaitGroup // delayed deliveries scheduled and not cancelled
}

func newEventDelivery(f EventFaults, seed int64) *eventDelivery {
	return &eventDelivery{faults: f, rng: mathrand.New(mathrand.NewPCG(uint64(seed), 0x5bd1e9955bd1e995)),
		timers: map[*time.Timer]struct{}{}}
}

// close cancels delayed deliveries and waits for those under way.
func (d *eventDelivery) close() {
	d.mu.Lock()
	d.closed = true
	for t := range d.timers {
		if t.Stop() {
			d.pending.Done()
		}
	}
	clear(d.timers)
	d.mu.Unlock()
	d.pending.Wait()
}

// envelope is an EventBridge event.
type envelope struct {
	Version    string   `json:"version"`
	ID         string   `json:"id"`
	DetailType string   `json:"detail-type"`
	Source     string   `json:"source"`
	Account    string   `json:"account"`
	Time       string   `json:"time"`
	Region     string   `json:"region"`
	Resources  []string `json:"resources"`
	Detail     any      `json:"detail"`
}

type executionDetail struct {
	PipelineArn                     string `json:"pipelineArn"`
	PipelineExecutionArn            string `json:"pipelineExecutionArn"`
	PipelineExecutionDisplayName    string `json:"pipelineExecutionDisplayName"`
	CurrentPipelineExecutionStatus  string `json:"currentPipelineExecutionStatus"`
	PreviousPipelineExecutionStatus string `json:"previousPipelineExecutionStatus,omitempty"`
	ExecutionStartTime              string `json:"executionStartTime"`
	ExecutionEndTime                string `json:"executionEndTime,omitempty"`
	PipelineExecutionDescription    string `json:"pipelineExecutionDescription,omitempty"`
}

type stepDetail struct {
	PipelineArn          string `json:"pipelineArn"`
	PipelineExecutionArn string `json:"pipelineExecutionArn"`
	StepName             string `json:"stepName"`
	StepType             string `json:"stepType"`
	CurrentStepStatus    string `json:"currentStepStatus"`
	PreviousStepStatus   string `json:"previousStepStatus,omitempty"`
	StepStartTime        string `json:"stepStartTime"`
	StepEndTime          string `json:"stepEndTime,omitempty"`
	Metadata             any    `json:"metadata,omitempty"`
	FailureReason        string `json:"failureReason,omitempty"`
}

func terminal(status string) bool {
	return status == StatusStopped || status == StatusFailed || status == StatusSucceeded
}

func fmtDetailTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(detailTime)
}

// emitExecutionEvent emits the event of ex's change from prev to its
// status. Callers hold e.mu; setExecution is its only caller.
func (e *Emulator) emitExecutionEvent(ex *execution, prev string) {
	if prev == ex.status {
		return
	}
	d := executionDetail{
		PipelineArn:                     ex.pipeline.arn,
		PipelineExecutionArn:            ex.arn,
		PipelineExecutionDisplayName:    ex.displayName,
		CurrentPipelineExecutionStatus:  ex.status,
		PreviousPipelineExecutionStatus: prev,
		ExecutionStartTime:              fmtDetailTime(ex.created),
		PipelineExecutionDescription:    ex.description,
	}
	if terminal(ex.status) {
		d.ExecutionEndTime = fmtDetailTime(ex.modified)
	}
	e.emit(DetailTypeExecutionStatus, ex, "", prev, ex.status, d)
}

// emitStepEvent emits the event of s's change from prev to its status.
// Callers hold e.mu; setStep is its only caller.
func (e *Emulator) emitStepEvent(s *stepRun, prev string) {
	if prev == s.status {
		return
	}
	desc := s.describe()
	var metadata any
	if desc.Metadata != nil {
		metadata = desc.Metadata
		if cb := desc.Metadata.Callback; cb != nil {
			// The token answers the step: it stays off the bus (see doc.go).
			metadata = map[string]any{"Callback": struct {
				SqsQueueUrl      string
				OutputParameters []outputParameter `json:",omitempty"`
			}{cb.SqsQueueUrl, cb.OutputParameters}}
		}
	}
	d := stepDetail{
		PipelineArn:          s.ex.pipeline.arn,
		PipelineExecutionArn: s.ex.arn,
		StepName:             s.def.Name,
		StepType:             s.def.Type,
		CurrentStepStatus:    s.status,
		PreviousStepStatus:   prev,
		StepStartTime:        fmtDetailTime(s.start),
		Metadata:             metadata,
	}
	if !s.running() {
		d.StepEndTime = fmtDetailTime(s.end)
	}
	if s.status == StatusFailed {
		d.FailureReason = s.failureReason
	}
	e.emit(DetailTypeStepStatus, s.ex, s.def.Name, prev, s.status, d)
}

// emit records one event and sends its copies, each after its delay.
// Callers hold e.mu.
func (e *Emulator) emit(detailType string, ex *execution, step, prev, cur string, detail any) {
	now := time.Now()
	env := envelope{
		Version: "0", ID: newEventID(), DetailType: detailType, Source: EventSource,
		Account: e.cfg.AccountID, Time: now.UTC().Format(eventTime), Region: e.cfg.Region,
		Resources: []string{ex.pipeline.arn, ex.arn}, Detail: detail,
	}
	body, err := json.Marshal(env)
	if err != nil { // plain strings and metadata: cannot happen
		e.log.Error("encode event", "err", err)
		return
	}
	d := e.events
	d.mu.Lock()
	d.emitted = append(d.emitted, EmittedEvent{ID: env.ID, DetailType: detailType, ExecutionARN: ex.arn, StepName: step,
		Previous: prev, Current: cur, Body: string(body)})
	d.stats.Emitted++
	f := d.faults
	if f.DropRate > 0 && d.rng.Float64() < f.DropRate {
		d.stats.Dropped++
		d.emitted[len(d.emitted)-1].Dropped = true
		d.mu.Unlock()
		e.log.Debug("fault: event dropped", "detail_type", detailType, "execution", ex.arn, "step", step, "status", cur)
		return
	}
	bodies := []string{string(body)}
	if f.DuplicateRate > 0 && d.rng.Float64() < f.DuplicateRate {
		env.ID = newEventID()
		dup, _ := json.Marshal(env)
		bodies = append(bodies, string(dup))
		d.stats.Duplicated++
	}
	var now1 []string
	for _, b := range bodies {
		delay := f.Delay
		if f.DelaySpread > 0 {
			delay += time.Duration(d.rng.Int64N(int64(f.DelaySpread) + 1))
		}
		if delay <= 0 {
			now1 = append(now1, b)
			continue
		}
		if d.closed {
			continue
		}
		var t *time.Timer
		d.pending.Add(1)
		t = time.AfterFunc(delay, func() {
			defer d.pending.Done()
			d.mu.Lock()
			_, live := d.timers[t]
			delete(d.timers, t)
			d.mu.Unlock()
			if live {
				e.route(b)
			}
		})
		d.timers[t] = struct{}{}
	}
	d.mu.Unlock()
	for _, b := range now1 {
		e.route(b)
	}
}

// route puts an event on the default bus: every enabled rule whose
// pattern matches sends it to each of its targets.
func (e *Emulator) route(body string) {
	event, err := decodeEvent([]byte(body))
	if err != nil {
		return
	}
	type delivery struct{ ruleARN, targetARN, body string }
	var out []delivery
	e.bus.mu.Lock()
	for _, name := range sortedKeys(e.bus.rules) {
		r := e.bus.rules[name]
		if r.state == "DISABLED" || r.pattern == nil || !r.pattern.matches(event) {
			continue
		}
		for _, id := range sortedKeys(r.targets) {
			t := r.targets[id]
			out = append(out, delivery{r.arn, t.Arn, targetInput(t, event, body)})
		}
	}
	e.bus.mu.Unlock()
	for _, dl := range out {
		err := e.deliverToQueue(dl.ruleARN, dl.targetARN, dl.body)
		e.events.mu.Lock()
		if err != nil {
			e.events.stats.Undeliverable++
		} else {
			e.events.stats.Delivered++
		}
		e.events.mu.Unlock()
		if err != nil {
			e.log.Debug("event not delivered", "rule", dl.ruleARN, "target", dl.targetARN, "err", err)
		}
	}
}

// targetInput is what a target receives: the event, its Input constant
// or the part of the event its InputPath selects.
func targetInput(t *eventTarget, event map[string]any, body string) string {
	switch {
	case t.Input != "":
		return t.Input
	case t.InputPath != "" && t.InputPath != "$":
		var v any = event
		for _, k := range strings.Split(strings.TrimPrefix(t.InputPath, "$."), ".") {
			m, _ := v.(map[string]any)
			v = m[k]
		}
		buf, _ := json.Marshal(v)
		return string(buf)
	}
	return body
}

// deliverToQueue sends body to the emulator's queue with ARN targetARN,
// as EventBridge's SendMessage would (the queue's DelaySeconds applies).
func (e *Emulator) deliverToQueue(ruleARN, targetARN, body string) error {
	if !strings.HasPrefix(targetARN, "arn:") || !strings.Contains(targetARN, ":sqs:") {
		return fmt.Errorf("target %s is not an SQS queue; the emulator delivers only to its own queues", targetARN)
	}
	b := e.queues
	b.mu.Lock()
	defer b.mu.Unlock()
	q := b.byARN(targetARN)
	if q == nil {
		return fmt.Errorf("queue %s does not exist", targetARN)
	}
	if e.cfg.RequireQueuePolicy {
		if err := policyAllowsEvents(q.attr("Policy"), q.arn, ruleARN); err != nil {
			return err
		}
	}
	o := &outgoing{body: body, delay: -1}
	if aerr := o.check(q); aerr != nil {
		return aerr
	}
	q.send(b.now(), o)
	return nil
}

// newEventID returns a random (version 4) UUID, as EventBridge's event ids
// are.
func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}
