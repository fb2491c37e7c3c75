package pipelinestop

import (
	"context"
	"crypto/rand"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop/internal/retry"
)

// This file holds one Run of a Consumer: the receive loop, the routing of
// messages to their tokens' state machines (consumer_token.go), the
// handler slots, and the shutdown. The Run's lock guards the tokens, the
// memory of ended tokens and the queue of work; the queueKeeper
// (consumer_queue.go) owns the messages' SQS side under its own lock, which
// is taken after the Run's, never before.

// tokenEntry is a token in hand: its state machine and the context of its
// running Execute.
type tokenEntry struct {
	st     tokenState
	hctx   context.Context
	cancel context.CancelCauseFunc
}

// run is the state of one Run.
type run struct {
	c          *Consumer
	ctx        context.Context // Run's context, for events
	workCtx    context.Context // handlers and answers; canceled when the drain ends
	cancelWork context.CancelCauseFunc
	book       messageBook    // the owner of the messages' SQS side
	wg         sync.WaitGroup // handler slots
	slotFree   chan struct{}  // a handler slot was freed

	mu           sync.Mutex
	tokens       map[CallbackToken]*tokenEntry
	memory       *tokenMemorySet
	queue        []CallbackToken // tokens waiting for a slot, stops first
	running      int
	shuttingDown bool
	// Moving averages, by the Consumer's clock, that size the
	// receive-ahead buffer: a full receive's time, and a handler slot's
	// time with one token.
	receiveTime, slotTime time.Duration
	events                []Event
}

// messageBook owns the SQS side of a run's messages: the queueKeeper of a
// Consumer, or the batchBook of a BatchHandler.
type messageBook interface {
	// take takes a received message in hand; fresh is false when it was
	// already held (received again), and then it is not a new delivery.
	take(sm sqstypes.Message, now time.Time) (key string, fresh bool)
	// dispose gives the held messages of keys the disposition d.
	dispose(keys []string, d disposition, reason error) []disposed
}

func newRun(ctx context.Context, c *Consumer, book messageBook) *run {
	workCtx, cancelWork := context.WithCancelCause(context.WithoutCancel(ctx))
	return &run{
		c:          c,
		ctx:        ctx,
		workCtx:    workCtx,
		cancelWork: cancelWork,
		book:       book,
		slotFree:   make(chan struct{}, 1),
		tokens:     map[CallbackToken]*tokenEntry{},
		memory:     newTokenMemorySet(answeredMemory),
	}
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
//
// It receives ahead: a receive starts while the handlers running, the
// tokens waiting for a slot and the messages that the receives in flight
// may bring leave room in Concurrency plus a small buffer (aheadOf), so
// that a freed slot finds work at once instead of waiting for a receive.
// More than one receive is in flight when one cannot feed the handlers
// (the buffer drained while a receive was out); while the queue runs dry
// (a receive brought less than MaxMessages) only one receive is out, so an
// idle queue costs one long poll at a time.
func (r *run) receiveLoop(ctx context.Context) error {
	type result struct {
		msgs []sqstypes.Message
		err  error
		took time.Duration
	}
	clock := r.c.opts.Clock
	results := make(chan result)
	inFlight := 0
	backlog := false // the last receive was full: the queue has more
	var failed error
	for {
		for ctx.Err() == nil && failed == nil && (inFlight == 0 || backlog && inFlight < maxReceivesInFlight) && r.room(inFlight) {
			inFlight++
			go func() {
				start := clock.Now()
				msgs, err := r.receive(ctx)
				results <- result{msgs, err, clock.Now().Sub(start)}
			}()
		}
		if inFlight == 0 && (ctx.Err() != nil || failed != nil) {
			return failed
		}
		select {
		case res := <-results:
			inFlight--
			backlog = len(res.msgs) >= int(r.c.opts.MaxMessages)
			if backlog && res.err == nil {
				// Only full receives: a long poll of an emptied queue
				// says nothing of the receive's own time.
				r.mu.Lock()
				r.receiveTime = movingAverage(r.receiveTime, res.took)
				r.mu.Unlock()
			}
			// Messages of a receive cut short by shutdown are still ours.
			r.dispatch(res.msgs)
			if res.err != nil && ctx.Err() == nil && failed == nil {
				failed = res.err
			}
		case <-r.slotFree:
		case <-ctx.Done():
			if inFlight == 0 {
				return nil
			}
			// The receives in flight end with ctx: collect them.
			for ; inFlight > 0; inFlight-- {
				r.dispatch((<-results).msgs)
			}
			return nil
		}
	}
}

// maxReceivesInFlight caps the receives out at once: with ten messages a
// receive, enough to keep hundreds of handlers fed.
const maxReceivesInFlight = 8

// room reports whether another receive fits: the handlers running, the
// tokens waiting for a slot and up to MaxMessages for each of the inFlight
// receives leave room in Concurrency plus the receive-ahead buffer.
func (r *run) room(inFlight int) bool {
	o := &r.c.opts
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.running+len(r.queue)+inFlight*int(o.MaxMessages) < o.Concurrency+r.aheadLocked()
}

// aheadLocked is how many received messages may wait for a handler slot
// beyond the free slots: what the handlers take during a receive, plus
// half a receive, in whole receives (k receives of MaxMessages, with k the
// handlers' rate, Concurrency / slot time, times a receive's time, over
// MaxMessages, plus one half, rounded up; one before anything was
// measured), but no more than Concurrency, so that a message waits in the
// buffer for at most about one handler's run.
func (r *run) aheadLocked() int {
	o := &r.c.opts
	k := 1
	if r.receiveTime > 0 && r.slotTime > 0 {
		perReceive := float64(o.Concurrency) * r.receiveTime.Seconds() / r.slotTime.Seconds()
		// Half a receive more than the mean needs: receives and handlers
		// vary, and a buffer that runs dry idles every free slot. Slow
		// handlers keep one receive's worth.
		k = max(1, min(maxReceivesInFlight, int(math.Ceil(perReceive/float64(o.MaxMessages)+0.5))))
	}
	return min(k*int(o.MaxMessages), o.Concurrency)
}

// movingAverage folds d into the moving average avg (0: none yet).
func movingAverage(avg, d time.Duration) time.Duration {
	if avg <= 0 {
		return d
	}
	return avg + (d-avg)/8
}

// receive makes one receive, retrying transient errors. On a FIFO queue
// every attempt of one receive (the SDK's retries and the Consumer's) has
// the same ReceiveRequestAttemptId, so that an attempt whose answer was
// lost is answered again with the same messages, which SQS does for five
// minutes; a standard queue has no such parameter, and a lost answer costs
// its messages ReceiveVisibilityTimeout.
func (r *run) receive(ctx context.Context) ([]sqstypes.Message, error) {
	c := r.c
	in := &sqs.ReceiveMessageInput{
		QueueUrl:            aws.String(c.queueURL),
		MaxNumberOfMessages: c.opts.MaxMessages,
		WaitTimeSeconds:     c.opts.WaitTimeSeconds,
		VisibilityTimeout:   int32(c.opts.ReceiveVisibilityTimeout / time.Second),
		MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{
			sqstypes.MessageSystemAttributeNameApproximateReceiveCount},
	}
	if isFIFOQueue(c.queueURL) {
		in.ReceiveRequestAttemptId = aws.String(rand.Text())
	}
	return receiveMessages(ctx, c.queue, in, c.opts.Clock, c.opts.ReceiveRetryMinDelay, c.opts.ReceiveRetryMaxDelay,
		c.opts.ClientOptions, func(ev Event) { c.obs.emit(ctx, ev) })
}

// isFIFOQueue reports whether the queue at url is a FIFO queue: SQS names
// end with ".fifo" exactly then.
func isFIFOQueue(url string) bool {
	return strings.HasSuffix(url, ".fifo")
}

// receiveMessages makes one ReceiveMessage for a Consumer or a Watcher,
// retrying transient errors (receiveRetryable) with backoff from minDelay
// to maxDelay and reporting each failed attempt to report as an
// EventQueueError. When ctx ends first the error is ctx's.
func receiveMessages(ctx context.Context, q QueueAPIClient, in *sqs.ReceiveMessageInput, clock Clock,
	minDelay, maxDelay time.Duration, optFns []func(*sqs.Options), report func(Event)) ([]sqstypes.Message, error) {
	var msgs []sqstypes.Message
	policy := retry.Policy{InitialDelay: minDelay, MaxDelay: maxDelay, Multiplier: 2, Jitter: DefaultRetryJitter}
	res := retry.Do(ctx, clock, policy, retry.Hooks{
		Retryable: receiveRetryable,
		OnRetry: func(attempt int, delay time.Duration, err error) {
			report(Event{Type: EventQueueError, Op: receiveOp, Attempt: attempt, Delay: delay, Err: err})
		},
	}, func(ctx context.Context, _ int) error {
		out, err := q.ReceiveMessage(ctx, in, optFns...)
		if err != nil {
			return classify(err, "")
		}
		if out != nil {
			msgs = out.Messages
		}
		return nil
	})
	if res.Err == nil && res.Canceled == nil {
		return msgs, nil
	}
	if res.Canceled != nil && ctx.Err() != nil {
		return msgs, ctx.Err()
	}
	return msgs, finalError(receiveOp, "", res)
}

// receiveRetryable reports whether a failed receive is worth another try:
// throttling, unavailability, and SQS's in-flight limit.
func receiveRetryable(err error) bool {
	var e *Error
	return DefaultRetryable(err) || errors.As(err, &e) && (e.Code == "OverLimit" || e.Code == "KmsThrottled")
}

// dispatch takes received messages in hand and delivers each to its
// token's state machine.
func (r *run) dispatch(msgs []sqstypes.Message) {
	if len(msgs) == 0 {
		return
	}
	o := &r.c.opts
	now := o.Clock.Now()
	r.mu.Lock()
	for _, sm := range msgs {
		if aws.ToString(sm.ReceiptHandle) == "" {
			// Nothing can be done with it: SQS makes it visible again.
			continue
		}
		key, fresh := r.book.take(sm, now)
		if !fresh {
			continue
		}
		cm, err := ParseCallbackMessage(aws.ToString(sm.Body))
		if err != nil {
			d := dispVisibleLater
			if o.DeleteMalformed {
				d = dispDelete
			}
			for _, m := range r.book.dispose([]string{key}, d, err) {
				r.emitLocked(Event{Type: EventMalformed, MessageID: m.id, Delay: m.delay, Err: err})
			}
			continue
		}
		e := r.tokens[cm.Token]
		if e == nil {
			e = &tokenEntry{}
			r.tokens[cm.Token] = e
		}
		eff := e.st.deliver(key, cm, r.memory.get(cm.Token))
		r.applyLocked(cm.Token, e, eff, nil)
		if r.shuttingDown {
			r.shutdownLocked(cm.Token, e)
		}
	}
	r.unlockAndEmit()
	r.start()
}

// applyLocked carries out a token's effect. reason says why messages are
// handed back, for events.
func (r *run) applyLocked(t CallbackToken, e *tokenEntry, eff tokenEffect, reason error) {
	switch eff.enqueue {
	case queueNormal:
		r.queue = append(r.queue, t)
	case queueUrgent:
		r.queue = slices.DeleteFunc(r.queue, func(q CallbackToken) bool { return q == t })
		r.queue = slices.Insert(r.queue, 0, t)
	}
	if eff.cancelExecute && e.cancel != nil {
		e.cancel(ErrStepStopping)
		r.emitLocked(Event{Type: EventHandlerCanceled, CallbackToken: t, ExecutionARN: arnOf(e.st.stop)})
	}
	if eff.dispose != dispKeep {
		reason = t.scrubErr(reason)
		for _, m := range r.book.dispose(eff.disposed, eff.dispose, reason) {
			switch {
			case eff.remember == memPending:
				r.emitLocked(Event{Type: EventPending, CallbackToken: t, MessageID: m.id})
			case eff.dispose != dispDelete && reason != nil:
				r.emitLocked(Event{Type: EventRetryLater, CallbackToken: t, MessageID: m.id, Delay: m.delay, Err: reason})
			}
		}
	}
	if eff.remember != memNone {
		r.memory.add(t, eff.remember)
	}
	if e.st.phase == phaseIdle {
		if e.cancel != nil {
			e.cancel(context.Canceled)
		}
		delete(r.tokens, t)
	}
}

func arnOf(m *CallbackMessage) string {
	if m == nil {
		return ""
	}
	return m.PipelineExecutionARN
}

// shutdownLocked hands back a token's queued work.
func (r *run) shutdownLocked(t CallbackToken, e *tokenEntry) {
	eff, err := e.st.on(evShutdown)
	if err != nil {
		r.bugLocked(t, e, err)
		return
	}
	r.applyLocked(t, e, eff, nil)
}

// bugLocked handles an event the table says cannot happen: the token's
// messages are made visible at once (nothing is lost) and the bug is
// reported.
func (r *run) bugLocked(t CallbackToken, e *tokenEntry, err error) {
	r.emitLocked(Event{Type: EventQueueError, CallbackToken: t, Err: err})
	held := e.st.held
	e.st = tokenState{}
	r.applyLocked(t, e, tokenEffect{dispose: dispVisibleNow, disposed: held}, err)
}

// start gives free handler slots to queued tokens.
func (r *run) start() {
	r.mu.Lock()
	defer r.unlockAndEmit()
	for r.running < r.c.opts.Concurrency && len(r.queue) > 0 && !r.shuttingDown {
		t := r.queue[0]
		r.queue = r.queue[1:]
		e := r.tokens[t]
		if e == nil {
			continue // handed back on shutdown
		}
		eff, err := e.st.on(evStart)
		if err != nil {
			continue // already started (queued twice)
		}
		r.applyLocked(t, e, eff, nil)
		if eff.work == workExecute {
			e.hctx, e.cancel = context.WithCancelCause(r.workCtx)
		}
		r.running++
		r.wg.Add(1)
		go r.slot(t, e, eff.work)
	}
}

// slot does a token's work until the state machine says it is done, then
// frees the handler slot.
func (r *run) slot(t CallbackToken, e *tokenEntry, w tokenWork) {
	defer r.wg.Done()
	start := r.c.opts.Clock.Now()
	var res execResult
	for w != workNone {
		r.mu.Lock()
		exec, stop, hctx := e.st.exec, e.st.stop, e.hctx
		r.mu.Unlock()
		var ev tokenEvent
		var reason error
		switch w {
		case workExecute:
			res = r.execute(hctx, exec)
			ev, reason = res.event, res.err
		case workAnswer:
			ev, reason = r.answer(exec, res)
		case workCleanup:
			ev, reason = r.cleanup(stop)
		}
		r.mu.Lock()
		eff, err := e.st.on(ev)
		if err != nil {
			r.bugLocked(t, e, err)
			eff = tokenEffect{}
		} else {
			r.applyLocked(t, e, eff, reason)
		}
		w = eff.work
		r.unlockAndEmit()
	}
	r.mu.Lock()
	r.running--
	r.slotTime = movingAverage(r.slotTime, r.c.opts.Clock.Now().Sub(start))
	r.mu.Unlock()
	r.start()
	select {
	case r.slotFree <- struct{}{}:
	default:
	}
}

// execResult is what Execute returned, and the event it makes.
type execResult struct {
	outputs map[string]string
	err     error
	event   tokenEvent
}

// execute runs Handler.Execute.
func (r *run) execute(ctx context.Context, msg *CallbackMessage) execResult {
	var res execResult
	res.err = callRecover(func() error {
		var err error
		res.outputs, err = r.c.handler.Execute(ctx, msg)
		return err
	})
	var perr *PanicError
	switch {
	case errors.As(res.err, &perr):
		res.event = evExecOutcome
		r.c.obs.emit(r.ctx, Event{Type: EventPanic, CallbackToken: msg.Token, ExecutionARN: msg.PipelineExecutionARN, Err: res.err})
	case errors.Is(res.err, ErrPending):
		res.event = evExecPending
	case errors.Is(res.err, ErrRetryLater):
		res.event = evExecRetryLater
	case res.err != nil && isCut(ctx):
		// Cut short by the end of the drain period or the batch's
		// deadline: not the step's fault.
		res.event = evExecCut
	default:
		res.event = evExecOutcome
	}
	return res
}

// isCut reports whether ctx was canceled because the Run ends: its drain
// period is over, or a batch's deadline is near.
func isCut(ctx context.Context) bool {
	cause := context.Cause(ctx)
	return errors.Is(cause, ErrConsumerShutdown) || errors.Is(cause, ErrDeadline)
}

// answer answers the step with Execute's result.
func (r *run) answer(msg *CallbackMessage, res execResult) (tokenEvent, error) {
	ack := r.c.ack
	in := answerFor(msg.PipelineExecutionARN) // the execution's Region
	var err error
	if res.err != nil {
		err = ack.Fail(r.workCtx, msg.Token, msg.Token.redactSecrets(res.err.Error()), in)
	} else {
		err = ack.Succeed(r.workCtx, msg.Token, res.outputs, in)
		if errors.Is(err, ErrInvalidCallback) {
			err = ack.Fail(r.workCtx, msg.Token, msg.Token.redactSecrets(err.Error()), in)
		}
	}
	return r.answerEvent(err)
}

// cleanup runs Handler.Cleanup for a Stopping message and answers the step.
func (r *run) cleanup(msg *CallbackMessage) (tokenEvent, error) {
	res, err := r.c.ack.AckStopping(r.workCtx, msg, r.c.handler.Cleanup)
	var perr *PanicError
	if errors.As(res.CleanupErr, &perr) {
		r.c.obs.emit(r.ctx, Event{Type: EventPanic, CallbackToken: msg.Token,
			ExecutionARN: msg.PipelineExecutionARN, Err: res.CleanupErr})
	}
	return r.answerEvent(err)
}

// answerEvent turns an answer call's error into the token's event.
func (r *run) answerEvent(err error) (tokenEvent, error) {
	switch {
	case answeredOrGone(err):
		return evAnswerDone, nil
	case r.workCtx.Err() != nil:
		return evAnswerCut, err
	default:
		return evAnswerFailed, err
	}
}

// shutdown stops new work: queued tokens are handed back at once.
func (r *run) shutdown() {
	r.mu.Lock()
	r.shuttingDown = true
	for t, e := range r.tokens {
		r.shutdownLocked(t, e)
	}
	r.queue = nil
	r.unlockAndEmit()
}

// tokenMemorySet remembers what became of the last n tokens that ended.
type tokenMemorySet struct {
	mem  map[CallbackToken]tokenMemory
	ring []CallbackToken
	next int
}

func newTokenMemorySet(n int) *tokenMemorySet {
	return &tokenMemorySet{mem: make(map[CallbackToken]tokenMemory, n), ring: make([]CallbackToken, n)}
}

func (s *tokenMemorySet) get(t CallbackToken) tokenMemory { return s.mem[t] }

// add remembers t as m; an answered token stays answered.
func (s *tokenMemorySet) add(t CallbackToken, m tokenMemory) {
	if old, ok := s.mem[t]; ok {
		if old != memAnswered {
			s.mem[t] = m
		}
		return
	}
	if old := s.ring[s.next]; old != "" {
		delete(s.mem, old)
	}
	s.ring[s.next] = t
	s.mem[t] = m
	s.next = (s.next + 1) % len(s.ring)
}
