package emulator

import (
	"context"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// sageMakerPython returns python3's path, skipping the test when python3 or
// boto3 is missing, or failing it when motoserver.RequireEnv is "1" (the
// CI setting: boto3 is preinstalled there).
func sageMakerPython(t *testing.T) string {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err == nil {
		err = exec.Command(py, "-c", "import boto3, botocore").Run()
	}
	if err != nil {
		if os.Getenv(motoserver.RequireEnv) == "1" {
			t.Fatalf("python3 with boto3 is required (%s=1) but unavailable: %v", motoserver.RequireEnv, err)
		}
		t.Skipf("skipping the SageMaker conformance test: python3 with boto3 unavailable (%v); install boto3, or set %s=1 to fail instead", err, motoserver.RequireEnv)
	}
	return py
}

// TestConformanceSageMaker drives every SageMaker operation the emulator
// serves through boto3, a client nobody here wrote, and checks each raw
// answer against botocore's service model and each error against the
// operation's modelled exception class (testdata/conformance/sagemaker.py).
func TestConformanceSageMaker(t *testing.T) {
	py := sageMakerPython(t)
	e := StartTest(t, Config{Timing: fastTiming})
	queue, err := e.CreateQueue("conformance")
	if err != nil {
		t.Fatal(err)
	}
	var ops []string
	for op := range e.sageMakerService().ops {
		ops = append(ops, op)
	}
	slices.Sort(ops)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "testdata/conformance/sagemaker.py")
	cmd.Env = append(os.Environ(), "PIPELINESTOP_ENDPOINT="+e.URL(), "PIPELINESTOP_QUEUE_URL="+queue,
		"PIPELINESTOP_SAGEMAKER_OPERATIONS="+strings.Join(ops, ","),
		"AWS_CONFIG_FILE=/dev/null", "AWS_SHARED_CREDENTIALS_FILE=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("SageMaker conformance: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}
