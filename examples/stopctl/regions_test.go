package main

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// stopctl commands with --region reach that Region of the emulator, which
// serves every Region: the execution of eu-west-1 (or cn-north-1, in the
// aws-cn partition) is stopped there, and the home Region's execution of
// the same pipeline name keeps running.
func TestStopctlRegionsOfTheEmulator(t *testing.T) {
	te := newTestEnv(t, emulator.Config{Timing: emulator.Timing{StepDuration: emulator.Forever, StopDelay: -1}})
	home := te.start(t, "train", emulator.Step{Name: "Work"})
	for _, region := range []string{"eu-west-1", "cn-north-1"} {
		r, err := te.emu.InRegion(region)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.CreatePipeline("train", emulator.Definition(emulator.Step{Name: "Work"})); err != nil {
			t.Fatal(err)
		}
		arn, err := r.StartExecution("train")
		if err != nil {
			t.Fatal(err)
		}
		if want := "arn:" + emulator.Partition(region) + ":sagemaker:" + region + ":"; !strings.HasPrefix(arn, want) {
			t.Fatalf("execution ARN %s; want prefix %s", arn, want)
		}
		global := []string{"--endpoint-url", te.emu.URL(), "--region", region}
		if res := runStopctl(t, t.Context(), "", append(global, "stop", arn)...); res.code != exitOK {
			t.Fatalf("%s: stop: %s", region, res)
		}
		if got := te.waitExecution(t, arn, emulator.StatusStopped); got != emulator.StatusStopped {
			t.Fatalf("%s: %s", region, got)
		}
		if res := runStopctl(t, t.Context(), "", append(global, "status", arn)...); res.code != exitOK || !strings.Contains(res.stdout, "Stopped") {
			t.Fatalf("%s: status: %s", region, res)
		}
		if r.Requests("StopPipelineExecution") == 0 {
			t.Errorf("%s: no StopPipelineExecution counted in the Region: %v", region, te.emu.RegionCounters())
		}
	}
	if st, _, err := te.emu.ExecutionStatus(home); err != nil || st != emulator.StatusExecuting {
		t.Errorf("home Region's execution: %s %v; want Executing", st, err)
	}
	if n := te.emu.Requests("StopPipelineExecution"); n != 0 {
		t.Errorf("%d StopPipelineExecution in the home Region; want 0", n)
	}
}

// events setup with --region works in that Region of the emulator, and a
// dry run writes ARNs in the Region's partition.
func TestStopctlEventsSetupInRegions(t *testing.T) {
	te := newTestEnv(t, emulator.Config{})
	global := []string{"--endpoint-url", te.emu.URL(), "--region", "cn-north-1"}
	r := runStopctl(t, t.Context(), "", append(global, "--output", "json", "events", "setup", "--queue", "events")...)
	var s eventsSetup
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != exitOK {
		t.Fatalf("events setup (%v): %s", err, r)
	}
	if s.QueueARN != "arn:aws-cn:sqs:cn-north-1:123456789012:events" || s.RuleARN != "arn:aws-cn:events:cn-north-1:123456789012:rule/"+s.RuleName {
		t.Errorf("setup queue %s rule %s; want cn-north-1 ARNs in aws-cn", s.QueueARN, s.RuleARN)
	}
	cn, err := te.emu.InRegion("cn-north-1")
	if err != nil {
		t.Fatal(err)
	}
	if cn.Requests("PutTargets") != 1 || te.emu.Requests("PutTargets") != 0 {
		t.Errorf("PutTargets counted in %v; want cn-north-1 only", te.emu.RegionCounters())
	}
	r = runStopctl(t, t.Context(), "", append(global, "events", "setup", "--queue", "q", "--dry-run", "--account", "123456789012")...)
	s = eventsSetup{}
	if err := json.Unmarshal([]byte(r.stdout), &s); err != nil || r.code != exitOK {
		t.Fatalf("dry run (%v): %s", err, r)
	}
	if s.QueueARN != "arn:aws-cn:sqs:cn-north-1:123456789012:q" || !strings.HasPrefix(s.RuleARN, "arn:aws-cn:events:cn-north-1:") {
		t.Errorf("dry run queue %s rule %s; want aws-cn ARNs", s.QueueARN, s.RuleARN)
	}
}
