//go:build unix

package emulator

import (
	"errors"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// Close ends the processes it started: none outlives it.
func TestCloseEndsFunctionProcesses(t *testing.T) {
	tf := buildTestFunction(t)
	goroutines := runtime.NumGoroutine()
	e, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	tf.add(t, e, "fn", 5*time.Second, nil)
	tf.add(t, e, "sleeper", 5*time.Second, nil)
	if _, err := e.Invoke(testContext(t), "fn", []byte(`{}`)); err != nil {
		t.Fatal(err)
	}
	// One process waits in /next, another is in the middle of an invocation.
	ctx := testContext(t)
	go func() { _, _ = e.Invoke(ctx, "sleeper", sqsEventOf("sleep")) }()
	eventually(t, "both processes running", func() bool { return len(tf.invocations(t)) == 2 })
	var pids []int
	for _, inv := range tf.invocations(t) {
		pids = append(pids, inv.PID)
		if err := syscall.Kill(inv.PID, 0); err != nil {
			t.Fatalf("process %d not running before Close: %v", inv.PID, err)
		}
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for _, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process %d still exists after Close (kill 0: %v)", pid, err)
		}
	}
	// No goroutine of the emulator outlives Close (the test's own invoking
	// goroutine ends too, with ErrEmulatorClosed).
	eventually(t, "the goroutines to end", func() bool { return runtime.NumGoroutine() <= goroutines })
	if err := e.AddFunction("late", tf.path, time.Second); !errors.Is(err, ErrEmulatorClosed) {
		t.Errorf("AddFunction after Close: %v; want ErrEmulatorClosed", err)
	}
}
