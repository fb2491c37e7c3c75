package pipelinestoplambda_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// TestEndToEndLambdaCallback builds examples/lambdacallback, runs it under
// the emulator's Lambda runtime with the callback queue as its event source
// (ReportBatchItemFailures on), and stops an execution held by a callback
// step: the function hands the Executing message off (argument Pending),
// then answers the Stopping message once, and the execution ends Stopped.
func TestEndToEndLambdaCallback(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a Lambda function: not in -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	build := exec.CommandContext(ctx, "go", "build", "-tags", "lambda.norpc", "-o", bin, "./examples/lambdacallback")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the function: %v\n%s", err, out)
	}

	em := emulator.StartTest(t, emulator.Config{})
	sq := em.SQSClient()
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("approvals"),
		Attributes: map[string]string{"VisibilityTimeout": "60"}}) // at least 6 x the function's timeout
	if err != nil {
		t.Fatal(err)
	}
	if err := em.AddFunction("approve", bin, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	mapping, err := em.AddEventSource("approvals", "approve", emulator.EventSourceOptions{ReportBatchItemFailures: true})
	if err != nil {
		t.Fatal(err)
	}
	stats := func() emulator.EventSourceStats {
		st, err := em.EventSourceStats(mapping)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	logs := func() []string {
		l, _ := em.FunctionLogs("approve")
		return l
	}
	if _, err := em.CreatePipeline("lambda-e2e", emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback,
		SqsQueueURL: aws.ToString(q.QueueUrl), Arguments: map[string]any{"Pending": true}})); err != nil {
		t.Fatal(err)
	}
	arn, err := em.StartExecution("lambda-e2e")
	if err != nil {
		t.Fatal(err)
	}
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	token, err := em.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	// The function takes the Executing message and hands it off.
	for stats().Deleted < 1 {
		select {
		case <-ctx.Done():
			t.Fatalf("the function never took the Executing message: %+v\n%v", stats(), logs())
		case <-time.After(20 * time.Millisecond):
		}
	}
	if a := em.Answers(token); len(a) != 0 {
		t.Fatalf("the step was answered before the stop: %+v", a)
	}
	if _, err := em.SageMakerClient().StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(arn), ClientRequestToken: aws.String("e2e-stop-token-0123456789abcdef0123")}); err != nil {
		t.Fatal(err)
	}
	if st, err := em.WaitExecutionStatus(ctx, arn, "Stopped", "Failed", "Succeeded"); err != nil || st != "Stopped" {
		t.Fatalf("execution %s (%v); want Stopped. Function log:\n%v", st, err, logs())
	}
	answers := em.Answers(token)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
		t.Fatalf("answers %+v: want the stop answered once, with success", answers)
	}
}
