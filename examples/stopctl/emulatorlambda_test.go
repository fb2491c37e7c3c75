package main

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

func TestParseEventSource(t *testing.T) {
	for _, tc := range []struct {
		in    string
		want  eventSourceFlag
		error string
	}{
		{"q=fn", eventSourceFlag{queue: "q", function: "fn"}, ""},
		{"q=fn,batch-size=20,window=2s,report-batch-item-failures", eventSourceFlag{queue: "q", function: "fn",
			opts: emulator.EventSourceOptions{BatchSize: 20, MaximumBatchingWindow: 2 * time.Second, ReportBatchItemFailures: true}}, ""},
		{"q", eventSourceFlag{}, "want QUEUE=FUNCTION"},
		{"=fn", eventSourceFlag{}, "want QUEUE=FUNCTION"},
		{"q=fn,batch-size=0", eventSourceFlag{}, `batch-size "0" is not a number from 1 to 10000`},
		{"q=fn,window=301s", eventSourceFlag{}, `window "301s" is not a duration from 0 to 300s`},
		{"q=fn,fast", eventSourceFlag{}, `unknown option "fast"`},
	} {
		got, err := parseEventSource(tc.in)
		switch {
		case tc.error != "" && (err == nil || !strings.Contains(err.Error(), tc.error)):
			t.Errorf("parseEventSource(%q): %v; want an error containing %q", tc.in, err, tc.error)
		case tc.error == "" && (err != nil || got != tc.want):
			t.Errorf("parseEventSource(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
		}
	}
}

func TestEmulatorLambdaUsage(t *testing.T) {
	isolateAWS(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--function", "fn"}, "want NAME=PATH"},
		{[]string{"--function", "fn=a", "--function", "fn=b"}, "function fn given twice"},
		{[]string{"--function-timeout", "0s"}, "--function-timeout 0s is not between 0 and 15m0s"},
		{[]string{"--event-source", "q=fn"}, "--event-source q=fn: no --function fn"},
	} {
		r := runStopctl(t, t.Context(), "", append([]string{"emulator"}, tc.args...)...)
		if r.code != exitUsage {
			t.Errorf("%v: %s; want exit 2", tc.args, r)
			continue
		}
		oneStderrLine(t, r, tc.want)
	}
}

// TestEmulatorRunsFunction runs a local function fed by an event source
// mapping from the flags, and reads the mapping through the Lambda API.
func TestEmulatorRunsFunction(t *testing.T) {
	isolateAWS(t)
	bin := filepath.Join(t.TempDir(), "bootstrap")
	if out, err := exec.Command("go", "build", "-o", bin, "../../internal/emulator/testdata/sqsfn").CombinedOutput(); err != nil {
		t.Fatalf("build the test function: %v\n%s", err, out)
	}
	a := startAsync(t, "emulator", "--addr", "127.0.0.1:0", "--function", "fn="+bin, "--function-timeout", "5s",
		"--event-source", "work=fn,batch-size=5,report-batch-item-failures")
	endpoint := regexp.MustCompile(`listening on (http://127\.0\.0\.1:[0-9]+) `)
	var url string
	waitFor(t, "the emulator's banner", func() bool {
		m := endpoint.FindStringSubmatch(a.stdout.String())
		if m != nil {
			url = m[1]
		}
		return m != nil
	})
	for _, want := range []string{"Lambda function fn runs " + bin + " (timeout 5s)", "Queue " + url + "/123456789012/work feeds fn"} {
		if !strings.Contains(a.stdout.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, a.stdout.String())
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), testTimeout)
	defer cancel()
	cfg := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(url), Credentials: aws.AnonymousCredentials{}}
	lc := lambda.NewFromConfig(cfg)
	list, err := lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if len(list.EventSourceMappings) != 1 || aws.ToInt32(list.EventSourceMappings[0].BatchSize) != 5 ||
		!slices.Equal(list.EventSourceMappings[0].FunctionResponseTypes, []ltypes.FunctionResponseType{"ReportBatchItemFailures"}) {
		t.Errorf("mappings %+v", list.EventSourceMappings)
	}
	fc, err := lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if err != nil || aws.ToInt32(fc.Timeout) != 5 {
		t.Errorf("GetFunctionConfiguration: %v %+v", err, fc)
	}

	sc := sqs.NewFromConfig(cfg)
	queueURL := url + "/123456789012/work"
	if _, err := sc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &queueURL, MessageBody: aws.String("ok")}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the function to consume the message", func() bool {
		out, err := sc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &queueURL,
			AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
		if err != nil {
			return false
		}
		n, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
		m, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
		return n+m == 0
	})
	if r := a.stop(t); r.code != exitOK || !strings.Contains(r.stdout, "emulator stopped") {
		t.Fatalf("emulator after interrupt: %s", r)
	}
}
