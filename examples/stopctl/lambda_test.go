package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// fakeLambdaAPI serves GetFunctionConfiguration and ListEventSourceMappings
// (Lambda's REST-JSON protocol) for one function, and hands every other
// request (SQS) to the emulator, so that stopctl talks to one endpoint.
type fakeLambdaAPI struct {
	mu       sync.Mutex
	timeout  int
	mappings []map[string]any
}

func (f *fakeLambdaAPI) serve(t *testing.T, emu *emulator.Emulator) string {
	t.Helper()
	target, err := url.Parse(emu.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch {
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-03-31/functions/") && strings.HasSuffix(r.URL.Path, "/configuration"):
			name := strings.TrimSuffix(strings.TrimPrefix(r.URL.Path, "/2015-03-31/functions/"), "/configuration")
			if name != "answer" {
				w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
				w.WriteHeader(http.StatusNotFound)
				_, _ = w.Write([]byte(`{"Type":"User","message":"Function not found: ` + name + `"}`))
				return
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"FunctionName": name, "FunctionArn": "arn:aws:lambda:us-east-1:123456789012:function:" + name, "Timeout": f.timeout})
		case r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/2015-03-31/event-source-mappings"):
			_ = json.NewEncoder(w).Encode(map[string]any{"EventSourceMappings": f.mappings})
		default:
			proxy.ServeHTTP(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestLambdaCheck(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	q := te.emu.SQSClient()
	ctx := context.Background()
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("callbacks"),
		Attributes: map[string]string{"VisibilityTimeout": "60"}}); err != nil {
		t.Fatal(err)
	}
	queueARN := "arn:aws:sqs:" + te.emu.Region() + ":" + te.emu.AccountID() + ":callbacks"
	fl := &fakeLambdaAPI{timeout: 30, mappings: []map[string]any{{
		"UUID": "uuid-1", "EventSourceArn": queueARN, "State": "Enabled", "BatchSize": 10, "MaximumBatchingWindowInSeconds": 0,
	}}}
	endpoint := fl.serve(t, te.emu)
	global := []string{"--endpoint-url", endpoint, "--region", te.emu.Region()}

	// Everything wrong: no partial responses, 60 s < 6 × 30 s, no DLQ.
	r := runStopctl(t, ctx, "", append(global, "lambda", "check", "--function", "answer")...)
	if r.code != exitError {
		t.Fatalf("want exit 1 for findings:\n%s", r)
	}
	for _, want := range []string{"ReportBatchItemFailures", "VisibilityTimeout=180", "no redrive policy"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("output does not say %q:\n%s", want, r)
		}
	}

	// Fixed: exit 0, JSON says no findings.
	if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("dlq")}); err != nil {
		t.Fatal(err)
	}
	if _, err := q.SetQueueAttributes(ctx, &sqs.SetQueueAttributesInput{QueueUrl: aws.String(te.emu.QueueURL("callbacks")), Attributes: map[string]string{
		"VisibilityTimeout": "180",
		"RedrivePolicy":     `{"deadLetterTargetArn":"arn:aws:sqs:` + te.emu.Region() + `:` + te.emu.AccountID() + `:dlq","maxReceiveCount":"5"}`,
	}}); err != nil {
		t.Fatal(err)
	}
	fl.mu.Lock()
	fl.mappings[0]["FunctionResponseTypes"] = []string{"ReportBatchItemFailures"}
	fl.mu.Unlock()
	r = runStopctl(t, ctx, "", append(global, "--output", "json", "lambda", "check", "--function", "answer")...)
	if r.code != exitOK {
		t.Fatalf("want exit 0 once fixed:\n%s", r)
	}
	var report struct {
		Findings []any `json:"findings"`
		Mappings []struct {
			QueueURL string `json:"queueUrl"`
		} `json:"mappings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &report); err != nil || len(report.Findings) != 0 || len(report.Mappings) != 1 {
		t.Fatalf("report = %+v, %v:\n%s", report, err, r)
	}

	// A function that does not exist: an error, exit 1.
	r = runStopctl(t, ctx, "", append(global, "lambda", "check", "--function", "nope")...)
	if r.code != exitError || !strings.Contains(r.stderr, "get function configuration") {
		t.Fatalf("want exit 1 and the error:\n%s", r)
	}
	// Usage errors.
	for _, args := range [][]string{{"lambda"}, {"lambda", "check"}, {"lambda", "check", "--function", "f", "extra"}} {
		if r := runStopctl(t, ctx, "", append(global, args...)...); r.code != exitUsage {
			t.Errorf("%v: want exit 2:\n%s", args, r)
		}
	}
}
