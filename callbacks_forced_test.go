package pipelinestop_test

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// TestStopAndWaitAnswersCallbacks: an execution held by a callback step
// that nobody answers (its consumer is down) ends Stopped when the wait
// answers the step itself after the grace period, once, with a failure.
func TestStopAndWaitAnswersCallbacks(t *testing.T) {
	em, arn, token := callbackExecution(t, "forced")
	ctx := testCtx(t, 20*time.Second)
	s := pipelinestop.New(em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) {
		o.Callbacks, o.CallbackGrace = pipelinestop.CallbackFail, 200*time.Millisecond
	})
	out, err := s.StopAndWait(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != types.PipelineExecutionStatusStopped || len(out.Answered) != 1 || out.Answered[0].Name != "Approve" {
		t.Fatalf("outcome %+v: want Stopped with Approve answered", out)
	}
	answers := em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeFailure || answers[0].FailureReason == "" {
		t.Fatalf("answers %+v: want one failure", answers)
	}
}

// TestStopAndWaitLeavesAnsweredCallbacks: a consumer that answers within
// the grace period wins; the wait answers nothing, so the step is never
// answered both ways.
func TestStopAndWaitLeavesAnsweredCallbacks(t *testing.T) {
	em, arn, token := callbackExecution(t, "answered")
	ctx := testCtx(t, 20*time.Second)
	clock := fakeclock.NewManual(time.Unix(1000, 0))
	stopping := make(chan struct{})
	s := pipelinestop.New(em.SageMakerClient(), func(o *pipelinestop.Options) {
		o.Callbacks, o.CallbackGrace, o.Clock = pipelinestop.CallbackFail, 30*time.Second, clock
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type == pipelinestop.EventStatus && ev.Status == types.PipelineExecutionStatusStopping {
				close(stopping)
			}
		}
	})
	res := make(chan *pipelinestop.Outcome, 1)
	go func() {
		out, err := s.StopAndWait(ctx, arn)
		if err != nil {
			t.Error(err)
		}
		res <- out
	}()
	select {
	case <-stopping:
	case <-ctx.Done():
		t.Fatal("the wait never saw Stopping")
	}
	// The real consumer answers within the grace period.
	if err := pipelinestop.NewAcknowledger(em.SageMakerClient()).Succeed(ctx, pipelinestop.CallbackToken(token), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := em.WaitExecutionStatus(ctx, arn, "Stopped"); err != nil {
		t.Fatal(err)
	}
	// Move the wait's clock past the grace period until it returns.
	for {
		select {
		case out := <-res:
			if out.Status != types.PipelineExecutionStatusStopped || len(out.Answered) != 0 {
				t.Fatalf("outcome %+v: want Stopped, nothing answered by the wait", out)
			}
			if a := em.Answers(token); len(a) != 1 || a[0].Outcome != emulator.OutcomeSuccess {
				t.Fatalf("answers %+v: want the consumer's success only", a)
			}
			return
		case <-ctx.Done():
			t.Fatal("the wait did not return")
		case <-time.After(5 * time.Millisecond):
		}
		if clock.Waiters() > 0 {
			clock.Advance(time.Minute)
		}
	}
}

// callbackExecution starts an execution whose callback step Approve runs,
// with nobody reading its queue.
func callbackExecution(t *testing.T, name string) (em *emulator.Emulator, arn, token string) {
	t.Helper()
	em = emulator.StartTest(t, emulator.Config{})
	url, err := em.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	arn = startPipeline(t, em, name, emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: url})
	if err := em.WaitStepStatus(testCtx(t, 20*time.Second), arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	if token, err = em.CallbackToken(arn, "Approve"); err != nil {
		t.Fatal(err)
	}
	return em, arn, token
}
