package emulator

import (
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

func TestRetryPipelineExecutionRerunsFailedSteps(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	e.SetStepTiming("Notify", StepTiming{Duration: Forever, LambdaTimeout: 20 * time.Millisecond})
	arn := createAndStart(t, sm, "retry", Definition(Step{Name: "Prep"}, Step{Name: "Notify", Type: StepTypeLambda, DependsOn: []string{"Prep"}}))
	waitExecution(t, e, arn, StatusFailed)

	e.SetStepTiming("Notify", StepTiming{Duration: 10 * time.Millisecond})
	retry := &sagemaker.RetryPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('r'))}
	out, err := sm.RetryPipelineExecution(ctx, retry)
	if err != nil || aws.ToString(out.PipelineExecutionArn) != arn {
		t.Fatalf("RetryPipelineExecution: %v, %v", err, out)
	}
	if st, reason, _ := e.ExecutionStatus(arn); st != StatusExecuting && st != StatusSucceeded || reason != "" {
		t.Fatalf("after retry: %s %q; want Executing (or already Succeeded) without a failure reason", st, reason)
	}
	waitExecution(t, e, arn, StatusSucceeded)

	steps, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn, SortOrder: types.SortOrderAscending})
	if err != nil {
		t.Fatal(err)
	}
	type entry struct {
		name    string
		status  types.StepStatus
		attempt int32
	}
	var got []entry
	for _, s := range steps.PipelineExecutionSteps {
		got = append(got, entry{aws.ToString(s.StepName), s.StepStatus, aws.ToInt32(s.AttemptCount)})
	}
	want := []entry{{"Prep", types.StepStatusSucceeded, 1}, {"Notify", types.StepStatusFailed, 1}, {"Notify", types.StepStatusSucceeded, 2}}
	if len(got) != len(want) {
		t.Fatalf("steps %v; want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("steps %v; want %v", got, want)
		}
	}

	// The same token answers the same success; a new retry of an execution
	// that is not Failed is refused.
	if _, err := sm.RetryPipelineExecution(ctx, retry); err != nil {
		t.Fatalf("replayed retry: %v", err)
	}
	_, err = sm.RetryPipelineExecution(ctx, &sagemaker.RetryPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('s'))})
	requireCode(t, err, "ValidationException", "Only pipelines with 'Failed' status can be retried")
	missing := arn + "x"
	_, err = sm.RetryPipelineExecution(ctx, &sagemaker.RetryPipelineExecutionInput{PipelineExecutionArn: &missing, ClientRequestToken: aws.String(token('s'))})
	requireCode(t, err, "ResourceNotFound", "")
}
