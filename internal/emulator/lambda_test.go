package emulator

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// testFunction is the test function built into a temporary directory,
// with the file it logs its invocations to.
type testFunction struct {
	path, eventLog, stateDir string
}

var (
	buildOnce sync.Once
	builtPath string
	buildErr  error
)

// buildTestFunction builds testdata/sqsfn, once per test binary (into
// testBinDir), and gives the test its own event log and state directory.
func buildTestFunction(t *testing.T) testFunction {
	t.Helper()
	buildOnce.Do(func() {
		builtPath = filepath.Join(testBinDir, "bootstrap")
		out, err := exec.Command("go", "build", "-o", builtPath, "./testdata/sqsfn").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("build test function: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir := t.TempDir()
	return testFunction{path: builtPath, eventLog: filepath.Join(dir, "events.jsonl"), stateDir: dir}
}

// add adds the test function to e as name.
func (tf testFunction) add(t *testing.T, e *Emulator, name string, timeout time.Duration, env map[string]string) {
	t.Helper()
	vars := map[string]string{"EVENT_LOG": tf.eventLog, "STATE_DIR": tf.stateDir}
	for k, v := range env {
		vars[k] = v
	}
	if err := e.AddFunctionConfig(FunctionConfig{Name: name, Path: tf.path, Timeout: timeout, Environment: vars}); err != nil {
		t.Fatalf("add function: %v", err)
	}
}

// loggedInvocation is a line of the test function's event log.
type loggedInvocation struct {
	PID         int
	RequestID   string
	DeadlineMs  string
	FunctionArn string
	TraceID     string
	Env         map[string]string
	Event       json.RawMessage
}

// invocations reads the event log.
func (tf testFunction) invocations(t *testing.T) []loggedInvocation {
	t.Helper()
	data, err := os.ReadFile(tf.eventLog)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []loggedInvocation
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var inv loggedInvocation
		if err := json.Unmarshal(sc.Bytes(), &inv); err != nil {
			continue // a line being written
		}
		out = append(out, inv)
	}
	return out
}

// eventually waits, bounded by testTimeout, until cond holds.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for i := 0; ; i++ {
		if cond() {
			return
		}
		if time.Now().After(deadline) || i > 100000 {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestInvokeRuntimeAPI(t *testing.T) {
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", 7*time.Second, map[string]string{"EXTRA": "x"})

	before := time.Now()
	res, err := e.Invoke(testContext(t), "fn", []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "" || string(res.Payload) != `{"hello":"world"}` {
		t.Fatalf("result %+v (%s); want the echoed payload", res, res.Payload)
	}
	invs := tf.invocations(t)
	if len(invs) != 1 {
		t.Fatalf("%d invocations logged; want 1", len(invs))
	}
	inv := invs[0]
	if inv.RequestID != res.RequestID || inv.RequestID == "" {
		t.Errorf("request ID %q; the result says %q", inv.RequestID, res.RequestID)
	}
	if inv.FunctionArn != e.FunctionARN("fn") || inv.FunctionArn != "arn:aws:lambda:us-east-1:123456789012:function:fn" {
		t.Errorf("invoked function ARN %q", inv.FunctionArn)
	}
	ms, err := strconv.ParseInt(inv.DeadlineMs, 10, 64)
	if err != nil {
		t.Fatalf("deadline %q: %v", inv.DeadlineMs, err)
	}
	if d := time.UnixMilli(ms); d.Before(before.Add(7*time.Second).Add(-time.Millisecond)) || d.After(time.Now().Add(7*time.Second)) {
		t.Errorf("deadline %s is not 7s after the invocation (%s)", d, before)
	}
	if inv.TraceID == "" {
		t.Error("no Lambda-Runtime-Trace-Id")
	}
	want := map[string]string{
		"AWS_LAMBDA_FUNCTION_NAME": "fn", "_HANDLER": "bootstrap", "AWS_REGION": "us-east-1", "AWS_DEFAULT_REGION": "us-east-1",
		"AWS_ENDPOINT_URL": e.URL(), "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
		"AWS_LAMBDA_FUNCTION_TIMEOUT": "7", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": "128", "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
		"HOME": "", "EXTRA": "x",
	}
	for k, v := range want {
		if inv.Env[k] != v {
			t.Errorf("%s=%q; want %q", k, inv.Env[k], v)
		}
	}
	if api := inv.Env["AWS_LAMBDA_RUNTIME_API"]; len(api) < len("127.0.0.1:1") || api[:10] != "127.0.0.1:" {
		t.Errorf("AWS_LAMBDA_RUNTIME_API=%q; want 127.0.0.1:PORT", api)
	}

	// The runtime API refuses an answer for an invocation not in progress
	// and paths it does not serve.
	api := "http://" + inv.Env["AWS_LAMBDA_RUNTIME_API"] + "/2018-06-01/runtime"
	for _, c := range []struct {
		method, url string
		status      int
		errType     string
	}{
		{http.MethodPost, api + "/invocation/" + res.RequestID + "/response", http.StatusBadRequest, "InvalidRequestID"},
		{http.MethodPost, api + "/invocation/no-such-id/error", http.StatusBadRequest, "InvalidRequestID"},
		{http.MethodGet, api + "/invocation/frobnicate", http.StatusNotFound, "InvalidRequest"},
	} {
		req, _ := http.NewRequestWithContext(testContext(t), c.method, c.url, strings.NewReader(`{}`))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var body struct{ ErrorType string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		resp.Body.Close()
		if resp.StatusCode != c.status || body.ErrorType != c.errType {
			t.Errorf("%s %s: %d %q; want %d %q", c.method, c.url, resp.StatusCode, body.ErrorType, c.status, c.errType)
		}
	}

	// A second invocation reuses the process.
	if _, err := e.Invoke(testContext(t), "fn", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	st, _ := e.FunctionStats("fn")
	if st != (FunctionStats{Invocations: 2, Starts: 1}) {
		t.Errorf("stats %+v; want 2 invocations, 1 start", st)
	}
}

func sqsEventOf(bodies ...string) []byte {
	var recs []map[string]string
	for i, b := range bodies {
		recs = append(recs, map[string]string{"messageId": "m" + strconv.Itoa(i), "body": b})
	}
	out, _ := json.Marshal(map[string]any{"Records": recs})
	return out
}

func TestInvokeFailures(t *testing.T) {
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", 500*time.Millisecond, nil)
	ctx := testContext(t)

	res, err := e.Invoke(ctx, "fn", sqsEventOf("error"))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "Unhandled" || res.ErrorType != "Test.Failed" {
		t.Errorf("error: %+v (%s); want Unhandled Test.Failed", res, res.Payload)
	}

	res, err = e.Invoke(ctx, "fn", sqsEventOf("sleep"))
	if err != nil {
		t.Fatal(err)
	}
	if !res.TimedOut() || res.FunctionError != "Unhandled" || !bytes.Contains(res.Payload, []byte("Task timed out after 0.50 seconds")) {
		t.Errorf("timeout: %+v (%s)", res, res.Payload)
	}

	res, err = e.Invoke(ctx, "fn", sqsEventOf("exit"))
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorType != "Runtime.ExitError" || !bytes.Contains(res.Payload, []byte("exit status 3")) {
		t.Errorf("exit: %+v (%s)", res, res.Payload)
	}

	res, err = e.Invoke(ctx, "fn", sqsEventOf("ok"))
	if err != nil {
		t.Fatal(err)
	}
	if res.FunctionError != "" {
		t.Errorf("after the exit: %+v (%s); want success", res, res.Payload)
	}
	st, _ := e.FunctionStats("fn")
	// Started for the error (kept), again after the timeout and after the exit.
	if st != (FunctionStats{Invocations: 4, Errors: 3, Timeouts: 1, Starts: 3}) {
		t.Errorf("stats %+v", st)
	}
	pids := map[int]bool{}
	for _, inv := range tf.invocations(t) {
		pids[inv.PID] = true
	}
	if len(pids) != 3 {
		t.Errorf("%d processes ran; want 3", len(pids))
	}
}

func TestInvokeInitError(t *testing.T) {
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", time.Second, map[string]string{"INIT_FAIL": "1"})
	res, err := e.Invoke(testContext(t), "fn", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorType != "Test.InitFailed" || res.FunctionError != "Unhandled" {
		t.Errorf("result %+v (%s); want the init error", res, res.Payload)
	}
}

func TestInvokeBadFunction(t *testing.T) {
	e := StartTest(t, Config{})
	for _, cfg := range []FunctionConfig{
		{Name: "", Path: "/bin/true"},
		{Name: "bad name", Path: "/bin/true"},
		{Name: "fn", Path: ""},
		{Name: "fn", Path: "/no/such/file"},
		{Name: "fn", Path: os.TempDir()},
		{Name: "fn", Path: "/bin/true", Timeout: -time.Second},
		{Name: "fn", Path: "/bin/true", Timeout: 901 * time.Second},
		{Name: "fn", Path: "/bin/true", Environment: map[string]string{"AWS_REGION": "x"}},
		{Name: "fn", Path: "/bin/true", MemoryMB: 64},
	} {
		if err := e.AddFunctionConfig(cfg); err == nil {
			t.Errorf("AddFunctionConfig(%+v) succeeded; want an error", cfg)
		}
	}
	if _, err := e.Invoke(testContext(t), "missing", nil); err == nil {
		t.Error("Invoke of an unknown function succeeded")
	}
	// A file that cannot be executed: the invocation fails as Lambda's does.
	notExec := filepath.Join(t.TempDir(), "bootstrap")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := e.AddFunction("noexec", notExec, time.Second); err != nil {
		t.Fatal(err)
	}
	res, err := e.Invoke(testContext(t), "noexec", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorType != "Runtime.InvalidEntrypoint" {
		t.Errorf("result %+v; want Runtime.InvalidEntrypoint", res)
	}
}
