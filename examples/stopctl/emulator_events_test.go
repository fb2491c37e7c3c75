package main

import (
	"flag"
	"io"
	"testing"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// TestEmulatorEventFlags checks that the event fault flags reach the
// emulator's Config and its banner line, and that bad values are refused.
func TestEmulatorEventFlags(t *testing.T) {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	var f emulatorFlags
	f.register(fs)
	if err := fs.Parse([]string{"--event-delay", "1s", "--event-delay-spread", "10s", "--event-duplicate-rate", "0.1",
		"--event-drop-rate", "0.2", "--require-queue-policy"}); err != nil {
		t.Fatal(err)
	}
	cfg := f.config("us-east-1")
	want := emulator.EventFaults{Delay: time.Second, DelaySpread: 10 * time.Second, DuplicateRate: 0.1, DropRate: 0.2}
	if cfg.EventFaults != want || !cfg.RequireQueuePolicy {
		t.Errorf("config %+v, RequireQueuePolicy %v; want %+v", cfg.EventFaults, cfg.RequireQueuePolicy, want)
	}
	if got := describeEventFaults(cfg.EventFaults); got != "delay 1s + up to 10s, 10% duplicated, 20% dropped" {
		t.Errorf("describeEventFaults = %q", got)
	}
	for _, args := range [][]string{{"--event-drop-rate", "1.5"}, {"--event-duplicate-rate", "NaN"}, {"--event-delay", "-1s"}} {
		fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var f emulatorFlags
		f.register(fs)
		if err := fs.Parse(args); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
