package emulator

import (
	"io"
	"net/http"
	"slices"
	"strings"
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

// An empty page is [] on the wire, never null (botocore's model wants a
// list): ListPipelines and ListPipelineExecutions with nothing to list.
func TestEmptyListIsAnEmptyArray(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	if _, err := e.CreatePipeline("empty", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ op, body, want string }{
		{"ListPipelines", `{"PipelineNamePrefix":"nothing-matches"}`, `{"PipelineSummaries":[]}`},
		{"ListPipelineExecutions", `{"PipelineName":"empty","CreatedBefore":1}`, `{"PipelineExecutionSummaries":[]}`},
	} {
		req, err := http.NewRequest(http.MethodPost, e.URL(), strings.NewReader(c.body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Amz-Target", "SageMaker."+c.op)
		req.Header.Set("Content-Type", "application/x-amz-json-1.1")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(got)) != c.want {
			t.Errorf("%s: HTTP %d %s, want 200 %s", c.op, resp.StatusCode, got, c.want)
		}
	}
}
