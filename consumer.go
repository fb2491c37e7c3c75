package pipelinestop

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

//go:generate go tool mockgen -typed -destination internal/mocks/queue.go -package mocks github.com/pipelinestop/pipelinestop QueueAPIClient

// QueueAPIClient is the part of the SQS API a Consumer uses.
// *sqs.Client satisfies it.
type QueueAPIClient interface {
	ReceiveMessage(ctx context.Context, in *sqs.ReceiveMessageInput, optFns ...func(*sqs.Options)) (*sqs.ReceiveMessageOutput, error)
	DeleteMessageBatch(ctx context.Context, in *sqs.DeleteMessageBatchInput, optFns ...func(*sqs.Options)) (*sqs.DeleteMessageBatchOutput, error)
	ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error)
}

var _ QueueAPIClient = (*sqs.Client)(nil)

// Errors of the Consumer.
var (
	// ErrPending, returned by Handler.Execute (possibly wrapped), says that
	// another system answers the step later, for example a job that calls
	// SendPipelineExecutionStepSuccess when it ends. The Consumer does not
	// answer the step and deletes the message, so that it is not
	// redelivered for ever; a later Stopping message for the step is still
	// handled (cleaned up and answered), so a stop is never blocked.
	ErrPending = errors.New("pipelinestop: the callback step is answered later by another system")

	// ErrRetryLater marks a transient handler error (see RetryLater): the
	// step is not answered and the message becomes visible again after a
	// delay that grows with its receive count.
	ErrRetryLater = errors.New("pipelinestop: retry the message later")

	// ErrInvalidConsumer means NewConsumer was given a nil client,
	// acknowledger or Execute function, or an empty queue URL.
	ErrInvalidConsumer = errors.New("pipelinestop: invalid consumer")
)

// RetryLater marks err as transient for the Consumer: the returned error
// matches both ErrRetryLater and err. RetryLater(nil) returns
// ErrRetryLater.
func RetryLater(err error) error {
	if err == nil {
		return ErrRetryLater
	}
	return fmt.Errorf("%w: %w", ErrRetryLater, err)
}

// Handler does the work of callback steps for a Consumer. It is a pair of
// functions rather than an interface so that a consumer with nothing to
// clean up sets only Execute. Both must be safe for concurrent use, and,
// since SQS delivers at least once, idempotent: the same step can be
// handled again after a redelivery or by another consumer.
type Handler struct {
	// Execute does the step's work for an Executing message. Its result
	// decides the answer:
	//
	//   - outputs, nil: the step succeeds with these output parameters
	//     (limits as for Acknowledger.Succeed; outputs that break them
	//     fail the step with the reason);
	//   - an error matching ErrPending: no answer, the message is deleted;
	//   - an error matching ErrRetryLater (see RetryLater): no answer, the
	//     message becomes visible again after a growing delay;
	//   - any other error: the step fails with the error as reason;
	//   - a panic: recovered, the step fails.
	//
	// The context is canceled when a Stopping message for the same step
	// arrives (the answer is then the Stopping message's, and Execute's
	// result is ignored) and when the Consumer's drain period ends. Execute
	// is required. Execute must return soon after its context is
	// canceled: Run waits for every handler before it returns.
	Execute func(ctx context.Context, msg *CallbackMessage) (map[string]string, error)

	// Cleanup cleans up after a step whose execution is being stopped, for
	// a Stopping message. The Consumer answers through
	// Acknowledger.AckStopping: success when Cleanup returns nil, failure
	// otherwise. Cleanup can be called for a step that another consumer
	// already answered. Nil means there is nothing to clean up.
	Cleanup func(ctx context.Context, msg *CallbackMessage) error
}

// Defaults of ConsumerOptions.
const (
	// DefaultWaitTimeSeconds is the long-poll time of each receive, the
	// SQS maximum: an idle queue costs three receives a minute.
	DefaultWaitTimeSeconds = 20
	// DefaultMaxMessages is the most messages one receive asks for, the
	// SQS maximum.
	DefaultMaxMessages = 10
	// DefaultConsumerConcurrency bounds the handlers that run at once.
	DefaultConsumerConcurrency = 10
	// DefaultVisibilityTimeout is the visibility timeout asked for on
	// receive; a message whose handler runs longer is extended by this
	// much once half of it has passed.
	DefaultVisibilityTimeout = 30 * time.Second
	// DefaultRetryLaterMinDelay is the delay before a message that could
	// not be finished (a transient error, a failed answer, a malformed
	// body) is visible again after its first receive.
	DefaultRetryLaterMinDelay = 10 * time.Second
	// DefaultRetryLaterMaxDelay caps that delay, which doubles with each
	// receive of the message.
	DefaultRetryLaterMaxDelay = 15 * time.Minute
	// DefaultDrainTimeout is how long running handlers may go on after
	// Run's context ends. With the final flush of deletes (at most
	// shutdownFlushTimeout) it fits a 30-second termination grace period.
	DefaultDrainTimeout = 10 * time.Second
	// DefaultReceiveRetryMinDelay is the first delay after a failed
	// receive.
	DefaultReceiveRetryMinDelay = 500 * time.Millisecond
	// DefaultReceiveRetryMaxDelay caps the delay between failed receives.
	DefaultReceiveRetryMaxDelay = 30 * time.Second
)

// Limits of SQS the Consumer keeps to.
const (
	maxBatch             = 10              // entries in a batch call, messages in a receive
	maxVisibility        = 12 * time.Hour  // longest visibility timeout
	maxDeleteAttempts    = 5               // tries to delete one message
	shutdownFlushTimeout = 5 * time.Second // real time for the last deletes
	answeredMemory       = 4096            // answered tokens remembered
)

// Operation names of the SQS calls, in events and errors.
const (
	receiveOp = "ReceiveMessage"
	deleteOp  = "DeleteMessageBatch"
	changeOp  = "ChangeMessageVisibilityBatch"
)

// ConsumerOptions configure a Consumer. Zero fields take the defaults.
type ConsumerOptions struct {
	// WaitTimeSeconds is the long-poll time of a receive, 1 to 20.
	// Default DefaultWaitTimeSeconds; a negative value asks for short
	// polling (0).
	WaitTimeSeconds int32
	// MaxMessages is the most messages a receive asks for, 1 to 10.
	// Default DefaultMaxMessages. The Consumer receives when a handler
	// slot is free and no received message waits for one.
	MaxMessages int32
	// Concurrency bounds the handlers running at once. Default
	// DefaultConsumerConcurrency.
	Concurrency int
	// VisibilityTimeout is asked for on every receive (rounded up to whole
	// seconds, at most 12 hours); while a message is in the Consumer's
	// hands its visibility is extended by as much once half of it has
	// passed, in batches. Default DefaultVisibilityTimeout.
	VisibilityTimeout time.Duration
	// RetryLaterMinDelay and RetryLaterMaxDelay bound the delay before a
	// message that could not be finished is visible again: the minimum
	// doubled for each earlier receive (ApproximateReceiveCount), capped,
	// and rounded up to whole seconds, the unit of SQS visibility
	// timeouts (so at least 1 s). Defaults DefaultRetryLaterMinDelay and
	// DefaultRetryLaterMaxDelay.
	RetryLaterMinDelay, RetryLaterMaxDelay time.Duration
	// DeleteMalformed makes the Consumer delete messages that are not
	// valid callback messages. Default false: they become visible again
	// after the retry-later delay, so that the queue's redrive policy moves
	// them to a dead-letter queue.
	DeleteMalformed bool
	// DrainTimeout is how long running handlers may go on after Run's
	// context ends; then their contexts are canceled. Default
	// DefaultDrainTimeout; a negative value cancels them at once.
	DrainTimeout time.Duration
	// ReceiveRetryMinDelay and ReceiveRetryMaxDelay bound the backoff
	// after a failed receive. Defaults DefaultReceiveRetryMinDelay and
	// DefaultReceiveRetryMaxDelay.
	ReceiveRetryMinDelay, ReceiveRetryMaxDelay time.Duration
	// OnEvent, Logger and Clock are as in Options. Defaults: the
	// Acknowledger's.
	OnEvent func(Event)
	// Logger receives a record for every Event. Default: the
	// Acknowledger's logger.
	Logger *slog.Logger
	// Clock tells the time and waits. Default: the Acknowledger's clock.
	Clock Clock
	// ClientOptions are passed to every SQS call.
	ClientOptions []func(*sqs.Options)
}

// withDefaults returns o with zero and invalid fields replaced by defaults,
// and the observer taken from ack where unset.
func (o ConsumerOptions) withDefaults(ack Options) ConsumerOptions {
	switch {
	case o.WaitTimeSeconds == 0 || o.WaitTimeSeconds > 20:
		o.WaitTimeSeconds = DefaultWaitTimeSeconds
	case o.WaitTimeSeconds < 0:
		o.WaitTimeSeconds = 0
	}
	if o.MaxMessages <= 0 || o.MaxMessages > maxBatch {
		o.MaxMessages = DefaultMaxMessages
	}
	if o.Concurrency <= 0 {
		o.Concurrency = DefaultConsumerConcurrency
	}
	if o.VisibilityTimeout <= 0 {
		o.VisibilityTimeout = DefaultVisibilityTimeout
	}
	o.VisibilityTimeout = min((o.VisibilityTimeout + time.Second - 1).Truncate(time.Second), maxVisibility)
	setDur := func(d *time.Duration, def time.Duration) {
		if *d <= 0 {
			*d = def
		}
	}
	setDur(&o.RetryLaterMinDelay, DefaultRetryLaterMinDelay)
	setDur(&o.RetryLaterMaxDelay, DefaultRetryLaterMaxDelay)
	setDur(&o.ReceiveRetryMinDelay, DefaultReceiveRetryMinDelay)
	setDur(&o.ReceiveRetryMaxDelay, DefaultReceiveRetryMaxDelay)
	o.RetryLaterMaxDelay = min(max(o.RetryLaterMaxDelay, o.RetryLaterMinDelay), maxVisibility)
	if o.DrainTimeout == 0 {
		o.DrainTimeout = DefaultDrainTimeout
	}
	if o.OnEvent == nil {
		o.OnEvent = ack.OnEvent
	}
	if o.Logger == nil {
		o.Logger = ack.Logger
	}
	if o.Clock == nil {
		o.Clock = ack.Clock
	}
	return o
}

// retryLaterDelay is the visibility delay of a message received n times,
// rounded up to whole seconds (the unit of SQS visibility timeouts), so
// that a sub-second delay never becomes 0, a redelivery at once.
func (o *ConsumerOptions) retryLaterDelay(n int) time.Duration {
	d := o.RetryLaterMinDelay
	for i := 1; i < n && d < o.RetryLaterMaxDelay; i++ {
		d *= 2
	}
	return (min(d, o.RetryLaterMaxDelay) + time.Second - 1).Truncate(time.Second)
}

// Consumer reads callback step messages from an SQS queue and answers the
// steps: Executing messages through Handler.Execute, Stopping messages
// through Handler.Cleanup and Acknowledger.AckStopping.
//
// Delivery is at least once, and the Consumer keeps these rules:
//   - A message is deleted only after SageMaker accepted the answer to its
//     step, or said the step was already answered or does not exist, or
//     when the handler said the step is answered elsewhere (ErrPending), or
//     when it is malformed and ConsumerOptions.DeleteMalformed is set.
//   - A message that could not be finished becomes visible again after a
//     delay that grows with its receive count, never at once (so a poison
//     message reaches the redrive policy without a redelivery storm), except
//     on shutdown, when unfinished messages are made visible at once.
//   - Messages for the same callback token that are in the Consumer's
//     hands at the same time share one answer: a duplicate waits for the
//     first one's outcome; a Stopping message cancels the running Execute
//     for its token first, and the step is answered once, by the stop.
//   - Answered tokens are remembered (the last few thousand), so a late
//     duplicate is deleted without running the handler again.
//
// A Consumer is safe for concurrent use, but Run may run only once at a
// time.
type Consumer struct {
	queue    QueueAPIClient
	queueURL string
	ack      *Acknowledger
	handler  Handler
	opts     ConsumerOptions
	obs      Options // the observer: OnEvent, Logger, Clock
	running  atomic.Bool
}

// NewConsumer returns a Consumer of the queue at queueURL that answers
// through ack. The error matches ErrInvalidConsumer when queue, ack or
// handler.Execute is nil or queueURL is empty.
func NewConsumer(queue QueueAPIClient, queueURL string, ack *Acknowledger, handler Handler, optFns ...func(*ConsumerOptions)) (*Consumer, error) {
	switch {
	case queue == nil:
		return nil, fmt.Errorf("%w: the SQS client is nil", ErrInvalidConsumer)
	case queueURL == "":
		return nil, fmt.Errorf("%w: the queue URL is empty", ErrInvalidConsumer)
	case ack == nil:
		return nil, fmt.Errorf("%w: the Acknowledger is nil", ErrInvalidConsumer)
	case handler.Execute == nil:
		return nil, fmt.Errorf("%w: Handler.Execute is nil", ErrInvalidConsumer)
	}
	var o ConsumerOptions
	for _, fn := range optFns {
		fn(&o)
	}
	ackOpts := ack.options(nil)
	o = o.withDefaults(ackOpts)
	obs := Options{OnEvent: o.OnEvent, Logger: o.Logger, Clock: o.Clock}.withDefaults()
	return &Consumer{queue: queue, queueURL: queueURL, ack: ack, handler: handler, opts: o, obs: obs}, nil
}

// Run receives and handles messages until ctx ends, then shuts down:
// receiving stops, messages received but not yet handled are made visible
// at once, running handlers get ConsumerOptions.DrainTimeout to finish
// (then their contexts are canceled), and the deletes of answered messages
// are flushed. Run returns only after every goroutine it started has
// ended.
//
// Failed receives are retried with backoff (ReceiveRetryMinDelay to
// ReceiveRetryMaxDelay) when they are transient; a permanent receive error
// (a queue that does not exist, access denied) shuts the Consumer down and
// is returned. After ctx ends Run returns nil.
func (c *Consumer) Run(ctx context.Context) error {
	if !c.running.CompareAndSwap(false, true) {
		return errors.New("pipelinestop: Consumer.Run is already running")
	}
	defer c.running.Store(false)

	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	queueCtx, cancelQueue := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelQueue()
	r := &run{
		c:        c,
		ctx:      ctx,
		workCtx:  workCtx,
		inflight: map[string]*message{},
		tokens:   map[CallbackToken]*tokenJobs{},
		answered: newTokenSet(answeredMemory),
		slotFree: make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		stop:     make(chan struct{}),
	}
	keeperDone := make(chan struct{})
	go func() {
		defer close(keeperDone)
		r.keep(queueCtx)
	}()

	err := r.receiveLoop(ctx)

	// Shut down: hand back what was not started, drain what runs.
	r.mu.Lock()
	r.shuttingDown = true
	unstarted := r.pending
	r.pending = nil
	for _, j := range unstarted {
		r.finishLocked(j, action{release: true})
	}
	r.unlockAndEmit()
	workersDone := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(workersDone)
	}()
	if c.opts.DrainTimeout < 0 {
		cancelWork()
	}
	select {
	case <-workersDone:
	case <-c.opts.Clock.After(max(c.opts.DrainTimeout, 0)):
		cancelWork()
		<-workersDone
	}
	cancelWork()
	close(r.stop)
	timer := time.NewTimer(shutdownFlushTimeout)
	defer timer.Stop()
	select {
	case <-keeperDone:
	case <-timer.C:
		cancelQueue()
		<-keeperDone
	}
	return err
}

// message is a received SQS message in the Consumer's hands.
type message struct {
	id, handle     string
	receiveCount   int
	extendAt       time.Time // half the visibility timeout after it was last set
	deleteAttempts int
}

// job handles the messages of one callback token: an Execute or a Cleanup.
type job struct {
	token    CallbackToken
	msg      *CallbackMessage
	stopping bool
	msgs     []*message
	hctx     context.Context // Execute's context
	cancel   context.CancelFunc
	waitFor  *job // for a stop: the Execute job it canceled
	done     chan struct{}

	// Guarded by run.mu:
	started, finished, stopRequested, answered bool
}

// tokenJobs are the jobs of one token in the Consumer's hands.
type tokenJobs struct{ exec, stop *job }

// action is what finishLocked does with a job's messages.
type action struct {
	delete   bool  // delete the messages (else make them visible again)
	release  bool  // make them visible again at once
	answered bool  // the step is answered (or gone): remember the token
	err      error // why they are made visible again (for events)
}

// visChange is a pending ChangeMessageVisibility.
type visChange struct {
	m       *message
	timeout int32
}

// run is the state of one Run.
type run struct {
	c       *Consumer
	ctx     context.Context // Run's context
	workCtx context.Context // handlers and answers; ends after the drain
	wg      sync.WaitGroup  // workers

	slotFree chan struct{} // a handler slot was freed
	kick     chan struct{} // the keeper has work
	stop     chan struct{} // closed when the keeper must flush and end

	mu           sync.Mutex
	inflight     map[string]*message // by receipt handle
	tokens       map[CallbackToken]*tokenJobs
	pending      []*job
	running      int
	toDelete     []*message
	toChange     []visChange
	answered     *tokenSet
	events       []Event
	shuttingDown bool
}

// emitLocked queues ev; unlockAndEmit sends it after r.mu is released.
func (r *run) emitLocked(ev Event) { r.events = append(r.events, ev) }

// unlockAndEmit releases r.mu and sends the queued events.
func (r *run) unlockAndEmit() {
	evs := r.events
	r.events = nil
	r.mu.Unlock()
	for _, ev := range evs {
		r.c.obs.emit(r.ctx, ev)
	}
}

// receiveLoop receives while there is room, until ctx ends or a receive
// fails for good.
func (r *run) receiveLoop(ctx context.Context) error {
	for {
		r.mu.Lock()
		room := r.running < r.c.opts.Concurrency && len(r.pending) == 0
		r.mu.Unlock()
		if !room {
			select {
			case <-r.slotFree:
				continue
			case <-ctx.Done():
				return nil
			}
		}
		msgs, err := r.receive(ctx)
		if ctx.Err() != nil {
			// Messages of a receive cut short by shutdown are still ours.
			r.dispatch(msgs)
			return nil
		}
		if err != nil {
			return err
		}
		r.dispatch(msgs)
	}
}

// receive makes one receive, retrying transient errors.
func (r *run) receive(ctx context.Context) ([]sqstypes.Message, error) {
	c := r.c
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(c.queueURL),
		MaxNumberOfMessages: c.opts.MaxMessages,
		WaitTimeSeconds:     c.opts.WaitTimeSeconds,
		VisibilityTimeout:   int32(c.opts.VisibilityTimeout / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	}
	var msgs []sqstypes.Message
	policy := retry.Policy{InitialDelay: c.opts.ReceiveRetryMinDelay, MaxDelay: c.opts.ReceiveRetryMaxDelay,
		Multiplier: 2, Jitter: DefaultRetryJitter}
	res := retry.Do(ctx, c.opts.Clock, policy, retry.Hooks{
		Retryable: receiveRetryable,
		OnRetry: func(attempt int, delay time.Duration, err error) {
			c.obs.emit(ctx, Event{Type: EventQueueError, Op: receiveOp, Attempt: attempt, Delay: delay, Err: err})
		},
	}, func(ctx context.Context, _ int) error {
		out, err := c.queue.ReceiveMessage(ctx, in, c.opts.ClientOptions...)
		if err != nil {
			return classify(err, "")
		}
		msgs = out.Messages
		return nil
	})
	if res.Err == nil && res.Canceled == nil {
		return msgs, nil
	}
	if res.Canceled != nil && ctx.Err() != nil {
		return nil, ctx.Err()
	}
	return nil, finalError(receiveOp, "", res)
}

// receiveRetryable reports whether a failed receive is worth another try:
// throttling, unavailability, and SQS's in-flight limit.
func receiveRetryable(err error) bool {
	var e *Error
	return DefaultRetryable(err) || errors.As(err, &e) && (e.Code == "OverLimit" || e.Code == "KmsThrottled")
}

// dispatch takes received messages in hand and routes them to jobs.
func (r *run) dispatch(msgs []sqstypes.Message) {
	if len(msgs) == 0 {
		return
	}
	o := &r.c.opts
	now := o.Clock.Now()
	r.mu.Lock()
	for _, sm := range msgs {
		handle := aws.ToString(sm.ReceiptHandle)
		if handle == "" || r.inflight[handle] != nil {
			continue
		}
		m := &message{id: aws.ToString(sm.MessageId), handle: handle, extendAt: now.Add(o.VisibilityTimeout / 2)}
		m.receiveCount, _ = strconv.Atoi(sm.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
		r.inflight[handle] = m
		cm, err := ParseCallbackMessage(aws.ToString(sm.Body))
		if err != nil {
			j := &job{msgs: []*message{m}}
			ev := Event{Type: EventMalformed, MessageID: m.id, Err: err}
			if o.DeleteMalformed {
				r.finishLocked(j, action{delete: true})
			} else {
				ev.Delay = o.retryLaterDelay(m.receiveCount)
				r.finishLocked(j, action{})
			}
			r.emitLocked(ev)
			continue
		}
		r.routeLocked(m, cm)
	}
	r.scheduleLocked()
	r.unlockAndEmit()
}

// routeLocked gives a valid message to the job of its token, or a new job.
func (r *run) routeLocked(m *message, cm *CallbackMessage) {
	t := cm.Token
	if r.answered.has(t) {
		r.finishLocked(&job{msgs: []*message{m}}, action{delete: true, answered: true})
		return
	}
	tj := r.tokens[t]
	if tj == nil {
		tj = &tokenJobs{}
		r.tokens[t] = tj
	}
	if tj.stop != nil {
		tj.stop.msgs = append(tj.stop.msgs, m)
		return
	}
	if !cm.IsStopping() {
		if tj.exec != nil {
			tj.exec.msgs = append(tj.exec.msgs, m)
			return
		}
		tj.exec = r.newJob(cm, m)
		r.pending = append(r.pending, tj.exec)
		return
	}
	j := r.newJob(cm, m)
	tj.stop = j
	if ex := tj.exec; ex != nil {
		ex.stopRequested = true
		if !ex.started {
			// Never start the work of a step that is being stopped.
			r.pending = slices.DeleteFunc(r.pending, func(p *job) bool { return p == ex })
			r.handOffLocked(ex)
			tj.exec = nil
		} else {
			ex.cancel()
			j.waitFor = ex
			r.emitLocked(Event{Type: EventHandlerCanceled, CallbackToken: t,
				ExecutionARN: cm.PipelineExecutionARN, MessageID: m.id})
		}
	}
	// A stop is urgent: the execution waits for its answer.
	r.pending = slices.Insert(r.pending, 0, j)
}

func (r *run) newJob(cm *CallbackMessage, m *message) *job {
	j := &job{token: cm.Token, msg: cm, stopping: cm.IsStopping(), msgs: []*message{m}, done: make(chan struct{})}
	j.hctx, j.cancel = context.WithCancel(r.workCtx)
	return j
}

// scheduleLocked starts pending jobs while handler slots are free.
func (r *run) scheduleLocked() {
	for r.running < r.c.opts.Concurrency && len(r.pending) > 0 && !r.shuttingDown {
		j := r.pending[0]
		r.pending = r.pending[1:]
		j.started = true
		r.running++
		r.wg.Add(1)
		go r.work(j)
	}
}

// work runs one job and frees its slot.
func (r *run) work(j *job) {
	defer r.wg.Done()
	if j.stopping {
		r.stopJob(j)
	} else {
		r.execJob(j)
	}
	j.cancel()
	r.mu.Lock()
	r.running--
	if tj := r.tokens[j.token]; tj != nil {
		if tj.exec == j {
			tj.exec = nil
		}
		if tj.stop == j {
			tj.stop = nil
		}
		if tj.exec == nil && tj.stop == nil {
			delete(r.tokens, j.token)
		}
	}
	r.scheduleLocked()
	r.unlockAndEmit()
	select {
	case r.slotFree <- struct{}{}:
	default:
	}
}

// execJob runs Execute and answers the step.
func (r *run) execJob(j *job) {
	var outputs map[string]string
	herr := callRecover(func() error {
		var err error
		outputs, err = r.c.handler.Execute(j.hctx, j.msg)
		return err
	})
	r.mu.Lock()
	if j.stopRequested {
		r.handOffLocked(j)
		r.unlockAndEmit()
		return
	}
	r.mu.Unlock()
	ev := Event{CallbackToken: j.token, ExecutionARN: j.msg.PipelineExecutionARN, Err: herr}
	var perr *PanicError
	switch {
	case errors.As(herr, &perr):
		ev.Type = EventPanic
		r.c.obs.emit(r.ctx, ev)
		r.afterAnswer(j, r.c.ack.Fail(r.workCtx, j.token, r.reason(j, herr)))
	case errors.Is(herr, ErrPending):
		ev.Type = EventPending
		r.mu.Lock()
		for _, m := range j.msgs {
			ev.MessageID = m.id
			r.emitLocked(ev)
		}
		r.finishLocked(j, action{delete: true})
		r.unlockAndEmit()
	case errors.Is(herr, ErrRetryLater):
		r.finish(j, action{err: herr})
	case herr != nil && j.hctx.Err() != nil:
		// Cut short by the end of the drain period: not the step's fault.
		r.finish(j, action{release: true, err: herr})
	case herr != nil:
		r.afterAnswer(j, r.c.ack.Fail(r.workCtx, j.token, r.reason(j, herr)))
	default:
		err := r.c.ack.Succeed(r.workCtx, j.token, outputs)
		if errors.Is(err, ErrInvalidCallback) {
			err = r.c.ack.Fail(r.workCtx, j.token, r.reason(j, err))
		}
		r.afterAnswer(j, err)
	}
}

// reason is the failure reason for err, without the raw token.
func (r *run) reason(j *job, err error) string { return j.token.Redact(err.Error()) }

// stopJob waits for the canceled Execute of its token, runs Cleanup and
// answers the step.
func (r *run) stopJob(j *job) {
	if w := j.waitFor; w != nil {
		select {
		case <-w.done:
		case <-r.workCtx.Done():
			r.finish(j, action{release: true, err: r.workCtx.Err()})
			return
		}
		r.mu.Lock()
		answered := w.answered
		r.mu.Unlock()
		if answered {
			r.finish(j, action{delete: true, answered: true})
			return
		}
	}
	res, err := r.c.ack.AckStopping(r.workCtx, j.msg, r.c.handler.Cleanup)
	var perr *PanicError
	if errors.As(res.CleanupErr, &perr) {
		r.c.obs.emit(r.ctx, Event{Type: EventPanic, CallbackToken: j.token,
			ExecutionARN: j.msg.PipelineExecutionARN, Err: res.CleanupErr})
	}
	r.afterAnswer(j, err)
}

// afterAnswer finishes a job after an answer call that returned err.
func (r *run) afterAnswer(j *job, err error) {
	if err == nil || errors.Is(err, ErrAlreadyAnswered) || errors.Is(err, ErrNotFound) {
		r.finish(j, action{delete: true, answered: true})
		return
	}
	r.finish(j, action{err: err})
}

// finish is finishLocked with the lock taken.
func (r *run) finish(j *job, a action) {
	r.mu.Lock()
	r.finishLocked(j, a)
	r.unlockAndEmit()
}

// finishLocked deletes the job's messages or makes them visible again,
// and closes the job.
func (r *run) finishLocked(j *job, a action) {
	o := &r.c.opts
	for _, m := range j.msgs {
		if a.delete {
			r.toDelete = append(r.toDelete, m)
			continue
		}
		delete(r.inflight, m.handle)
		var d time.Duration
		if !a.release && r.ctx.Err() == nil {
			d = o.retryLaterDelay(m.receiveCount)
		}
		r.toChange = append(r.toChange, visChange{m: m, timeout: int32(d / time.Second)})
		if a.err != nil {
			r.emitLocked(Event{Type: EventRetryLater, CallbackToken: j.token, MessageID: m.id, Delay: d, Err: a.err})
		}
	}
	j.msgs = nil
	if a.answered {
		j.answered = true
		if j.token != "" {
			r.answered.add(j.token)
		}
	}
	if !j.finished {
		j.finished = true
		if j.done != nil {
			close(j.done)
		}
		if j.cancel != nil {
			j.cancel()
		}
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// handOffLocked gives the messages of a canceled Execute job to the stop
// job of its token, which answers for both; without one (it was handed
// back on shutdown) they are made visible again at once.
func (r *run) handOffLocked(ex *job) {
	if tj := r.tokens[ex.token]; tj != nil && tj.stop != nil && !tj.stop.finished {
		tj.stop.msgs = append(tj.stop.msgs, ex.msgs...)
		ex.msgs = nil
		r.finishLocked(ex, action{})
		return
	}
	r.finishLocked(ex, action{release: true})
}

// keep runs the queue's bookkeeping: batched deletes, visibility changes
// and extensions, until r.stop is closed; then it flushes once more.
func (r *run) keep(ctx context.Context) {
	tick := r.c.opts.VisibilityTimeout / 4
	tickC := r.c.opts.Clock.After(tick)
	for {
		r.flush(ctx)
		select {
		case <-r.kick:
		case <-tickC:
			tickC = r.c.opts.Clock.After(tick)
		case <-r.stop:
			r.flush(ctx)
			return
		}
	}
}

// flush deletes what is answered, changes the visibility of what is
// handed back and extends what is still in hand and due.
func (r *run) flush(ctx context.Context) {
	for ctx.Err() == nil {
		r.mu.Lock()
		dels := r.toDelete[:min(len(r.toDelete), maxBatch)]
		r.toDelete = r.toDelete[len(dels):]
		r.mu.Unlock()
		if len(dels) == 0 {
			break
		}
		r.deleteBatch(ctx, dels)
	}
	r.mu.Lock()
	changes := r.toChange
	r.toChange = nil
	now := r.c.opts.Clock.Now()
	ext := int32(r.c.opts.VisibilityTimeout / time.Second)
	for _, m := range r.inflight {
		if !now.Before(m.extendAt) {
			changes = append(changes, visChange{m: m, timeout: ext})
		}
	}
	r.mu.Unlock()
	for len(changes) > 0 && ctx.Err() == nil {
		n := min(len(changes), maxBatch)
		r.changeBatch(ctx, changes[:n], now)
		changes = changes[n:]
	}
}

// deleteBatch deletes up to ten messages. What fails transiently is queued
// again, up to maxDeleteAttempts; every failure is reported.
func (r *run) deleteBatch(ctx context.Context, ms []*message) {
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(ms))
	for i, m := range ms {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.handle)}
	}
	out, err := r.c.queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(r.c.queueURL), Entries: entries}, r.c.opts.ClientOptions...)
	r.mu.Lock()
	defer r.unlockAndEmit()
	if err != nil {
		cerr := classify(err, "")
		for _, m := range ms {
			r.deleteFailedLocked(m, cerr, true)
		}
		return
	}
	for _, s := range out.Successful {
		if i, ok := batchIndex(s.Id, len(ms)); ok {
			delete(r.inflight, ms[i].handle)
			ms[i] = nil
		}
	}
	for _, f := range out.Failed {
		if i, ok := batchIndex(f.Id, len(ms)); ok && ms[i] != nil {
			r.deleteFailedLocked(ms[i], batchEntryError(deleteOp, f), !f.SenderFault)
			ms[i] = nil
		}
	}
	for _, m := range ms {
		if m != nil {
			// Neither successful nor failed: SQS did not say; try again.
			r.deleteFailedLocked(m, errors.New("the batch result does not mention the message"), true)
		}
	}
}

// deleteFailedLocked queues a failed delete again when it may succeed
// later, or gives the message up (it will be delivered again and found
// answered).
func (r *run) deleteFailedLocked(m *message, err error, transient bool) {
	m.deleteAttempts++
	ev := Event{Type: EventQueueError, Op: deleteOp, MessageID: m.id, Attempt: m.deleteAttempts, Err: err}
	if transient && m.deleteAttempts < maxDeleteAttempts {
		r.toDelete = append(r.toDelete, m)
	} else {
		delete(r.inflight, m.handle)
	}
	r.emitLocked(ev)
}

// changeBatch changes the visibility of up to ten messages. Failures are
// reported; a message made visible again or extended in vain is
// delivered again, and its duplicate is handled as such.
func (r *run) changeBatch(ctx context.Context, cs []visChange, now time.Time) {
	entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(cs))
	for i, ch := range cs {
		entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
			ReceiptHandle: aws.String(ch.m.handle), VisibilityTimeout: ch.timeout}
	}
	out, err := r.c.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(r.c.queueURL), Entries: entries}, r.c.opts.ClientOptions...)
	r.mu.Lock()
	defer r.unlockAndEmit()
	if err != nil {
		cerr := classify(err, "")
		for _, ch := range cs {
			r.emitLocked(Event{Type: EventQueueError, Op: changeOp, MessageID: ch.m.id, Err: cerr})
		}
		return
	}
	for _, s := range out.Successful {
		if i, ok := batchIndex(s.Id, len(cs)); ok && r.inflight[cs[i].m.handle] == cs[i].m {
			cs[i].m.extendAt = now.Add(r.c.opts.VisibilityTimeout / 2)
		}
	}
	for _, f := range out.Failed {
		if i, ok := batchIndex(f.Id, len(cs)); ok {
			r.emitLocked(Event{Type: EventQueueError, Op: changeOp, MessageID: cs[i].m.id, Err: batchEntryError(changeOp, f)})
		}
	}
}

// batchIndex parses a batch entry ID made by strconv.Itoa.
func batchIndex(id *string, n int) (int, bool) {
	i, err := strconv.Atoi(aws.ToString(id))
	return i, err == nil && i >= 0 && i < n
}

// batchEntryError turns a failed batch entry into an *Error.
func batchEntryError(op string, f sqstypes.BatchResultErrorEntry) *Error {
	return &Error{Op: op, Code: aws.ToString(f.Code), Message: aws.ToString(f.Message)}
}

// tokenSet remembers the last n tokens added.
type tokenSet struct {
	set  map[CallbackToken]struct{}
	ring []CallbackToken
	next int
}

func newTokenSet(n int) *tokenSet {
	return &tokenSet{set: make(map[CallbackToken]struct{}, n), ring: make([]CallbackToken, n)}
}

func (s *tokenSet) has(t CallbackToken) bool {
	_, ok := s.set[t]
	return ok
}

func (s *tokenSet) add(t CallbackToken) {
	if s.has(t) {
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.set, old)
	}
	s.ring[s.next] = t
	s.set[t] = struct{}{}
	s.next = (s.next + 1) % len(s.ring)
}
