package emulator

import (
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

const testRole = "arn:aws:iam::123456789012:role/test"

func TestUpdatePipelineKeepsRunningExecutionsOnTheirDefinition(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	e.SetStepTiming("A", StepTiming{Duration: Forever})
	v1 := Definition(Step{Name: "A"})
	first := createAndStart(t, sm, "upsert", v1)

	// The SageMaker Python SDK's upsert: create, and on "already exists" update.
	v2 := Definition(Step{Name: "B"})
	_, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("upsert"), PipelineDefinition: &v2, RoleArn: aws.String(testRole)})
	requireCode(t, err, "ValidationException", "already exists")
	up, err := sm.UpdatePipeline(ctx, &sagemaker.UpdatePipelineInput{PipelineName: aws.String("upsert"), PipelineDefinition: &v2,
		PipelineDescription: aws.String("second"), ParallelismConfiguration: &types.ParallelismConfiguration{MaxParallelExecutionSteps: aws.Int32(3)}})
	if err != nil || aws.ToInt64(up.PipelineVersionId) != 2 || aws.ToString(up.PipelineArn) != e.pipelineARN("upsert") {
		t.Fatalf("UpdatePipeline: %+v, %v", up, err)
	}
	_, err = sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("upsert"), PipelineVersionId: aws.Int64(1)})
	requireCode(t, err, "ValidationException", "PipelineVersionId 1 is not available")
	second, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("upsert"), PipelineVersionId: aws.Int64(2)})
	if err != nil {
		t.Fatal(err)
	}
	for arn, want := range map[string]string{first: v1, *second.PipelineExecutionArn: v2} {
		d, err := sm.DescribePipelineDefinitionForExecution(ctx, &sagemaker.DescribePipelineDefinitionForExecutionInput{PipelineExecutionArn: aws.String(arn)})
		if err != nil || aws.ToString(d.PipelineDefinition) != want || d.CreationTime == nil {
			t.Fatalf("definition for %s: %+v, %v; want %s", arn, d, err, want)
		}
	}
	if st, _ := e.StepStatus(first, "A"); st != StatusExecuting {
		t.Fatalf("the first execution's step A is %q", st)
	}
	waitExecution(t, e, *second.PipelineExecutionArn, StatusSucceeded)
	p, err := sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("upsert")})
	if err != nil || aws.ToString(p.PipelineDefinition) != v2 || aws.ToString(p.PipelineDescription) != "second" ||
		p.ParallelismConfiguration == nil || aws.ToInt32(p.ParallelismConfiguration.MaxParallelExecutionSteps) != 3 || p.LastModifiedTime.Before(*p.CreationTime) {
		t.Fatalf("DescribePipeline after update: %+v, %v", p, err)
	}

	_, err = sm.UpdatePipeline(ctx, &sagemaker.UpdatePipelineInput{PipelineName: aws.String("upsert"), PipelineDefinition: aws.String(`{"Version": "1"}`)})
	requireCode(t, err, "ValidationException", "Invalid PipelineDefinition")
	_, err = sm.UpdatePipeline(ctx, &sagemaker.UpdatePipelineInput{PipelineName: aws.String("nope"), PipelineDefinition: &v2})
	requireCode(t, err, "ResourceNotFound", "")
}

func TestDeletePipeline(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	e.SetStepTiming("A", StepTiming{Duration: Forever})
	arn := createAndStart(t, sm, "doomed", Definition(Step{Name: "A"}))
	del := &sagemaker.DeletePipelineInput{PipelineName: aws.String("doomed"), ClientRequestToken: aws.String(token('d'))}
	_, err := sm.DeletePipeline(ctx, del)
	requireCode(t, err, "ConflictException", "execution in progress")
	if err := e.CompleteStep(arn, "A"); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusSucceeded)
	out, err := sm.DeletePipeline(ctx, del)
	if err != nil || aws.ToString(out.PipelineArn) != e.pipelineARN("doomed") {
		t.Fatalf("DeletePipeline: %+v, %v", out, err)
	}
	if _, err := sm.DeletePipeline(ctx, del); err != nil {
		t.Fatalf("repeated DeletePipeline with the same token: %v", err)
	}
	_, err = sm.DeletePipeline(ctx, &sagemaker.DeletePipelineInput{PipelineName: aws.String("doomed"), ClientRequestToken: aws.String(token('e'))})
	requireCode(t, err, "ResourceNotFound", "")
	_, err = sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("doomed")})
	requireCode(t, err, "ResourceNotFound", "")
	_, err = sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &arn})
	requireCode(t, err, "ResourceNotFound", "")
	// The name can be used again.
	createAndStart(t, sm, "doomed", Definition(Step{Name: "B"}))
}

func TestListPipelinesFiltersSortsAndPages(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	for _, name := range []string{"train-b", "train-a", "other", "train-c"} {
		if _, err := e.CreatePipeline(name, Definition(Step{Name: "A"})); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Millisecond) // distinct creation times at millisecond precision
	}
	list := func(in *sagemaker.ListPipelinesInput) []string {
		t.Helper()
		var names []string
		p := sagemaker.NewListPipelinesPaginator(sm, in)
		for pages := 0; p.HasMorePages(); pages++ {
			if pages > 10 {
				t.Fatal("too many pages")
			}
			out, err := p.NextPage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range out.PipelineSummaries {
				names = append(names, aws.ToString(s.PipelineName))
				if s.CreationTime == nil || aws.ToString(s.RoleArn) == "" {
					t.Fatalf("summary %+v", s)
				}
			}
		}
		return names
	}
	if got := list(&sagemaker.ListPipelinesInput{MaxResults: aws.Int32(1)}); !slices.Equal(got, []string{"train-c", "other", "train-a", "train-b"}) {
		t.Fatalf("default order %v; want newest first", got)
	}
	if got := list(&sagemaker.ListPipelinesInput{PipelineNamePrefix: aws.String("train"), SortBy: types.SortPipelinesByName,
		SortOrder: types.SortOrderAscending, MaxResults: aws.Int32(2)}); !slices.Equal(got, []string{"train-a", "train-b", "train-c"}) {
		t.Fatalf("by name %v", got)
	}
	p, err := sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("train-a")})
	if err != nil {
		t.Fatal(err)
	}
	after := p.CreationTime.Add(time.Millisecond / 2)
	if got := list(&sagemaker.ListPipelinesInput{CreatedAfter: &after, SortOrder: types.SortOrderAscending}); !slices.Equal(got, []string{"other", "train-c"}) {
		t.Fatalf("created after train-a: %v", got)
	}
	if got := list(&sagemaker.ListPipelinesInput{CreatedBefore: p.CreationTime}); !slices.Equal(got, []string{"train-b"}) {
		t.Fatalf("created before train-a: %v", got)
	}
	_, err = sm.ListPipelines(ctx, &sagemaker.ListPipelinesInput{SortBy: "Size"})
	requireCode(t, err, "ValidationException", "sortBy")
}

func TestListPipelineExecutionsSortByAndCreatedFilters(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	if _, err := e.CreatePipeline("many", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	var arns []string
	for range 4 {
		arn, err := e.StartExecution("many")
		if err != nil {
			t.Fatal(err)
		}
		arns = append(arns, arn)
		time.Sleep(2 * time.Millisecond)
	}
	list := func(in *sagemaker.ListPipelineExecutionsInput) []string {
		t.Helper()
		in.PipelineName = aws.String("many")
		out, err := sm.ListPipelineExecutions(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, s := range out.PipelineExecutionSummaries {
			got = append(got, aws.ToString(s.PipelineExecutionArn))
		}
		return got
	}
	byARN := slices.Clone(arns)
	slices.Sort(byARN)
	if got := list(&sagemaker.ListPipelineExecutionsInput{SortBy: types.SortPipelineExecutionsByPipelineExecutionArn, SortOrder: types.SortOrderAscending}); !slices.Equal(got, byARN) {
		t.Fatalf("by ARN %v; want %v", got, byARN)
	}
	d, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &arns[1]})
	if err != nil {
		t.Fatal(err)
	}
	after := d.CreationTime.Add(time.Millisecond / 2)
	if got := list(&sagemaker.ListPipelineExecutionsInput{CreatedAfter: &after, SortOrder: types.SortOrderAscending}); !slices.Equal(got, arns[2:]) {
		t.Fatalf("created after the second: %v; want %v", got, arns[2:])
	}
	if got := list(&sagemaker.ListPipelineExecutionsInput{CreatedBefore: d.CreationTime}); !slices.Equal(got, arns[:1]) {
		t.Fatalf("created before the second: %v; want %v", got, arns[:1])
	}
}

func TestMaxParallelExecutionSteps(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	for _, n := range []string{"A", "B", "C"} {
		e.SetStepTiming(n, StepTiming{Duration: Forever})
	}
	def := Definition(Step{Name: "A"}, Step{Name: "B"}, Step{Name: "C"})
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("narrow"), PipelineDefinition: &def,
		RoleArn: aws.String(testRole), ParallelismConfiguration: &types.ParallelismConfiguration{MaxParallelExecutionSteps: aws.Int32(1)}}); err != nil {
		t.Fatal(err)
	}
	running := func(arn string) []string {
		var names []string
		for _, n := range []string{"A", "B", "C"} {
			if st, _ := e.StepStatus(arn, n); st == StatusExecuting {
				names = append(names, n)
			}
		}
		return names
	}
	out, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("narrow")})
	if err != nil {
		t.Fatal(err)
	}
	one := *out.PipelineExecutionArn
	if got := running(one); !slices.Equal(got, []string{"A"}) {
		t.Fatalf("running %v; want only A (pipeline limit 1)", got)
	}
	if err := e.CompleteStep(one, "A"); err != nil {
		t.Fatal(err)
	}
	if got := running(one); !slices.Equal(got, []string{"B"}) {
		t.Fatalf("running %v after A; want B", got)
	}
	out, err = sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("narrow"),
		ParallelismConfiguration: &types.ParallelismConfiguration{MaxParallelExecutionSteps: aws.Int32(2)}})
	if err != nil {
		t.Fatal(err)
	}
	two := *out.PipelineExecutionArn
	if got := running(two); !slices.Equal(got, []string{"A", "B"}) {
		t.Fatalf("running %v; want A and B (execution limit 2)", got)
	}
	d, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &two})
	if err != nil || d.ParallelismConfiguration == nil || aws.ToInt32(d.ParallelismConfiguration.MaxParallelExecutionSteps) != 2 {
		t.Fatalf("describe: %+v, %v", d, err)
	}
	_, err = sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("narrow"),
		ParallelismConfiguration: &types.ParallelismConfiguration{MaxParallelExecutionSteps: aws.Int32(0)}})
	requireCode(t, err, "ValidationException", "maxParallelExecutionSteps")
}

func TestExecutionParametersAndFields(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	def := `{"Version": "2020-12-01",
		"Parameters": [{"Name": "N", "Type": "Integer", "DefaultValue": 3}, {"Name": "Mode", "Type": "String", "DefaultValue": "fast"}],
		"PipelineExperimentConfig": {"ExperimentName": {"Get": "Execution.PipelineName"}, "TrialName": {"Get": "Execution.PipelineExecutionId"}},
		"Steps": [{"Name": "A", "Type": "Processing"}]}`
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("fields"), PipelineDefinition: aws.String(def), RoleArn: aws.String(testRole)}); err != nil {
		t.Fatal(err)
	}
	out, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("fields"),
		PipelineParameters: []types.Parameter{{Name: aws.String("Mode"), Value: aws.String("slow")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.PipelineExecutionArn
	ps, err := sm.ListPipelineParametersForExecution(ctx, &sagemaker.ListPipelineParametersForExecutionInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, p := range ps.PipelineParameters {
		got = append(got, aws.ToString(p.Name)+"="+aws.ToString(p.Value))
	}
	if !slices.Equal(got, []string{"N=3", "Mode=slow"}) {
		t.Fatalf("parameters %v", got)
	}
	d, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	id := arn[len(arn)-12:]
	if d.PipelineExperimentConfig == nil || aws.ToString(d.PipelineExperimentConfig.ExperimentName) != "fields" ||
		aws.ToString(d.PipelineExperimentConfig.TrialName) != id || aws.ToInt64(d.PipelineVersionId) != 1 {
		t.Fatalf("describe: experiment %+v, version %v", d.PipelineExperimentConfig, d.PipelineVersionId)
	}
	// The client's access key ID ("test") stands for the IAM principal.
	for what, u := range map[string]*types.UserContext{"CreatedBy": d.CreatedBy, "LastModifiedBy": d.LastModifiedBy} {
		if u == nil || u.IamIdentity == nil || aws.ToString(u.IamIdentity.Arn) != "arn:aws:iam::123456789012:user/test" || aws.ToString(u.IamIdentity.PrincipalId) != "test" {
			t.Fatalf("%s %+v", what, u)
		}
	}
	p, err := sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("fields")})
	if err != nil || p.CreatedBy == nil || p.CreatedBy.IamIdentity == nil || aws.ToString(p.CreatedBy.IamIdentity.PrincipalId) != "test" {
		t.Fatalf("DescribePipeline CreatedBy: %+v, %v", p, err)
	}
}
