package emulator

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// withParams adds a Parameters list to a definition built by Definition.
func withParams(t *testing.T, def string, params ...map[string]any) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal([]byte(def), &m); err != nil {
		t.Fatal(err)
	}
	m["Parameters"] = params
	buf, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf)
}

func get(path string) map[string]any { return map[string]any{"Get": path} }

// messageArgs receives one callback message and returns its arguments.
func messageArgs(t *testing.T, e *Emulator, queueURL string) map[string]any {
	t.Helper()
	msgs := receive(t, e.SQSClient(), queueURL, 1)
	var m struct {
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal([]byte(*msgs[0].Body), &m); err != nil {
		t.Fatal(err)
	}
	return m.Arguments
}

// TestPropertyReferencesResolvedAndOrderSteps: Parameters.*, Execution.*,
// Steps.NAME.OutputParameters[...] and Std:Join are resolved before a
// callback message is sent, and a step that reads another step's output
// waits for it although it declares no DependsOn.
func TestPropertyReferencesResolvedAndOrderSteps(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	sm := e.SageMakerClient()
	ctx := testContext(t)
	approveQ, _ := e.CreateQueue("approve")
	reportQ, _ := e.CreateQueue("report")
	e.SetLambdaOutputs("Score", map[string]string{"score": "0.93"})
	def := withParams(t, Definition(
		Step{Name: "Approve", Type: StepTypeCallback, SqsQueueURL: approveQ, Outputs: []string{"approved"},
			Arguments: map[string]any{"mode": get("Parameters.Mode")}},
		Step{Name: "Score", Type: StepTypeLambda, Outputs: []string{"score"},
			Arguments: map[string]any{"approved": get("Steps.Approve.OutputParameters['approved']")}},
		Step{Name: "Report", Type: StepTypeCallback, SqsQueueURL: reportQ, Arguments: map[string]any{
			"mode":      get("Parameters.Mode"),
			"n":         get("Parameters.N"),
			"dry":       get("Parameters.Dry"),
			"execution": get("Execution.PipelineExecutionArn"),
			"pipeline":  get("Execution.PipelineName"),
			"score":     get(`Steps.Score.OutputParameters["score"]`),
			"joined":    map[string]any{"Std:Join": map[string]any{"On": "/", "Values": []any{"s3:/", get("Parameters.Mode"), get("Parameters.N")}}},
		}},
	), map[string]any{"Name": "Mode", "Type": "String", "DefaultValue": "fast"},
		map[string]any{"Name": "N", "Type": "Integer"},
		map[string]any{"Name": "Dry", "Type": "Boolean", "DefaultValue": false})
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("refs"), PipelineDefinition: &def,
		RoleArn: aws.String("arn:aws:iam::123456789012:role/test")}); err != nil {
		t.Fatal(err)
	}
	out, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("refs"),
		PipelineParameters: []types.Parameter{{Name: aws.String("N"), Value: aws.String("7")}}})
	if err != nil {
		t.Fatal(err)
	}
	arn := *out.PipelineExecutionArn
	if got := messageArgs(t, e, approveQ); got["mode"] != "fast" {
		t.Fatalf("Approve arguments %v; want mode fast (the default)", got)
	}
	for _, step := range []string{"Score", "Report"} {
		if st, err := e.StepStatus(arn, step); err != nil || st != "" {
			t.Fatalf("step %s is %q (%v) while the step whose output it reads waits; want not started", step, st, err)
		}
	}
	token, _ := e.CallbackToken(arn, "Approve")
	if _, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &token,
		OutputParameters: []types.OutputParameter{{Name: aws.String("approved"), Value: aws.String("yes")}}}); err != nil {
		t.Fatal(err)
	}
	got := messageArgs(t, e, reportQ)
	want := map[string]any{"mode": "fast", "n": 7.0, "dry": false, "execution": arn, "pipeline": "refs", "score": "0.93", "joined": "s3://fast/7"}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Report arguments\n%v\nwant\n%v", got, want)
	}
	if st, _ := e.StepStatus(arn, "Score"); st != StatusSucceeded {
		t.Fatalf("Score is %s; want Succeeded before Report started", st)
	}
	if args, err := e.StepArguments(arn, "Score"); err != nil || args != `{"approved":"yes"}` {
		t.Fatalf("the Lambda step's input %s (%v); want the callback's output", args, err)
	}
}

func TestReferenceToAnOutputNeverSetFailsTheStep(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	q, _ := e.CreateQueue("q")
	arn := createAndStart(t, e.SageMakerClient(), "unset", Definition(
		Step{Name: "Score", Type: StepTypeLambda, Outputs: []string{"score"}},
		Step{Name: "Use", Type: StepTypeCallback, SqsQueueURL: q, Arguments: map[string]any{"s": get("Steps.Score.OutputParameters['score']")}},
	))
	waitExecution(t, e, arn, StatusFailed)
	if r := stepFailureReason(t, e.SageMakerClient(), arn, "Use"); !strings.Contains(r, "did not set its output score") {
		t.Fatalf("step Use failure reason %q", r)
	}
}

func cond(typ string, kv ...any) map[string]any {
	m := map[string]any{"Type": typ}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = kv[i+1]
	}
	return m
}

// TestConditionStepRunsOneBranch evaluates each condition type against a
// parameter and checks that exactly the chosen branch ran.
func TestConditionStepRunsOneBranch(t *testing.T) {
	n := get("Parameters.N")
	tests := []struct {
		name string
		cond map[string]any
		want bool
	}{
		{"Equals true", cond("Equals", "LeftValue", n, "RightValue", 5), true},
		{"Equals false", cond("Equals", "LeftValue", n, "RightValue", 6), false},
		{"Equals float", cond("Equals", "LeftValue", n, "RightValue", 5.0), true},
		{"Equals string", cond("Equals", "LeftValue", get("Parameters.Mode"), "RightValue", "fast"), true},
		{"GreaterThan", cond("GreaterThan", "LeftValue", n, "RightValue", 4), true},
		{"GreaterThan equal", cond("GreaterThan", "LeftValue", n, "RightValue", 5), false},
		{"GreaterThanOrEqualTo", cond("GreaterThanOrEqualTo", "LeftValue", n, "RightValue", 5), true},
		{"LessThan", cond("LessThan", "LeftValue", n, "RightValue", 5), false},
		{"LessThanOrEqualTo", cond("LessThanOrEqualTo", "LeftValue", 5, "RightValue", n), true},
		{"In", cond("In", "QueryValue", n, "Values", []any{1, 5, 9}), true},
		{"In missing", cond("In", "QueryValue", get("Parameters.Mode"), "Values", []any{"slow"}), false},
		{"Not", cond("Not", "Condition", cond("Equals", "LeftValue", n, "RightValue", 5)), false},
		{"Or", cond("Or", "Conditions", []any{cond("Equals", "LeftValue", n, "RightValue", 1), cond("LessThan", "LeftValue", n, "RightValue", 6)}), true},
		{"Or none", cond("Or", "Conditions", []any{cond("Equals", "LeftValue", n, "RightValue", 1)}), false},
	}
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}})
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			def := withParams(t, Definition(
				Step{Name: "Check", Type: StepTypeCondition, Conditions: []any{tt.cond},
					IfSteps: []Step{{Name: "Yes"}}, ElseSteps: []Step{{Name: "No"}}},
				Step{Name: "After", DependsOn: []string{"Check"}},
			), map[string]any{"Name": "N", "Type": "Integer", "DefaultValue": 5}, map[string]any{"Name": "Mode", "Type": "String", "DefaultValue": "fast"})
			arn := createAndStart(t, e.SageMakerClient(), fmt.Sprintf("cond-%d", i), def)
			waitExecution(t, e, arn, StatusSucceeded)
			ran, skipped := "Yes", "No"
			if !tt.want {
				ran, skipped = skipped, ran
			}
			if st, _ := e.StepStatus(arn, ran); st != StatusSucceeded {
				t.Errorf("step %s is %q; want Succeeded", ran, st)
			}
			if st, _ := e.StepStatus(arn, skipped); st != "" {
				t.Errorf("step %s of the other branch is %q; want never started", skipped, st)
			}
			steps, err := e.SageMakerClient().ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
			if err != nil {
				t.Fatal(err)
			}
			for _, s := range steps.PipelineExecutionSteps {
				if aws.ToString(s.StepName) == "Check" {
					if s.Metadata == nil || s.Metadata.Condition == nil || string(s.Metadata.Condition.Outcome) != map[bool]string{true: "True", false: "False"}[tt.want] {
						t.Errorf("Check metadata %+v", s.Metadata)
					}
				}
			}
			if len(steps.PipelineExecutionSteps) != 3 {
				t.Errorf("%d steps listed; want 3 (Check, one branch, After)", len(steps.PipelineExecutionSteps))
			}
		})
	}
}

// TestCallbackInsideABranchSendsItsMessage: an approval callback step in
// IfSteps sends its message and holds the execution until answered.
func TestCallbackInsideABranchSendsItsMessage(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	q, _ := e.CreateQueue("approvals")
	arn := createAndStart(t, e.SageMakerClient(), "branch", Definition(
		Step{Name: "Check", Type: StepTypeCondition, Conditions: []any{cond("Equals", "LeftValue", get("Execution.PipelineName"), "RightValue", "branch")},
			IfSteps: []Step{{Name: "Approve", Type: StepTypeCallback, SqsQueueURL: q, Arguments: map[string]any{"by": "ops"}}}},
	))
	if got := messageArgs(t, e, q); got["by"] != "ops" {
		t.Fatalf("arguments %v", got)
	}
	if st, _, _ := e.ExecutionStatus(arn); st != StatusExecuting {
		t.Fatalf("execution %s while the approval waits", st)
	}
	token, _ := e.CallbackToken(arn, "Approve")
	if _, err := e.SageMakerClient().SendPipelineExecutionStepSuccess(testContext(t), &sagemaker.SendPipelineExecutionStepSuccessInput{CallbackToken: &token}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusSucceeded)
}

func TestFailStepFailsTheExecutionWithItsMessage(t *testing.T) {
	e := StartTest(t, Config{Timing: Timing{StepDuration: -1}})
	sm := e.SageMakerClient()
	def := withParams(t, Definition(
		Step{Name: "Check", Type: StepTypeCondition, Conditions: []any{cond("GreaterThan", "LeftValue", get("Parameters.MSE"), "RightValue", 6.0)},
			IfSteps: []Step{{Name: "TooHigh", Type: StepTypeFail, ErrorMessage: map[string]any{"Std:Join": map[string]any{
				"On": " ", "Values": []any{"MSE", get("Parameters.MSE"), "is above 6.0"}}}}},
			ElseSteps: []Step{{Name: "Register", Type: "RegisterModel"}}},
	), map[string]any{"Name": "MSE", "Type": "Float", "DefaultValue": 7.5})
	arn := createAndStart(t, sm, "fail", def)
	waitExecution(t, e, arn, StatusFailed)
	d, err := sm.DescribePipelineExecution(testContext(t), &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if d.PipelineExecutionStatus != types.PipelineExecutionStatusFailed || aws.ToString(d.FailureReason) != ExecutionFailureReason {
		t.Fatalf("execution %s, reason %q", d.PipelineExecutionStatus, aws.ToString(d.FailureReason))
	}
	steps, err := sm.ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	s := steps.PipelineExecutionSteps[0]
	if aws.ToString(s.StepName) != "TooHigh" || s.StepStatus != types.StepStatusFailed || aws.ToString(s.FailureReason) != "MSE 7.5 is above 6.0" ||
		s.Metadata == nil || s.Metadata.Fail == nil || aws.ToString(s.Metadata.Fail.ErrorMessage) != "MSE 7.5 is above 6.0" {
		t.Fatalf("fail step %+v", s)
	}
	if st, _ := e.StepStatus(arn, "Register"); st != "" {
		t.Fatalf("Register of the other branch is %q", st)
	}
}

// TestDefinitionValidation: what SageMaker rejects in a definition is a
// ValidationException that says why.
func TestDefinitionValidation(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	q := e.QueueURL("q")
	param := func(typ string, def any) string {
		return withParams(t, Definition(Step{Name: "A"}), map[string]any{"Name": "P", "Type": typ, "DefaultValue": def})
	}
	tests := []struct{ name, def, want string }{
		{"no version", `{"Steps": [{"Name": "A", "Type": "Processing"}]}`, "no Version"},
		{"wrong version", `{"Version": "2019-01-01", "Steps": [{"Name": "A", "Type": "Processing"}]}`, `Version "2019-01-01" is not supported`},
		{"unknown type", `{"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Sleep"}]}`, `unknown Type "Sleep"`},
		{"name with a space", Definition(Step{Name: "My Step"}), `step name "My Step" must match`},
		{"bare function name", Definition(Step{Name: "L", Type: StepTypeLambda, FunctionArn: "notify"}), "is not a Lambda function ARN"},
		{"queue URL that is not one", Definition(Step{Name: "C", Type: StepTypeCallback, SqsQueueURL: "my-queue"}), "is not an SQS queue URL"},
		{"queue URL without account", Definition(Step{Name: "C", Type: StepTypeCallback, SqsQueueURL: "https://sqs.us-east-1.amazonaws.com/q"}), "is not an SQS queue URL"},
		{"undeclared parameter", Definition(Step{Name: "A", Arguments: map[string]any{"x": get("Parameters.Nope")}}), `undeclared pipeline parameter "Nope"`},
		{"unknown execution variable", Definition(Step{Name: "A", Arguments: map[string]any{"x": get("Execution.Nope")}}), "unknown execution variable"},
		{"unknown step reference", Definition(Step{Name: "A", Arguments: map[string]any{"x": get("Steps.Nope.X")}}), `unknown step "Nope"`},
		{"undeclared output", Definition(Step{Name: "L", Type: StepTypeLambda}, Step{Name: "A", Arguments: map[string]any{"x": get("Steps.L.OutputParameters['o']")}}), `output "o" that step "L" does not declare`},
		{"reference cycle", Definition(Step{Name: "L", Type: StepTypeLambda, Outputs: []string{"o"}, DependsOn: []string{"A"}},
			Step{Name: "A", Arguments: map[string]any{"x": get("Steps.L.OutputParameters['o']")}}), "cycle"},
		{"unknown reference root", Definition(Step{Name: "A", Arguments: map[string]any{"x": get("Pipeline.Name")}}), "unknown property reference"},
		{"JsonGet", Definition(Step{Name: "A", Arguments: map[string]any{"x": map[string]any{"Std:JsonGet": map[string]any{}}}}), "Std:JsonGet"},
		{"mistyped integer default", param("Integer", "ten"), `value "ten" is not an Integer`},
		{"float default for integer", param("Integer", 1.5), "is not an Integer"},
		{"mistyped boolean default", param("Boolean", "maybe"), "is not a Boolean"},
		{"unknown parameter type", param("Date", "x"), `Type "Date"`},
		{"condition without conditions", Definition(Step{Name: "C", Type: StepTypeCondition}), "no Conditions"},
		{"unknown condition", Definition(Step{Name: "C", Type: StepTypeCondition, Conditions: []any{cond("Between")}}), `unknown condition Type "Between"`},
		{"duplicate name in a branch", Definition(Step{Name: "A"}, Step{Name: "C", Type: StepTypeCondition, Conditions: []any{cond("Equals", "LeftValue", 1, "RightValue", 1)},
			IfSteps: []Step{{Name: "A"}}}), "more than once"},
		{"depends on a fail step", Definition(Step{Name: "F", Type: StepTypeFail}, Step{Name: "A", DependsOn: []string{"F"}}), "can not depend on fail step F"},
		{"outputs on a generic step", `{"Version": "2020-12-01", "Steps": [{"Name": "A", "Type": "Processing", "OutputParameters": [{"OutputName": "o"}]}]}`, "cannot declare OutputParameters"},
		{"fine", Definition(Step{Name: "C", Type: StepTypeCallback, SqsQueueURL: q}, Step{Name: "L", Type: StepTypeLambda,
			FunctionArn: "arn:aws:lambda:eu-west-1:123456789012:function:notify:$LATEST"}), ""},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sm.CreatePipeline(testContext(t), &sagemaker.CreatePipelineInput{
				PipelineName:       aws.String(fmt.Sprintf("v-%d", i)),
				PipelineDefinition: aws.String(tt.def),
				RoleArn:            aws.String("arn:aws:iam::123456789012:role/test"),
			})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			requireCode(t, err, "ValidationException", tt.want)
		})
	}
}

// TestStartParametersValidated: undeclared, mistyped, repeated and missing
// pipeline parameters are refused at StartPipelineExecution.
func TestStartParametersValidated(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	def := withParams(t, Definition(Step{Name: "A"}),
		map[string]any{"Name": "N", "Type": "Integer"},
		map[string]any{"Name": "Mode", "Type": "String", "DefaultValue": "fast", "EnumValues": []string{"fast", "slow"}})
	if _, err := e.CreatePipeline("params", def); err != nil {
		t.Fatal(err)
	}
	p := func(kv ...string) []types.Parameter {
		var out []types.Parameter
		for i := 0; i+1 < len(kv); i += 2 {
			out = append(out, types.Parameter{Name: aws.String(kv[i]), Value: aws.String(kv[i+1])})
		}
		return out
	}
	tests := []struct {
		name   string
		params []types.Parameter
		want   string
	}{
		{"missing required", nil, `"N" has no default value`},
		{"undeclared", p("N", "1", "X", "1"), `"X" is not declared`},
		{"mistyped", p("N", "one"), `value "one" is not an Integer`},
		{"not in enum", p("N", "1", "Mode", "medium"), "is not one of"},
		{"repeated", p("N", "1", "N", "2"), "more than once"},
		{"fine", p("N", "1", "Mode", "slow"), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sm.StartPipelineExecution(testContext(t), &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("params"), PipelineParameters: tt.params})
			if tt.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			requireCode(t, err, "ValidationException", tt.want)
		})
	}
}

// TestFailStepWithoutMessage: SageMaker leaves the step's FailureReason
// out and reports an empty ErrorMessage.
func TestFailStepWithoutMessage(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	arn := createAndStart(t, sm, "fail-quietly", Definition(Step{Name: "F", Type: StepTypeFail}))
	waitExecution(t, e, arn, StatusFailed)
	out, err := sm.ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	s := out.PipelineExecutionSteps[0]
	if s.FailureReason != nil || s.Metadata == nil || s.Metadata.Fail == nil || s.Metadata.Fail.ErrorMessage == nil || *s.Metadata.Fail.ErrorMessage != "" {
		t.Fatalf("step %+v, metadata %+v", s, s.Metadata)
	}
}

// TestDefinitionBuilderJSON pins the JSON Definition writes (member order
// included: users compare it, and pipelinestoptest's example prints it).
func TestDefinitionBuilderJSON(t *testing.T) {
	got := Definition(Step{Name: "Train", Type: "Training"}, Step{Name: "Approve", Type: StepTypeCallback, DependsOn: []string{"Train"},
		SqsQueueURL: "http://127.0.0.1:4599/123456789012/approvals", Arguments: map[string]any{"model": "m1"}})
	want := `{"Version":"2020-12-01","Steps":[{"Name":"Train","Type":"Training"},{"Name":"Approve","Type":"Callback","DependsOn":["Train"],"Arguments":{"model":"m1"},"SqsQueueUrl":"http://127.0.0.1:4599/123456789012/approvals"}]}`
	if got != want {
		t.Fatalf("Definition:\n%s\nwant\n%s", got, want)
	}
	got = Definition(Step{Name: "C", Type: StepTypeCondition, Conditions: []any{cond("Equals", "LeftValue", 1, "RightValue", 1)},
		IfSteps: []Step{{Name: "F", Type: StepTypeFail, ErrorMessage: "no"}}})
	want = `{"Version":"2020-12-01","Steps":[{"Name":"C","Type":"Condition","Arguments":{"Conditions":[{"LeftValue":1,"RightValue":1,"Type":"Equals"}],"ElseSteps":[],"IfSteps":[{"Name":"F","Type":"Fail","Arguments":{"ErrorMessage":"no"}}]}}]}`
	if got != want {
		t.Fatalf("Definition:\n%s\nwant\n%s", got, want)
	}
	if _, err := parseDefinition(got); err != nil {
		t.Fatal(err)
	}
}

// TestFailStepReadsConditionOutcome follows the SageMaker Python SDK's
// integration test of a Fail step whose message joins a Condition step's
// Outcome: the Outcome is written "false" and both steps are listed.
func TestFailStepReadsConditionOutcome(t *testing.T) {
	e := StartTest(t, Config{})
	sm := e.SageMakerClient()
	def := withParams(t, Definition(
		Step{Name: "CondStep", Type: StepTypeCondition, Conditions: []any{cond("Equals", "LeftValue", get("Parameters.MyInt"), "RightValue", 1)}},
		Step{Name: "FailStep", Type: StepTypeFail, ErrorMessage: map[string]any{"Std:Join": map[string]any{
			"On": ": ", "Values": []any{"Failed due to xxx == yyy returns", get("Steps.CondStep.Outcome")}}}},
	), map[string]any{"Name": "MyInt", "Type": "Integer", "DefaultValue": 2})
	arn := createAndStart(t, sm, "join-outcome", def)
	waitExecution(t, e, arn, StatusFailed)
	out, err := sm.ListPipelineExecutionSteps(testContext(t), &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: &arn})
	if err != nil {
		t.Fatal(err)
	}
	if len(out.PipelineExecutionSteps) != 2 {
		t.Fatalf("%d steps listed; want 2", len(out.PipelineExecutionSteps))
	}
	if r := stepFailureReason(t, sm, arn, "FailStep"); r != "Failed due to xxx == yyy returns: false" {
		t.Fatalf("FailStep reason %q", r)
	}
}
