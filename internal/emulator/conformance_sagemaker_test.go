package emulator

import (
	"strings"
	"testing"
)

// TestConformanceSageMaker drives every SageMaker operation the emulator
// serves through boto3, a client nobody here wrote, and checks each raw
// answer against botocore's service model and each error against the
// operation's modelled exception class (testdata/conformance/sagemaker.py).
func TestConformanceSageMaker(t *testing.T) {
	requireBoto3(t)
	e := StartTest(t, Config{Timing: fastTiming})
	queue, err := e.CreateQueue("conformance")
	if err != nil {
		t.Fatal(err)
	}
	runConformance(t, e, "sagemaker.py", "PIPELINESTOP_QUEUE_URL="+queue,
		"PIPELINESTOP_SAGEMAKER_OPERATIONS="+strings.Join(sortedKeys(e.sageMakerService().ops), ","))
}
