// Package quickstart_test runs the README's emulator quickstart: the
// sample pipeline definition pipeline.json (a generic, a callback, a Lambda
// and a condition step) loaded into the emulator, started, stopped while
// the callback and Lambda steps hold it, with the callback step's Stopping
// message answered. It runs with the Go SDK and pipelinestop, with boto3
// (quickstart.py) and with the AWS CLI v1, as the README shows them.
package quickstart_test

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// requireEnv makes the boto3 test fail instead of skipping when Python or
// boto3 is missing, as CI sets it for moto.
const requireEnv = motoserver.RequireEnv

// quick is an emulator timing that keeps the story to a second or two.
var quick = emulator.Timing{StepDuration: 100 * time.Millisecond, StopDelay: 50 * time.Millisecond,
	LambdaRunTime: 500 * time.Millisecond, LambdaTimeout: 30 * time.Second}

func definition(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("pipeline.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// testCtx bounds a test. The AWS CLI starts Python and loads the
// SageMaker model for each command, which takes seconds on a loaded
// machine: the bound is generous.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestQuickstartGo loads pipeline.json into the emulator through the API
// and stops an execution with pipelinestop while the callback and Lambda
// steps hold it.
func TestQuickstartGo(t *testing.T) {
	ctx := testCtx(t)
	emu := emulator.StartTest(t, emulator.Config{Timing: quick})
	sm, sq := emu.SageMakerClient(), emu.SQSClient()

	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("model-approvals")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("quickstart"),
		PipelineDefinition: aws.String(definition(t)), RoleArn: aws.String("arn:aws:iam::123456789012:role/quickstart")}); err != nil {
		t.Fatalf("create pipeline from pipeline.json: %v", err)
	}
	start, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("quickstart")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(start.PipelineExecutionArn)
	list, err := sm.ListPipelineExecutions(ctx, &sagemaker.ListPipelineExecutionsInput{PipelineName: aws.String("quickstart")})
	if err != nil || len(list.PipelineExecutionSummaries) != 1 {
		t.Fatalf("list-pipeline-executions --pipeline-name quickstart: %d executions, %v; want 1", len(list.PipelineExecutionSummaries), err)
	}
	if err := emu.WaitStepStatus(ctx, arn, "Approve", emulator.StatusExecuting); err != nil {
		t.Fatal(err)
	}

	stopper := pipelinestop.New(sm)
	if _, err := stopper.Stop(ctx, arn); err != nil {
		t.Fatal(err)
	}
	// Answer the callback step's Stopping message, as a consumer would.
	ack := pipelinestop.NewAcknowledger(sm)
	answered := false
	for i := 0; i < 50 && !answered; i++ {
		got, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: q.QueueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got.Messages {
			msg, err := pipelinestop.ParseCallbackMessage(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			if msg.IsStopping() {
				if err := ack.Succeed(ctx, msg.Token, map[string]string{"verdict": "stopped"}); err != nil {
					t.Fatal(err)
				}
				answered = true
			}
		}
	}
	if !answered {
		t.Fatal("no Stopping message for the callback step")
	}
	out, err := stopper.Wait(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("final status %s, want Stopped", out.Status)
	}
	steps, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{PipelineExecutionArn: aws.String(arn)})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range steps.PipelineExecutionSteps {
		names = append(names, aws.ToString(s.StepName)+"="+string(s.StepStatus))
	}
	// The Lambda step ran to its end, the callback step was answered; the
	// condition step never started.
	if got := strings.Join(names, " "); !strings.Contains(got, "Approve=") || !strings.Contains(got, "Score=") || strings.Contains(got, "CheckScore=Executing") {
		t.Fatalf("steps: %s", got)
	}
}

// TestQuickstartBoto3 runs quickstart.py, the README's boto3 version,
// against a fresh emulator with only AWS_DEFAULT_REGION set.
func TestQuickstartBoto3(t *testing.T) {
	py := findOrSkip(t, "python3", "import boto3", "python3 with boto3", true)
	emu := emulator.StartTest(t, emulator.Config{Timing: quick})
	cmd := exec.CommandContext(testCtx(t), py, "quickstart.py", emu.URL())
	cmd.Env = cliEnv()
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python3 quickstart.py: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "region us-east-1") || !strings.Contains(string(out), "final status Stopped") {
		t.Fatalf("python3 quickstart.py printed:\n%s", out)
	}
}

// TestQuickstartAWSCLI runs the README's AWS CLI commands against a fresh
// emulator: the pipeline is created from pipeline.json, so
// list-pipeline-executions --pipeline-name quickstart finds it.
func TestQuickstartAWSCLI(t *testing.T) {
	aws := findOrSkip(t, "aws", "", "the AWS CLI", false)
	emu := emulator.StartTest(t, emulator.Config{Timing: quick})
	ctx := testCtx(t)
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, aws, append([]string{"--endpoint-url", emu.URL(), "--output", "text"}, args...)...)
		cmd.Env = cliEnv()
		cmd.Dir = "../.." // the README's commands run at the root of the repository
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("sqs", "create-queue", "--queue-name", "model-approvals")
	run("sagemaker", "create-pipeline", "--pipeline-name", "quickstart", "--role-arn", "arn:aws:iam::123456789012:role/quickstart",
		"--pipeline-definition", "file://examples/quickstart/pipeline.json")
	arn := strings.TrimSpace(run("sagemaker", "start-pipeline-execution", "--pipeline-name", "quickstart",
		"--query", "PipelineExecutionArn"))
	if !strings.HasPrefix(arn, "arn:aws:sagemaker:us-east-1:") {
		t.Fatalf("start-pipeline-execution: %q", arn)
	}
	if got := run("sagemaker", "list-pipeline-executions", "--pipeline-name", "quickstart"); !strings.Contains(got, arn) {
		t.Fatalf("list-pipeline-executions does not list %s:\n%s", arn, got)
	}
}

// cliEnv is the environment of the README's commands: test credentials and
// AWS_DEFAULT_REGION, which boto3 and the AWS CLI v1 read (they ignore
// AWS_REGION, which is left out so that the test shows it).
func cliEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "AWS_ACCESS_KEY_ID=test", "AWS_SECRET_ACCESS_KEY=test", "AWS_DEFAULT_REGION=us-east-1",
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
}

// findOrSkip finds a program (and checks that python code runs with it),
// or skips the test; or fails it when requireEnv is "1" and required is
// set (boto3 is preinstalled where moto is; the AWS CLI may not be).
func findOrSkip(t *testing.T, name, pythonCheck, what string, required bool) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil && pythonCheck != "" {
		err = exec.Command(p, "-c", pythonCheck).Run()
	}
	if err != nil {
		if required && os.Getenv(requireEnv) == "1" {
			t.Fatalf("%s is required (%s=1) but unavailable: %v", what, requireEnv, err)
		}
		if required {
			t.Skipf("%s is unavailable (%v); install it (pip install boto3) or set %s=1 to fail instead", what, err, requireEnv)
		}
		t.Skipf("%s is unavailable (%v); install it (pip install awscli) to run the README's AWS CLI commands", what, err)
	}
	return p
}
