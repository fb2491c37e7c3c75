package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

func TestEmulatorUsage(t *testing.T) {
	isolateAWS(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--addr", "nope"}, `--addr "nope" is not HOST:PORT`},
		{[]string{"--addr", "127.0.0.1:70000"}, "port \"70000\" is not a number from 0 to 65535"},
		{[]string{"--addr", ":4599"}, "has no host"},
		{[]string{"--account-id", "12345"}, "not 12 digits"},
		{[]string{"--step-duration", "-1s"}, "must not be negative"},
		{[]string{"--lambda-run-time", "soon"}, "want a duration such as 1.5s or 200ms, or forever"},
		{[]string{"--stop-delay", "forever"}, "want a duration such as 1.5s or 200ms"},
		{[]string{"--error-rate", "1.5"}, "want a fraction from 0 to 1"},
		{[]string{"--drop-rate", "NaN"}, "want a fraction from 0 to 1"},
		{[]string{"--sqs-latency", "-20ms"}, "must not be negative"},
		{[]string{"--sqs-latency-jitter", "NaN"}, "want a duration such as 1.5s or 200ms"},
		{[]string{"--rate-limit", "Frobnicate=1/s"}, `unknown operation "Frobnicate"`},
		{[]string{"--rate-limit", "StopPipelineExecution"}, "want OPERATION=N/s[,BURST]"},
		{[]string{"--rate-limit", "StopPipelineExecution=fast"}, `rate "fast" is not a number`},
		{[]string{"--rate-limit", "StopPipelineExecution=2/s,0"}, `burst "0" is not a whole number of at least 1`},
		{[]string{"--rate-limit", "StopPipelineExecution=1e19/s"}, `rate "1e19" is above 1e+09 requests per second`},
		{[]string{"--rate-limit", "*=2/s", "--rate-limit", "*=3/s"}, "* given twice"},
		{[]string{"--callback-queue-endpoint", "localhost:5000"}, "is not an http(s) URL"},
		{[]string{"--endpoint-url", "http://127.0.0.1:1"}, "flag provided but not defined: -endpoint-url"}, // not in its help either
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"--region", "EU_WEST"}, `--region: emulator: invalid Region: "EU_WEST"`},
	} {
		r := runStopctl(t, t.Context(), "", append([]string{"emulator"}, tc.args...)...)
		if r.code != exitUsage {
			t.Errorf("%v: %s; want exit 2", tc.args, r)
			continue
		}
		oneStderrLine(t, r, tc.want)
		if !strings.Contains(r.stderr, "run 'stopctl emulator -h' for help") {
			t.Errorf("%v: the error does not point at the command's help: %s", tc.args, r.stderr)
		}
	}
}

func TestParseRateLimit(t *testing.T) {
	for _, tc := range []struct {
		in    string
		op    string
		rl    emulator.RateLimit
		error bool
	}{
		{"StopPipelineExecution=2/s,5", "StopPipelineExecution", emulator.RateLimit{PerSecond: 2, Burst: 5}, false},
		{"*=0.5", "*", emulator.RateLimit{PerSecond: 0.5, Burst: 1}, false},
		{"ReceiveMessage=10/s", "ReceiveMessage", emulator.RateLimit{PerSecond: 10, Burst: 10}, false},
		{"ReceiveMessage=-1/s", "", emulator.RateLimit{}, true},
		{"=1/s", "", emulator.RateLimit{}, true},
		// A huge rate used to overflow the default burst (printed as
		// -9223372036854775808): refused instead.
		{"StopPipelineExecution=1e300/s", "", emulator.RateLimit{}, true},
		{"StopPipelineExecution=1e9/s", "StopPipelineExecution", emulator.RateLimit{PerSecond: 1e9, Burst: 1e9}, false},
		{"SendMessageBatch=1/s", "SendMessageBatch", emulator.RateLimit{PerSecond: 1, Burst: 1}, false},
	} {
		op, rl, err := parseRateLimit(tc.in)
		if (err != nil) != tc.error || op != tc.op || rl != tc.rl {
			t.Errorf("parseRateLimit(%q) = %q, %+v, %v; want %q, %+v, error %v", tc.in, op, rl, err, tc.op, tc.rl, tc.error)
		}
	}
}

// TestEmulatorServes runs the emulator command with timing and fault flags,
// uses it through the SDK and stopctl, and interrupts it.
func TestEmulatorServes(t *testing.T) {
	isolateAWS(t)
	a := startAsync(t, "emulator", "--addr", "127.0.0.1:0", "--step-duration", "forever",
		"--conflict-window", "1m", "--rate-limit", "StopPipelineExecution=100/s,50", "--seed", "7",
		"--latency", "1ms", "--sqs-latency", "2ms")
	endpoint := regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+) `)
	var url string
	waitFor(t, "the emulator's banner", func() bool {
		m := endpoint.FindStringSubmatch(a.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	out := a.stdout.String()
	for _, want := range []string{
		"export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1",
		"aws --endpoint-url " + url + " sagemaker list-pipeline-executions",
		"generic steps forever", "conflict window 1m0s",
		"StopPipelineExecution throttled at 100/s (burst 50)",
		"Every Region is served with its own state",
		"latency 1ms + up to 0s, SQS latency 2ms + up to 0s",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("banner lacks %q:\n%s", want, out)
		}
	}

	// Create and start a pipeline through the SDK, as a user would with
	// the AWS CLI.
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	sm := sagemaker.New(sagemaker.Options{Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: aws.AnonymousCredentials{}})
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String("served"),
		PipelineDefinition: aws.String(emulator.Definition(emulator.Step{Name: "Work"})),
		RoleArn:            aws.String("arn:aws:iam::123456789012:role/r")}); err != nil {
		t.Fatalf("CreatePipeline: %v", err)
	}
	start, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String("served")})
	if err != nil {
		t.Fatalf("StartPipelineExecution: %v", err)
	}
	arn := aws.ToString(start.PipelineExecutionArn)

	// The conflict window of a minute (a flag) makes every stop a
	// conflict: stop retries until its timeout and exits 3.
	r := runStopctl(t, t.Context(), "", "--endpoint-url", url, "--region", "us-east-1", "stop", "--timeout", "600ms", arn)
	if r.code != exitTimeout || !strings.Contains(r.stderr, "ConflictException") {
		t.Fatalf("stop during the conflict window: %s; want exit 3 after ConflictException retries", r)
	}
	// The step runs forever (a flag): still Executing.
	if r := runStopctl(t, t.Context(), "", "--endpoint-url", url, "--region", "us-east-1", "status", arn); r.code != exitOK ||
		!strings.Contains(r.stdout, "Status     Executing") {
		t.Fatalf("status: %s", r)
	}

	begin := time.Now()
	r = a.stop(t)
	if r.code != exitOK || !strings.Contains(r.stdout, "emulator stopped") {
		t.Fatalf("emulator after interrupt: %s", r)
	}
	if d := time.Since(begin); d > 5*time.Second {
		t.Fatalf("the emulator took %s to stop", d)
	}
}
