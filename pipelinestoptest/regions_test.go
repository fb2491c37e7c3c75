package pipelinestoptest_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	smithy "github.com/aws/smithy-go"

	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

func inRegion(t *testing.T, srv *pipelinestoptest.Server, region string) *pipelinestoptest.Server {
	t.Helper()
	r, err := srv.InRegion(region)
	if err != nil {
		t.Fatalf("InRegion(%q): %v", region, err)
	}
	return r
}

func errorCode(err error) string {
	var apiErr smithy.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode()
	}
	return ""
}

func TestServerInRegion(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{Timing: pipelinestoptest.Timing{StepDuration: pipelinestoptest.Forever}})
	eu := inRegion(t, srv, "eu-west-1")
	cn := inRegion(t, srv, "cn-north-1")
	def := pipelinestoptest.Definition(pipelinestoptest.Step{Name: "Train"})
	arns := map[string]string{}
	for _, r := range []*pipelinestoptest.Server{srv, eu, cn} {
		if _, err := r.CreatePipeline("train", def); err != nil {
			t.Fatalf("%s: %v", r.Region(), err)
		}
		arn, err := r.StartExecution("train")
		if err != nil {
			t.Fatal(err)
		}
		arns[r.Region()] = arn
	}
	for region, partition := range map[string]string{"us-east-1": "aws", "eu-west-1": "aws", "cn-north-1": "aws-cn"} {
		if want := "arn:" + partition + ":sagemaker:" + region + ":123456789012:pipeline/train/execution/"; !strings.HasPrefix(arns[region], want) {
			t.Errorf("%s execution ARN %s; want prefix %s", region, arns[region], want)
		}
	}
	if q := cn.QueueARN("q"); q != "arn:aws-cn:sqs:cn-north-1:123456789012:q" {
		t.Errorf("cn-north-1 QueueARN %s", q)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	// Each Region's client stops its own execution; another Region's
	// execution is not found through it.
	_, err := srv.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 }).StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(arns["eu-west-1"]), ClientRequestToken: aws.String(strings.Repeat("t", 32))})
	if errorCode(err) != "ResourceNotFound" {
		t.Fatalf("us-east-1 client stopping the eu-west-1 execution: %v; want ResourceNotFound", err)
	}
	if _, err := eu.SageMakerClient().StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
		PipelineExecutionArn: aws.String(arns["eu-west-1"]), ClientRequestToken: aws.String(strings.Repeat("t", 32))}); err != nil {
		t.Fatal(err)
	}
	if st, err := srv.WaitExecutionStatus(ctx, arns["eu-west-1"], pipelinestoptest.StatusStopped); err != nil {
		t.Fatalf("%s %v", st, err)
	}
	// A client of one Region reaches another with the SDK's per-call
	// Region option, as code that routes calls by the ARN's Region does.
	out, err := srv.SageMakerClient().DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{
		PipelineExecutionArn: aws.String(arns["cn-north-1"])}, func(o *sagemaker.Options) { o.Region = "cn-north-1" })
	if err != nil || out.PipelineExecutionStatus != "Executing" {
		t.Errorf("per-call Region cn-north-1: %v %v", out, err)
	}
	if st, _, _ := srv.ExecutionStatus(arns["us-east-1"]); st != pipelinestoptest.StatusExecuting {
		t.Errorf("us-east-1 execution %s; want Executing", st)
	}
	if srv.EffectiveStops(arns["eu-west-1"]) != 1 || srv.Requests("StopPipelineExecution") != 1 ||
		eu.Requests("StopPipelineExecution") != 1 || srv.TotalRequests("StopPipelineExecution") != 2 {
		t.Errorf("EffectiveStops %d, counters %v", srv.EffectiveStops(arns["eu-west-1"]), srv.RegionCounters())
	}

	// Queues: each Region's SQS client sees its Region's queues only.
	euURL, err := eu.CreateQueue("callbacks")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := eu.SQSClient().SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(euURL), MessageBody: aws.String("x")}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 }).SendMessage(ctx, &sqs.SendMessageInput{
		QueueUrl: aws.String(euURL), MessageBody: aws.String("x")}); err == nil {
		t.Error("us-east-1 client sent to an eu-west-1 queue")
	}
	if got := srv.Regions(); strings.Join(got, ",") != "cn-north-1,eu-west-1,us-east-1" {
		t.Errorf("Regions() = %v", got)
	}
	if _, err := srv.InRegion("EU WEST"); !errors.Is(err, pipelinestoptest.ErrInvalidRegion) {
		t.Errorf("InRegion(bad): %v; want ErrInvalidRegion", err)
	}
	if _, err := pipelinestoptest.Start(pipelinestoptest.Config{Region: "eu_west_1"}); !errors.Is(err, pipelinestoptest.ErrInvalidRegion) {
		t.Errorf("Start with Region eu_west_1: %v; want ErrInvalidRegion", err)
	}
}

func TestServerRateLimitsPerRegion(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{Faults: pipelinestoptest.Faults{
		RateLimits: map[string]pipelinestoptest.RateLimit{"ListPipelines": {PerSecond: 1e-6, Burst: 1}}}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, region := range []string{"us-east-1", "us-gov-west-1"} {
		sm := inRegion(t, srv, region).SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
		if _, err := sm.ListPipelines(ctx, &sagemaker.ListPipelinesInput{}); err != nil {
			t.Fatalf("%s: first call: %v", region, err)
		}
		if _, err := sm.ListPipelines(ctx, &sagemaker.ListPipelinesInput{}); errorCode(err) != "ThrottlingException" {
			t.Fatalf("%s: second call: %v; want ThrottlingException", region, err)
		}
	}
}

// A test of code that stops executions in several Regions creates each
// Region's pipeline through InRegion; ARNs are in the Region's partition.
func ExampleServer_InRegion() {
	srv, err := pipelinestoptest.Start(pipelinestoptest.Config{}) // in a test: pipelinestoptest.New(t, ...)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	def := pipelinestoptest.Definition(pipelinestoptest.Step{Name: "Train"})
	for _, region := range []string{"us-east-1", "eu-west-1", "cn-north-1"} {
		r, err := srv.InRegion(region)
		if err != nil {
			log.Fatal(err)
		}
		if _, err := r.CreatePipeline("train", def); err != nil {
			log.Fatal(err)
		}
		arn, err := r.StartExecution("train")
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(arn[:strings.Index(arn, "/execution/")])
	}
	// Output:
	// arn:aws:sagemaker:us-east-1:123456789012:pipeline/train
	// arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train
	// arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/train
}
