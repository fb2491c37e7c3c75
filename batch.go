package pipelinestop

// TEMP stub of the core batch API (drop at merge): a simplified stand-in
// for the lead's batch.go, written from /work/notes/batch_api.md so that the
// Lambda adapter compiles and its tests run. It is not the real
// implementation and is to be dropped when batch.go lands.

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
)

// ErrDeadline is the cause of a handler's cancellation when the batch's
// deadline (minus the margin) passed.
var ErrDeadline = errors.New("pipelinestop: the batch's deadline passed")

// DefaultDeadlineMargin is the time kept before the batch deadline to answer.
const DefaultDeadlineMargin = 2 * time.Second

// BatchMessage is one SQS message handed to BatchHandler.HandleBatch.
type BatchMessage struct {
	ID           string
	Body         string
	ReceiveCount int
}

// Disposition says what should become of a message.
type Disposition int

// Dispositions.
const (
	DispositionDelete Disposition = iota + 1
	DispositionRetryLater
	DispositionRetryNow
)

// MessageOutcome is what HandleBatch decided for one message.
type MessageOutcome struct {
	ID          string
	Disposition Disposition
	Delay       time.Duration
	Err         error
}

// BatchHandler answers callback steps for messages the caller received itself.
type BatchHandler struct {
	ack      *Acknowledger
	handler  Handler
	opts     ConsumerOptions
	mu       sync.Mutex
	answered map[CallbackToken]bool
}

// NewBatchHandler returns a BatchHandler.
func NewBatchHandler(ack *Acknowledger, handler Handler, optFns ...func(*ConsumerOptions)) (*BatchHandler, error) {
	if ack == nil || handler.Execute == nil {
		return nil, fmt.Errorf("%w: nil acknowledger or Execute", ErrInvalidConsumer)
	}
	var o ConsumerOptions
	for _, fn := range optFns {
		fn(&o)
	}
	o = o.withDefaults(ack.options(nil))
	return &BatchHandler{ack: ack, handler: handler, opts: o, answered: map[CallbackToken]bool{}}, nil
}

// HandleBatch handles msgs and returns one outcome per message.
func (b *BatchHandler) HandleBatch(ctx context.Context, msgs []BatchMessage) []MessageOutcome {
	work, cancel := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancel(nil)
	if dl, ok := ctx.Deadline(); ok {
		t := time.AfterFunc(time.Until(dl.Add(-DefaultDeadlineMargin)), func() { cancel(ErrDeadline) })
		defer t.Stop()
	}
	out := make([]MessageOutcome, len(msgs))
	type group struct {
		idx  []int
		msgs []*CallbackMessage
	}
	groups := map[CallbackToken]*group{}
	var order []CallbackToken
	byID := map[string]int{}
	for i, m := range msgs {
		out[i].ID = m.ID
		if j, dup := byID[m.ID]; dup {
			out[i].Disposition = -Disposition(j + 1) // filled from j later
			continue
		}
		byID[m.ID] = i
		cm, err := ParseCallbackMessage(m.Body)
		if err != nil {
			if b.opts.DeleteMalformed {
				out[i].Disposition = DispositionDelete
			} else {
				out[i] = MessageOutcome{ID: m.ID, Disposition: DispositionRetryLater, Delay: b.opts.retryLaterDelay(m.ReceiveCount), Err: err}
			}
			continue
		}
		g := groups[cm.Token]
		if g == nil {
			g = &group{}
			groups[cm.Token] = g
			order = append(order, cm.Token)
		}
		g.idx = append(g.idx, i)
		g.msgs = append(g.msgs, cm)
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, b.opts.Concurrency)
	for _, tok := range order {
		g := groups[tok]
		set := func(d Disposition, err error) {
			for _, i := range g.idx {
				out[i] = MessageOutcome{ID: msgs[i].ID, Disposition: d, Err: err}
				if d == DispositionRetryLater {
					out[i].Delay = b.opts.retryLaterDelay(msgs[i].ReceiveCount)
				}
			}
		}
		if work.Err() != nil {
			set(DispositionRetryNow, context.Cause(work))
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if work.Err() != nil {
				set(DispositionRetryNow, context.Cause(work))
				return
			}
			var stop *CallbackMessage
			for _, m := range g.msgs {
				if m.IsStopping() {
					stop = m
				}
			}
			if stop != nil {
				_, err := b.ack.AckStopping(work, stop, b.handler.Cleanup)
				b.finish(tok, err, set, work)
				return
			}
			b.mu.Lock()
			done := b.answered[tok]
			b.mu.Unlock()
			if done {
				set(DispositionDelete, nil)
				return
			}
			var outputs map[string]string
			err := callRecover(func() error {
				var err error
				outputs, err = b.handler.Execute(work, g.msgs[0])
				return err
			})
			var pe *PanicError
			switch {
			case work.Err() != nil && !errors.As(err, &pe):
				set(DispositionRetryNow, context.Cause(work))
			case errors.Is(err, ErrPending):
				set(DispositionDelete, nil)
			case errors.Is(err, ErrRetryLater):
				set(DispositionRetryLater, err)
			case err != nil:
				b.finish(tok, b.ack.Fail(work, tok, FailureReason(tok.redactSecrets(err.Error()))), set, work)
			default:
				b.finish(tok, b.ack.Succeed(work, tok, outputs), set, work)
			}
		}()
	}
	wg.Wait()
	for i := range out {
		if d := out[i].Disposition; d < 0 {
			j := int(-d) - 1
			out[i] = out[j]
			out[i].ID = msgs[i].ID
		}
	}
	return out
}

func (b *BatchHandler) finish(tok CallbackToken, err error, set func(Disposition, error), work context.Context) {
	if answeredOrGone(err) {
		b.mu.Lock()
		b.answered[tok] = true
		b.mu.Unlock()
		set(DispositionDelete, nil)
		return
	}
	if work.Err() != nil {
		set(DispositionRetryNow, err)
		return
	}
	set(DispositionRetryLater, err)
}
