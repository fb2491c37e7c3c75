package usermodule_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"example.com/usermodule"
	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// The service's shutdown stops an execution whose callback step waits;
// the step's Stopping message is answered and the execution ends Stopped,
// with exactly one effective stop.
func TestShutdownStopsExecutionWithCallbackStep(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	queueURL, err := srv.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.CreatePipeline("train", pipelinestoptest.Definition(
		pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: queueURL},
	)); err != nil {
		t.Fatal(err)
	}
	arn, err := srv.StartExecution("train")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.WaitStepStatus(ctx, arn, "Approve", pipelinestoptest.StatusExecuting); err != nil {
		t.Fatal(err)
	}

	svc := usermodule.New(srv.SageMakerClient())
	svc.Executions = []string{arn}
	if err := svc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}

	q := srv.SQSClient()
	ack := pipelinestop.NewAcknowledger(srv.SageMakerClient())
	answered := false
	for i := 0; !answered && i < 20; i++ { // at most 20 long polls of 1 s
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range out.Messages {
			msg, err := pipelinestop.ParseCallbackMessage(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			if msg.IsStopping() {
				if _, err := ack.AckStopping(ctx, msg, nil); err != nil {
					t.Fatal(err)
				}
				answered = true
			}
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if !answered {
		t.Fatal("no Stopping message arrived")
	}
	if st, err := srv.WaitExecutionStatus(ctx, arn, pipelinestoptest.StatusStopped, pipelinestoptest.StatusFailed); err != nil || st != pipelinestoptest.StatusStopped {
		t.Fatalf("execution %s %v; want Stopped", st, err)
	}
	if n := srv.EffectiveStops(arn); n != 1 {
		t.Fatalf("%d effective stops, want 1", n)
	}
}
