package pipelinestop_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// fastWait polls quickly, for tests against the emulator.
func fastWait(o *pipelinestop.Options) {
	o.MinDelay, o.MaxDelay, o.StepsInterval = 10*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
	o.RetryMinDelay, o.RetryMaxDelay = 10*time.Millisecond, 100*time.Millisecond
}

// testCtx is a context bounded by a few seconds: no test waits for ever.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// startPipeline creates a pipeline of the given steps on em and starts an
// execution of it.
func startPipeline(t *testing.T, em *emulator.Emulator, name string, steps ...emulator.Step) string {
	t.Helper()
	if _, err := em.CreatePipeline(name, emulator.Definition(steps...)); err != nil {
		t.Fatal(err)
	}
	arn, err := em.StartExecution(name)
	if err != nil {
		t.Fatal(err)
	}
	return arn
}

func TestIntegrationStopSurvivesConflictWindow(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{Timing: emulator.Timing{ConflictWindow: 300 * time.Millisecond}})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
	arn := startPipeline(t, em, "conflicts", emulator.Step{Name: "Train", Type: "Training"})
	s := pipelinestop.New(em.SageMakerClient(), fastWait)

	out, err := s.StopAndWait(testCtx(t, 10*time.Second), arn)
	if err != nil {
		t.Fatal(err)
	}
	if out.Status != types.PipelineExecutionStatusStopped || out.Stop.Attempts < 2 || !out.Stop.Accepted {
		t.Fatalf("outcome %+v, stop %+v: want Stopped after conflicts", out, out.Stop)
	}
	if n := len(em.StopTokens(arn)); n != 1 || em.EffectiveStops(arn) != 1 {
		t.Errorf("%d distinct tokens, %d effective stops; want 1 and 1", n, em.EffectiveStops(arn))
	}
	if em.AcceptedStopToken(arn) != pipelinestop.DeriveToken("StopPipelineExecution", arn) {
		t.Error("the accepted token is not the derived one")
	}
}

func TestIntegrationTwoReplicasStopOnce(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: 100 * time.Millisecond})
	arn := startPipeline(t, em, "replicas", emulator.Step{Name: "Train", Type: "Training"})
	ctx := testCtx(t, 10*time.Second)
	var wg sync.WaitGroup
	results := make([]*pipelinestop.Outcome, 3)
	errs := make([]error, 3)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Each replica has its own client and Stopper, as separate
			// processes would.
			s := pipelinestop.New(em.SageMakerClient(), fastWait)
			results[i], errs[i] = s.StopAndWait(ctx, arn)
		}()
	}
	wg.Wait()
	for i := range results {
		if errs[i] != nil || results[i].Status != types.PipelineExecutionStatusStopped {
			t.Fatalf("replica %d: %+v, %v", i, results[i], errs[i])
		}
	}
	if n := len(em.StopTokens(arn)); n != 1 || em.EffectiveStops(arn) != 1 {
		t.Errorf("%d distinct tokens, %d effective stops; want one request from all replicas", n, em.EffectiveStops(arn))
	}
}

func TestIntegrationThrottlingAndFaults(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{Seed: 7})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: 50 * time.Millisecond})
	var arns []string
	for i := range 12 {
		arns = append(arns, startPipeline(t, em, fmt.Sprintf("faulty-%d", i), emulator.Step{Name: "Train", Type: "Training"}))
	}
	em.SetFaults(emulator.Faults{
		RateLimits:       map[string]emulator.RateLimit{"StopPipelineExecution": {PerSecond: 20, Burst: 2}},
		ErrorRate:        0.2,
		DropResponseRate: 0.1,
		Latency:          time.Millisecond,
		LatencyJitter:    3 * time.Millisecond,
	})
	s := pipelinestop.New(em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) { o.Concurrency = 4 })
	results, err := s.StopAll(testCtx(t, 30*time.Second), arns, func(o *pipelinestop.Options) { o.Wait = true })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Outcome == nil || r.Outcome.Status != types.PipelineExecutionStatusStopped {
			t.Errorf("%s: %+v", r.ExecutionARN, r.Outcome)
		}
		if n := len(em.StopTokens(r.ExecutionARN)); n != 1 || em.EffectiveStops(r.ExecutionARN) != 1 {
			t.Errorf("%s: %d tokens, %d effective stops", r.ExecutionARN, n, em.EffectiveStops(r.ExecutionARN))
		}
	}
	if em.Requests("StopPipelineExecution") <= len(arns) {
		t.Errorf("%d stop requests for %d executions: the faults did not bite", em.Requests("StopPipelineExecution"), len(arns))
	}
}

// TestIntegrationCallbackBlockedStop: a waiting callback step holds the
// stop; Wait names it, without its token; answering it ends the stop.
func TestIntegrationCallbackBlockedStop(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	queue, err := em.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	arn := startPipeline(t, em, "callback-blocked", emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: queue})
	ctx := testCtx(t, 10*time.Second)
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		t.Fatal(err)
	}
	client := em.SageMakerClient()
	s := pipelinestop.New(client, fastWait)

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	_, err = s.StopAndWait(short, arn)
	var we *pipelinestop.WaitError
	if !errors.As(err, &we) || !errors.Is(err, pipelinestop.ErrWaitTimeout) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a *WaitError", err)
	}
	if we.Status != types.PipelineExecutionStatusStopping || len(we.Blocking) != 1 {
		t.Fatalf("wait error %+v", we)
	}
	step := we.Blocking[0]
	token, _ := em.CallbackToken(arn, "Approve")
	if step.Type != "Callback" || step.QueueURL != queue || string(step.CallbackToken) != token {
		t.Fatalf("blocking step %+v", step)
	}
	if msg := err.Error(); !strings.Contains(msg, `callback step "Approve"`) || !strings.Contains(msg, queue) || strings.Contains(msg, token) {
		t.Fatalf("message should name the step and queue but not the token: %s", msg)
	}

	// Answer the step, as the consumer would, and wait again.
	if _, err := client.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{
		CallbackToken: aws.String(string(step.CallbackToken))}); err != nil {
		t.Fatal(err)
	}
	out, err := s.Wait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("out %+v, err %v", out, err)
	}
}

// TestIntegrationLambdaBlockedStop stops an execution held by a Lambda
// step, which runs on after the stop. The function returns (or times out)
// only once the wait has reported the blocking step, so the test does not
// depend on how soon the first poll comes.
func TestIntegrationLambdaBlockedStop(t *testing.T) {
	tests := []struct {
		name    string
		end     func(em *emulator.Emulator, arn, step string) error // the function returns or times out
		status  types.PipelineExecutionStatus
		reasons string
	}{
		{"function returns", (*emulator.Emulator).CompleteStep, types.PipelineExecutionStatusStopped, ""},
		{"step times out", (*emulator.Emulator).TimeOutLambdaStep, types.PipelineExecutionStatusFailed, emulator.ExecutionFailureReason},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			em := emulator.StartTest(t, emulator.Config{})
			em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: emulator.Forever})
			arn := startPipeline(t, em, "lambda-blocked", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda,
				FunctionArn: "arn:aws:lambda:us-east-1:123456789012:function:notify"})
			ctx := testCtx(t, 10*time.Second)
			if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
				t.Fatal(err)
			}
			var blocked []pipelinestop.BlockingStep
			var endErr error
			s := pipelinestop.New(em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) {
				o.OnEvent = func(ev pipelinestop.Event) {
					if ev.Type == pipelinestop.EventBlocked && blocked == nil {
						blocked = ev.Blocking
						endErr = tt.end(em, arn, "Notify")
					}
				}
			})
			out, err := s.StopAndWait(ctx, arn)
			if err != nil || endErr != nil {
				t.Fatalf("StopAndWait: %v; ending the Lambda step: %v", err, endErr)
			}
			if out.Status != tt.status || !strings.Contains(out.FailureReason, tt.reasons) {
				t.Fatalf("outcome %+v", out)
			}
			if len(blocked) != 1 || blocked[0].Type != "Lambda" || !strings.HasSuffix(blocked[0].FunctionARN, "function:notify") {
				t.Fatalf("blocking steps reported: %+v", blocked)
			}
		})
	}
}

func TestIntegrationNotRunningAndNotFound(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Quick", emulator.StepTiming{Duration: -1})
	arn := startPipeline(t, em, "done", emulator.Step{Name: "Quick", Type: "Processing"})
	ctx := testCtx(t, 10*time.Second)
	if _, err := em.WaitExecutionStatus(ctx, arn, "Succeeded"); err != nil {
		t.Fatal(err)
	}
	s := pipelinestop.New(em.SageMakerClient(), fastWait)
	res, err := s.Stop(ctx, arn)
	if err != nil || !res.NotRunning() || res.Status != types.PipelineExecutionStatusSucceeded {
		t.Fatalf("res %+v, err %v", res, err)
	}
	_, err = s.Stop(ctx, arn, func(o *pipelinestop.Options) { o.FailIfNotRunning = true })
	if !errors.Is(err, pipelinestop.ErrNotRunning) {
		t.Fatalf("err = %v, want ErrNotRunning", err)
	}

	missing := strings.Replace(arn, "pipeline/done/", "pipeline/missing/", 1)
	_, err = s.Stop(ctx, missing)
	var nf *types.ResourceNotFound
	if !errors.Is(err, pipelinestop.ErrNotFound) || !errors.As(err, &nf) {
		t.Fatalf("err = %v, want ErrNotFound and *types.ResourceNotFound from the wire", err)
	}
	var e *pipelinestop.Error
	if !errors.As(err, &e) || e.RequestID == "" || e.Attempts != 1 {
		t.Errorf("error %+v: want the request ID and one attempt", e)
	}
}

// TestIntegrationStopAllUnderThrottling stops many executions while the
// emulator admits few StopPipelineExecution calls a second: every stop
// must succeed well within its budget, with one token per execution and
// the SDK's own retries out of the way (StopAll paces and retries itself).
func TestIntegrationStopAllUnderThrottling(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
	if _, err := em.CreatePipeline("throttled", emulator.Definition(emulator.Step{Name: "Train", Type: "Training"})); err != nil {
		t.Fatal(err)
	}
	arns := make([]string, 40)
	for i := range arns {
		arn, err := em.StartExecution("throttled")
		if err != nil {
			t.Fatal(err)
		}
		arns[i] = arn
	}
	em.SetFaults(emulator.Faults{RateLimits: map[string]emulator.RateLimit{
		"StopPipelineExecution": {PerSecond: 100, Burst: 1}}})
	var retries sync.Map // retry delays of throttled attempts, per ARN
	s := pipelinestop.New(em.SageMakerClient(), func(o *pipelinestop.Options) {
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type == pipelinestop.EventRetry && errors.Is(ev.Err, pipelinestop.ErrThrottled) {
				retries.Store(ev.ExecutionARN, ev.Delay)
			}
		}
	})
	results, err := s.StopAll(testCtx(t, 30*time.Second), arns)
	if err != nil {
		t.Fatal(err)
	}
	throttled := 0
	for i, r := range results {
		if r.Stop == nil || !r.Stop.Accepted {
			t.Fatalf("%s: %+v", arns[i], r.Stop)
		}
		if n := len(em.StopTokens(arns[i])); n != 1 || em.EffectiveStops(arns[i]) != 1 {
			t.Fatalf("%s: %d tokens, %d effective stops; want 1 and 1", arns[i], n, em.EffectiveStops(arns[i]))
		}
		if d, ok := retries.Load(arns[i]); ok {
			throttled++
			if d.(time.Duration) != 0 {
				t.Fatalf("%s: a throttled stop slept a backoff of %v instead of waiting for its turn", arns[i], d)
			}
		}
	}
	if throttled == 0 {
		t.Fatal("no stop was throttled: the test does not exercise the pacer")
	}
	// Every stop request went out once per attempt: the SDK did not retry
	// behind StopAll's back.
	attempts := 0
	for _, r := range results {
		attempts += r.Stop.Attempts
	}
	if got := em.Requests("StopPipelineExecution"); got != attempts {
		t.Fatalf("the emulator saw %d StopPipelineExecution requests for %d attempts: the SDK retried on its own", got, attempts)
	}
	t.Logf("%d executions, %d throttled at least once, %d attempts", len(arns), throttled, attempts)
}
