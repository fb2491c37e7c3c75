// Package motoserver starts a moto_server (the Python AWS mock) for tests
// that compare the emulator, or run the SQS paths, against a second
// implementation of the AWS wire protocols.
package motoserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"syscall"
	"testing"
	"time"
)

// RequireEnv is the environment variable that, set to "1", makes Start fail
// the test instead of skipping it when moto_server is missing.
const RequireEnv = "PIPELINESTOP_REQUIRE_MOTO"

// startTimeout bounds the wait for moto_server to answer.
const startTimeout = 30 * time.Second

// Start starts moto_server on a free loopback port and returns its endpoint
// ("http://127.0.0.1:PORT"). The server is killed in the test's Cleanup.
// When moto is not installed the test is skipped, or failed when the
// environment variable RequireEnv is "1".
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
	args := append(cmdline[1:], "-H", "127.0.0.1", "-p", strconv.Itoa(port))
	cmd := exec.Command(cmdline[0], args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if testing.Verbose() {
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("motoserver: start %v: %v", cmdline, err)
	}
	exited := make(chan struct{})
	var waitErr error
	go func() {
		waitErr = cmd.Wait()
		close(exited)
	}()
	t.Cleanup(func() {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-exited
	})
	endpoint := fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(endpoint, exited, &waitErr); err != nil {
		t.Fatalf("motoserver: %v", err)
	}
	return endpoint
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

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// waitReady polls the endpoint until it answers, the process exits or
// startTimeout passes.
func waitReady(endpoint string, exited <-chan struct{}, waitErr *error) error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	client := &http.Client{Timeout: time.Second}
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		if resp, err := client.Do(req); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("moto_server exited before answering: %v", *waitErr)
		case <-ctx.Done():
			return fmt.Errorf("moto_server did not answer at %s within %s", endpoint, startTimeout)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
