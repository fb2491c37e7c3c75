package pipelinestop_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/aws/smithy-go"

	"github.com/pipelinestop/pipelinestop"
)

// This file tests how the Consumer receives (issue 14): ahead of its
// handlers, with more than one receive in flight when one cannot feed
// them, deletes held back for full batches, and FIFO receive attempt IDs.

// gatedHandler runs Execute until the test releases the message's token;
// started counts the Executes begun.
type gatedHandler struct {
	mu      sync.Mutex
	started int
	gates   map[string]chan struct{}
}

func newGatedHandler() *gatedHandler { return &gatedHandler{gates: map[string]chan struct{}{}} }

func (g *gatedHandler) gate(token string) chan struct{} {
	g.mu.Lock()
	defer g.mu.Unlock()
	c := g.gates[token]
	if c == nil {
		c = make(chan struct{})
		g.gates[token] = c
	}
	return c
}

func (g *gatedHandler) handler() pipelinestop.Handler {
	return pipelinestop.Handler{Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
		g.mu.Lock()
		g.started++
		g.mu.Unlock()
		select {
		case <-g.gate(string(m.Token)):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return nil, nil
	}}
}

func (g *gatedHandler) release(token string) { close(g.gate(token)) }

func (g *gatedHandler) startedCount() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.started
}

// gatedToken is the i-th test token (10 alphanumeric characters).
func gatedToken(i int) string { return fmt.Sprintf("tok%07d", i) }

// gatedMsgs returns Executing messages for tokens from to to-1.
func gatedMsgs(from, to int) []sqstypes.Message {
	var out []sqstypes.Message
	for i := from; i < to; i++ {
		out = append(out, sqsMsg(fmt.Sprintf("m%d", i), cbMsgBody(gatedToken(i), "Executing"), 1))
	}
	return out
}

func (q *fakeQueue) counts() (active, maxActive, queued int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.active, q.maxActive, len(q.batches)
}

// TestConsumerReceivesAhead checks that the Consumer receives while every
// handler slot is busy, so that a freed slot finds a message at once.
// Before issue 14 it received only when a slot was free: each cycle was a
// receive, then the handlers' work.
func TestConsumerReceivesAhead(t *testing.T) {
	g := newGatedHandler()
	hs := newHarness(t, g.handler(), func(o *pipelinestop.ConsumerOptions) { o.Concurrency = 2 })
	hs.q.push(gatedMsgs(0, 2)...)
	hs.start()
	eventually(t, "both handlers running", func() bool { return g.startedCount() == 2 })
	// Both slots are busy: a receive is out all the same, and takes the
	// next messages into the buffer.
	eventually(t, "a receive while every slot is busy", func() bool {
		active, _, _ := hs.q.counts()
		return active == 1
	})
	hs.q.push(gatedMsgs(2, 4)...)
	eventually(t, "the next messages received while every slot is busy", func() bool {
		_, _, queued := hs.q.counts()
		return queued == 0
	})
	if n := g.startedCount(); n != 2 {
		t.Fatalf("%d handlers started; want 2 (the limit)", n)
	}
	// A freed slot takes a buffered message without another receive.
	g.release(gatedToken(0))
	eventually(t, "a buffered message started", func() bool { return g.startedCount() == 3 })
	for i := 1; i < 4; i++ {
		g.release(gatedToken(i))
	}
	hs.waitDeleted("h-m0", "h-m1", "h-m2", "h-m3")
	if err := hs.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConsumerReceivesInParallel checks that more than one receive is in
// flight when the queue has a backlog (a receive came back full) and the
// handlers have room for more than one receive's messages: one receive
// loop, ten messages a round trip, cannot feed many handlers.
func TestConsumerReceivesInParallel(t *testing.T) {
	g := newGatedHandler()
	hs := newHarness(t, g.handler(), func(o *pipelinestop.ConsumerOptions) { o.Concurrency = 50 })
	hs.q.push(gatedMsgs(0, 10)...)
	hs.start()
	eventually(t, "ten handlers running", func() bool { return g.startedCount() == 10 })
	eventually(t, "receives in parallel", func() bool {
		active, _, _ := hs.q.counts()
		return active >= 2
	})
	for i := range 10 {
		g.release(gatedToken(i))
	}
	hs.waitDeleted("h-m0", "h-m9")
	if err := hs.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
}

// TestConsumerHoldsBackPartialDeletes checks that deletes go in full
// batches while the messages held could fill them, and that a batch that
// is not full waits at most a second (by the Consumer's clock). Before
// issue 14 a delete was sent whenever a handler finished: batches of one
// to five, one call per message at one handler.
func TestConsumerHoldsBackPartialDeletes(t *testing.T) {
	g := newGatedHandler()
	hs := newHarness(t, g.handler(), func(o *pipelinestop.ConsumerOptions) { o.Concurrency = 25 })
	hs.q.push(gatedMsgs(0, 10)...)
	hs.q.push(gatedMsgs(10, 20)...)
	hs.q.push(gatedMsgs(20, 25)...)
	hs.start()
	eventually(t, "25 handlers running", func() bool { return g.startedCount() == 25 })
	delCalls := func() [][]string {
		hs.q.mu.Lock()
		defer hs.q.mu.Unlock()
		return slices.Clone(hs.q.delCalls)
	}
	for i := range 10 {
		g.release(gatedToken(i))
		eventually(t, "an answer", func() bool { return len(hs.sm.get(gatedToken(i))) == 1 })
		if i < 9 && len(delCalls()) > 0 {
			t.Fatalf("a delete of %d message(s) while 15 more were held; want a full batch", len(delCalls()[0]))
		}
	}
	hs.waitDeleted("h-m0", "h-m9")
	if calls := delCalls(); len(calls) != 1 || len(calls[0]) != 10 {
		t.Fatalf("delete calls %v; want one of ten", calls)
	}
	// One more: held back while 14 are held, for at most a second.
	g.release(gatedToken(10))
	eventually(t, "an answer", func() bool { return len(hs.sm.get(gatedToken(10))) == 1 })
	for i := 0; i < 100 && len(delCalls()) == 1; i++ {
		hs.clock.Advance(50 * time.Millisecond)
		time.Sleep(time.Millisecond)
	}
	if calls := delCalls(); len(calls) != 2 || !slices.Equal(calls[1], []string{"h-m10"}) {
		t.Fatalf("delete calls %v; want a second one of h-m10 once the hold-back passed", calls)
	}
	for i := 11; i < 25; i++ {
		g.release(gatedToken(i))
	}
	hs.waitDeleted("h-m11", "h-m24")
	if err := hs.stop(); err != nil {
		t.Errorf("Run: %v", err)
	}
	for _, c := range delCalls() {
		if len(c) > 10 {
			t.Errorf("a delete call of %d entries; SQS takes at most 10", len(c))
		}
	}
}

// TestConsumerFIFOReceiveAttemptID checks that on a FIFO queue the
// attempts of one receive share a ReceiveRequestAttemptId (so that SQS
// answers a retried receive whose answer was lost with the same
// messages), that the next receive has another, and that a standard queue
// gets none.
func TestConsumerFIFOReceiveAttemptID(t *testing.T) {
	for _, tc := range []struct {
		url  string
		fifo bool
	}{{cbQueueURL + ".fifo", true}, {cbQueueURL, false}} {
		t.Run(fmt.Sprint("fifo=", tc.fifo), func(t *testing.T) {
			g := newGatedHandler()
			hs := newHarnessAt(t, tc.url, g.handler())
			failed := false
			hs.q.receiveErr = func() error {
				if failed {
					return nil
				}
				failed = true
				return throttled()
			}
			hs.q.push(gatedMsgs(0, 1)...)
			hs.start()
			for i := 0; i < 200 && g.startedCount() == 0; i++ {
				hs.clock.Advance(100 * time.Millisecond) // the retry's backoff
				time.Sleep(time.Millisecond)
			}
			g.release(gatedToken(0))
			eventually(t, "a receive after the message", func() bool {
				hs.q.mu.Lock()
				defer hs.q.mu.Unlock()
				return len(hs.q.attemptIDs) >= 3
			})
			if err := hs.stop(); err != nil {
				t.Errorf("Run: %v", err)
			}
			hs.q.mu.Lock()
			ids := slices.Clone(hs.q.attemptIDs)
			hs.q.mu.Unlock()
			if !tc.fifo {
				for _, id := range ids {
					if id != "" {
						t.Fatalf("attempt IDs %q on a standard queue; want none", ids)
					}
				}
				return
			}
			if ids[0] == "" || ids[1] != ids[0] || ids[2] == ids[0] || ids[2] == "" {
				t.Fatalf("attempt IDs %q; want the first two (a receive and its retry) equal, the third another", ids)
			}
		})
	}
}

// throttled is a receive's throttling error, which the Consumer retries.
func throttled() error {
	return &smithy.OperationError{ServiceID: "SQS", OperationName: "ReceiveMessage",
		Err: &smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}}
}
