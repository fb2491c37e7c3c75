package pipelinestop_test

import (
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// retryExecution calls RetryPipelineExecution with a fresh token.
func retryExecution(t *testing.T, em *emulator.Emulator, arn string) {
	t.Helper()
	if _, err := em.SageMakerClient().RetryPipelineExecution(testCtx(t, 5*time.Second), &sagemaker.RetryPipelineExecutionInput{
		PipelineExecutionArn: aws.String(arn), ClientRequestToken: aws.String(strings.Repeat("r", 32) + time.Now().Format("150405.000000000")),
	}); err != nil {
		t.Fatalf("RetryPipelineExecution: %v", err)
	}
}

// TestIntegrationWaitAndStopAfterRetry: a Failed execution put back to
// Executing under the same ARN by RetryPipelineExecution is waited for and
// stopped like any running execution.
func TestIntegrationWaitAndStopAfterRetry(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: 50 * time.Millisecond})
	arn := startPipeline(t, em, "retried", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda})
	ctx := testCtx(t, 10*time.Second)
	s := pipelinestop.New(em.SageMakerClient(), fastWait)

	out, err := s.Wait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusFailed {
		t.Fatalf("first wait: %+v, %v; want Failed", out, err)
	}
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: 200 * time.Millisecond, LambdaTimeout: 10 * time.Second})
	retryExecution(t, em, arn)
	if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
		t.Fatal(err)
	}
	out, err = s.StopAndWait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped || !out.Stop.Accepted {
		t.Fatalf("stop after retry: %+v, %v; want Stopped", out, err)
	}
	if em.EffectiveStops(arn) != 1 {
		t.Fatalf("%d effective stops; want 1", em.EffectiveStops(arn))
	}
}

// TestIntegrationStopAfterStoppedFailureAndRetry: an execution stopped
// while a Lambda step ran ends Failed when the function times out; retried,
// it runs again under the same ARN. A second stop must stop it again, but
// the token Stop derives from the ARN is the one already accepted, and a
// repeated ClientRequestToken "completes no more than once": the emulator
// answers the replayed success and the execution keeps running. A caller
// must pass a new Options.Token for the new attempt.
func TestIntegrationStopAfterStoppedFailureAndRetry(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: 300 * time.Millisecond})
	arn := startPipeline(t, em, "stop-retry", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda})
	ctx := testCtx(t, 10*time.Second)
	if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
		t.Fatal(err)
	}
	s := pipelinestop.New(em.SageMakerClient(), fastWait)
	out, err := s.StopAndWait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusFailed {
		t.Fatalf("first stop: %+v, %v; want Failed (the function timed out while stopping)", out, err)
	}
	em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: 10 * time.Second})
	retryExecution(t, em, arn)
	if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
		t.Fatal(err)
	}

	res, err := s.Stop(ctx, arn)
	if err != nil {
		t.Fatal(err)
	}
	if st, _, _ := em.ExecutionStatus(arn); st != emulator.StatusExecuting || em.EffectiveStops(arn) != 1 {
		t.Fatalf("derived token after retry: status %s, %d effective stops; want the replay (Executing, 1)", st, em.EffectiveStops(arn))
	}
	if !res.Accepted {
		t.Fatalf("stop result %+v", res)
	}

	res, err = s.Stop(ctx, arn, func(o *pipelinestop.Options) {
		o.Token = pipelinestop.DeriveToken("StopPipelineExecution", arn, "attempt-2")
	})
	if err != nil || !res.Accepted {
		t.Fatalf("stop with a new token: %+v, %v", res, err)
	}
	if st, _, _ := em.ExecutionStatus(arn); st != emulator.StatusStopping || em.EffectiveStops(arn) != 2 {
		t.Fatalf("after a stop with a new token: status %s, %d effective stops; want Stopping, 2", st, em.EffectiveStops(arn))
	}
}
