package pipelinestop_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// callbackStep starts an execution of one callback step on em and returns
// its ARN and the step's callback token once the step waits.
func callbackStep(t *testing.T, em *emulator.Emulator, name string) (arn string, token pipelinestop.CallbackToken) {
	t.Helper()
	queue, err := em.CreateQueue(name)
	if err != nil {
		t.Fatal(err)
	}
	arn = startPipeline(t, em, name, emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: queue})
	if err := em.WaitStepStatus(testCtx(t, 10*time.Second), arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	tok, err := em.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	return arn, pipelinestop.CallbackToken(tok)
}

// requireDifferentAnswer checks that err is SageMaker's refusal of a
// second, different answer.
func requireDifferentAnswer(t *testing.T, what string, err error, token pipelinestop.CallbackToken) {
	t.Helper()
	if !errors.Is(err, pipelinestop.ErrAlreadyAnswered) {
		t.Fatalf("%s: %v; want ErrAlreadyAnswered", what, err)
	}
	if msg := err.Error(); !strings.Contains(msg, "already answered with a different answer") || strings.Contains(msg, string(token)) {
		t.Fatalf("%s: message %q; want it to say so, without the token", what, msg)
	}
}

// TestIntegrationDifferentSecondAnswer: over the wire, the same answer
// repeated is replayed with success, and a different one (other outputs,
// or a failure after a success) is refused as already answered, while the
// step keeps the first answer.
func TestIntegrationDifferentSecondAnswer(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	ack := pipelinestop.NewAcknowledger(em.SageMakerClient(), fastWait)
	ctx := testCtx(t, 10*time.Second)

	t.Run("success then another", func(t *testing.T) {
		_, tok := callbackStep(t, em, "answers-success")
		approved := map[string]string{"verdict": "approved", "by": "ann"}
		if err := ack.Succeed(ctx, tok, approved); err != nil {
			t.Fatal(err)
		}
		if err := ack.Succeed(ctx, tok, map[string]string{"by": "ann", "verdict": "approved"}); err != nil {
			t.Fatalf("the same answer again: %v; want the replayed success", err)
		}
		requireDifferentAnswer(t, "other outputs", ack.Succeed(ctx, tok, map[string]string{"verdict": "rejected", "by": "ann"}), tok)
		requireDifferentAnswer(t, "no outputs", ack.Succeed(ctx, tok, nil), tok)
		requireDifferentAnswer(t, "a failure after a success", ack.Fail(ctx, tok, "too late"), tok)
		answers := em.Answers(string(tok))
		if len(answers) != 2 || answers[0].Outcome != emulator.OutcomeSuccess || answers[0].OutputParameters["verdict"] != "approved" || !answers[1].Replay {
			t.Fatalf("answers %+v; want the success and its replay", answers)
		}
	})
	t.Run("failure then another", func(t *testing.T) {
		_, tok := callbackStep(t, em, "answers-failure")
		if err := ack.Fail(ctx, tok, "rejected by review"); err != nil {
			t.Fatal(err)
		}
		if err := ack.Fail(ctx, tok, "rejected by review"); err != nil {
			t.Fatalf("the same failure again: %v; want the replayed success", err)
		}
		requireDifferentAnswer(t, "another reason", ack.Fail(ctx, tok, "rejected twice"), tok)
		requireDifferentAnswer(t, "a success after a failure", ack.Succeed(ctx, tok, nil), tok)
		if answers := em.Answers(string(tok)); len(answers) != 2 || answers[0].FailureReason != "rejected by review" {
			t.Fatalf("answers %+v; want the failure and its replay", answers)
		}
	})
	t.Run("AckStopping", func(t *testing.T) {
		arn, tok := callbackStep(t, em, "answers-stopping")
		if _, err := pipelinestop.New(em.SageMakerClient(), fastWait).Stop(ctx, arn); err != nil {
			t.Fatal(err)
		}
		if err := em.WaitStepStatus(ctx, arn, "Approve", "Stopping"); err != nil {
			t.Fatal(err)
		}
		msg := &pipelinestop.CallbackMessage{Token: tok, PipelineExecutionARN: arn, Status: "Stopping"}
		failing := func(context.Context, *pipelinestop.CallbackMessage) error {
			return errors.New("cleanup of " + string(tok) + " failed")
		}
		res, err := ack.AckStopping(ctx, msg, failing)
		if err != nil || res.Answer != pipelinestop.AnsweredFailure {
			t.Fatalf("first AckStopping: %+v, %v", res, err)
		}
		if res2, err := ack.AckStopping(ctx, msg, failing); err != nil || res2.Reason != res.Reason {
			t.Fatalf("the same cleanup error again: %+v, %v; want the replayed failure", res2, err)
		}
		_, err = ack.AckStopping(ctx, msg, nil)
		requireDifferentAnswer(t, "a success after the cleanup failed", err, tok)
		if answers := em.Answers(string(tok)); len(answers) != 2 || answers[0].Outcome != emulator.OutcomeFailure || !answers[1].Replay ||
			strings.Contains(answers[0].FailureReason, string(tok)) {
			t.Fatalf("answers %+v; want the redacted failure and its replay", answers)
		}
	})
}
