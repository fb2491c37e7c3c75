package emulator

// The Lambda Runtime API (2018-06-01) a local function's process speaks.
// Each process gets its own server on 127.0.0.1, so a request always
// names the process it comes from.

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"time"
)

const runtimeAPIPrefix = "/2018-06-01/runtime"

// lambdaProcess is one running process of a local function. Fields after
// mu's comment are guarded by f.mu.
type lambdaProcess struct {
	f      *lambdaFunction
	cmd    *exec.Cmd
	srv    *http.Server
	exited chan struct{} // closed once the process has exited and its server closed
	out    *lineWriter

	killOnce sync.Once

	// Guarded by f.mu.
	dead    bool
	exitErr error
	pending *invocation // waiting for /next
	current *invocation // delivered, unanswered
	wake    chan struct{}
	initErr []byte // the document posted to /runtime/init/error
}

// start starts a process. Callers hold f.mu and are inside b.enter.
func (f *lambdaFunction) start() (*lambdaProcess, error) {
	ln, err := listenLoopback()
	if err != nil {
		return nil, fmt.Errorf("runtime API listen: %w", err)
	}
	p := &lambdaProcess{f: f, exited: make(chan struct{}), wake: make(chan struct{})}
	p.out = &lineWriter{f: f, out: f.cfg.Output}
	p.srv = &http.Server{
		Handler:           p.handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(f.b.e.log.Handler(), slog.LevelDebug),
	}
	cmd := exec.Command(f.cfg.Path, f.cfg.Args...)
	cmd.Env = f.environ(ln.Addr().String())
	cmd.Dir = filepath.Dir(f.cfg.Path) // Lambda starts the runtime in the task root
	cmd.Stdout = p.out
	cmd.Stderr = p.out
	cmd.WaitDelay = time.Second // output pipes held open by a child do not block Wait
	if err := cmd.Start(); err != nil {
		_ = ln.Close()
		return nil, fmt.Errorf("start %s: %w", f.cfg.Path, err)
	}
	p.cmd = cmd
	f.b.e.log.Info("local function started", "function", f.cfg.Name, "pid", cmd.Process.Pid, "runtime_api", ln.Addr().String())
	f.b.wg.Add(3)
	go func() {
		// Close kills every process, including one started while it began.
		defer f.b.wg.Done()
		select {
		case <-f.b.e.done:
			p.kill()
		case <-p.exited:
		}
	}()
	go func() {
		defer f.b.wg.Done()
		if err := p.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			f.b.e.log.Debug("runtime API server stopped", "function", f.cfg.Name, "err", err)
		}
	}()
	go func() {
		defer f.b.wg.Done()
		err := cmd.Wait()
		p.out.flush()
		f.mu.Lock()
		p.dead = true
		p.exitErr = err
		p.wakeNext()
		f.mu.Unlock()
		_ = p.srv.Close()
		f.b.e.log.Info("local function exited", "function", f.cfg.Name, "pid", cmd.Process.Pid, "err", err)
		close(p.exited)
	}()
	return p, nil
}

// kill stops the process; exited is closed once it has exited.
func (p *lambdaProcess) kill() {
	p.killOnce.Do(func() {
		p.f.mu.Lock()
		p.dead = true
		p.wakeNext()
		p.f.mu.Unlock()
		_ = p.cmd.Process.Kill()
	})
}

// wakeNext wakes the /next requests waiting. Callers hold f.mu.
func (p *lambdaProcess) wakeNext() {
	close(p.wake)
	p.wake = make(chan struct{})
}

// finish sets inv's result unless it has one; it reports whether it did.
func (p *lambdaProcess) finish(inv *invocation, res InvokeResult) bool {
	p.f.mu.Lock()
	defer p.f.mu.Unlock()
	return p.finishLocked(inv, res)
}

func (p *lambdaProcess) finishLocked(inv *invocation, res InvokeResult) bool {
	if inv.finished {
		return false
	}
	inv.finished = true
	if p.current == inv {
		p.current = nil
	}
	res.RequestID = inv.id
	inv.result <- res
	return true
}

// exitResult is the result of an invocation whose process exited: the
// init error it posted, or Runtime.ExitError.
func (p *lambdaProcess) exitResult(id string) InvokeResult {
	p.f.mu.Lock()
	initErr, exitErr := p.initErr, p.exitErr
	p.f.mu.Unlock()
	if initErr != nil {
		return errorResult(id, initErr, "Runtime.InitError")
	}
	status := "exit status 0"
	if exitErr != nil {
		status = exitErr.Error()
	}
	return invokeFailure(id, errTypeExit, fmt.Sprintf("RequestId: %s Error: Runtime exited with error: %s", id, status))
}

// errorResult is a failed invocation whose error document the runtime
// posted; a body that is not a JSON object is wrapped as errorMessage.
func errorResult(id string, body []byte, errType string) InvokeResult {
	var doc map[string]any
	if json.Unmarshal(body, &doc) != nil || doc == nil {
		doc = map[string]any{"errorMessage": string(body), "errorType": errType}
	}
	if t, ok := doc["errorType"].(string); ok && t != "" {
		errType = t
	} else {
		doc["errorType"] = errType
	}
	buf, _ := json.Marshal(doc)
	return InvokeResult{RequestID: id, Payload: buf, FunctionError: "Unhandled", ErrorType: errType}
}

func (p *lambdaProcess) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+runtimeAPIPrefix+"/invocation/next", p.next)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/response", p.response)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/invocation/{id}/error", p.invocationError)
	mux.HandleFunc("POST "+runtimeAPIPrefix+"/init/error", p.initError)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		runtimeError(w, http.StatusNotFound, "InvalidRequest", fmt.Sprintf("%s %s is not part of the Lambda Runtime API", r.Method, r.URL.Path))
	})
	b := p.f.b
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !b.enter() {
			runtimeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "emulator closed")
			return
		}
		defer b.wg.Done()
		mux.ServeHTTP(w, r)
	})
}

// next hands the pending invocation to the process, waiting for one.
func (p *lambdaProcess) next(w http.ResponseWriter, r *http.Request) {
	f := p.f
	for {
		f.mu.Lock()
		if p.dead {
			f.mu.Unlock()
			runtimeError(w, http.StatusGone, "ProcessStopped", "the process is being stopped")
			return
		}
		if cur := p.current; cur != nil {
			// A runtime that asks for the next event has given up on this one.
			p.finishLocked(cur, invokeFailure(cur.id, errTypeNoResponse,
				fmt.Sprintf("RequestId: %s Error: the runtime asked for the next invocation without answering this one", cur.id)))
		}
		if inv := p.pending; inv != nil {
			p.pending = nil
			p.current = inv
			inv.deadline = time.Now().Add(f.cfg.Timeout)
			close(inv.delivered)
			f.mu.Unlock()
			h := w.Header()
			h.Set("Content-Type", "application/json")
			h.Set("Lambda-Runtime-Aws-Request-Id", inv.id)
			h.Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(inv.deadline.UnixMilli(), 10))
			h.Set("Lambda-Runtime-Invoked-Function-Arn", f.arn)
			h.Set("Lambda-Runtime-Trace-Id", traceID())
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(inv.payload)
			return
		}
		wake := p.wake
		f.mu.Unlock()
		select {
		case <-wake:
		case <-r.Context().Done():
			return
		case <-f.b.e.done:
			runtimeError(w, http.StatusServiceUnavailable, "ServiceUnavailable", "emulator closed")
			return
		}
	}
}

// answered finds the delivered, unanswered invocation id. Callers hold
// f.mu.
func (p *lambdaProcess) answered(id string) *invocation {
	if cur := p.current; cur != nil && cur.id == id && !cur.finished {
		return cur
	}
	return nil
}

func (p *lambdaProcess) response(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, err := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload+1))
	if err != nil {
		runtimeError(w, http.StatusBadRequest, "InvalidRequest", "cannot read the response body")
		return
	}
	p.f.mu.Lock()
	inv := p.answered(id)
	if inv == nil {
		p.f.mu.Unlock()
		runtimeError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("request ID %s is not the invocation in progress", id))
		return
	}
	if len(body) > maxInvokePayload {
		p.finishLocked(inv, invokeFailure(id, errTypeTooLarge, fmt.Sprintf("Response payload size exceeded maximum allowed payload size (%d bytes).", maxInvokePayload)))
		p.f.mu.Unlock()
		runtimeError(w, http.StatusRequestEntityTooLarge, "RequestEntityTooLarge", "response payload too large")
		return
	}
	p.finishLocked(inv, InvokeResult{Payload: body})
	p.f.mu.Unlock()
	accepted(w)
}

func (p *lambdaProcess) invocationError(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload))
	errType := r.Header.Get("Lambda-Runtime-Function-Error-Type")
	if errType == "" {
		errType = "Unhandled"
	}
	p.f.mu.Lock()
	inv := p.answered(id)
	if inv == nil {
		p.f.mu.Unlock()
		runtimeError(w, http.StatusBadRequest, "InvalidRequestID", fmt.Sprintf("request ID %s is not the invocation in progress", id))
		return
	}
	p.finishLocked(inv, errorResult(id, body, errType))
	p.f.mu.Unlock()
	accepted(w)
}

// initError records the runtime's init failure and stops the process: the
// invocation waiting for it fails with the posted error.
func (p *lambdaProcess) initError(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload))
	if len(body) == 0 {
		body = []byte(`{"errorType":"Runtime.InitError","errorMessage":"init error"}`)
	}
	p.f.mu.Lock()
	p.initErr = body
	p.f.mu.Unlock()
	accepted(w)
	if fl, ok := w.(http.Flusher); ok {
		fl.Flush()
	}
	p.kill()
}

func accepted(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	_, _ = w.Write([]byte(`{"status":"OK"}`))
}

// traceID is an X-Ray trace header with a fresh root, not sampled.
func traceID() string {
	const hex = "0123456789abcdef"
	return fmt.Sprintf("Root=1-%08x-%s;Parent=%s;Sampled=0", time.Now().Unix(), randomString(hex, 24), randomString(hex, 16))
}
