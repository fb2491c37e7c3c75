package emulator

import (
	"testing"
	"time"
)

// TestLambdaAPIBoto3 drives the Lambda API through boto3, a client nobody
// here wrote (testdata/conformance/lambda_esm.py).
func TestLambdaAPIBoto3(t *testing.T) {
	requireBoto3(t)
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", 3*time.Second, nil)
	runConformance(t, e, "lambda_esm.py")
}
