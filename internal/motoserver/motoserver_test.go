package motoserver

import (
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestStartBound(t *testing.T) {
	now := time.Date(2026, 12, 1, 21, 0, 0, 0, time.UTC)
	tests := []struct {
		name        string
		deadline    time.Time
		hasDeadline bool
		want        time.Duration
	}{
		{"no deadline", time.Time{}, false, DefaultStartTimeout},
		{"far deadline", now.Add(10 * time.Minute), true, DefaultStartTimeout},
		{"near deadline", now.Add(40 * time.Second), true, 30 * time.Second},
		{"past deadline", now.Add(-time.Second), true, time.Second},
	}
	for _, tt := range tests {
		if got := startBound(now, tt.deadline, tt.hasDeadline); got != tt.want {
			t.Errorf("%s: startBound = %s, want %s", tt.name, got, tt.want)
		}
	}
}

// startFake runs a fake moto_server command with a short bound and
// returns its error, failing the test if start does not return in time.
func startFake(t *testing.T, script string, bound time.Duration) (srv *server, port int, err error) {
	t.Helper()
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("sh is missing")
	}
	port, err = freePort()
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		srv *server
		err error
	}
	done := make(chan result, 1)
	go func() {
		srv, err := start([]string{sh, "-c", script}, port, bound, nil)
		done <- result{srv, err}
	}()
	select {
	case r := <-done:
		if r.srv != nil {
			t.Cleanup(r.srv.kill)
		}
		return r.srv, port, r.err
	case <-time.After(bound + 20*time.Second):
		t.Fatalf("start did not return within its bound of %s (and 20 s more)", bound)
		return nil, 0, nil
	}
}

func TestStartNeverListens(t *testing.T) {
	srv, port, err := startFake(t, "echo loading moto; echo still importing >&2; exec sleep 60", 500*time.Millisecond)
	if err == nil {
		t.Fatal("no error from a server that never listens")
	}
	t.Log(err)
	for _, want := range []string{"waited 500ms", "sleep 60", "port " + strconv.Itoa(port), "/moto-api/",
		"last error", "connection refused", "loading moto", "still importing"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
	srv.kill()
	select {
	case <-srv.exited:
	default:
		t.Error("the process runs on after kill")
	}
}

func TestStartExits(t *testing.T) {
	_, port, err := startFake(t, "echo 'OSError: [Errno 98] Address already in use' >&2; exit 3", time.Minute)
	if err == nil {
		t.Fatal("no error from a server that exited")
	}
	t.Log(err)
	for _, want := range []string{"exited", "exit status 3", "port " + strconv.Itoa(port), "Address already in use"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error lacks %q:\n%v", want, err)
		}
	}
}

func TestStartCommandMissing(t *testing.T) {
	srv, err := start([]string{"/nonexistent/moto_server"}, 1, time.Second, nil)
	if srv != nil || err == nil || !strings.Contains(err.Error(), "/nonexistent/moto_server") {
		t.Fatalf("start of a missing command: %v, %v", srv, err)
	}
}

func TestTailBuffer(t *testing.T) {
	b := &tailBuffer{max: 5}
	if b.quote() != "(no output)" {
		t.Errorf("empty: %s", b.quote())
	}
	_, _ = b.Write([]byte("abc"))
	if b.quote() != `"abc"` {
		t.Errorf("short: %s", b.quote())
	}
	_, _ = b.Write([]byte("defgh"))
	if b.quote() != `..."defgh"` {
		t.Errorf("cut: %s", b.quote())
	}
}

// TestStartMoto starts the real moto_server (skipped when it is missing).
func TestStartMoto(t *testing.T) {
	endpoint := Start(t)
	if !strings.HasPrefix(endpoint, "http://127.0.0.1:") {
		t.Fatalf("endpoint %q", endpoint)
	}
}
