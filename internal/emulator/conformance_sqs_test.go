package emulator

import (
	"strings"
	"testing"
)

// TestConformanceSQS drives every SQS operation the emulator serves through
// boto3, a client nobody here wrote, and checks each answer against
// botocore's service model and each error against its modelled exception
// class (testdata/conformance/sqs.py).
func TestConformanceSQS(t *testing.T) {
	requireBoto3(t)
	e := StartTest(t, Config{})
	runConformance(t, e, "sqs.py", "PIPELINESTOP_SQS_OPERATIONS="+strings.Join(sortedKeys(e.sqsService().ops), ","))
}
