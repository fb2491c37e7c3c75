// Package motoserver starts a moto_server (the Python AWS mock) for tests
// that compare the emulator, or run the SQS paths, against a second
// implementation of the AWS wire protocols.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that, set to "1", makes Start fail
// the test instead of skipping it when moto_server is missing.
const RequireEnv = "PIPELINESTOP_REQUIRE_MOTO"

// DefaultStartTimeout bounds the wait for moto_server to answer. moto
// takes seconds to start on an idle machine (its Python imports, and a
// pyenv shim in front of it) and far longer on one that is busy building
// and running tests, as `go test ./...` makes it. Start waits less when the
// test's deadline is nearer (see startBound).
const DefaultStartTimeout = 3 * time.Minute

// outputTail is how much of moto_server's output a start-up error quotes.
const outputTail = 2 << 10

// Start starts moto_server on a free loopback port and returns its endpoint
// ("http://127.0.0.1:PORT"). The server is killed in the test's Cleanup.
// When moto is not installed the test is skipped, or failed when the
// environment variable RequireEnv is "1". When moto_server does not answer
// within DefaultStartTimeout (or three quarters of the time the test has
// left, if less), the test fails with the command, the port, the last
// error and the end of moto_server's output.
func Start(t testing.TB) string {
	t.Helper()
	cmdline, err := command()
	if err != nil {
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("moto_server is required (%s=1) but unavailable: %v", RequireEnv, err)
		}
		t.Skipf("moto_server unavailable (%v); install it with `pip install 'moto[server]'` or set %s=1 to fail instead", err, RequireEnv)
	}
	port, err := freePort()
	if err != nil {
		t.Fatalf("motoserver: find a free port: %v", err)
	}
	var deadline time.Time
	var hasDeadline bool
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		deadline, hasDeadline = d.Deadline()
	}
	var echo io.Writer
	if testing.Verbose() {
		echo = os.Stderr
	}
	args := append(cmdline[1:], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	srv, err := start(append([]string{cmdline[0]}, args...), port, startBound(time.Now(), deadline, hasDeadline), echo)
	if srv != nil {
		t.Cleanup(srv.kill)
	}
	if err != nil {
		t.Fatalf("motoserver: %v", err)
	}
	return srv.endpoint
}

// startBound is how long to wait for moto_server: DefaultStartTimeout, or
// three quarters of the time left before the test's deadline when that is
// less (the rest is for the test to fail with a clear message rather than
// the test binary's timeout panic), and at least a second.
func startBound(now, deadline time.Time, hasDeadline bool) time.Duration {
	bound := DefaultStartTimeout
	if hasDeadline {
		bound = min(bound, deadline.Sub(now)*3/4)
	}
	return max(bound, time.Second)
}

// server is a started moto_server process.
type server struct {
	cmd      *exec.Cmd
	endpoint string
	exited   chan struct{} // closed when the process has exited
	waitErr  error         // the process's exit, once exited is closed
	output   *tailBuffer
}

// kill kills the process group and waits for the process to exit.
func (s *server) kill() {
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	<-s.exited
}

// start runs cmdline (which must make a server listen on port) and waits
// up to bound for it to answer HTTP. The returned server, non-nil once the
// process started, must be killed, also when the error is not nil. Its
// output goes to echo as well, when not nil.
func start(cmdline []string, port int, bound time.Duration, echo io.Writer) (*server, error) {
	s := &server{endpoint: fmt.Sprintf("http://127.0.0.1:%d", port), exited: make(chan struct{}),
		output: &tailBuffer{max: outputTail}}
	s.cmd = exec.Command(cmdline[0], cmdline[1:]...)
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out io.Writer = s.output
	if echo != nil {
		out = io.MultiWriter(s.output, echo)
	}
	s.cmd.Stdout, s.cmd.Stderr = out, out
	if err := s.cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %q: %w", cmdline, err)
	}
	go func() {
		s.waitErr = s.cmd.Wait()
		close(s.exited)
	}()
	began := time.Now()
	lastErr := waitReady(s.endpoint, bound, s.exited)
	what := fmt.Sprintf("%q, to answer GET %s/moto-api/ on port %d", cmdline, s.endpoint, port)
	select {
	case <-s.exited:
		if lastErr == nil {
			return s, fmt.Errorf("waited for %s: it answered but the process exited (%v): "+
				"another server holds the port?; its output ends: %s", what, s.waitErr, s.output.quote())
		}
		return s, fmt.Errorf("waited for %s: the process exited (%v) after %s before answering; last error: %v; its output ends: %s",
			what, s.waitErr, time.Since(began).Round(time.Millisecond), lastErr, s.output.quote())
	default:
	}
	if lastErr != nil {
		return s, fmt.Errorf("waited %s (the start-up bound) for %s, in vain; last error: %v; its output ends: %s",
			bound, what, lastErr, s.output.quote())
	}
	return s, nil
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the endpoint until it answers (nil), the process exits
// or bound passes; then it returns the last error seen.
func waitReady(endpoint string, bound time.Duration, exited <-chan struct{}) error {
	ctx, cancel := context.WithTimeout(context.Background(), bound)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	lastErr := errors.New("no answer yet")
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if ctx.Err() == nil {
			lastErr = err
		}
		select {
		case <-exited:
			return lastErr
		case <-ctx.Done():
			return lastErr
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
	cut bool
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
		b.cut = true
	}
	return len(p), nil
}

// quote returns the kept output, quoted, or says there was none.
func (b *tailBuffer) quote() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) == 0 {
		return "(no output)"
	}
	if b.cut {
		return fmt.Sprintf("...%q", b.buf)
	}
	return fmt.Sprintf("%q", b.buf)
}

// command finds moto_server, or python3 with the moto module.
func command() ([]string, error) {
	if p, err := exec.LookPath("moto_server"); err == nil {
		return []string{p}, nil
	}
	py, err := exec.LookPath("python3")
	if err != nil {
		return nil, errors.New("neither moto_server nor python3 is on PATH")
	}
	if err := exec.Command(py, "-c", "import moto.server").Run(); err != nil {
		return nil, errors.New("python3 cannot import moto.server")
	}
	return []string{py, "-m", "moto.server"}, nil
}
