package pipelinestop_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

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
	t.Skip("known Consumer defect, reported to the lead with the consumer rewrite: extensions go on failing every tick after SQS's 12-hour visibility limit")
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
	failed := 0
	started := make(chan struct{}, 1)
	c, err := pipelinestop.NewConsumer(em.SQSClient(), url, pipelinestop.NewAcknowledger(em.SageMakerClient()), pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			started <- struct{}{}
			<-ctx.Done() // a job longer than 12 hours
			return nil, ctx.Err()
		},
	}, func(o *pipelinestop.ConsumerOptions) {
		o.Concurrency = 1
		o.WaitTimeSeconds = 1
		o.VisibilityTimeout = time.Hour
		o.Clock = clk
		o.DrainTimeout = -1
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type == pipelinestop.EventQueueError && ev.Op == "ChangeMessageVisibilityBatch" {
				mu.Lock()
				failed++
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
	// extension due per step), waiting after each for the extension call,
	// at most 2 s of real time per step.
	for step := 1; step <= 32; step++ {
		if !clk.WaitForWaiter(5 * time.Second) {
			t.Fatalf("step %d: the Consumer set no timer", step)
		}
		before := em.Requests("ChangeMessageVisibilityBatch")
		clk.Advance(30 * time.Minute)
		for i := 0; i < 200 && em.Requests("ChangeMessageVisibilityBatch") == before; i++ {
			time.Sleep(10 * time.Millisecond)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if failed > 1 {
		t.Fatalf("%d failed visibility extensions after the 12-hour limit; want at most 1 (stop extending once SQS refuses)", failed)
	}
}
