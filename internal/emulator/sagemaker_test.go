package emulator

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

func TestGenericPipelineRunsToSuccess(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	def := Definition(Step{Name: "A"}, Step{Name: "B", DependsOn: []string{"A"}}, Step{Name: "C", DependsOn: []string{"A"}})
	arn := createAndStart(t, sm, "generic", def)
	if !executionARNPattern.MatchString(arn) || !strings.Contains(arn, ":pipeline/generic/execution/") {
		t.Fatalf("execution ARN %q has the wrong form", arn)
	}
	waitExecution(t, e, arn, StatusSucceeded)

	d, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if d.PipelineExecutionStatus != types.PipelineExecutionStatusSucceeded || d.CreationTime == nil || time.Since(*d.CreationTime) > time.Minute {
		t.Fatalf("describe: status %s, created %v", d.PipelineExecutionStatus, d.CreationTime)
	}
	steps, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn, SortOrder: types.SortOrderAscending})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps.PipelineExecutionSteps {
		names = append(names, aws.ToString(s.StepName))
		if s.StepStatus != types.StepStatusSucceeded || s.EndTime == nil || s.EndTime.Before(*s.StartTime) {
			t.Errorf("step %s: status %s start %v end %v", *s.StepName, s.StepStatus, s.StartTime, s.EndTime)
		}
	}
	if names[0] != "A" || len(names) != 3 {
		t.Fatalf("steps %v; want A first, then B and C", names)
	}
	p, err := sm.DescribePipeline(ctx, &sagemaker.DescribePipelineInput{PipelineName: aws.String("generic")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(p.PipelineDefinition) != def || p.LastRunTime == nil {
		t.Fatalf("DescribePipeline: definition %q, last run %v", aws.ToString(p.PipelineDefinition), p.LastRunTime)
	}
}

func TestCreatePipelineRejectsBadDefinitions(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	tests := []struct{ name, def, want string }{
		{"bad JSON", `{"Steps": [`, "not valid JSON"},
		{"no steps", `{"Version": "2020-12-01", "Steps": []}`, "no Steps"},
		{"duplicate", Definition(Step{Name: "A"}, Step{Name: "A"}), "more than once"},
		{"unknown dependency", Definition(Step{Name: "A", DependsOn: []string{"X"}}), `unknown step "X"`},
		{"cycle", Definition(Step{Name: "A", DependsOn: []string{"B"}}, Step{Name: "B", DependsOn: []string{"A"}}), "cycle"},
		{"callback without queue", Definition(Step{Name: "A", Type: StepTypeCallback}), "no SqsQueueUrl"},
		{"lambda without function", `{"Version": "2020-12-01", "Steps": [{"Name": "L", "Type": "Lambda"}]}`, "no FunctionArn"},
		{"no type", `{"Version": "2020-12-01", "Steps": [{"Name": "L"}]}`, "no Type"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sm.CreatePipeline(testContext(t), &sagemaker.CreatePipelineInput{
				PipelineName:       aws.String(fmt.Sprintf("bad-%d", i)),
				PipelineDefinition: aws.String(tt.def),
				RoleArn:            aws.String("arn:aws:iam::123456789012:role/test"),
			})
			requireCode(t, err, "ValidationException", tt.want)
		})
	}
	t.Run("unknown fields ignored", func(t *testing.T) {
		_, err := sm.CreatePipeline(testContext(t), &sagemaker.CreatePipelineInput{
			PipelineName:       aws.String("extra"),
			PipelineDefinition: aws.String(`{"Version": "2020-12-01", "Parameters": [], "Steps": [{"Name": "A", "Type": "Training", "Whatever": 1}]}`),
			RoleArn:            aws.String("arn:aws:iam::123456789012:role/test"),
		})
		if err != nil {
			t.Fatal(err)
		}
	})
}

func TestCallbackStopFlow(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm, q := e.SageMakerClient(), e.SQSClient()
	ctx := testContext(t)
	qurl, err := e.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	def := Definition(Step{Name: "Prep"}, Step{
		Name: "Wait", Type: StepTypeCallback, DependsOn: []string{"Prep"}, SqsQueueURL: qurl,
		Arguments: map[string]any{"n": 3, "s": "x", "b": true}, Outputs: []string{"out"},
	})
	arn := createAndStart(t, sm, "callback", def)
	waitStep(t, e, arn, "Wait", StatusExecuting)

	msgs := receive(t, q, qurl, 1)
	var first callbackMessage
	if err := json.Unmarshal([]byte(*msgs[0].Body), &first); err != nil {
		t.Fatal(err)
	}
	if first.Status != StatusExecuting || first.PipelineExecutionArn != arn || len(first.Token) != 10 ||
		!strings.Contains(*msgs[0].Body, `"arguments":{"b":true,"n":3,"s":"x"}`) {
		t.Fatalf("Executing message %s", *msgs[0].Body)
	}
	steps, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	md := steps.PipelineExecutionSteps[0].Metadata.Callback // newest first
	if md == nil || aws.ToString(md.CallbackToken) != first.Token || aws.ToString(md.SqsQueueUrl) != qurl {
		t.Fatalf("callback metadata %+v", steps.PipelineExecutionSteps[0].Metadata)
	}

	if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('s'))}); err != nil {
		t.Fatal(err)
	}
	if st, _, _ := e.ExecutionStatus(arn); st != StatusStopping {
		t.Fatalf("status after stop %s; want Stopping while the callback waits", st)
	}
	msgs = receive(t, q, qurl, 1)
	var second callbackMessage
	if err := json.Unmarshal([]byte(*msgs[0].Body), &second); err != nil {
		t.Fatal(err)
	}
	if second.Status != StatusStopping || second.Token != first.Token {
		t.Fatalf("second message %s", *msgs[0].Body)
	}
	// A replayed stop succeeds; another token is the not-Executing error.
	if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('s'))}); err != nil {
		t.Fatalf("replayed stop: %v", err)
	}
	_, err = sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('t'))})
	requireCode(t, err, "ValidationException", "Only pipelines with 'Executing' status can be stopped")

	ack := &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &first.Token, ClientRequestToken: aws.String(token('a')),
		OutputParameters: []types.OutputParameter{{Name: aws.String("out"), Value: aws.String("v")}}}
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, ack); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusStopped)
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, ack); err != nil {
		t.Fatalf("replayed success: %v", err)
	}
	_, err = sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: &first.Token, FailureReason: aws.String("x")})
	var ce *types.ConflictException
	if !errors.As(err, &ce) || !strings.Contains(ce.ErrorMessage(), "already in a terminal status") {
		t.Fatalf("second different answer: %v; want ConflictException", err)
	}
	if got := e.EffectiveStops(arn); got != 1 {
		t.Errorf("EffectiveStops %d; want 1", got)
	}
	if got := e.StopTokens(arn); len(got) != 2 || e.AcceptedStopToken(arn) != token('s') || e.StopCalls(arn) != 2 {
		t.Errorf("StopTokens %v accepted %q calls %d", got, e.AcceptedStopToken(arn), e.StopCalls(arn))
	}
	answers := e.Answers(first.Token)
	if len(answers) != 2 || answers[0].Replay || !answers[1].Replay || answers[0].OutputParameters["out"] != "v" {
		t.Errorf("answers %+v", answers)
	}
}

func receive(t *testing.T, q *sqs.Client, url string, n int) []sqstypes.Message {
	t.Helper()
	out, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: int32(n), WaitTimeSeconds: 5})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.Messages) != n {
		t.Fatalf("received %d messages; want %d", len(out.Messages), n)
	}
	for _, m := range out.Messages {
		if _, err := q.DeleteMessage(testContext(t), &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: m.ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
	}
	return out.Messages
}

func TestCallbackSuccessAndFailure(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	qurl, _ := e.CreateQueue("cb")
	def := Definition(Step{Name: "Wait", Type: StepTypeCallback, SqsQueueURL: qurl}, Step{Name: "After", DependsOn: []string{"Wait"}})
	if _, err := e.CreatePipeline("cb", def); err != nil {
		t.Fatal(err)
	}

	ok, _ := e.StartExecution("cb")
	waitStep(t, e, ok, "Wait", StatusExecuting)
	tok, _ := e.CallbackToken(ok, "Wait")
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &tok}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, ok, StatusSucceeded)
	// Without a ClientRequestToken a repeat is not a replay.
	_, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &tok})
	requireCode(t, err, "ConflictException", "already in a terminal status")

	failed, _ := e.StartExecution("cb")
	waitStep(t, e, failed, "Wait", StatusExecuting)
	tok, _ = e.CallbackToken(failed, "Wait")
	if _, err := sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: &tok, FailureReason: aws.String("boom")}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, failed, StatusFailed)
	d, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &failed})
	if err != nil || aws.ToString(d.FailureReason) != ExecutionFailureReason {
		t.Fatalf("describe failed execution: %v, reason %q", err, aws.ToString(d.FailureReason))
	}
	if r := stepFailureReason(t, sm, failed, "Wait"); r != "boom" {
		t.Fatalf("step failure reason %q; want boom", r)
	}
}

func TestLambdaStop(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	t.Run("finishes", func(t *testing.T) {
		e.SetStepTiming("FinishL", StepTiming{Duration: Forever})
		arn := createAndStart(t, sm, "lambda-finish", Definition(Step{Name: "FinishL", Type: StepTypeLambda}))
		waitStep(t, e, arn, "FinishL", StatusExecuting)
		if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('l'))}); err != nil {
			t.Fatal(err)
		}
		steps, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
		if err != nil {
			t.Fatal(err)
		}
		if s := steps.PipelineExecutionSteps[0]; s.StepStatus != types.StepStatusStopping || s.Metadata.Lambda == nil || s.Metadata.Lambda.Arn == nil {
			t.Fatalf("lambda step while stopping: %s %+v", s.StepStatus, s.Metadata)
		}
		if err := e.CompleteStep(arn, "FinishL"); err != nil {
			t.Fatal(err)
		}
		waitExecution(t, e, arn, StatusStopped)
	})
	t.Run("times out", func(t *testing.T) {
		// The timeout comes when the test says, after the stop: no race
		// between a timer and the stop request.
		e.SetStepTiming("SlowL", StepTiming{Duration: Forever, LambdaTimeout: Forever})
		arn := createAndStart(t, sm, "lambda-timeout", Definition(Step{Name: "SlowL", Type: StepTypeLambda}))
		waitStep(t, e, arn, "SlowL", StatusExecuting)
		if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('m'))}); err != nil {
			t.Fatal(err)
		}
		if st, _ := e.StepStatus(arn, "SlowL"); st != StatusStopping {
			t.Fatalf("step status %s; want Stopping until the function times out", st)
		}
		if err := e.TimeOutLambdaStep(arn, "SlowL"); err != nil {
			t.Fatal(err)
		}
		waitExecution(t, e, arn, StatusFailed)
		_, reason, _ := e.ExecutionStatus(arn)
		if r := stepFailureReason(t, sm, arn, "SlowL"); reason != ExecutionFailureReason || !strings.Contains(r, "timed out") {
			t.Fatalf("failure reasons: execution %q, step %q", reason, r)
		}
		if err := e.TimeOutLambdaStep(arn, "SlowL"); err == nil {
			t.Error("a second time-out of a failed step: no error")
		}
	})
	t.Run("times out on its own", func(t *testing.T) {
		e.SetStepTiming("SelfL", StepTiming{Duration: Forever, LambdaTimeout: 150 * time.Millisecond})
		arn := createAndStart(t, sm, "lambda-self-timeout", Definition(Step{Name: "SelfL", Type: StepTypeLambda}))
		waitExecution(t, e, arn, StatusFailed)
		_, reason, _ := e.ExecutionStatus(arn)
		if r := stepFailureReason(t, sm, arn, "SelfL"); reason != ExecutionFailureReason || r != "Lambda step SelfL timed out after 150ms" {
			t.Fatalf("failure reasons: execution %q, step %q", reason, r)
		}
	})
	t.Run("time out a generic step", func(t *testing.T) {
		e.SetStepTiming("GenericL", StepTiming{Duration: Forever})
		arn := createAndStart(t, sm, "generic-timeout", Definition(Step{Name: "GenericL"}))
		waitStep(t, e, arn, "GenericL", StatusExecuting)
		if err := e.TimeOutLambdaStep(arn, "GenericL"); err == nil {
			t.Error("no error")
		}
	})
}

func TestStopGenericStep(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	e.SetStepTiming("Long", StepTiming{Duration: Forever})
	sm := e.SageMakerClient()
	arn := createAndStart(t, sm, "generic-stop", Definition(Step{Name: "Long"}))
	waitStep(t, e, arn, "Long", StatusExecuting)
	if _, err := sm.StopPipelineExecution(testContext(t), &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('g'))}); err != nil {
		t.Fatal(err)
	}
	if st, _ := e.StepStatus(arn, "Long"); st != StatusStopping {
		t.Fatalf("step status %s; want Stopping during StopDelay", st)
	}
	waitExecution(t, e, arn, StatusStopped)
	if st, _ := e.StepStatus(arn, "Long"); st != StatusStopped {
		t.Fatalf("step status %s; want Stopped", st)
	}
}

func TestErrorsDecoded(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	ctx := testContext(t)
	missing := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nope/execution/abcdefabcdef"

	_, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &missing, ClientRequestToken: aws.String(token('x'))})
	var nf *types.ResourceNotFound
	if !errors.As(err, &nf) || nf.ErrorCode() != "ResourceNotFound" {
		t.Fatalf("unknown execution: %v; want *types.ResourceNotFound", err)
	}
	_, err = sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &missing})
	if !errors.As(err, &nf) {
		t.Fatalf("describe unknown: %v", err)
	}
	_, err = sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String("abcdefghij")})
	if !errors.As(err, &nf) {
		t.Fatalf("unknown callback token: %v", err)
	}

	validation := []struct {
		name string
		call func() error
		want string
	}{
		{"bad ARN", func() error {
			_, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: aws.String("arn:aws:sagemaker:x"), ClientRequestToken: aws.String(token('x'))})
			return err
		}, "regular expression"},
		{"short token", func() error {
			_, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &missing, ClientRequestToken: aws.String("short")})
			return err
		}, "length between 32 and 128"},
		{"callback token format", func() error {
			_, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String("abc-defghi")})
			return err
		}, "regular expression"},
		{"too many outputs", func() error {
			outs := make([]types.OutputParameter, 51)
			for i := range outs {
				outs[i] = types.OutputParameter{Name: aws.String(fmt.Sprint(i)), Value: aws.String("v")}
			}
			_, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String("abcdefghij"), OutputParameters: outs})
			return err
		}, "50"},
		{"long value", func() error {
			outs := []types.OutputParameter{{Name: aws.String("n"), Value: aws.String(strings.Repeat("v", 1025))}}
			_, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: aws.String("abcdefghij"), OutputParameters: outs})
			return err
		}, "1024"},
		{"long reason", func() error {
			_, err := sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: aws.String("abcdefghij"), FailureReason: aws.String(strings.Repeat("r", 257))})
			return err
		}, "256"},
		{"max results", func() error {
			_, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &missing, MaxResults: aws.Int32(101)})
			return err
		}, "between 1 and 100"},
	}
	for _, v := range validation {
		t.Run(v.name, func(t *testing.T) { requireCode(t, v.call(), "ValidationException", v.want) })
	}

	t.Run("unknown operation", func(t *testing.T) {
		_, err := sm.DeleteModel(ctx, &sagemaker.DeleteModelInput{ModelName: aws.String("x")})
		requireCode(t, err, "UnknownOperationException", "DeleteModel")
	})
}

func TestConflictWindow(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	e.SetStepTiming("Long", StepTiming{Duration: Forever})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	e.SetConflictWindow(300 * time.Millisecond)
	arn := createAndStart(t, sm, "conflict", Definition(Step{Name: "Long"}))
	_, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('c'))})
	var ce *types.ConflictException
	if !errors.As(err, &ce) {
		t.Fatalf("stop in the window: %v; want *types.ConflictException", err)
	}
	if e.Requests("StopPipelineExecution") != 1 {
		t.Fatalf("the SDK retried a ConflictException: %d requests", e.Requests("StopPipelineExecution"))
	}
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, err = sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('c'))})
		if err == nil || !errors.As(err, &ce) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("stop after the window: %v", err)
	}
	if e.EffectiveStops(arn) != 1 || len(e.StopTokens(arn)) != 1 {
		t.Fatalf("effective %d tokens %v", e.EffectiveStops(arn), e.StopTokens(arn))
	}
}

func TestStartIdempotentAndPagination(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	if _, err := e.CreatePipeline("pages", Definition(Step{Name: "A"}, Step{Name: "B"}, Step{Name: "C"})); err != nil {
		t.Fatal(err)
	}
	start := &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("pages"), ClientRequestToken: aws.String(token('p'))}
	a, err := sm.StartPipelineExecution(ctx, start)
	if err != nil {
		t.Fatal(err)
	}
	b, err := sm.StartPipelineExecution(ctx, start)
	if err != nil || *a.PipelineExecutionArn != *b.PipelineExecutionArn {
		t.Fatalf("replayed start: %v, %v vs %v", err, *a.PipelineExecutionArn, *b.PipelineExecutionArn)
	}
	for range 4 {
		if _, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("pages")}); err != nil {
			t.Fatal(err)
		}
	}
	var arns []string
	p := sagemaker.NewListPipelineExecutionsPaginator(sm, &sagemaker.ListPipelineExecutionsInput{PipelineName: aws.String("pages"), MaxResults: aws.Int32(2)})
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(out.PipelineExecutionSummaries) > 2 {
			t.Fatalf("page of %d", len(out.PipelineExecutionSummaries))
		}
		for _, s := range out.PipelineExecutionSummaries {
			arns = append(arns, *s.PipelineExecutionArn)
		}
	}
	if len(arns) != 5 || arns[4] != *a.PipelineExecutionArn {
		t.Fatalf("listed %d executions, oldest last = %v", len(arns), arns)
	}
	waitStep(t, e, arns[0], "C", StatusExecuting, StatusSucceeded)
	sp := sagemaker.NewListPipelineExecutionStepsPaginator(sm, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arns[0], MaxResults: aws.Int32(1)})
	n := 0
	for ; sp.HasMorePages() && n < 10; n++ {
		if _, err := sp.NextPage(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n != 3 {
		t.Fatalf("%d step pages; want 3", n)
	}
	_, err = sm.ListPipelineExecutions(ctx, &sagemaker.ListPipelineExecutionsInput{PipelineName: aws.String("pages"), NextToken: aws.String("garbage!")})
	requireCode(t, err, "ValidationException", "pagination token")
}
