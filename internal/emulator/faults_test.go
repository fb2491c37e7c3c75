package emulator

import (
	"context"
	"encoding/json"
	"errors"
	"runtime"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

func TestThrottling(t *testing.T) {
	e := StartTest(t, Config{Faults: Faults{RateLimits: map[string]RateLimit{"DescribePipeline": {PerSecond: 0.001, Burst: 2}}}})
	sm := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	if _, err := e.CreatePipeline("th", Definition(Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	in := &sagemaker.DescribePipelineInput{PipelineName: aws.String("th")}
	for range 2 {
		if _, err := sm.DescribePipeline(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	_, err := sm.DescribePipeline(ctx, in)
	requireCode(t, err, "ThrottlingException", "")
	e.SetFaults(Faults{})
	if _, err := sm.DescribePipeline(ctx, in); err != nil {
		t.Fatalf("after clearing faults: %v", err)
	}
	if got := e.Requests("DescribePipeline"); got != 4 {
		t.Fatalf("Requests = %d; want 4", got)
	}
}

func TestServerErrorsRetriedBySDK(t *testing.T) {
	e := StartTest(t, Config{Seed: 7, Faults: Faults{ErrorRate: 1}})
	sm := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 2 })
	_, err := sm.DescribePipeline(testContext(t), &sagemaker.DescribePipelineInput{PipelineName: aws.String("x")})
	var apiErr interface{ ErrorCode() string }
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode() != "InternalFailure" && apiErr.ErrorCode() != "ServiceUnavailable") {
		t.Fatalf("error %v; want InternalFailure or ServiceUnavailable", err)
	}
	if got := e.Requests("DescribePipeline"); got != 2 {
		t.Fatalf("Requests = %d; want 2 (the SDK retries 5xx)", got)
	}
	// SQS is untouched unless IncludeSQS.
	if _, err := e.SQSClient().CreateQueue(testContext(t), &sqs.CreateQueueInput{QueueName: aws.String("q")}); err != nil {
		t.Fatalf("SQS with SageMaker-only faults: %v", err)
	}
}

func TestDroppedResponseKeepsEffect(t *testing.T) {
	e := StartTest(t, Config{Timing: fastTiming})
	e.SetStepTiming("Long", StepTiming{Duration: Forever})
	if _, err := e.CreatePipeline("drop", Definition(Step{Name: "Long"})); err != nil {
		t.Fatal(err)
	}
	arn, _ := e.StartExecution("drop")
	e.SetFaults(Faults{DropResponseRate: 1})
	sm := e.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	in := &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('d'))}
	if _, err := sm.StopPipelineExecution(testContext(t), in); err == nil {
		t.Fatal("stop answered although the connection was dropped")
	}
	e.SetFaults(Faults{})
	if _, err := sm.StopPipelineExecution(testContext(t), in); err != nil {
		t.Fatalf("retry with the same token: %v", err)
	}
	if e.EffectiveStops(arn) != 1 || e.StopCalls(arn) != 2 {
		t.Fatalf("effective %d calls %d", e.EffectiveStops(arn), e.StopCalls(arn))
	}
}

func TestDropAndLatency(t *testing.T) {
	e := StartTest(t, Config{Faults: Faults{DropRate: 1, IncludeSQS: true}})
	q := e.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	if _, err := q.CreateQueue(testContext(t), &sqs.CreateQueueInput{QueueName: aws.String("q")}); err == nil {
		t.Fatal("request succeeded although the connection was dropped")
	}
	if _, err := e.QueueURLIfExists("q"); err == nil {
		t.Fatal("a dropped request took effect")
	}
	e.SetFaults(Faults{Latency: 150 * time.Millisecond, IncludeSQS: true})
	start := time.Now()
	if _, err := q.CreateQueue(testContext(t), &sqs.CreateQueueInput{QueueName: aws.String("q")}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 150*time.Millisecond {
		t.Fatalf("answered in %v; want at least the latency", d)
	}
}

func TestUnknownTarget(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	_, err := q.AddPermission(testContext(t), &sqs.AddPermissionInput{QueueUrl: aws.String(e.QueueURL("q")),
		Label: aws.String("l"), AWSAccountIds: []string{"123456789012"}, Actions: []string{"SendMessage"}})
	requireCode(t, err, "UnknownOperationException", "AddPermission")
}

func TestCallbackMessagesToMoto(t *testing.T) {
	endpoint := motoserver.Start(t)
	e := StartTest(t, Config{Timing: fastTiming, CallbackQueueEndpoint: endpoint})
	moto := sqs.NewFromConfig(e.AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) })
	ctx := testContext(t)
	qo, err := moto.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("callbacks")})
	if err != nil {
		t.Fatal(err)
	}
	sm := e.SageMakerClient()
	arn := createAndStart(t, sm, "moto-cb", Definition(Step{Name: "Wait", Type: StepTypeCallback, SqsQueueURL: *qo.QueueUrl}))
	msgs := receive(t, moto, *qo.QueueUrl, 1)
	var m callbackMessage
	if err := json.Unmarshal([]byte(*msgs[0].Body), &m); err != nil || m.Status != StatusExecuting {
		t.Fatalf("first message %s: %v", *msgs[0].Body, err)
	}
	if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('m'))}); err != nil {
		t.Fatal(err)
	}
	msgs = receive(t, moto, *qo.QueueUrl, 1)
	if err := json.Unmarshal([]byte(*msgs[0].Body), &m); err != nil || m.Status != StatusStopping {
		t.Fatalf("second message %s: %v", *msgs[0].Body, err)
	}
	if _, err := sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: &m.Token, FailureReason: aws.String("cleaned up")}); err != nil {
		t.Fatal(err)
	}
	waitExecution(t, e, arn, StatusStopped)
}

func TestCloseLeavesNoGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	e, err := Start(Config{Timing: fastTiming, CallbackSender: discardSender{}})
	if err != nil {
		t.Fatal(err)
	}
	e.SetStepTiming("Long", StepTiming{Duration: Forever})
	if _, err := e.CreatePipeline("leak", Definition(Step{Name: "Long"}, Step{Name: "L", Type: StepTypeLambda},
		Step{Name: "C", Type: StepTypeCallback, SqsQueueURL: "http://x/123456789012/q"})); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := e.StartExecution("leak"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.SageMakerClient().ListPipelineExecutions(testContext(t), &sagemaker.ListPipelineExecutionsInput{PipelineName: aws.String("leak")}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(3 * time.Second)
	for runtime.NumGoroutine() > before+2 && time.Now().Before(deadline) { // idle HTTP client conns may linger briefly
		time.Sleep(20 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before+2 {
		t.Fatalf("%d goroutines after Close; %d before", n, before)
	}
}

type discardSender struct{}

func (discardSender) SendCallback(_ context.Context, _, _ string) error { return nil }

// TestPerServiceLatency checks that SQSLatency sets the latency of SQS
// operations apart from SageMaker's, with or without IncludeSQS, and that
// without it SQS operations get Latency only with IncludeSQS.
func TestPerServiceLatency(t *testing.T) {
	const sm, q = 60 * time.Millisecond, 20 * time.Millisecond
	cases := []struct {
		name           string
		f              Faults
		wantSM, wantQS time.Duration
	}{
		{"SQSLatency alone", Faults{SQSLatency: q}, 0, q},
		{"both", Faults{Latency: sm, SQSLatency: q}, sm, q},
		{"both, IncludeSQS", Faults{Latency: sm, SQSLatency: q, IncludeSQS: true}, sm, q},
		{"Latency alone", Faults{Latency: sm}, sm, 0},
		{"Latency, IncludeSQS", Faults{Latency: sm, IncludeSQS: true}, sm, sm},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fi := newFaultInjector(c.f, 1)
			if got := fi.decide("SendPipelineExecutionStepSuccess", false).latency; got != c.wantSM {
				t.Errorf("SageMaker latency %v, want %v", got, c.wantSM)
			}
			if got := fi.decide("ReceiveMessage", true).latency; got != c.wantQS {
				t.Errorf("SQS latency %v, want %v", got, c.wantQS)
			}
		})
	}
	fi := newFaultInjector(Faults{SQSLatency: q, SQSLatencyJitter: 5 * time.Millisecond}, 1)
	for range 100 {
		if got := fi.decide("DeleteMessageBatch", true).latency; got < q || got > q+5*time.Millisecond {
			t.Fatalf("SQS latency %v, want %v plus up to 5ms", got, q)
		}
	}
}

// TestFaultOperations checks that Faults.Operations limits the drops to
// the operations it names, SQS ones included without IncludeSQS, and that
// dropped answers are counted.
func TestFaultOperations(t *testing.T) {
	fi := newFaultInjector(Faults{DropResponseRate: 1, Operations: []string{"ReceiveMessage"}}, 1)
	if !fi.decide("ReceiveMessage", true).dropResponse {
		t.Error("ReceiveMessage's answer kept; want dropped")
	}
	for _, op := range []string{"DeleteMessageBatch", "SendPipelineExecutionStepSuccess"} {
		if fi.decide(op, op != "SendPipelineExecutionStepSuccess").dropResponse {
			t.Errorf("%s's answer dropped; want kept", op)
		}
	}
	if n := fi.droppedResponses["ReceiveMessage"]; n != 1 {
		t.Errorf("%d dropped ReceiveMessage answers counted, want 1", n)
	}
}
