package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"runtime/debug"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

func TestFitLine(t *testing.T) {
	long := strings.Repeat("x", 200)
	for _, tc := range []struct {
		line  string
		width int
		want  string
	}{
		{"short", 80, "short"},
		{strings.Repeat("a", 79), 80, strings.Repeat("a", 79)},       // fills width-1 columns
		{strings.Repeat("a", 80), 80, strings.Repeat("a", 78) + "…"}, // the last column stays empty
		{"⠋ Stopping · ∥ held", 12, "⠋ Stopping…"},                   // runes, not bytes
		{long, 40, strings.Repeat("x", 38) + "…"},
		{long, 0, "x…"}, // a nonsense width still gives a line
	} {
		got := fitLine(tc.line, tc.width)
		if got != tc.want {
			t.Errorf("fitLine(%q, %d) = %q; want %q", tc.line, tc.width, got, tc.want)
		}
		if tc.width >= 3 && utf8.RuneCountInString(got) > tc.width-1 {
			t.Errorf("fitLine(%q, %d) is %d columns", tc.line, tc.width, utf8.RuneCountInString(got))
		}
	}
}

func TestWidthOf(t *testing.T) {
	var buf bytes.Buffer // not a terminal: COLUMNS, else 80
	t.Setenv("COLUMNS", "")
	if w := widthOf(&buf)(); w != defaultWidth {
		t.Fatalf("width %d; want %d", w, defaultWidth)
	}
	t.Setenv("COLUMNS", "132")
	if w := widthOf(&buf)(); w != 132 {
		t.Fatalf("width with COLUMNS=132: %d", w)
	}
	t.Setenv("COLUMNS", "wide")
	if w := widthOf(&buf)(); w != defaultWidth {
		t.Fatalf("width with COLUMNS=wide: %d", w)
	}
}

// TestConsoleFitsWidth draws the live line on an 80-column "terminal":
// every redraw fits in 79 columns, whatever the status.
func TestConsoleFitsWidth(t *testing.T) {
	var buf bytes.Buffer
	c := &console{w: &buf, live: true, width: func() int { return 80 }}
	c.status = "3 executions · " + strings.Repeat("nightly-training/abc123: Stopping, held by \"Approve\" (Callback) · ", 3)
	for i := range 5 {
		c.draw(i)
	}
	for _, frame := range strings.Split(buf.String(), "\r\033[K")[1:] {
		if n := utf8.RuneCountInString(frame); n > 79 {
			t.Fatalf("a frame of %d columns on an 80-column terminal: %q", n, frame)
		}
	}
}

func TestNoColor(t *testing.T) {
	t.Setenv("NO_COLOR", "")
	c := newConsole(&bytes.Buffer{}, true)
	defer c.Close()
	if got := c.red("x"); got != "\033[31mx\033[0m" {
		t.Fatalf("red without NO_COLOR: %q", got)
	}
	t.Setenv("NO_COLOR", "1")
	c2 := newConsole(&bytes.Buffer{}, true)
	defer c2.Close()
	if got := c2.red("x") + c2.bold("y"); got != "xy" {
		t.Fatalf("styles with NO_COLOR=1: %q", got)
	}
}

// TestProgressShowsEveryExecution: with several executions the live line
// holds each one's state, not the last event's.
func TestProgressShowsEveryExecution(t *testing.T) {
	p := &progress{c: newConsole(&bytes.Buffer{}, false), multi: true}
	a := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/aaa"
	b := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/bbb"
	p.event(pipelinestop.Event{Type: pipelinestop.EventStatus, ExecutionARN: a, Status: types.PipelineExecutionStatusStopping})
	p.event(pipelinestop.Event{Type: pipelinestop.EventStatus, ExecutionARN: b, Status: types.PipelineExecutionStatusStopped})
	p.event(pipelinestop.Event{Type: pipelinestop.EventBlocked, ExecutionARN: a, Status: types.PipelineExecutionStatusStopping,
		Blocking: []pipelinestop.BlockingStep{{Name: "Approve", Type: "Callback"}}})
	got := p.c.status
	for _, want := range []string{"2 executions", "p/aaa: Stopping, held by \"Approve\" (Callback)", "p/bbb: Stopped"} {
		if !strings.Contains(got, want) {
			t.Fatalf("live line %q lacks %q", got, want)
		}
	}
}

func TestAckByExecutionAndStep(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	arn, _ := te.callbackPipeline(t, "ack-by-step")
	tok := te.token(t, arn)
	r := te.stopctl(t, "--output", "json", "ack", "--execution", arn, "--step", "Approve", "--success", "--param", "verdict=ok")
	if r.code != exitOK || strings.Contains(r.stdout+r.stderr, tok) {
		t.Fatalf("ack --execution --step: %s", r)
	}
	var out struct {
		Answer, Step string
	}
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil || out.Answer != "success" || out.Step != "Approve" {
		t.Fatalf("ack JSON %q (%v)", r.stdout, err)
	}
	if a := te.emu.Answers(tok); len(a) != 1 || a[0].Outcome != emulator.OutcomeSuccess || a[0].OutputParameters["verdict"] != "ok" {
		t.Fatalf("answers %+v; want one success with verdict=ok", a)
	}
	// An unknown step: a usage error that lists the steps.
	r = te.stopctl(t, "ack", "--execution", arn, "--step", "Nope", "--failure")
	if r.code != exitUsage {
		t.Fatalf("ack --step Nope: %s; want exit 2", r)
	}
	oneStderrLine(t, r, `has no step "Nope" (its steps: Approve)`)
}

// TestRegionFromARN: with no Region configured, the execution ARN's is
// used.
func TestRegionFromARN(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	arn, _ := te.callbackPipeline(t, "region-from-arn")
	te.token(t, arn)
	r := runStopctl(t, context.Background(), "", "--endpoint-url", te.emu.URL(), "status", arn)
	if r.code != exitOK || !strings.Contains(r.stdout, "Approve") {
		t.Fatalf("status without a Region: %s", r)
	}
}

func TestStopPipelineNameSuggestsFlag(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	r := te.stopctl(t, "stop", "nightly-training")
	if r.code != exitUsage {
		t.Fatalf("stop NAME: %s; want exit 2", r)
	}
	oneStderrLine(t, r, "stopctl stop --pipeline nightly-training")
}

func TestInterruptedSaysSo(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	arn, _ := te.stoppingWithCallback(t, "interrupted")
	a := te.startAsync(t, "wait", arn)
	waitFor(t, "the wait to start", func() bool { return strings.Contains(a.stderr.String(), "held by") })
	r := a.stop(t)
	if r.code != exitInterrupted {
		t.Fatalf("interrupted wait: %s; want exit 130", r)
	}
	lastStderrLine(t, r, "interrupted")
	if strings.Contains(r.stderr, "context canceled") {
		t.Fatalf("the error speaks of the context:\n%s", r)
	}
}

// TestCommandHelpShowsItsFlags: demo and emulator list only the global
// flags they take.
func TestCommandHelpShowsItsFlags(t *testing.T) {
	for _, tc := range []struct {
		cmd       string
		has, hasn []string
	}{
		{"demo", []string{"-output"}, []string{"-endpoint-url", "-profile", "-region"}},
		{"emulator", []string{"-region", "-output", "-addr"}, []string{"-endpoint-url", "-profile"}},
		{"stop", []string{"-region", "-profile", "-endpoint-url", "-output", "-pipeline"}, nil},
		{"ack", []string{"-output", "-param", "-execution", "-step"}, nil},
	} {
		r := runStopctl(t, context.Background(), "", tc.cmd, "-h")
		if r.code != exitOK {
			t.Fatalf("%s -h: %s", tc.cmd, r)
		}
		for _, f := range tc.has {
			if !strings.Contains(r.stdout, "  "+f+" ") {
				t.Errorf("%s -h lacks %s:\n%s", tc.cmd, f, r.stdout)
			}
		}
		for _, f := range tc.hasn {
			if strings.Contains(r.stdout, "  "+f+" ") {
				t.Errorf("%s -h lists %s, which it rejects:\n%s", tc.cmd, f, r.stdout)
			}
		}
	}
}

func TestVersion(t *testing.T) {
	r := runStopctl(t, context.Background(), "", "--version")
	if r.code != exitOK || !strings.HasPrefix(r.stdout, "stopctl ") || !strings.Contains(r.stdout, "go1.") {
		t.Fatalf("--version: %s", r)
	}
	got := formatVersion(&debug.BuildInfo{GoVersion: "go1.26.0", Main: debug.Module{Version: "v1.2.3"},
		Settings: []debug.BuildSetting{{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}})
	if got != "stopctl v1.2.3 (0123456789ab, modified) go1.26.0" {
		t.Fatalf("formatVersion: %q", got)
	}
}

// TestConsumeQueueNameJSONLogsOnStderr: --queue takes a name (resolved
// with GetQueueUrl), and with --output json the log goes to standard
// error, as in text mode, leaving standard output empty.
func TestConsumeQueueNameJSONLogsOnStderr(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	_, q := te.callbackPipeline(t, "consume-by-name")
	a := te.startAsync(t, "--output", "json", "consume", "--queue", "consume-by-name-q")
	waitFor(t, "the consumer to start", func() bool { return strings.Contains(a.stderr.String(), `"msg":"consuming callback messages"`) })
	r := a.stop(t)
	if r.code != exitOK {
		t.Fatalf("consume: %s", r)
	}
	if !strings.Contains(r.stderr, `"queue":"`+q+`"`) {
		t.Fatalf("the log does not name the resolved queue URL %s:\n%s", q, r)
	}
	if r.stdout != "" {
		t.Fatalf("consume --output json wrote to standard output:\n%s", r)
	}
	r = te.stopctl(t, "consume", "--queue", "no-such-queue")
	if r.code != exitError || !strings.Contains(r.stderr, "no-such-queue") {
		t.Fatalf("consume --queue no-such-queue: %s", r)
	}
}

func TestErrorText(t *testing.T) {
	e := &env{timeout: 8 * time.Second}
	for _, tc := range []struct{ in, want string }{
		{"wait for pipeline execution A: context deadline exceeded after 7.901s and 8 polls; last status Stopping",
			"wait for pipeline execution A: timed out after 8s (waited 7.901s, 8 polls); last status Stopping"},
		{"wait for pipeline execution A: context canceled after 1.5s and 3 polls", "wait for pipeline execution A: interrupted (waited 1.5s, 3 polls)"},
		{"stop pipeline execution: context canceled", "stop pipeline execution: interrupted"},
		{"list executions: context deadline exceeded", "list executions: timed out after 8s"},
	} {
		if got := e.errorText(errors.New(tc.in)); got != tc.want {
			t.Errorf("errorText(%q) = %q; want %q", tc.in, got, tc.want)
		}
	}
}

// TestConsumeLogTimesHaveZone: the consume log's times say their zone.
func TestConsumeLogTimesHaveZone(t *testing.T) {
	var buf bytes.Buffer
	l := &consumeLog{w: &buf}
	l.line("consuming")
	zone := time.Now().Format("MST")
	if got := buf.String(); !regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} \S+  consuming\n$`).MatchString(got) || !strings.Contains(got, " "+zone+" ") {
		t.Fatalf("log line %q; want a time with its zone %s", got, zone)
	}
}
