package pipelinestop

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// This file holds the Consumer's queue bookkeeping: the one owner of the
// SQS side of every message a Run has received. A message is, in turn:
//
//	held       received and in hand; its visibility is extended by the
//	           visibility timeout once half of the current one has passed
//	           (the first time, half the receive's visibility timeout,
//	           ReceiveVisibilityTimeout, which is short), but never past
//	           SQS's limit of 12 hours from the receive, and no more once
//	           SQS refused an extension of it
//	deleting   its token is done with it: queued for DeleteMessageBatch,
//	           in batches of ten; a batch not yet full waits while the
//	           messages held could fill it, for at most deleteHoldBack
//	releasing  queued for ChangeMessageVisibilityBatch with its delay
//	           (the retry-later delay, or 0 on shutdown)
//	(gone)     deleted or made visible again, or given up after SQS
//	           refused it; no longer tracked
//
// Only a held message is extended, so a message whose token has ended is
// never extended again. A message is keyed by its SQS message ID; when a
// held message is received again (its visibility lapsed) the new receipt
// handle replaces the old one, since SQS deletes only with the newest. A
// message received again while it is being deleted or released is a new
// delivery with its own key.

// msgState is where a message is in the queue bookkeeping.
type msgState int

const (
	msgHeld msgState = iota
	msgDeleting
	msgReleasing
)

// message is a received SQS message in the Consumer's hands.
type message struct {
	key, id, handle string
	receiveCount    int
	state           msgState
	receivedAt      time.Time     // the latest receive, by the Consumer's clock
	deleteQueuedAt  time.Time     // when a deleting message was queued
	extendAt        time.Time     // when a held message is next extended
	noExtend        bool          // no more extensions: at SQS's limit, or refused
	delay           time.Duration // a releasing message's visibility timeout
	reason          error         // why a releasing message is handed back
	deleteAttempts  int
}

// queueKeeper owns every received message of a Run and makes the SQS calls
// that end or extend its time in flight: batched deletes, visibility
// changes and extensions. Its methods are safe for concurrent use; it never
// calls back into the Run.
type queueKeeper struct {
	c    *Consumer
	kick chan struct{} // there are deletes or changes to make

	mu     sync.Mutex
	msgs   map[string]*message // by key
	queued []*message          // deleting or releasing, in order
	events []Event
	// abandoned counts messages still held when the Run ended; they are
	// made visible at once. It stays 0 unless the Run has a bug.
	abandoned int
}

// Deletes in batches (consumer_queue.go).
const (
	// maxDeletesInFlight caps the DeleteMessageBatch calls made at once,
	// so that deletes keep up with hundreds of handlers.
	maxDeletesInFlight = 4
	// maxDeleteHoldBack caps how long a delete batch that is not full
	// waits for more (the held messages could fill it); see deleteHoldBack.
	maxDeleteHoldBack = time.Second
)

func newQueueKeeper(c *Consumer) *queueKeeper {
	return &queueKeeper{c: c, kick: make(chan struct{}, 1), msgs: map[string]*message{}}
}

// take takes a received message in hand. It returns the message's key and
// fresh=false when the message was already held (received again): then it
// is not a new delivery.
func (k *queueKeeper) take(sm sqstypes.Message, now time.Time) (key string, fresh bool) {
	handle := aws.ToString(sm.ReceiptHandle)
	id := aws.ToString(sm.MessageId)
	count, _ := strconv.Atoi(sm.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	key = id
	if key == "" {
		key = "handle:" + handle
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if m := k.msgs[key]; m != nil {
		if m.state == msgHeld {
			m.handle, m.receiveCount, m.receivedAt, m.noExtend = handle, count, now, false
			m.extendAt = now.Add(k.c.opts.ReceiveVisibilityTimeout / 2)
			return key, false
		}
		key = key + "#" + handle
	}
	k.msgs[key] = &message{key: key, id: id, handle: handle, receiveCount: count, receivedAt: now,
		extendAt: now.Add(k.c.opts.ReceiveVisibilityTimeout / 2)}
	return key, true
}

// disposed says what became of one message, for events.
type disposed struct {
	id    string
	delay time.Duration
}

// dispose gives each held message of keys the disposition d. reason says
// why a message is handed back (for events); it may be nil.
func (k *queueKeeper) dispose(keys []string, d disposition, reason error) []disposed {
	if d == dispKeep || len(keys) == 0 {
		return nil
	}
	out := make([]disposed, 0, len(keys))
	k.mu.Lock()
	for _, key := range keys {
		m := k.msgs[key]
		if m == nil || m.state != msgHeld {
			continue
		}
		switch d {
		case dispDelete:
			m.state, m.deleteQueuedAt = msgDeleting, k.c.opts.Clock.Now()
		case dispVisibleLater:
			m.state, m.delay, m.reason = msgReleasing, k.c.opts.retryLaterDelay(m.receiveCount), reason
		case dispVisibleNow:
			m.state, m.delay, m.reason = msgReleasing, 0, reason
		}
		k.queued = append(k.queued, m)
		out = append(out, disposed{id: m.id, delay: m.delay})
	}
	k.mu.Unlock()
	k.poke()
	return out
}

func (k *queueKeeper) poke() {
	select {
	case k.kick <- struct{}{}:
	default:
	}
}

// releaseHeld hands back every message still held, at once. A Run calls it
// after its last handler ended, when nothing should be held.
func (k *queueKeeper) releaseHeld() {
	k.mu.Lock()
	for _, m := range k.msgs {
		if m.state == msgHeld {
			k.abandoned++
			m.state, m.delay = msgReleasing, 0
			k.queued = append(k.queued, m)
		}
	}
	k.mu.Unlock()
}

// keep makes the queue's calls until stop is closed, then flushes once
// more, holding nothing back. tick is how often held messages are checked
// for extension.
func (k *queueKeeper) keep(ctx context.Context, stop <-chan struct{}) {
	clock := k.c.opts.Clock
	tick := k.c.opts.ReceiveVisibilityTimeout / 4
	tickC := clock.After(tick)
	var holdC <-chan time.Time
	for {
		if until := k.flush(ctx, false); !until.IsZero() && holdC == nil {
			holdC = clock.After(until.Sub(clock.Now()))
		}
		select {
		case <-k.kick:
		case <-holdC:
			holdC = nil
		case <-tickC:
			tickC = clock.After(tick)
		case <-stop:
			k.flush(ctx, true)
			return
		}
	}
}

// deleteHoldBack is how long a delete batch that is not full may wait for
// more: at most maxDeleteHoldBack, and a quarter of the visibility timeout
// asked for on receive, so that a message whose extension was not due is
// deleted well before it would be visible again.
func (k *queueKeeper) deleteHoldBack() time.Duration {
	return min(maxDeleteHoldBack, k.c.opts.ReceiveVisibilityTimeout/4)
}

// holdBackLocked reports whether the deletes of a batch that is not full
// should wait for more: while the messages held could fill the batch and
// its oldest has waited less than deleteHoldBack. It returns when they are
// due. Callers hold k.mu.
func (k *queueKeeper) holdBackLocked(batch []*message, now time.Time) (time.Time, bool) {
	held := 0
	for _, m := range k.msgs {
		if m.state == msgHeld {
			held++
		}
	}
	if held < maxBatch-len(batch) {
		return time.Time{}, false
	}
	oldest := batch[0].deleteQueuedAt
	for _, m := range batch {
		if m.deleteQueuedAt.Before(oldest) {
			oldest = m.deleteQueuedAt
		}
	}
	until := oldest.Add(k.deleteHoldBack())
	return until, now.Before(until)
}

// flush deletes, releases and extends what is due, in batches, up to
// maxDeletesInFlight delete batches at once. Unless final, a delete batch
// that is not full may be held back (holdBackLocked); flush then returns
// when it is due, else the zero time.
func (k *queueKeeper) flush(ctx context.Context, final bool) time.Time {
	var holdUntil time.Time
	for ctx.Err() == nil {
		now := k.c.opts.Clock.Now()
		k.mu.Lock()
		var delBatches [][]*message
		var dels, rels []*message
		rest := k.queued[:0]
		for _, m := range k.queued {
			switch {
			case m.state == msgDeleting && len(delBatches) < maxDeletesInFlight:
				dels = append(dels, m)
				if len(dels) == maxBatch {
					delBatches, dels = append(delBatches, dels), nil
				}
			case m.state == msgReleasing && len(rels) < maxBatch:
				rels = append(rels, m)
			default:
				rest = append(rest, m)
			}
		}
		holdUntil = time.Time{}
		if len(dels) > 0 {
			if until, hold := k.holdBackLocked(dels, now); hold && !final {
				rest, holdUntil = append(rest, dels...), until
			} else {
				delBatches = append(delBatches, dels)
			}
		}
		k.queued = rest
		k.mu.Unlock()
		if len(delBatches) == 0 && len(rels) == 0 {
			break
		}
		var wg sync.WaitGroup
		for _, b := range delBatches[min(1, len(delBatches)):] {
			wg.Go(func() { k.deleteBatch(ctx, b) })
		}
		if len(delBatches) > 0 {
			k.deleteBatch(ctx, delBatches[0])
		}
		if len(rels) > 0 {
			k.changeBatch(ctx, rels, nil)
		}
		wg.Wait()
	}
	now := k.c.opts.Clock.Now()
	k.mu.Lock()
	var due []*message
	for _, m := range k.msgs {
		if m.state != msgHeld || m.noExtend || now.Before(m.extendAt) {
			continue
		}
		if extensionAt(m, now, k.c.opts.VisibilityTimeout) <= 0 {
			m.noExtend = true
			k.events = append(k.events, Event{Type: EventQueueError, Op: changeOp, MessageID: m.id,
				Err: errVisibilityLimit})
			continue
		}
		due = append(due, m)
	}
	k.mu.Unlock()
	for len(due) > 0 && ctx.Err() == nil {
		n := min(len(due), maxBatch)
		k.changeBatch(ctx, due[:n], &now)
		due = due[n:]
	}
	k.emitQueued()
	return holdUntil
}

func (k *queueKeeper) emitQueued() {
	k.mu.Lock()
	evs := k.events
	k.events = nil
	k.mu.Unlock()
	for _, ev := range evs {
		k.c.obs.emit(context.Background(), ev)
	}
}

// deleteBatch deletes up to ten messages. What fails transiently is queued
// again, up to maxDeleteAttempts; every failure is reported.
func (k *queueKeeper) deleteBatch(ctx context.Context, ms []*message) {
	entries := make([]sqstypes.DeleteMessageBatchRequestEntry, len(ms))
	for i, m := range ms {
		entries[i] = sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), ReceiptHandle: aws.String(m.handle)}
	}
	out, err := k.c.queue.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{
		QueueUrl: aws.String(k.c.queueURL), Entries: entries}, k.c.opts.ClientOptions...)
	if err == nil && out == nil {
		err = errors.New("the SQS client returned no output and no error")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if err != nil {
		cerr := classify(err, "")
		for _, m := range ms {
			k.deleteFailedLocked(m, cerr, true)
		}
		return
	}
	for _, s := range out.Successful {
		if i, ok := batchIndex(s.Id, len(ms)); ok && ms[i] != nil {
			delete(k.msgs, ms[i].key)
			ms[i] = nil
		}
	}
	for _, f := range out.Failed {
		if i, ok := batchIndex(f.Id, len(ms)); ok && ms[i] != nil {
			k.deleteFailedLocked(ms[i], batchEntryError(deleteOp, f), !f.SenderFault)
			ms[i] = nil
		}
	}
	for _, m := range ms {
		if m != nil {
			// Neither successful nor failed: SQS did not say; try again.
			k.deleteFailedLocked(m, errors.New("the batch result does not mention the message"), true)
		}
	}
}

// deleteFailedLocked queues a failed delete again when it may succeed
// later, or gives the message up: it becomes visible when its visibility
// timeout ends, is delivered again and is then found answered.
func (k *queueKeeper) deleteFailedLocked(m *message, err error, transient bool) {
	m.deleteAttempts++
	if transient && m.deleteAttempts < maxDeleteAttempts {
		k.queued = append(k.queued, m)
	} else {
		delete(k.msgs, m.key)
	}
	k.events = append(k.events, Event{Type: EventQueueError, Op: deleteOp, MessageID: m.id, Attempt: m.deleteAttempts, Err: err})
}

// changeBatch changes the visibility of up to ten messages: releasing ones
// to their delay (extendNow nil), or held ones extended by the visibility
// timeout at *extendNow. A release that fails is given up and reported: the
// message becomes visible when its visibility timeout ends.
func (k *queueKeeper) changeBatch(ctx context.Context, ms []*message, extendNow *time.Time) {
	entries := make([]sqstypes.ChangeMessageVisibilityBatchRequestEntry, len(ms))
	for i, m := range ms {
		var timeout int32
		if extendNow == nil {
			timeout = int32(m.delay / time.Second)
		} else {
			timeout = int32(extensionAt(m, *extendNow, k.c.opts.VisibilityTimeout) / time.Second)
		}
		entries[i] = sqstypes.ChangeMessageVisibilityBatchRequestEntry{Id: aws.String(strconv.Itoa(i)),
			ReceiptHandle: aws.String(m.handle), VisibilityTimeout: timeout}
	}
	out, err := k.c.queue.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{
		QueueUrl: aws.String(k.c.queueURL), Entries: entries}, k.c.opts.ClientOptions...)
	if err == nil && out == nil {
		err = errors.New("the SQS client returned no output and no error")
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	failed := make([]error, len(ms))
	if err != nil {
		cerr := classify(err, "")
		for i := range failed {
			failed[i] = cerr
		}
	} else {
		for _, f := range out.Failed {
			if i, ok := batchIndex(f.Id, len(ms)); ok {
				failed[i] = batchEntryError(changeOp, f)
			}
		}
	}
	for i, m := range ms {
		if failed[i] != nil {
			k.events = append(k.events, Event{Type: EventQueueError, Op: changeOp, MessageID: m.id, Err: failed[i]})
		}
		switch {
		case extendNow == nil:
			delete(k.msgs, m.key) // released, or given up
		case failed[i] == nil:
			m.extendAt = extendNow.Add(k.c.opts.VisibilityTimeout / 2)
		case err == nil:
			// SQS refused this entry (its handle expired, the message is
			// no longer in flight, or the limit is reached): asking again
			// every tick would only fail again. A newer receive of the
			// message extends it again.
			m.noExtend = true
		}
	}
}

// errVisibilityLimit reports a held message whose visibility cannot be
// extended any more: SQS makes it visible again 12 hours after its receive,
// even while its handler runs.
var errVisibilityLimit = errors.New("the message reached SQS's limit of 12 hours of visibility from its receive: " +
	"it becomes visible again while its handler runs")

// extensionAt is the visibility timeout of an extension of m made at now:
// the visibility timeout, cut so that it ends no later than 12 hours after
// the receive, in whole seconds; 0 when no time is left.
func extensionAt(m *message, now time.Time, visibility time.Duration) time.Duration {
	left := maxVisibility - now.Sub(m.receivedAt)
	return min(visibility, left).Truncate(time.Second)
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
