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
// it runs again under the same ARN. The token Stop derives from the ARN is
// the one already accepted, and a repeated ClientRequestToken "completes no
// more than once": SageMaker answers the replayed success and the
// execution keeps running. Stop sees it still Executing after the accepted
// stop and stops it once more with the round's token, derived from the
// execution's LastModifiedTime; with a caller's Options.Token the same.
func TestIntegrationStopAfterStoppedFailureAndRetry(t *testing.T) {
	for _, tc := range []struct {
		name  string
		token string
	}{{"derived token", ""}, {"caller's token", "shutdown-2026-12-01-replica-a-00000"}} {
		t.Run(tc.name, func(t *testing.T) {
			em := emulator.StartTest(t, emulator.Config{})
			em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: 300 * time.Millisecond})
			arn := startPipeline(t, em, "stop-retry", emulator.Step{Name: "Notify", Type: emulator.StepTypeLambda})
			ctx := testCtx(t, 10*time.Second)
			if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
				t.Fatal(err)
			}
			s := pipelinestop.New(em.SageMakerClient(), fastWait, func(o *pipelinestop.Options) { o.Token = tc.token })
			out, err := s.StopAndWait(ctx, arn)
			if err != nil || out.Status != types.PipelineExecutionStatusFailed || out.Stop.Restopped {
				t.Fatalf("first stop: %+v, %v; want Failed (the function timed out while stopping)", out, err)
			}
			first := out.Stop.Token
			em.SetStepTiming("Notify", emulator.StepTiming{Duration: emulator.Forever, LambdaTimeout: 10 * time.Second})
			retryExecution(t, em, arn)
			if err := em.WaitStepStatus(ctx, arn, "Notify", "Executing"); err != nil {
				t.Fatal(err)
			}

			res, err := s.Stop(ctx, arn)
			if err != nil {
				t.Fatal(err)
			}
			if st, _, _ := em.ExecutionStatus(arn); st != emulator.StatusStopping || em.EffectiveStops(arn) != 2 {
				t.Fatalf("stop after retry: status %s, %d effective stops; want Stopping, 2", st, em.EffectiveStops(arn))
			}
			if !res.Accepted || !res.Restopped || res.Status != types.PipelineExecutionStatusStopping || res.Token == first ||
				res.Attempts != 2 || em.AcceptedStopToken(arn) != res.Token {
				t.Fatalf("stop result %+v (first token %s, accepted %s); want a second, accepted stop with the round's token",
					res, first, em.AcceptedStopToken(arn))
			}
			// Stopped again while it is Stopping (the emulator remembers
			// only the last accepted token, so the first one is refused as
			// not Executing): already stopping, no third stop.
			again, err := s.Stop(ctx, arn)
			if err != nil || again.Restopped || !again.AlreadyStopping() || again.Status != types.PipelineExecutionStatusStopping || em.EffectiveStops(arn) != 2 {
				t.Fatalf("stop of the Stopping execution: %+v, %v, %d effective stops", again, err, em.EffectiveStops(arn))
			}
		})
	}
}

// TestIntegrationReplayedStopReportsWhatItSees: a stop repeated with the
// accepted token after the execution ended Stopped is replayed with
// success; Stop reports the status it looked up (Stopped), not Stopping.
func TestIntegrationReplayedStopReportsWhatItSees(t *testing.T) {
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})
	arn := startPipeline(t, em, "replayed", emulator.Step{Name: "Train", Type: "Training"})
	ctx := testCtx(t, 10*time.Second)
	if err := em.WaitStepStatus(ctx, arn, "Train", "Executing"); err != nil {
		t.Fatal(err)
	}
	s := pipelinestop.New(em.SageMakerClient(), fastWait)
	out, err := s.StopAndWait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("first stop: %+v, %v", out, err)
	}
	// A restarted process stops it again, with the same derived token.
	res, err := s.Stop(ctx, arn)
	if err != nil || !res.Accepted || res.Status != types.PipelineExecutionStatusStopped || res.Restopped || res.LookupErr != nil {
		t.Fatalf("replayed stop: %+v, %v; want accepted (a replay) and Stopped, as seen", res, err)
	}
	if em.EffectiveStops(arn) != 1 {
		t.Fatalf("%d effective stops; want 1", em.EffectiveStops(arn))
	}
}
