package pipelinestop

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// The detail types of SageMaker's EventBridge events for pipeline
// executions, exactly as SageMaker sends them (source "aws.sagemaker").
const (
	// ExecutionStatusChangeType is the detail-type of an execution's
	// status change event.
	ExecutionStatusChangeType = "SageMaker Model Building Pipeline Execution Status Change"
	// StepStatusChangeType is the detail-type of a step's status change
	// event.
	StepStatusChangeType = "SageMaker Model Building Pipeline Execution Step Status Change"
	// EventSource is the source of SageMaker's events.
	EventSource = "aws.sagemaker"
)

// Defaults of WatcherOptions and of Options.SafetyInterval.
const (
	// DefaultSafetyInterval is how often a Wait with a Watcher polls the
	// status anyway, so that a lost event costs at most this much lag. One
	// minute keeps a wait of an hour at about 60 calls (a poll every 30 s
	// is what the SageMaker Python SDK, Airflow and ACK do) while a lost
	// event, which should be rare, is still noticed within a minute.
	DefaultSafetyInterval = time.Minute
	// DefaultHandBackDelay is the delay before an event for an execution
	// that no Wait of this process watches is visible again, when
	// WatcherOptions.HandBack is set.
	DefaultHandBackDelay = 2 * time.Second
	// DefaultHandBackReceives is how many receives an event handed back
	// gets before it is deleted.
	DefaultHandBackReceives = 5
)

// ErrInvalidWatcher means NewWatcher was given a nil client or an empty
// queue URL, or Run was called on a Watcher that NewWatcher did not make.
var ErrInvalidWatcher = errors.New("pipelinestop: invalid watcher")

// WatcherOptions configure a Watcher. Zero fields take the defaults.
type WatcherOptions struct {
	// WaitTimeSeconds is the long-poll time of a receive, 1 to 20.
	// Default DefaultWaitTimeSeconds.
	WaitTimeSeconds int32
	// HandBack makes the Watcher hand back events for executions that no
	// Wait of this process watches: they become visible again after
	// HandBackDelay, so that another process reading the same queue can
	// receive them, and are deleted after HandBackReceives receives.
	// Default false: such events are deleted, and a process that shares
	// its queue with others learns of its executions' ends from the
	// events it does receive or, at worst, from the safety poll (see
	// Options.SafetyInterval). A queue per process, fed by one rule
	// target each, is the better design; HandBack is for a shared queue.
	// With P processes on the queue, an event can reach the wrong ones
	// HandBackReceives times in a row (about (1-1/P)^HandBackReceives of
	// the time) and is then deleted: the waiting process notices the end
	// at its next safety poll.
	HandBack bool
	// HandBackDelay is the delay before a handed-back event is visible
	// again. Default DefaultHandBackDelay.
	HandBackDelay time.Duration
	// HandBackReceives bounds the receives of a handed-back event.
	// Default DefaultHandBackReceives.
	HandBackReceives int
	// KeepMalformed leaves messages that are not SageMaker pipeline
	// events on the queue (they become visible again after their
	// visibility timeout, and the queue's redrive policy can move them
	// away). Default false: they are counted, logged once per kind and
	// deleted.
	KeepMalformed bool
	// ReceiveRetryMinDelay and ReceiveRetryMaxDelay bound the backoff
	// after a failed receive. Defaults DefaultReceiveRetryMinDelay and
	// DefaultReceiveRetryMaxDelay.
	ReceiveRetryMinDelay, ReceiveRetryMaxDelay time.Duration
	// OnEvent receives an Event for queue errors and malformed messages.
	OnEvent func(Event)
	// Logger receives a record for every Event. Default: discard.
	Logger *slog.Logger
	// Clock tells the time and waits. Default: the system clock.
	Clock Clock
	// ClientOptions are passed to every SQS call.
	ClientOptions []func(*sqs.Options)
}

func (o WatcherOptions) withDefaults() WatcherOptions {
	if o.WaitTimeSeconds <= 0 || o.WaitTimeSeconds > 20 {
		o.WaitTimeSeconds = DefaultWaitTimeSeconds
	}
	if o.HandBackDelay <= 0 {
		o.HandBackDelay = DefaultHandBackDelay
	}
	o.HandBackDelay = min(o.HandBackDelay, maxVisibility)
	if o.HandBackReceives <= 0 {
		o.HandBackReceives = DefaultHandBackReceives
	}
	if o.ReceiveRetryMinDelay <= 0 {
		o.ReceiveRetryMinDelay = DefaultReceiveRetryMinDelay
	}
	if o.ReceiveRetryMaxDelay < o.ReceiveRetryMinDelay {
		o.ReceiveRetryMaxDelay = max(DefaultReceiveRetryMaxDelay, o.ReceiveRetryMinDelay)
	}
	return o
}

// Watcher receives SageMaker's EventBridge events for pipeline executions
// from an SQS queue (the target of an EventBridge rule) and wakes the
// waits of this process that watch those executions: one receive loop
// serves any number of concurrent Wait, StopAndWait and StopAll calls
// that have it in Options.Watcher. A service creates one per queue and
// runs Run for as long as it waits.
//
// Events are hints, never the truth: SageMaker may send several for one
// change, late, out of order, or not at all. A Wait that is woken by an
// event confirms the status with DescribePipelineExecution, and polls at
// Options.SafetyInterval anyway. The Watcher drops events it has seen
// (by event ID), deletes what it receives in batches, and counts what it
// could not use (see Stats). A Watcher is safe for concurrent use; Run may
// run only once at a time.
type Watcher struct {
	queue    QueueAPIClient
	queueURL string
	opts     WatcherOptions
	obs      observer
	running  atomic.Bool
	// done is closed when the Run under way ends; nil while none runs.
	// started is closed (and replaced) when a Run starts. Guarded by mu.
	done, started chan struct{}

	mu      sync.Mutex
	subs    map[string]map[*subscription]struct{} // by execution ARN
	seen    map[string]struct{}                   // event IDs recently seen
	seenIDs []string                              // ring of seen, oldest first
	stats   WatcherStats
	warned  map[string]bool // malformed kinds already logged
}

// WatcherStats counts what a Watcher received.
type WatcherStats struct {
	// Received counts the messages received.
	Received int
	// Delivered counts the events handed to at least one waiting Wait.
	Delivered int
	// Duplicates counts the events received again (by event ID).
	Duplicates int
	// Unwatched counts the events for executions no Wait watched.
	Unwatched int
	// Malformed counts the messages that were not SageMaker pipeline
	// events.
	Malformed int
}

// NewWatcher returns a Watcher of the queue at queueURL. The error matches
// ErrInvalidWatcher when queue is nil or queueURL is empty.
func NewWatcher(queue QueueAPIClient, queueURL string, optFns ...func(*WatcherOptions)) (*Watcher, error) {
	switch {
	case queue == nil:
		return nil, fmt.Errorf("%w: the SQS client is nil", ErrInvalidWatcher)
	case queueURL == "":
		return nil, fmt.Errorf("%w: the queue URL is empty", ErrInvalidWatcher)
	}
	var o WatcherOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o = o.withDefaults()
	obsOpts := Options{OnEvent: o.OnEvent, Logger: o.Logger, Clock: o.Clock}.withDefaults()
	o.Clock = obsOpts.Clock
	return &Watcher{queue: queue, queueURL: queueURL, opts: o, obs: obsOpts.observer(),
		subs: map[string]map[*subscription]struct{}{}, seen: map[string]struct{}{}, warned: map[string]bool{},
		started: make(chan struct{})}, nil
}

// Stats returns the counts so far.
func (w *Watcher) Stats() WatcherStats {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.stats
}

// Run receives events until ctx ends, then returns nil, or returns a
// permanent receive error (a queue that does not exist, access denied).
// Transient receive errors are retried with backoff. Run returns only after
// every goroutine it started has ended.
func (w *Watcher) Run(ctx context.Context) error {
	if w == nil || w.queue == nil || w.subs == nil || w.started == nil {
		return fmt.Errorf("%w: the Watcher was not made by NewWatcher", ErrInvalidWatcher)
	}
	if !w.running.CompareAndSwap(false, true) {
		return errors.New("pipelinestop: Watcher.Run is already running")
	}
	defer w.running.Store(false)
	w.mu.Lock()
	w.done = make(chan struct{})
	close(w.started)
	w.started = make(chan struct{})
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		close(w.done)
		w.done = nil
		w.mu.Unlock()
	}()
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(w.queueURL),
		MaxNumberOfMessages: maxBatch,
		WaitTimeSeconds:     w.opts.WaitTimeSeconds,
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	}
	// Deletes and hand-backs run beside the next receive (at most
	// watcherFinishes at once), so that a burst of events is received at
	// the pace of the receives alone; Run waits for them before it returns.
	f := &watcherFinisher{slots: make(chan struct{}, watcherFinishes)}
	defer f.wg.Wait()
	for ctx.Err() == nil {
		msgs, err := receiveMessages(ctx, w.queue, in, w.opts.Clock, w.opts.ReceiveRetryMinDelay, w.opts.ReceiveRetryMaxDelay,
			w.opts.ClientOptions, func(ev Event) { w.obs.emit(ctx, ev) })
		// Messages received are handled (delivered, deleted or handed
		// back) even when ctx ended meanwhile.
		w.handle(ctx, msgs, f)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sageMakerEvent is the envelope and detail of a SageMaker pipeline event.
type sageMakerEvent struct {
	ID         string          `json:"id"`
	DetailType string          `json:"detail-type"`
	Source     string          `json:"source"`
	Time       time.Time       `json:"time"`
	Resources  []string        `json:"resources"`
	Detail     json.RawMessage `json:"detail"`
}

type eventDetail struct {
	ExecutionARN      string          `json:"pipelineExecutionArn"`
	CurrentStatus     string          `json:"currentPipelineExecutionStatus"`
	StepName          string          `json:"stepName"`
	StepType          string          `json:"stepType"`
	CurrentStepStatus string          `json:"currentStepStatus"`
	StepStartTime     *time.Time      `json:"stepStartTime"`
	Metadata          *eventStepMetas `json:"metadata"`
}

// eventStepMetas is the step metadata of a step event, as in
// ListPipelineExecutionSteps (keys match case-insensitively).
type eventStepMetas struct {
	Callback *struct {
		CallbackToken string `json:"callbackToken"`
		SqsQueueURL   string `json:"sqsQueueUrl"`
	} `json:"callback"`
	Lambda *struct {
		Arn string `json:"arn"`
	} `json:"lambda"`
}

// handle routes received messages to their subscriptions and disposes of
// them: deleted, or handed back.
// watcherFinishes caps the deletes and hand-backs of received batches
// that run at once beside the Watcher's receives.
const watcherFinishes = 4

// watcherFinisher runs the deletes and hand-backs of received batches.
type watcherFinisher struct {
	slots chan struct{}
	wg    sync.WaitGroup
}

// handle delivers received messages to their subscriptions and has f
// delete or hand them back.
func (w *Watcher) handle(ctx context.Context, msgs []sqstypes.Message, f *watcherFinisher) {
	var dels []string
	var backs []sqstypes.Message
	var evs []Event
	w.mu.Lock()
	for _, m := range msgs {
		w.stats.Received++
		handle := aws.ToString(m.ReceiptHandle)
		ev, kind := parseSageMakerEvent(aws.ToString(m.Body))
		if kind != "" {
			w.stats.Malformed++
			if !w.warned[kind] {
				w.warned[kind] = true
				evs = append(evs, Event{Type: EventMalformed, MessageID: aws.ToString(m.MessageId),
					Err: fmt.Errorf("not a SageMaker pipeline event (%s); further messages like it are counted, not logged", kind)})
			}
			if !w.opts.KeepMalformed && handle != "" {
				dels = append(dels, handle)
			}
			continue
		}
		var d eventDetail
		_ = json.Unmarshal(ev.Detail, &d) // checked by parseSageMakerEvent
		if _, dup := w.seen[ev.ID]; dup {
			w.stats.Duplicates++
			dels = append(dels, handle)
			continue
		}
		subs := w.subs[d.ExecutionARN]
		if len(subs) == 0 {
			w.stats.Unwatched++
			n, _ := strconv.Atoi(m.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
			if w.opts.HandBack && n < w.opts.HandBackReceives {
				backs = append(backs, m)
			} else {
				dels = append(dels, handle)
			}
			continue
		}
		w.remember(ev.ID)
		w.stats.Delivered++
		for s := range subs {
			s.add(ev, &d)
		}
		dels = append(dels, handle)
	}
	w.mu.Unlock()
	for _, ev := range evs {
		w.obs.emit(ctx, ev)
	}
	if len(dels) == 0 && len(backs) == 0 {
		return
	}
	f.slots <- struct{}{}
	f.wg.Go(func() {
		defer func() { <-f.slots }()
		// Finish with what was received even when Run's context ends now:
		// a hand-back cut short would hide the event from its owner for
		// the queue's whole visibility timeout.
		opCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownFlushTimeout)
		defer cancel()
		w.deleteAll(opCtx, dels)
		w.handBack(opCtx, backs)
	})
}

// remember records an event ID as seen, forgetting the oldest beyond
// answeredMemory.
func (w *Watcher) remember(id string) {
	w.seen[id] = struct{}{}
	w.seenIDs = append(w.seenIDs, id)
	if len(w.seenIDs) > answeredMemory {
		delete(w.seen, w.seenIDs[0])
		w.seenIDs = w.seenIDs[1:]
	}
}

// parseSageMakerEvent parses an SQS body as a SageMaker pipeline event; a
// non-empty kind says why it is not one.
func parseSageMakerEvent(body string) (ev sageMakerEvent, kind string) {
	if err := json.Unmarshal([]byte(body), &ev); err != nil {
		return ev, "not a JSON event"
	}
	if ev.Source != EventSource {
		return ev, "source " + strconv.Quote(cut(ev.Source, 40))
	}
	if ev.DetailType != ExecutionStatusChangeType && ev.DetailType != StepStatusChangeType {
		return ev, "detail-type " + strconv.Quote(cut(ev.DetailType, 80))
	}
	var d eventDetail
	if ev.ID == "" || json.Unmarshal(ev.Detail, &d) != nil || d.ExecutionARN == "" {
		return ev, "an event without an ID or pipelineExecutionArn"
	}
	if ev.DetailType == StepStatusChangeType && d.StepName == "" {
		return ev, "a step event without a stepName"
	}
	return ev, ""
}

func cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// deleteAll deletes messages in batches; failures are reported (the
// messages come back after their visibility timeout and are dropped as
// duplicates or unwatched then).
func (w *Watcher) deleteAll(ctx context.Context, handles []string) {
	for len(handles) > 0 {
		n := min(len(handles), maxBatch)
		entries := make([]sqstypes.DeleteMessageBatchRequestEntry, n)
		for i, h := range handles[:n] {
			entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(h)}
		}
		handles = handles[n:]
		out, err := w.queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: aws.String(w.queueURL),
			Entries: entries}, w.opts.ClientOptions...)
		if err != nil {
			w.obs.emit(ctx, Event{Type: EventQueueError, Op: deleteOp, Err: classify(err, "")})
			continue
		}
		if out != nil {
			for _, f := range out.Failed {
				w.obs.emit(ctx, Event{Type: EventQueueError, Op: deleteOp, Err: batchEntryError(deleteOp, f)})
			}
		}
	}
}

// handBack makes events for unwatched executions visible again after
// HandBackDelay.
func (w *Watcher) handBack(ctx context.Context, msgs []sqstypes.Message) {
	timeout := int32(w.opts.HandBackDelay / time.Second)
	for len(msgs) > 0 {
		n := min(len(msgs), maxBatch)
		entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, n)
		for i, m := range msgs[:n] {
			entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
				ReceiptHandle: m.ReceiptHandle, VisibilityTimeout: timeout}
		}
		msgs = msgs[n:]
		if _, err := w.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
			QueueUrl: aws.String(w.queueURL), Entries: entries}, w.opts.ClientOptions...); err != nil {
			w.obs.emit(ctx, Event{Type: EventQueueError, Op: changeOp, Err: classify(err, "")})
		}
	}
}

// subscription is one Wait's interest in one execution's events.
type subscription struct {
	w      *Watcher
	arn    string
	notify chan struct{} // a new event arrived (capacity 1)

	// Guarded by w.mu:
	status     types.PipelineExecutionStatus // the newest execution status event's
	statusTime time.Time
	ended      bool                // a terminal status event arrived since the last hints
	steps      map[string]stepHint // by step name
	changed    bool                // steps changed since taken
}

// stepHint is the newest step event of one step.
type stepHint struct {
	time time.Time
	step BlockingStep
}

// runDone returns a channel that is closed when the Watcher's Run under
// way ends, or nil when w is nil or no Run is under way: then a wait polls.
func (w *Watcher) runDone() <-chan struct{} {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done == nil {
		return nil
	}
	return w.done
}

// startSignal returns a channel that is closed when a Run of w starts
// (nil when w is nil): a wait that polls because no Run was under way
// switches to events then.
func (w *Watcher) startSignal() <-chan struct{} {
	if w == nil {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.started
}

// subscribe starts watching arn's events; close ends it.
func (w *Watcher) subscribe(arn string) *subscription {
	s := &subscription{w: w, arn: arn, notify: make(chan struct{}, 1), steps: map[string]stepHint{}}
	w.mu.Lock()
	if w.subs[arn] == nil {
		w.subs[arn] = map[*subscription]struct{}{}
	}
	w.subs[arn][s] = struct{}{}
	w.mu.Unlock()
	return s
}

func (s *subscription) close() {
	s.w.mu.Lock()
	delete(s.w.subs[s.arn], s)
	if len(s.w.subs[s.arn]) == 0 {
		delete(s.w.subs, s.arn)
	}
	s.w.mu.Unlock()
}

// add takes an event (under w.mu). An event older than the newest one
// already taken for the same execution or step is ignored: events can
// arrive out of order.
func (s *subscription) add(ev sageMakerEvent, d *eventDetail) {
	switch ev.DetailType {
	case ExecutionStatusChangeType:
		if !ev.Time.Before(s.statusTime) {
			s.status, s.statusTime = types.PipelineExecutionStatus(d.CurrentStatus), ev.Time
			s.ended = s.ended || IsTerminal(s.status)
		}
	case StepStatusChangeType:
		if old, ok := s.steps[d.StepName]; ok && ev.Time.Before(old.time) {
			return
		}
		b := BlockingStep{Name: d.StepName, Type: d.StepType, Status: types.StepStatus(d.CurrentStepStatus)}
		if d.StepStartTime != nil {
			b.StartTime = *d.StepStartTime
		}
		if md := d.Metadata; md != nil {
			switch {
			case md.Callback != nil:
				b.Type = "Callback"
				b.QueueURL = md.Callback.SqsQueueURL
				b.CallbackToken = CallbackToken(md.Callback.CallbackToken)
			case md.Lambda != nil:
				b.Type = "Lambda"
				b.FunctionARN = md.Lambda.Arn
			}
		}
		s.steps[d.StepName] = stepHint{time: ev.Time, step: b}
		s.changed = true
	}
	select {
	case s.notify <- struct{}{}:
	default:
	}
}

// hint is what a subscription's events say.
type hint struct {
	// ended: an event said the execution ended, since the last call (each
	// such event is reported once: the Describe it causes is the truth).
	ended bool
	// status is the newest execution status event's status, or "".
	status types.PipelineExecutionStatus
	// blocking are the steps that block the execution according to step
	// events, when stepsChanged: they changed since the last call.
	blocking     []BlockingStep
	stepsChanged bool
}

// hints returns what the events received so far say.
func (s *subscription) hints() hint {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	h := hint{ended: s.ended, status: s.status}
	s.ended = false
	if !s.changed {
		return h
	}
	s.changed = false
	h.stepsChanged = true
	for _, st := range s.steps {
		switch st.step.Status {
		case types.StepStatusStarting, types.StepStatusExecuting, types.StepStatusStopping:
			h.blocking = append(h.blocking, st.step)
		}
	}
	sortSteps(h.blocking)
	return h
}

// hasSteps reports whether step events have told about any step.
func (s *subscription) hasSteps() bool {
	s.w.mu.Lock()
	defer s.w.mu.Unlock()
	return len(s.steps) > 0
}

// sortSteps orders steps by start time, then name, so that equal sets
// compare equal.
func sortSteps(steps []BlockingStep) {
	for i := 1; i < len(steps); i++ {
		for j := i; j > 0 && stepLess(steps[j], steps[j-1]); j-- {
			steps[j], steps[j-1] = steps[j-1], steps[j]
		}
	}
}

func stepLess(a, b BlockingStep) bool {
	if !a.StartTime.Equal(b.StartTime) {
		return a.StartTime.Before(b.StartTime)
	}
	return strings.Compare(a.Name, b.Name) < 0
}
