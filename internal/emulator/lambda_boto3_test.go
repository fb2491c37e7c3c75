package emulator

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestLambdaAPIBoto3 drives the Lambda API through boto3, a client nobody
// here wrote (testdata/conformance/lambda_esm.py).
func TestLambdaAPIBoto3(t *testing.T) {
	py := requireBoto3(t)
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", 3*time.Second, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/conformance/lambda_esm.py")
	cmd.Env = append(os.Environ(), "PIPELINESTOP_ENDPOINT="+e.URL(), "AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("boto3: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
