package pipelinestop_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// SQS ends a message's visibility at most 12 hours after the receive (the
// emulator enforces it). A handler that runs longer cannot keep its
// message: the Consumer should stop extending once the limit is reached
// instead of calling ChangeMessageVisibility on every tick for as long as
// the handler runs.
//
// Found by the strict emulator: with VisibilityTimeout 1 h the extensions
// at 11h30 and 11h45 fail with InvalidParameterValue ("Total
// VisibilityTimeout for the message is beyond the limit [43200 seconds]"),
// then every tick (VisibilityTimeout/4) fails with MessageNotInflight and
// emits an EventQueueError, and the message is visible again at 12 h while
// its handler still runs.
func TestConsumerStopsExtendingAtTheVisibilityLimit(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	clk := fakeclock.NewManual(time.Now())
	em.SetSQSClock(clk.Now)
	url, err := em.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := em.CreatePipeline("p", emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: url})); err != nil {
		t.Fatal(err)
	}
	arn, err := em.StartExecution("p")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	failed, atLimit := 0, 0
	started := make(chan struct{}, 1)
	queue := &extensionsDone{QueueAPIClient: em.SQSClient(), done: make(chan struct{}, 64)}
	c, err := pipelinestop.NewConsumer(queue, url, pipelinestop.NewAcknowledger(em.SageMakerClient()), pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			started <- struct{}{}
			<-ctx.Done() // a job longer than 12 hours
			return nil, ctx.Err()
		},
	}, func(o *pipelinestop.ConsumerOptions) {
		o.Concurrency = 1
		o.WaitTimeSeconds = 1
		o.VisibilityTimeout = time.Hour
		// Received with the hour too: the steps below jump 30 minutes,
		// past a short receive visibility's first extension.
		o.ReceiveVisibilityTimeout = -1
		o.Clock = clk
		o.DrainTimeout = -1
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type == pipelinestop.EventQueueError && ev.Op == "ChangeMessageVisibilityBatch" {
				mu.Lock()
				if strings.Contains(ev.Err.Error(), "12 hours") {
					atLimit++
				} else {
					failed++
				}
				mu.Unlock()
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-started:
	case <-ctx.Done():
		t.Fatal("the handler never started")
	}

	// 16 hours in steps of 30 minutes (half the visibility timeout: one
	// extension due per step). Up to 11h30 each step waits until its
	// extension call has returned (the SQS clock must not move while the
	// emulator handles it); the last one is cut to end at 12 hours, after
	// which no call may be made.
	for step := 1; step <= 32; step++ {
		if !clk.WaitForWaiter(5 * time.Second) {
			t.Fatalf("step %d: the Consumer set no timer", step)
		}
		clk.Advance(30 * time.Minute)
		if step <= 23 {
			select {
			case <-queue.done:
			case <-ctx.Done():
				t.Fatalf("step %d: no extension call returned", step)
			}
		}
	}
	// Let a late tick show itself: wait for the Consumer's next timer.
	clk.WaitForWaiter(5 * time.Second)
	mu.Lock()
	defer mu.Unlock()
	if failed > 0 {
		t.Fatalf("%d failed visibility extensions; want none (the last one ends at the 12-hour limit, then none are made)", failed)
	}
	if n := em.Requests("ChangeMessageVisibilityBatch"); n != 23 {
		t.Errorf("%d extension calls; want 23 (every 30 minutes up to 11h30)", n)
	}
	if atLimit != 1 {
		t.Errorf("%d events about the 12-hour limit; want 1", atLimit)
	}
}

// extensionsDone is the emulator's real SQS client, which signals done each
// time a ChangeMessageVisibilityBatch call has returned.
type extensionsDone struct {
	pipelinestop.QueueAPIClient
	done chan struct{}
}

func (q *extensionsDone) ChangeMessageVisibilityBatch(ctx context.Context, in *sqs.ChangeMessageVisibilityBatchInput, optFns ...func(*sqs.Options)) (*sqs.ChangeMessageVisibilityBatchOutput, error) {
	out, err := q.QueueAPIClient.ChangeMessageVisibilityBatch(ctx, in, optFns...)
	q.done <- struct{}{}
	return out, err
}
