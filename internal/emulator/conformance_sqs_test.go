package emulator

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// requireBoto3 returns python3's path, skipping the test when python3 or
// boto3 is missing, or failing it under motoserver.RequireEnv=1 (the CI
// setting: these tools are preinstalled there).
func requireBoto3(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import boto3, botocore").Run()
	}
	if err != nil {
		if os.Getenv(motoserver.RequireEnv) == "1" {
			t.Fatalf("python3 with boto3 is required (%s=1) but unavailable: %v", motoserver.RequireEnv, err)
		}
		t.Skipf("python3 with boto3 unavailable (%v); install boto3 or set %s=1 to fail instead", err, motoserver.RequireEnv)
	}
	return py
}

// TestConformanceSQS drives every SQS operation the emulator serves through
// boto3, a client nobody here wrote, and checks each answer against
// botocore's service model and each error against its modelled exception
// class (testdata/conformance/sqs.py).
func TestConformanceSQS(t *testing.T) {
	py := requireBoto3(t)
	e := StartTest(t, Config{})
	var sqsOps []string
	for op := range e.sqsService().ops {
		sqsOps = append(sqsOps, op)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/conformance/sqs.py")
	cmd.Env = append(os.Environ(), "PIPELINESTOP_ENDPOINT="+e.URL(), "PIPELINESTOP_SQS_OPERATIONS="+strings.Join(sqsOps, ","),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("SQS conformance: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
