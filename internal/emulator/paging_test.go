package emulator

import (
	"slices"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// TestStepPagesStableWhenAStepStartsBetweenPages: a step that starts
// between two pages of ListPipelineExecutionSteps must neither repeat a
// step already listed nor hide one not yet listed.
func TestStepPagesStableWhenAStepStartsBetweenPages(t *testing.T) {
	for _, order := range []types.SortOrder{types.SortOrderDescending, types.SortOrderAscending} {
		t.Run(string(order), func(t *testing.T) {
			e := StartTest(t, Config{Timing: fastTiming})
			sm := e.SageMakerClient()
			ctx := testContext(t)
			e.SetStepTiming("A", StepTiming{Duration: Forever})
			e.SetStepTiming("B", StepTiming{Duration: Forever})
			e.SetStepTiming("C", StepTiming{Duration: Forever})
			if _, err := e.CreatePipeline("pages", Definition(Step{Name: "A"}, Step{Name: "B"}, Step{Name: "C", DependsOn: []string{"A"}})); err != nil {
				t.Fatal(err)
			}
			arn, err := e.StartExecution("pages")
			if err != nil {
				t.Fatal(err)
			}
			in := &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn, MaxResults: aws.Int32(1), SortOrder: order}
			first, err := sm.ListPipelineExecutionSteps(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			if first.NextToken == nil {
				t.Fatal("first page has no NextToken")
			}
			names := []string{aws.ToString(first.PipelineExecutionSteps[0].StepName)}
			if err := e.CompleteStep(arn, "A"); err != nil { // C starts between the pages
				t.Fatal(err)
			}
			waitStep(t, e, arn, "C", StatusExecuting)
			in.NextToken = first.NextToken
			for pages := 0; in.NextToken != nil; pages++ {
				if pages > 5 {
					t.Fatal("too many pages")
				}
				out, err := sm.ListPipelineExecutionSteps(ctx, in)
				if err != nil {
					t.Fatal(err)
				}
				for _, s := range out.PipelineExecutionSteps {
					names = append(names, aws.ToString(s.StepName))
				}
				in.NextToken = out.NextToken
			}
			sorted := slices.Clone(names)
			slices.Sort(sorted)
			if len(slices.Compact(sorted)) != len(names) || !slices.Contains(names, "A") || !slices.Contains(names, "B") {
				t.Fatalf("paged steps %v: a step repeated or A/B missing", names)
			}
			if order == types.SortOrderAscending && !slices.Equal(names, []string{"A", "B", "C"}) {
				t.Fatalf("ascending pages %v; want [A B C]", names)
			}
		})
	}
}

func TestPageTokenOfAnotherListIsRejected(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	e.SetStepTiming("A", StepTiming{Duration: Forever})
	e.SetStepTiming("B", StepTiming{Duration: Forever})
	if _, err := e.CreatePipeline("tokens", Definition(Step{Name: "A"}, Step{Name: "B"})); err != nil {
		t.Fatal(err)
	}
	arn, err := e.StartExecution("tokens")
	if err != nil {
		t.Fatal(err)
	}
	out, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn, MaxResults: aws.Int32(1)})
	if err != nil || out.NextToken == nil {
		t.Fatalf("first page: %v, token %v", err, out)
	}
	_, err = sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn, NextToken: out.NextToken, SortOrder: types.SortOrderAscending})
	requireCode(t, err, "ValidationException", "pagination token")
	_, err = sm.ListPipelineExecutions(ctx, &sagemaker.ListPipelineExecutionsInput{PipelineName: aws.String("tokens"), NextToken: out.NextToken})
	requireCode(t, err, "ValidationException", "pagination token")
}
