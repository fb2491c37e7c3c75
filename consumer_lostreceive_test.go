package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
)

// TestConsumerLostReceive loses the answers of receives (the emulator
// drops the connection after ReceiveMessage ran: SQS made the messages
// invisible, the Consumer never saw them) and checks that the messages come
// back once the receive's visibility timeout has passed on SQS's clock,
// ReceiveVisibilityTimeout (5 s by default), not the Consumer's
// VisibilityTimeout (30 s), and that every step is then answered once and
// every message deleted. Before issue 14 the Consumer received with the
// 30-second visibility timeout: a lost receive stalled its messages for 30
// seconds (measured in bench, TestScenarioConsumerLostReceive).
func TestConsumerLostReceive(t *testing.T) {
	const n = 10
	em := emulator.StartTest(t, emulator.Config{Faults: emulator.Faults{
		DropResponseRate: 1, Operations: []string{"ReceiveMessage"}}})
	clk := fakeclock.NewManual(time.Now())
	em.SetSQSClock(clk.Now)
	url, err := em.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := em.CreatePipeline("p", emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: url})); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	arns := make([]string, n)
	for i := range arns {
		if arns[i], err = em.StartExecution("p"); err != nil {
			t.Fatal(err)
		}
		if err := em.WaitStepStatus(ctx, arns[i], "Approve", "Executing"); err != nil {
			t.Fatal(err)
		}
	}
	answered := func() int {
		k := 0
		for _, arn := range arns {
			if st, _, _ := em.ExecutionStatus(arn); st == "Succeeded" {
				k++
			}
		}
		return k
	}
	// SQS's clock and the Consumer's are one fake clock, which moves 10 ms
	// per 2 ms of real time while the test waits (long polls end by it).
	var done chan error
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for i := 0; !cond(); i++ {
			if i == 20000 {
				t.Fatalf("timed out waiting for %s", what)
			}
			select {
			case err := <-done:
				t.Fatalf("Run returned %v while waiting for %s", err, what)
			case <-ctx.Done():
				t.Fatalf("timed out waiting for %s", what)
			case <-time.After(2 * time.Millisecond):
				clk.Advance(10 * time.Millisecond)
			}
		}
	}

	c, err := pipelinestop.NewConsumer(em.SQSClient(), url, pipelinestop.NewAcknowledger(em.SageMakerClient()),
		okHandler(nil), func(o *pipelinestop.ConsumerOptions) {
			o.WaitTimeSeconds = 1
			o.Clock = clk
		})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done = make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	defer func() {
		stop()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}()

	// The first receive's answer is lost (it took every message); then
	// the faults end.
	waitFor("a lost receive", func() bool { return em.DroppedResponses("ReceiveMessage") > 0 })
	lostAt := clk.Now()
	em.SetFaults(emulator.Faults{})
	var firstAnswer time.Time
	waitFor(fmt.Sprintf("%d answers", n), func() bool {
		k := answered()
		if k > 0 && firstAnswer.IsZero() {
			firstAnswer = clk.Now()
		}
		return k == n || clk.Now().Sub(lostAt) > 20*time.Second
	})
	stall := clk.Now().Sub(lostAt)
	if k := answered(); k != n {
		t.Fatalf("%d of %d steps answered %v (SQS's clock) after a lost receive; want all within the receive's visibility timeout (%v) and a few seconds",
			k, n, stall, pipelinestop.DefaultReceiveVisibilityTimeout)
	}
	if firstAnswer.Sub(lostAt) < pipelinestop.DefaultReceiveVisibilityTimeout {
		t.Fatalf("a step answered %v after the lost receive; its messages should have been invisible for %v",
			firstAnswer.Sub(lostAt), pipelinestop.DefaultReceiveVisibilityTimeout)
	}
	if limit := pipelinestop.DefaultReceiveVisibilityTimeout + 5*time.Second; stall > limit {
		t.Errorf("the lost receive stalled its messages %v; want at most %v (the receive's visibility timeout, a long poll and the answers)", stall, limit)
	}
	t.Logf("%d lost receive(s): every message answered %v after (SQS's clock)", em.DroppedResponses("ReceiveMessage"), stall)
	waitFor("the queue emptied", func() bool {
		out, err := em.SQSClient().GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		return err == nil && out.Attributes["ApproximateNumberOfMessages"] == "0" &&
			out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0"
	})
	for _, arn := range arns {
		token, err := em.CallbackToken(arn, "Approve")
		if err != nil {
			t.Fatal(err)
		}
		if as := em.Answers(token); len(as) != 1 {
			t.Errorf("%s: %d answers; want 1", arn, len(as))
		}
	}
}
