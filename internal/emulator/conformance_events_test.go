package emulator

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
)

// TestConformanceEvents drives every EventBridge operation the emulator
// serves through boto3, checks each raw answer against botocore's "events"
// model and each error against its modelled exception class, and checks
// the envelope of the SageMaker events a rule delivers to a queue while
// this test stops an execution (testdata/conformance/events.py).
func TestConformanceEvents(t *testing.T) {
	requireBoto3(t)
	e := StartTest(t, Config{Timing: fastTiming})
	cbQueue, err := e.CreateQueue("conformance-callbacks")
	if err != nil {
		t.Fatal(err)
	}
	sm := e.SageMakerClient()
	arn := createAndStart(t, sm, "conformance-events", Definition(Step{Name: "Approve", Type: StepTypeCallback, SqsQueueURL: cbQueue}))
	waitStep(t, e, arn, "Approve", StatusExecuting)
	marker := filepath.Join(t.TempDir(), "ready")

	ctx, cancel := context.WithTimeout(context.Background(), conformanceTimeout)
	defer cancel()
	run := startConformance(ctx, t, e, "events.py", "PIPELINESTOP_EVENTS_OPERATIONS="+strings.Join(sortedKeys(e.eventsService().ops), ","),
		"PIPELINESTOP_EXECUTION_ARN="+arn, "PIPELINESTOP_MARKER="+marker)

	// Once the script's rule exists, stop the execution and answer its
	// callback step, so that the rule delivers the changes.
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for ready := false; !ready; {
		select {
		case err := <-run.exited:
			t.Fatalf("events conformance ended before its rule was ready: %v\n%s", err, run.out.String())
		case <-ctx.Done():
			t.Fatalf("events conformance: no rule after %v\n%s", conformanceTimeout, run.out.String())
		case <-tick.C:
			_, statErr := os.Stat(marker)
			ready = statErr == nil
		}
	}
	if _, err := sm.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{PipelineExecutionArn: &arn, ClientRequestToken: aws.String(token('c'))}); err != nil {
		t.Fatal(err)
	}
	tok, err := e.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sm.SendPipelineExecutionStepFailure(ctx, &sagemaker.SendPipelineExecutionStepFailureInput{CallbackToken: &tok, FailureReason: aws.String("stopped")}); err != nil {
		t.Fatal(err)
	}
	run.wait(t)
}
