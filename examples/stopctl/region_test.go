package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/regionfront"
)

// routedCall is one SageMaker request the Region front received.
type routedCall = regionfront.Call

// regionFront is internal/regionfront's recording endpoint in front of one
// emulator, which keeps state per Region; ems[r] is Region r's view of it.
type regionFront struct {
	*regionfront.Front
	url string
	ems map[string]*emulator.Emulator
}

func newRegionFront(t *testing.T, regions ...string) *regionFront {
	t.Helper()
	f := regionfront.WithEmulator(t, emulator.Config{Timing: fastTiming}, regions...)
	f.Ems[regions[0]].SetStepTiming(longStep, emulator.StepTiming{Duration: emulator.Forever})
	isolateAWS(t)
	return &regionFront{Front: f, url: f.URL, ems: f.Ems}
}

func (f *regionFront) received() []routedCall { return f.Calls() }

func arnRegion(t *testing.T, arn string) string {
	t.Helper()
	a, err := pipelinestop.ParseExecutionARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	return a.Region
}

// TestStopSeveralRegions: one stop takes ARNs of three Regions, with
// --region naming a fourth; each execution's calls go to its own Region
// and each one ends Stopped. An ARN of another partition fails with an
// error that says so, before any call about it; --no-region-routing sends
// every call to --region.
func TestStopSeveralRegions(t *testing.T) {
	f := newRegionFront(t, "us-east-1", "eu-west-1", "ap-southeast-2", "us-west-2")
	var arns []string
	for _, r := range []string{"eu-west-1", "ap-southeast-2", "us-west-2"} {
		te := &testEnv{emu: f.ems[r]}
		arns = append(arns, te.running(t, "regions"))
	}
	global := []string{"--endpoint-url", f.url, "--region", "us-east-1"}
	r := runStopctl(t, t.Context(), "", append(global, append([]string{"stop", "--wait", "--output", "json"}, arns...)...)...)
	var out struct {
		Executions []struct {
			ExecutionARN string `json:"executionArn"`
			Status       string `json:"status"`
		} `json:"executions"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || r.code != exitOK || len(out.Executions) != 3 {
		t.Fatalf("stop of three Regions (%v): %s", err, r)
	}
	for _, ex := range out.Executions {
		if ex.Status != emulator.StatusStopped {
			t.Errorf("%s: %s", ex.ExecutionARN, ex.Status)
		}
	}
	for _, c := range f.received() {
		if c.ARN != "" && c.Region != arnRegion(t, c.ARN) {
			t.Errorf("%s about %s went to %s", c.Op, c.ARN, c.Region)
		}
	}

	// An execution of partition aws-cn, with a client in us-east-1.
	china := "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/regions/execution/k1x2y3z4w5v6"
	before := len(f.received())
	r = runStopctl(t, t.Context(), "", append(global, "stop", china)...)
	if r.code != exitError || !strings.Contains(r.stderr, "partition aws-cn") || !strings.Contains(r.stderr, "partition aws:") {
		t.Fatalf("stop of an aws-cn execution from us-east-1: %s", r)
	}
	if n := len(f.received()); n != before {
		t.Fatalf("%d calls made for the aws-cn execution; want none", n-before)
	}

	// Routing off: the call goes to us-east-1, which does not know it.
	arn := (&testEnv{emu: f.ems["eu-west-1"]}).running(t, "unrouted")
	before = len(f.received())
	r = runStopctl(t, t.Context(), "", append(global, "stop", "--no-region-routing", arn)...)
	if r.code != exitError || !strings.Contains(r.stderr, "ResourceNotFound") {
		t.Fatalf("stop --no-region-routing: %s", r)
	}
	for _, c := range f.received()[before:] {
		if c.Region != "us-east-1" {
			t.Errorf("--no-region-routing: %s went to %s", c.Op, c.Region)
		}
	}
	if st, _, _ := f.ems["eu-west-1"].ExecutionStatus(arn); st != emulator.StatusExecuting {
		t.Errorf("the unrouted stop reached eu-west-1: %s", st)
	}
}

// TestStopPipelineARNOfAnotherRegion: stop --pipeline with a pipeline ARN
// lists that pipeline's executions in the ARN's Region (a client of
// us-east-1 found nothing before: ResourceNotFound), and an ARN of another
// partition is a clear error before any call.
func TestStopPipelineARNOfAnotherRegion(t *testing.T) {
	f := newRegionFront(t, "us-east-1", "eu-west-1")
	arn := (&testEnv{emu: f.ems["eu-west-1"]}).running(t, "by-pipeline")
	pipelineARN := arn[:strings.Index(arn, "/execution/")]
	global := []string{"--endpoint-url", f.url, "--region", "us-east-1"}
	r := runStopctl(t, t.Context(), "", append(global, "stop", "--pipeline", pipelineARN)...)
	if r.code != exitOK || !strings.Contains(r.stdout, arn) {
		t.Fatalf("stop --pipeline %s from us-east-1: %s", pipelineARN, r)
	}
	for _, c := range f.received() {
		if c.Region != "eu-west-1" {
			t.Errorf("%s went to %s; want eu-west-1", c.Op, c.Region)
		}
	}
	if n := f.ems["eu-west-1"].EffectiveStops(arn); n != 1 {
		t.Errorf("%d effective stops; want 1", n)
	}
	before := len(f.received())
	r = runStopctl(t, t.Context(), "", append(global, "stop", "--pipeline", "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/p")...)
	if r.code == exitOK || !strings.Contains(r.stderr, "partition aws-cn") {
		t.Fatalf("stop --pipeline of aws-cn from us-east-1: %s", r)
	}
	if n := len(f.received()); n != before {
		t.Errorf("%d calls made for the aws-cn pipeline; want none", n-before)
	}
}

// TestStatusAndAckInTheExecutionsRegion: status and ack --execution look
// the execution up, and answer its step, in the Region of its ARN, with
// --region naming another Region of the partition.
func TestStatusAndAckInTheExecutionsRegion(t *testing.T) {
	f := newRegionFront(t, "us-east-1", "us-west-2")
	te := &testEnv{emu: f.ems["us-west-2"]}
	arn, _ := te.callbackPipeline(t, "regions-ack")
	tok := te.token(t, arn)
	global := []string{"--endpoint-url", f.url, "--region", "us-east-1"}

	r := runStopctl(t, t.Context(), "", append(global, "status", arn)...)
	if r.code != exitOK || !strings.Contains(r.stdout, "Approve") {
		t.Fatalf("status: %s", r)
	}
	r = runStopctl(t, t.Context(), "", append(global, "ack", "--execution", arn, "--step", "Approve", "--success", "--param", "verdict=ok")...)
	if r.code != exitOK {
		t.Fatalf("ack --execution: %s", r)
	}
	if answers := f.ems["us-west-2"].Answers(tok); len(answers) != 1 {
		t.Fatalf("answers in us-west-2: %+v", answers)
	}
	for _, c := range f.received() {
		if c.Region != "us-west-2" {
			t.Errorf("%s went to %s", c.Op, c.Region)
		}
	}
	// Another partition: an error before any call.
	before := len(f.received())
	china := "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/regions/execution/k1x2y3z4w5v6"
	for _, args := range [][]string{{"status", china}, {"ack", "--execution", china, "--step", "Approve", "--success"}} {
		r = runStopctl(t, t.Context(), "", append(global, args...)...)
		if r.code != exitError || !strings.Contains(r.stderr, "partition aws-cn") {
			t.Errorf("%s of an aws-cn execution from us-east-1: %s", args[0], r)
		}
	}
	if n := len(f.received()); n != before {
		t.Fatalf("%d calls made for the aws-cn execution; want none", n-before)
	}
}
