package emulator

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	smithy "github.com/aws/smithy-go"
)

// testTimeout bounds every wait in a test.
const testTimeout = 30 * time.Second

func testContext(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// fastTiming keeps simulated work short.
var fastTiming = Timing{
	StepDuration:  50 * time.Millisecond,
	StopDelay:     30 * time.Millisecond,
	LambdaRunTime: 100 * time.Millisecond,
	LambdaTimeout: 5 * time.Second,
}

func token(c byte) string { return strings.Repeat(string(c), 32) }

// requireCode asserts that err is an API error with the given code and,
// when non-empty, a message containing msg.
func requireCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	var apiErr smithy.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("error %v is not a smithy.APIError; want code %s", err, code)
	}
	if apiErr.ErrorCode() != code {
		t.Fatalf("error code %q (%v); want %q", apiErr.ErrorCode(), err, code)
	}
	if msg != "" && !strings.Contains(apiErr.ErrorMessage(), msg) {
		t.Fatalf("error message %q does not contain %q", apiErr.ErrorMessage(), msg)
	}
}

// createAndStart creates a pipeline through the API and starts it.
func createAndStart(t *testing.T, sm *sagemaker.Client, name, def string) string {
	t.Helper()
	ctx := testContext(t)
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{
		PipelineName:       aws.String(name),
		PipelineDefinition: aws.String(def),
		RoleArn:            aws.String("arn:aws:iam::123456789012:role/test"),
	}); err != nil {
		t.Fatalf("CreatePipeline: %v", err)
	}
	out, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String(name)})
	if err != nil {
		t.Fatalf("StartPipelineExecution: %v", err)
	}
	return aws.ToString(out.PipelineExecutionArn)
}

func waitStep(t *testing.T, e *Emulator, arn, step string, statuses ...string) {
	t.Helper()
	if err := e.WaitStepStatus(testContext(t), arn, step, statuses...); err != nil {
		t.Fatalf("wait for step %s %v: %v", step, statuses, err)
	}
}

func waitExecution(t *testing.T, e *Emulator, arn string, statuses ...string) string {
	t.Helper()
	st, err := e.WaitExecutionStatus(testContext(t), arn, statuses...)
	if err != nil {
		t.Fatalf("wait for execution %v: %v", statuses, err)
	}
	return st
}

// stepFailureReason returns the FailureReason of the latest run of a step.
func stepFailureReason(t *testing.T, sm *sagemaker.Client, arn, step string) string {
	t.Helper()
	out, err := sm.ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range out.PipelineExecutionSteps { // newest first
		if aws.ToString(s.StepName) == step {
			return aws.ToString(s.FailureReason)
		}
	}
	t.Fatalf("step %s not listed", step)
	return ""
}
