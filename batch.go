package pipelinestop

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// BatchMessage is one SQS message handed to BatchHandler.HandleBatch by a
// caller that received it itself, such as a Lambda function with the
// callback queue as its event source.
type BatchMessage struct {
	// ID is the SQS message ID (in a Lambda event, messageId). Outcomes
	// are reported by it; it must not be empty.
	ID string
	// Body is the message body.
	Body string
	// ReceiveCount is the message's ApproximateReceiveCount, or 0 when not
	// known; the retry-later delay grows with it.
	ReceiveCount int
}

// Disposition says what should become of a message after HandleBatch.
type Disposition int

// Dispositions of a message.
const (
	// DispositionDelete: the message is done with (its step is answered,
	// answered elsewhere, or gone; or it was malformed and
	// ConsumerOptions.DeleteMalformed is set): delete it. In a Lambda
	// function, a success.
	DispositionDelete Disposition = iota + 1
	// DispositionRetryLater: the message could not be finished (a
	// transient handler error, a failed answer, a malformed body): make it
	// visible again after MessageOutcome.Delay. In a Lambda function, a
	// batch item failure.
	DispositionRetryLater
	// DispositionRetryNow: the message was not handled (the deadline came
	// first): make it visible again at once. In a Lambda function, a batch
	// item failure.
	DispositionRetryNow
)

// String returns "delete", "retry later" or "retry now".
func (d Disposition) String() string {
	switch d {
	case DispositionDelete:
		return "delete"
	case DispositionRetryLater:
		return "retry later"
	case DispositionRetryNow:
		return "retry now"
	}
	return fmt.Sprintf("Disposition(%d)", int(d))
}

// MessageOutcome is what HandleBatch decided for one message.
type MessageOutcome struct {
	// ID is the message's ID, as given.
	ID string
	// Disposition is what should become of the message.
	Disposition Disposition
	// Delay is, for DispositionRetryLater, the delay a Consumer would
	// set: ConsumerOptions.RetryLaterMinDelay doubled for each earlier
	// receive, capped.
	Delay time.Duration
	// Err says why the message is not deleted; nil for a delete. Its text
	// holds no callback token or credentials.
	Err error
}

// BatchHandler answers callback steps for messages that the caller
// received itself, with exactly the Consumer's rules (see Consumer): the
// same per-token state machine decides, so both messages of one token in
// a batch get one answer, by the stop, and Execute is not run; duplicates
// are answered once; ErrPending, RetryLater, panics and failed answers
// are handled alike. It makes no SQS call: the caller deletes or hands
// back each message as its outcome says (a Lambda function reports the
// messages not to delete as batch item failures).
//
// A BatchHandler remembers answered tokens across batches (the last few
// thousand), so a late duplicate in a later batch of the same process,
// such as a warm Lambda container, is deleted without running the handler.
// It is safe for concurrent use; concurrent HandleBatch calls run one after
// the other.
type BatchHandler struct {
	c *Consumer

	mu     sync.Mutex
	memory *tokenMemorySet
}

// NewBatchHandler returns a BatchHandler that answers through ack. Of the
// options it uses Concurrency (the handlers run at once within a batch),
// RetryLaterMinDelay and RetryLaterMaxDelay, DeleteMalformed,
// DeadlineMargin, OnEvent, Logger and Clock. The error matches
// ErrInvalidConsumer when ack or handler.Execute is nil.
func NewBatchHandler(ack *Acknowledger, handler Handler, optFns ...func(*ConsumerOptions)) (*BatchHandler, error) {
	c, err := newHandling(ack, handler, optFns)
	if err != nil {
		return nil, err
	}
	return &BatchHandler{c: c, memory: newTokenMemorySet(answeredMemory)}, nil
}

// HandleBatch handles msgs and returns one outcome per message, in the
// order given. A message with an ID seen earlier in the batch is the same
// message and gets the same outcome; an empty ID gets DispositionRetryNow
// and an error.
//
// ctx's deadline bounds the batch: no work starts later than
// ConsumerOptions.DeadlineMargin before it (or half the time left, when that
// is less: a function whose timeout is shorter than the margin still gets
// to work), running handlers are canceled then (context.Cause is
// ErrDeadline), and what was not finished comes back as
// DispositionRetryNow. HandleBatch returns after every handler it
// started has returned, so handlers must honour their context.
func (b *BatchHandler) HandleBatch(ctx context.Context, msgs []BatchMessage) []MessageOutcome {
	out := make([]MessageOutcome, len(msgs))
	if b == nil || b.c == nil {
		for i, m := range msgs {
			out[i] = MessageOutcome{ID: m.ID, Disposition: DispositionRetryNow,
				Err: fmt.Errorf("%w: the BatchHandler was not made by NewBatchHandler", ErrInvalidConsumer)}
		}
		return out
	}
	book := &batchBook{outcomes: map[string]*MessageOutcome{}, opts: &b.c.opts}
	r := newRun(ctx, b.c, book)
	defer r.cancelWork(ErrDeadline)
	// The memory of answered tokens outlives the batch: take it for the
	// batch (one batch at a time uses it) and give it back.
	b.mu.Lock()
	defer b.mu.Unlock()
	r.memory = b.memory

	sms := make([]sqstypes.Message, 0, len(msgs))
	for _, m := range msgs {
		if m.ID == "" {
			continue
		}
		sms = append(sms, sqstypes.Message{MessageId: aws.String(m.ID), ReceiptHandle: aws.String(m.ID),
			Body: aws.String(m.Body), Attributes: map[string]string{
				string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount): strconv.Itoa(m.ReceiveCount)}})
	}
	r.dispatch(sms)

	done := make(chan struct{})
	go func() {
		r.wg.Wait()
		close(done)
	}()
	var cut <-chan time.Time
	if dl, ok := ctx.Deadline(); ok {
		// The deadline is wall-clock time; the wait is on the Clock, so
		// that tests can move it.
		// The margin is at most half the time left, so that a function
		// whose timeout is shorter than DeadlineMargin still works.
		left := time.Until(dl)
		cut = b.c.opts.Clock.After(max(left-min(b.c.opts.DeadlineMargin, left/2), 0))
	}
	select {
	case <-done:
	case <-cut:
	case <-ctx.Done():
	}
	r.shutdown() // queued work never starts
	r.cancelWork(ErrDeadline)
	<-done

	for i, m := range msgs {
		o := book.outcomes[m.ID]
		switch {
		case m.ID == "":
			out[i] = MessageOutcome{Disposition: DispositionRetryNow, Err: fmt.Errorf("%w: the message has no ID", ErrInvalidCallback)}
		case o == nil:
			// Not handled: the deadline came before its turn.
			out[i] = MessageOutcome{ID: m.ID, Disposition: DispositionRetryNow, Err: ErrDeadline}
		default:
			out[i] = *o
		}
	}
	return out
}

// batchBook records the dispositions of a batch's messages: the
// BatchHandler's owner of their SQS side, which the caller carries out.
type batchBook struct {
	opts     *ConsumerOptions
	counts   map[string]int
	outcomes map[string]*MessageOutcome
}

func (b *batchBook) take(sm sqstypes.Message, _ time.Time) (string, bool) {
	id := aws.ToString(sm.MessageId)
	if b.counts == nil {
		b.counts = map[string]int{}
	}
	if _, seen := b.counts[id]; seen {
		return id, false
	}
	b.counts[id], _ = strconv.Atoi(sm.Attributes[string(sqstypes.MessageSystemAttributeNameApproximateReceiveCount)])
	return id, true
}

func (b *batchBook) dispose(keys []string, d disposition, reason error) []disposed {
	out := make([]disposed, 0, len(keys))
	for _, id := range keys {
		if b.outcomes[id] != nil {
			continue
		}
		o := &MessageOutcome{ID: id}
		switch d {
		case dispDelete:
			o.Disposition = DispositionDelete
		case dispVisibleLater:
			o.Disposition, o.Delay, o.Err = DispositionRetryLater, b.opts.retryLaterDelay(b.counts[id]), reason
		default:
			o.Disposition, o.Err = DispositionRetryNow, reason
		}
		if o.Disposition != DispositionDelete && o.Err == nil {
			o.Err = ErrDeadline
		}
		b.outcomes[id] = o
		out = append(out, disposed{id: id, delay: o.Delay})
	}
	return out
}
