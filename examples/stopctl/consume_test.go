package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// callbackPipeline starts an execution whose only step is a callback step
// on a fresh queue, and returns the execution ARN and the queue URL.
func (te *testEnv) callbackPipeline(t *testing.T, name string) (arn, queueURL string) {
	t.Helper()
	queueURL = te.queue(t, name+"-q")
	arn = te.start(t, name, emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: queueURL,
		Arguments: map[string]any{"model": "m-1", "threshold": 0.9}, Outputs: []string{"verdict"}})
	return arn, queueURL
}

// token returns the callback token of the execution's Approve step.
func (te *testEnv) token(t *testing.T, arn string) string {
	t.Helper()
	te.waitStep(t, arn, "Approve", emulator.StatusExecuting, emulator.StatusStopping, emulator.StatusSucceeded, emulator.StatusFailed)
	tok, err := te.emu.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestConsumeOnExecutingSuccess(t *testing.T) {
	requireSh(t)
	te := newTestEnv(t, emulator.Config{})
	arn, q := te.callbackPipeline(t, "consume-ok")
	in := filepath.Join(t.TempDir(), "stdin.json")
	// The hook saves its standard input and answers with outputs, one of
	// them a number (sent as text).
	a := te.startAsync(t, "consume", "--queue", q, "--drain-timeout", "1s",
		"--on-executing", `cat > '`+in+`'; printf '{"verdict": "approved", "score": 0.97}'`)
	te.waitExecution(t, arn, emulator.StatusSucceeded)
	r := a.stop(t)
	if r.code != exitOK {
		t.Fatalf("consume: %s", r)
	}
	tok := te.token(t, arn)
	answers := te.emu.Answers(tok)
	if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess ||
		answers[0].OutputParameters["verdict"] != "approved" || answers[0].OutputParameters["score"] != "0.97" {
		t.Fatalf("answers %+v; want one success with verdict=approved, score=0.97", answers)
	}
	raw, err := os.ReadFile(in)
	if err != nil {
		t.Fatal(err)
	}
	var msg struct {
		Token, PipelineExecutionArn, Status string
		Arguments                           map[string]any
	}
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("hook stdin %q: %v", raw, err)
	}
	if msg.Token != tok || msg.PipelineExecutionArn != arn || msg.Status != "Executing" || msg.Arguments["threshold"] != 0.9 {
		t.Fatalf("hook stdin %s; want the callback message with the token", raw)
	}
	if strings.Contains(r.stderr, tok) {
		t.Fatalf("the log holds the full callback token:\n%s", r.stderr)
	}
	for _, want := range []string{"running hook", "hook succeeded", "answered success", pipelinestop.CallbackToken(tok).String(), "shutting down", "stopped"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("log lacks %q:\n%s", want, r.stderr)
		}
	}
}

func TestConsumeOnExecutingFailure(t *testing.T) {
	requireSh(t)
	te := newTestEnv(t, emulator.Config{})
	for _, tc := range []struct {
		name, hook, reason string
	}{
		// The hook echoes the token to stderr: the reason sent and logged
		// must hold it redacted only.
		{"exit", `tok=$(sed 's/.*"token":"\([A-Za-z0-9]*\)".*/\1/'); echo "model broke for $tok" >&2; exit 3`, "model broke for "},
		{"not-object", `cat >/dev/null; echo '["a"]'`, "not a JSON object"},
		{"bad-value", `cat >/dev/null; echo '{"verdict": {"nested": 1}}'`, `output "verdict" is a JSON object`},
		// The token where the 200-byte tail of standard error (and the
		// 40-byte quote of bad standard output) is cut: no piece of it
		// may show beside the redacted token.
		{"stderr-cut-through-token", `tok=$(sed 's/.*"token":"\([A-Za-z0-9]*\)".*/\1/'); printf '%s' "$tok" >&2; ` +
			`head -c 194 /dev/zero | tr '\0' x >&2; exit 3`, "xxxxxxxxxx (exit status 3)"},
		{"stdout-cut-through-token", `tok=$(sed 's/.*"token":"\([A-Za-z0-9]*\)".*/\1/'); ` +
			`printf 'not json %s%s' "$(head -c 25 /dev/zero | tr '\0' y)" "$tok"`, "(not JSON)"},
		// A command that prints credentials (a failed aws command).
		{"stderr-with-credentials", `cat >/dev/null; echo "aws_secret_access_key = pStopHookS3cretKey/0123456789abcdef" >&2; ` +
			`head -c 180 /dev/zero | tr '\0' z >&2; exit 1`, "zzzzzzzzzz (exit status 1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arn, q := te.callbackPipeline(t, "consume-fail-"+tc.name)
			a := te.startAsync(t, "consume", "--queue", q, "--on-executing", tc.hook)
			te.waitExecution(t, arn, emulator.StatusFailed)
			r := a.stop(t)
			if r.code != exitOK {
				t.Fatalf("consume: %s", r)
			}
			tok := te.token(t, arn)
			answers := te.emu.Answers(tok)
			if len(answers) != 1 || answers[0].Outcome != emulator.OutcomeFailure || !strings.Contains(answers[0].FailureReason, tc.reason) {
				t.Fatalf("answers %+v; want one failure with a reason containing %q", answers, tc.reason)
			}
			// Not the token, nor any five characters of it (each holds
			// three or more of the eight the redacted form hides).
			for i := 0; i+5 <= len(tok); i++ {
				if piece := tok[i : i+5]; strings.Contains(answers[0].FailureReason, piece) || strings.Contains(r.stderr, piece) {
					t.Fatalf("the token %q (piece %q) leaked: reason %q, log:\n%s", tok, piece, answers[0].FailureReason, r.stderr)
				}
			}
			if strings.Contains(answers[0].FailureReason+r.stderr, "0123456789abcdef") {
				t.Fatalf("a credential leaked: reason %q, log:\n%s", answers[0].FailureReason, r.stderr)
			}
			if !strings.Contains(r.stderr, "answered failure") {
				t.Fatalf("log lacks the failure answer:\n%s", r.stderr)
			}
		})
	}
}

func TestConsumePendingThenOnStopping(t *testing.T) {
	requireSh(t)
	te := newTestEnv(t, emulator.Config{})
	for _, tc := range []struct {
		name, hook, outcome string
	}{
		{"cleanup-ok", `grep -q '"status":"Stopping"'`, emulator.OutcomeSuccess},
		{"cleanup-fails", `cat >/dev/null; echo 'could not release the GPU' >&2; exit 1`, emulator.OutcomeFailure},
	} {
		t.Run(tc.name, func(t *testing.T) {
			arn, q := te.callbackPipeline(t, "consume-stop-"+tc.name)
			a := te.startAsync(t, "consume", "--queue", q, "--on-stopping", tc.hook)
			// Without --on-executing the step is left pending.
			waitFor(t, "the step to be left pending", func() bool { return strings.Contains(a.stderr.String(), "left pending") })
			tok := te.token(t, arn)
			if n := len(te.emu.Answers(tok)); n != 0 {
				t.Fatalf("a pending step was answered %d times", n)
			}
			if r := te.stopctl(t, "stop", "--wait", arn); r.code != exitOK || !strings.Contains(r.stdout, "Stopped") {
				t.Fatalf("stop --wait: %s", r)
			}
			r := a.stop(t)
			if r.code != exitOK {
				t.Fatalf("consume: %s", r)
			}
			answers := te.emu.Answers(tok)
			if len(answers) != 1 || answers[0].Outcome != tc.outcome {
				t.Fatalf("answers %+v; want one %s", answers, tc.outcome)
			}
			if tc.outcome == emulator.OutcomeFailure && !strings.Contains(answers[0].FailureReason, "could not release the GPU") {
				t.Fatalf("reason %q lacks the hook's stderr", answers[0].FailureReason)
			}
			if strings.Contains(r.stderr, tok) {
				t.Fatalf("the log holds the full callback token:\n%s", r.stderr)
			}
		})
	}
}

// TestConsumeShutdownEndsHook interrupts consume while a hook runs: the
// hook is ended after the drain timeout, the step is not answered, and
// consume returns promptly.
func TestConsumeShutdownEndsHook(t *testing.T) {
	requireSh(t)
	te := newTestEnv(t, emulator.Config{})
	arn, q := te.callbackPipeline(t, "consume-shutdown")
	a := te.startAsync(t, "consume", "--queue", q, "--drain-timeout", "200ms", "--on-executing", `sleep 30`)
	waitFor(t, "the hook to start", func() bool { return strings.Contains(a.stderr.String(), "running hook") })
	start := time.Now()
	r := a.stop(t)
	if r.code != exitOK {
		t.Fatalf("consume: %s", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("consume took %s to shut down with a 200ms drain timeout", d)
	}
	if n := len(te.emu.Answers(te.token(t, arn))); n != 0 {
		t.Fatalf("the interrupted step was answered %d times", n)
	}
}

func TestConsumeUsage(t *testing.T) {
	isolateAWS(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"consume"}, "--queue URL|NAME is required"},
		{[]string{"consume", "--queue", "not a url"}, "is neither a queue URL"},
		{[]string{"consume", "--queue", "http://127.0.0.1:1/123456789012/q", "--concurrency", "0"}, "--concurrency must be at least 1"},
		{[]string{"consume", "--queue", "http://127.0.0.1:1/123456789012/q", "--visibility-timeout", "100ms"}, "--visibility-timeout must be between"},
		{[]string{"consume", "--queue", "http://127.0.0.1:1/123456789012/q", "--drain-timeout", "-1s"}, "--drain-timeout must not be negative"},
		{[]string{"consume", "--queue", "http://127.0.0.1:1/123456789012/q", "extra"}, `unexpected argument "extra"`},
	} {
		r := runStopctl(t, t.Context(), "", tc.args...)
		if r.code != exitUsage {
			t.Errorf("%v: %s; want exit 2", tc.args, r)
			continue
		}
		oneStderrLine(t, r, tc.want)
	}
}

func TestParseOutputs(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{"", map[string]string{}, ""},
		{" \n", map[string]string{}, ""},
		{`{"a": "x", "n": 3, "f": -1.5, "b": true}`, map[string]string{"a": "x", "n": "3", "f": "-1.5", "b": "true"}, ""},
		{`[1]`, nil, "a JSON array"},
		{`"s"`, nil, "a JSON string"},
		{`null`, nil, "not a JSON object"},
		{`oops`, nil, "(not JSON)"},
		{`{"a": "x"} {"b": "y"}`, nil, "more than one JSON value"},
		{`{"a": null}`, nil, `output "a" is null`},
		{`{"a": [1]}`, nil, `output "a" is a JSON array`},
	} {
		got, err := parseOutputs("", []byte(tc.in))
		switch {
		case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
			t.Errorf("parseOutputs(%q) error %v; want one containing %q", tc.in, err, tc.wantErr)
		case tc.wantErr == "" && err != nil:
			t.Errorf("parseOutputs(%q): %v", tc.in, err)
		case tc.wantErr == "" && len(got) != len(tc.want):
			t.Errorf("parseOutputs(%q) = %v; want %v", tc.in, got, tc.want)
		}
		for k, v := range tc.want {
			if got[k] != v {
				t.Errorf("parseOutputs(%q)[%q] = %q; want %q", tc.in, k, got[k], v)
			}
		}
	}
}

func TestCappedBuffer(t *testing.T) {
	head := &cappedBuffer{max: 4}
	tail := &cappedBuffer{max: 4, keepTail: true}
	for _, b := range []*cappedBuffer{head, tail} {
		for _, s := range []string{"ab", "cdef", "gh"} {
			if n, err := b.Write([]byte(s)); n != len(s) || err != nil {
				t.Fatalf("Write(%q) = %d, %v", s, n, err)
			}
		}
	}
	if head.buf.String() != "abcd" || !head.overflow || tail.buf.String() != "efgh" || !tail.overflow {
		t.Fatalf("head %q (overflow %v), tail %q (overflow %v); want abcd and efgh, both overflowed",
			head.buf.String(), head.overflow, tail.buf.String(), tail.overflow)
	}
}
