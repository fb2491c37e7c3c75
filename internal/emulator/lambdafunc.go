package emulator

// Local Lambda functions: a function is an executable started with the
// Lambda Runtime API (lambdaruntime.go) pointed at the emulator. One process
// per function at a time, one invocation at a time.
//
// Process lifecycle (owner: lambdaFunction, under f.mu):
//
//	state \ event   invoke          /next          answer         deadline      exit
//	none            start, pending  -              -              -             -
//	idle            pending         wait           400            -             none
//	pending         (serialized)    deliver        400            -             fail ExitError, none
//	delivered       (serialized)    fail NoResp.   finish, idle   fail, kill    fail ExitError, none
//
// A process killed (timeout, init error, Close) is "none" once it has exited.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Lambda limits and defaults for local functions.
const (
	// DefaultFunctionTimeout is a local function's timeout when none is
	// given: Lambda's default, 3 seconds.
	DefaultFunctionTimeout = 3 * time.Second
	// MaxFunctionTimeout is Lambda's largest function timeout, 15 minutes.
	MaxFunctionTimeout = 900 * time.Second
	// DefaultFunctionMemoryMB is a local function's memory size when none
	// is given: Lambda's default, 128 MB.
	DefaultFunctionMemoryMB = 128
	// FunctionInitTimeout bounds the time from a process start to its first
	// request for an invocation: Lambda's 10 second init phase.
	FunctionInitTimeout = 10 * time.Second

	maxInvokePayload = 6 << 20 // synchronous invocation request and response
	functionLogLines = 200
)

// ErrEmulatorClosed is returned by the Lambda helpers once Close began.
var ErrEmulatorClosed = errors.New("emulator: closed")

var functionNamePattern = regexp.MustCompile(`^[a-zA-Z0-9\-_]{1,64}$`)

// reservedEnv are the environment variables Lambda sets and refuses in a
// function's configuration.
var reservedEnv = []string{"_HANDLER", "_X_AMZN_TRACE_ID", "AWS_DEFAULT_REGION", "AWS_REGION", "AWS_EXECUTION_ENV",
	"AWS_LAMBDA_FUNCTION_NAME", "AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION",
	"AWS_LAMBDA_FUNCTION_TIMEOUT", "AWS_LAMBDA_INITIALIZATION_TYPE", "AWS_LAMBDA_LOG_GROUP_NAME",
	"AWS_LAMBDA_LOG_STREAM_NAME", "AWS_ACCESS_KEY", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
	"AWS_SESSION_TOKEN", "AWS_LAMBDA_RUNTIME_API", "LAMBDA_TASK_ROOT", "LAMBDA_RUNTIME_DIR"}

// FunctionConfig describes a local Lambda function.
type FunctionConfig struct {
	// Name is the function name: 1 to 64 letters, digits, '-' and '_'.
	Name string

	// Path is the executable to start (a custom runtime's bootstrap, such
	// as a Go program built for provided.al2023). Relative paths are taken
	// from the current directory when the function is added.
	Path string

	// Args are passed to the executable.
	Args []string

	// Timeout is the function timeout. Zero means DefaultFunctionTimeout;
	// it must not be negative nor exceed MaxFunctionTimeout. Lambda counts
	// whole seconds; the emulator also takes fractions of a second, which
	// GetFunctionConfiguration reports rounded up.
	Timeout time.Duration

	// MemoryMB is the memory size reported to the function. Zero means
	// DefaultFunctionMemoryMB; otherwise 128 to 10240.
	MemoryMB int

	// Handler is the value of _HANDLER. Empty means the executable's base
	// name.
	Handler string

	// Environment holds extra environment variables. The variables Lambda
	// reserves (AWS_REGION, AWS_LAMBDA_*, _HANDLER, ...) are refused.
	Environment map[string]string

	// Output, when set, receives the process's standard output and error.
	// Each line is also logged at Info level and kept for FunctionLogs.
	Output io.Writer
}

// InvokeResult is the outcome of one invocation of a local function.
type InvokeResult struct {
	// RequestID is the invocation's Lambda-Runtime-Aws-Request-Id.
	RequestID string
	// Payload is the function's response, or the error document
	// ({"errorMessage", "errorType", ...}) when FunctionError is set.
	Payload []byte
	// FunctionError is "" on success and "Unhandled" when the function
	// failed, timed out or exited (Lambda's X-Amz-Function-Error).
	FunctionError string
	// ErrorType is the errorType of a failure: the function's own, or
	// "Sandbox.Timedout", "Runtime.ExitError", "Runtime.InvalidEntrypoint",
	// "Runtime.NoResponse", "Function.ResponseSizeTooLarge".
	ErrorType string
}

// TimedOut reports whether the invocation ran past the function timeout.
func (r InvokeResult) TimedOut() bool { return r.ErrorType == errTypeTimeout }

// FunctionStats counts what happened to a local function.
type FunctionStats struct {
	// Invocations counts invocations, answered or not.
	Invocations int
	// Errors counts invocations that failed (error, timeout, exit).
	Errors int
	// Timeouts counts invocations that ran past the timeout.
	Timeouts int
	// Starts counts processes started.
	Starts int
}

const (
	errTypeTimeout    = "Sandbox.Timedout"
	errTypeExit       = "Runtime.ExitError"
	errTypeEntrypoint = "Runtime.InvalidEntrypoint"
	errTypeNoResponse = "Runtime.NoResponse"
	errTypeTooLarge   = "Function.ResponseSizeTooLarge"
)

// lambdaBackend holds the local functions and event source mappings.
type lambdaBackend struct {
	e   *Emulator
	mux *http.ServeMux // the Lambda API (lambdaapi.go)

	mu        sync.Mutex
	closing   bool
	functions map[string]*lambdaFunction
	mappings  map[string]*eventSourceMapping // by UUID
	wg        sync.WaitGroup                 // processes, runtime servers, pollers, async invocations
}

// lambdaBackend returns the emulator's Lambda backend, creating it on
// first use.
func (e *Emulator) lambdaBackend() *lambdaBackend {
	e.lambdaOnce.Do(func() {
		e.lambda = &lambdaBackend{e: e, functions: map[string]*lambdaFunction{}, mappings: map[string]*eventSourceMapping{}}
		e.lambda.mux = e.lambda.newMux()
	})
	return e.lambda
}

// closeLambda waits for every local function's process (each is killed
// when e.done closes), the runtime servers, the pollers and background
// invocations to end. e.done is closed.
func (e *Emulator) closeLambda() {
	b := e.lambdaBackend()
	b.mu.Lock()
	b.closing = true
	b.mu.Unlock()
	b.wg.Wait()
}

// enter registers work that may start goroutines; it reports false once
// Close began. The caller calls b.wg.Done when done.
func (b *lambdaBackend) enter() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return false
	}
	b.wg.Add(1)
	return true
}

func (b *lambdaBackend) functionARN(name string) string {
	return b.e.arnPrefix("lambda", false) + "function:" + name
}

// resolveFunction finds a function by name, full or partial ARN, ignoring
// a $LATEST qualifier; a full ARN of another Region, partition or account
// finds none. Callers hold b.mu.
func (b *lambdaBackend) resolveFunction(ref string) (*lambdaFunction, string) {
	name := ref
	if strings.HasPrefix(ref, "arn:") && !strings.HasPrefix(ref, b.functionARN("")) {
		return nil, ref
	}
	if i := strings.Index(name, "function:"); i >= 0 {
		name = name[i+len("function:"):]
	}
	if n, q, ok := strings.Cut(name, ":"); ok && (q == "$LATEST" || q == "") {
		name = n
	}
	return b.functions[name], name
}

// lambdaFunction is one local function.
type lambdaFunction struct {
	b        *lambdaBackend
	cfg      FunctionConfig
	arn      string
	modified time.Time
	revision string
	sem      chan struct{} // one invocation at a time

	mu    sync.Mutex
	proc  *lambdaProcess
	stats FunctionStats
	logs  []string
}

// AddFunction adds a local function named name that runs the executable
// at path with the given timeout (0: DefaultFunctionTimeout). The process
// starts on the first invocation.
func (e *Emulator) AddFunction(name, path string, timeout time.Duration) error {
	return e.AddFunctionConfig(FunctionConfig{Name: name, Path: path, Timeout: timeout})
}

// AddFunctionConfig adds a local function. Adding a name twice is an
// error.
func (e *Emulator) AddFunctionConfig(cfg FunctionConfig) error {
	if err := checkFunctionConfig(&cfg); err != nil {
		return fmt.Errorf("add function: %w", err)
	}
	b := e.lambdaBackend()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closing {
		return ErrEmulatorClosed
	}
	if _, ok := b.functions[cfg.Name]; ok {
		return fmt.Errorf("add function: function %s already exists", cfg.Name)
	}
	b.functions[cfg.Name] = &lambdaFunction{b: b, cfg: cfg, arn: b.functionARN(cfg.Name), modified: time.Now(),
		revision: newRequestID(), sem: make(chan struct{}, 1)}
	return nil
}

func checkFunctionConfig(cfg *FunctionConfig) error {
	if !functionNamePattern.MatchString(cfg.Name) {
		return fmt.Errorf("function name %q: use 1 to 64 letters, digits, '-' and '_'", cfg.Name)
	}
	if cfg.Path == "" {
		return fmt.Errorf("function %s: no executable path", cfg.Name)
	}
	abs, err := filepath.Abs(cfg.Path)
	if err != nil {
		return fmt.Errorf("function %s: %w", cfg.Name, err)
	}
	fi, err := os.Stat(abs)
	switch {
	case err != nil:
		return fmt.Errorf("function %s: %w", cfg.Name, err)
	case !fi.Mode().IsRegular():
		return fmt.Errorf("function %s: %s is not a regular file", cfg.Name, abs)
	}
	cfg.Path = abs
	switch {
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultFunctionTimeout
	case cfg.Timeout < 0 || cfg.Timeout > MaxFunctionTimeout:
		return fmt.Errorf("function %s: timeout %s is not between 0 and %s", cfg.Name, cfg.Timeout, MaxFunctionTimeout)
	}
	switch {
	case cfg.MemoryMB == 0:
		cfg.MemoryMB = DefaultFunctionMemoryMB
	case cfg.MemoryMB < 128 || cfg.MemoryMB > 10240:
		return fmt.Errorf("function %s: memory %d MB is not between 128 and 10240", cfg.Name, cfg.MemoryMB)
	}
	if cfg.Handler == "" {
		cfg.Handler = filepath.Base(abs)
	}
	env := make(map[string]string, len(cfg.Environment))
	for k, v := range cfg.Environment {
		if slices.Contains(reservedEnv, k) {
			return fmt.Errorf("function %s: environment variable %s is reserved by Lambda", cfg.Name, k)
		}
		if k == "" || strings.ContainsAny(k, "=\x00") {
			return fmt.Errorf("function %s: environment variable name %q is invalid", cfg.Name, k)
		}
		env[k] = v
	}
	cfg.Environment = env
	cfg.Args = slices.Clone(cfg.Args)
	return nil
}

func (e *Emulator) function(name string) (*lambdaFunction, error) {
	b := e.lambdaBackend()
	b.mu.Lock()
	defer b.mu.Unlock()
	f, _ := b.resolveFunction(name)
	if f == nil {
		return nil, fmt.Errorf("%w: function %s", ErrNotFound, name)
	}
	return f, nil
}

// FunctionARN returns the ARN of the function named name, whether or not
// it exists.
func (e *Emulator) FunctionARN(name string) string { return e.lambdaBackend().functionARN(name) }

// FunctionStats returns what happened to a local function so far.
func (e *Emulator) FunctionStats(name string) (FunctionStats, error) {
	f, err := e.function(name)
	if err != nil {
		return FunctionStats{}, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats, nil
}

// FunctionLogs returns the last lines (at most 200) a local function's
// processes wrote to standard output and error.
func (e *Emulator) FunctionLogs(name string) ([]string, error) {
	f, err := e.function(name)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.logs), nil
}

// Invoke invokes a local function synchronously with payload (a JSON
// document) and waits for its answer, its timeout or its exit. A function
// failure is an InvokeResult with FunctionError set, not an error; the
// error is for an unknown function, ctx ending (the process is then
// stopped) or the emulator closing.
func (e *Emulator) Invoke(ctx context.Context, name string, payload []byte) (InvokeResult, error) {
	f, err := e.function(name)
	if err != nil {
		return InvokeResult{}, fmt.Errorf("invoke: %w", err)
	}
	return f.invoke(ctx, payload)
}

// invocation is one event handed to a process.
type invocation struct {
	id        string
	payload   []byte
	delivered chan struct{} // closed by /next
	deadline  time.Time     // set before delivered is closed
	finished  bool          // under f.mu
	result    chan InvokeResult
}

func (f *lambdaFunction) invoke(ctx context.Context, payload []byte) (InvokeResult, error) {
	done := f.b.e.done
	select {
	case f.sem <- struct{}{}:
	case <-ctx.Done():
		return InvokeResult{}, fmt.Errorf("invoke %s: %w", f.cfg.Name, ctx.Err())
	case <-done:
		return InvokeResult{}, ErrEmulatorClosed
	}
	defer func() { <-f.sem }()

	inv := &invocation{id: newRequestID(), payload: payload, delivered: make(chan struct{}), result: make(chan InvokeResult, 1)}
	f.mu.Lock()
	f.stats.Invocations++
	f.mu.Unlock()
	p, err := f.process()
	if errors.Is(err, ErrEmulatorClosed) {
		return InvokeResult{}, err
	}
	if err != nil {
		f.b.e.log.Warn("local function cannot start", "function", f.cfg.Name, "err", err)
		return f.count(invokeFailure(inv.id, errTypeEntrypoint, fmt.Sprintf("RequestId: %s Error: %v", inv.id, err))), nil
	}

	f.mu.Lock()
	p.pending = inv
	p.wakeNext()
	f.mu.Unlock()

	// Until the process takes the invocation.
	initTimer := time.NewTimer(FunctionInitTimeout)
	defer initTimer.Stop()
	select {
	case <-inv.delivered:
	case <-p.exited:
		f.withdraw(p, inv)
		return f.count(p.exitResult(inv.id)), nil
	case <-initTimer.C:
		f.withdraw(p, inv)
		p.kill()
		<-p.exited
		msg := fmt.Sprintf("RequestId: %s Error: the runtime did not ask for the invocation within %s of its start", inv.id, FunctionInitTimeout)
		return f.count(invokeFailure(inv.id, "Runtime.InitTimeout", msg)), nil
	case <-ctx.Done():
		f.withdraw(p, inv)
		p.kill()
		return InvokeResult{}, fmt.Errorf("invoke %s: %w", f.cfg.Name, ctx.Err())
	case <-done:
		return InvokeResult{}, ErrEmulatorClosed
	}

	// Until it answers, times out or exits.
	t := time.NewTimer(time.Until(inv.deadline))
	defer t.Stop()
	select {
	case res := <-inv.result:
		return f.count(res), nil
	case <-p.exited:
		p.finish(inv, p.exitResult(inv.id))
	case <-t.C:
		secs := f.cfg.Timeout.Seconds()
		msg := fmt.Sprintf("RequestId: %s Error: Task timed out after %.2f seconds", inv.id, secs)
		if p.finish(inv, invokeFailure(inv.id, errTypeTimeout, msg)) {
			// Lambda resets the execution environment after a timeout.
			p.kill()
			select {
			case <-p.exited:
			case <-done:
			}
		}
	case <-ctx.Done():
		p.finish(inv, InvokeResult{})
		p.kill()
		return InvokeResult{}, fmt.Errorf("invoke %s: %w", f.cfg.Name, ctx.Err())
	case <-done:
		return InvokeResult{}, ErrEmulatorClosed
	}
	return f.count(<-inv.result), nil
}

// withdraw takes back an invocation no process took.
func (f *lambdaFunction) withdraw(p *lambdaProcess, inv *invocation) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if p.pending == inv {
		p.pending = nil
	}
	inv.finished = true
	if p.current == inv {
		p.current = nil
	}
}

func (f *lambdaFunction) count(res InvokeResult) InvokeResult {
	f.mu.Lock()
	defer f.mu.Unlock()
	if res.FunctionError != "" {
		f.stats.Errors++
	}
	if res.TimedOut() {
		f.stats.Timeouts++
	}
	return res
}

func invokeFailure(id, errType, msg string) InvokeResult {
	body, _ := json.Marshal(map[string]string{"errorType": errType, "errorMessage": msg})
	return InvokeResult{RequestID: id, Payload: body, FunctionError: "Unhandled", ErrorType: errType}
}

// process returns the running process, starting one when there is none.
func (f *lambdaFunction) process() (*lambdaProcess, error) {
	if !f.b.enter() {
		return nil, ErrEmulatorClosed
	}
	defer f.b.wg.Done()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.proc != nil && !f.proc.dead {
		return f.proc, nil
	}
	p, err := f.start()
	if err != nil {
		return nil, err
	}
	f.proc = p
	f.stats.Starts++
	return p, nil
}

// environ is the process environment: Lambda's variables, the function's
// own, PATH, and nothing else of the emulator's environment (no
// credentials).
func (f *lambdaFunction) environ(runtimeAPI string) []string {
	e := f.b.e
	now := time.Now().UTC()
	env := map[string]string{
		"AWS_LAMBDA_RUNTIME_API":          runtimeAPI,
		"AWS_LAMBDA_FUNCTION_NAME":        f.cfg.Name,
		"AWS_LAMBDA_FUNCTION_VERSION":     "$LATEST",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE": strconv.Itoa(f.cfg.MemoryMB),
		"AWS_LAMBDA_FUNCTION_TIMEOUT":     strconv.Itoa(timeoutSeconds(f.cfg.Timeout)),
		"AWS_LAMBDA_INITIALIZATION_TYPE":  "on-demand",
		"AWS_LAMBDA_LOG_GROUP_NAME":       "/aws/lambda/" + f.cfg.Name,
		"AWS_LAMBDA_LOG_STREAM_NAME":      now.Format("2006/01/02") + "/[$LATEST]" + randomString("0123456789abcdef", 32),
		"AWS_REGION":                      e.cfg.Region,
		"AWS_DEFAULT_REGION":              e.cfg.Region,
		"AWS_ACCESS_KEY_ID":               "test",
		"AWS_SECRET_ACCESS_KEY":           "test",
		"AWS_SESSION_TOKEN":               "test",
		"AWS_ENDPOINT_URL":                e.url,
		"_HANDLER":                        f.cfg.Handler,
		"LAMBDA_TASK_ROOT":                filepath.Dir(f.cfg.Path),
		"LAMBDA_RUNTIME_DIR":              filepath.Dir(f.cfg.Path),
		"TZ":                              ":UTC",
		"LANG":                            "en_US.UTF-8",
		"PATH":                            os.Getenv("PATH"),
	}
	for k, v := range f.cfg.Environment {
		env[k] = v
	}
	out := make([]string, 0, len(env))
	for _, k := range sortedKeys(env) {
		out = append(out, k+"="+env[k])
	}
	return out
}

// timeoutSeconds is a timeout in whole seconds, rounded up.
func timeoutSeconds(d time.Duration) int { return int(math.Ceil(d.Seconds())) }

// addLog keeps a line of the process's output.
func (f *lambdaFunction) addLog(line string) {
	f.b.e.log.Info("function output", "function", f.cfg.Name, "line", line)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.logs) == functionLogLines {
		f.logs = slices.Delete(f.logs, 0, 1)
	}
	f.logs = append(f.logs, line)
}

// lineWriter splits a process's output into lines for addLog.
type lineWriter struct {
	f    *lambdaFunction
	mu   sync.Mutex
	part []byte
	out  io.Writer
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.out != nil {
		_, _ = w.out.Write(p)
	}
	w.part = append(w.part, p...)
	for {
		i := slices.Index(w.part, '\n')
		if i < 0 {
			break
		}
		w.f.addLog(string(w.part[:i]))
		w.part = w.part[i+1:]
	}
	if len(w.part) > 64<<10 {
		w.f.addLog(string(w.part))
		w.part = nil
	}
	return len(p), nil
}

func (w *lineWriter) flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.part) > 0 {
		w.f.addLog(string(w.part))
		w.part = nil
	}
}

// listenLoopback listens on a random 127.0.0.1 port.
func listenLoopback() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// statusText is the Lambda-style JSON error of the runtime API.
func runtimeError(w http.ResponseWriter, status int, errType, msg string) {
	body, _ := json.Marshal(map[string]string{"errorType": errType, "errorMessage": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}
