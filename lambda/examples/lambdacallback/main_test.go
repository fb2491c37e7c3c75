package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// TestHandlerAnswersAndStops runs the function's handler on the messages
// the emulator's callback steps send: one step approved, one stopped.
func TestHandlerAnswersAndStops(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	url, err := srv.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.CreatePipeline("p", pipelinestoptest.Definition(pipelinestoptest.Step{
		Name: "Approve", Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: url, Outputs: []string{"Approved"}})); err != nil {
		t.Fatal(err)
	}
	approved, _ := srv.StartExecution("p")
	stopped, _ := srv.StartExecution("p")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, arn := range []string{approved, stopped} {
		if err := srv.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := srv.SageMakerClient().StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(stopped), ClientRequestToken: aws.String("stop-token-0123456789abcdef0123456789"),
	}); err != nil {
		t.Fatal(err)
	}
	var ev events.SQSEvent
	for i := 0; i < 500 && len(ev.Records) < 3; i++ {
		ev.Records = ev.Records[:0]
		for n, m := range srv.CallbackMessages() {
			ev.Records = append(ev.Records, events.SQSMessage{MessageId: string(rune('a' + n)), Body: m.Body,
				EventSourceARN: srv.QueueARN("callbacks"), Attributes: map[string]string{"ApproximateReceiveCount": "1"}})
		}
		if len(ev.Records) < 3 {
			time.Sleep(10 * time.Millisecond)
		}
	}
	if len(ev.Records) != 3 {
		t.Fatalf("%d callback messages, want 3 (two Executing, one Stopping)", len(ev.Records))
	}

	h, err := newHandler(srv.AWSConfig(), slog.New(slog.NewTextHandler(io.Discard, nil)), false)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := h.Handle(ctx, ev)
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("Handle = %+v, %v; want no failures", resp, err)
	}
	for arn, want := range map[string]string{approved: "Succeeded", stopped: "Stopped"} {
		if st, err := srv.WaitExecutionStatus(ctx, arn, "Succeeded", "Stopped", "Failed"); err != nil || st != want {
			t.Errorf("execution %s: %q, %v; want %s", arn, st, err, want)
		}
	}
}
