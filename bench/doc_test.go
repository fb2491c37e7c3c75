// Package bench_test measures pipelinestop against what users would do
// without it, on the same work in the same run, against the local
// SageMaker Pipelines and SQS emulator (loopback only).
//
// The overhead benchmark is a go test benchmark:
//
//	go test ./bench -run '^$' -bench . -benchtime 2000x
//
// The scenarios are tests that only run with -scenarios; -full runs them at
// full size. Each prints a table with the baselines measured in the same
// run, the ratios and the targets of issues 6 and 11 with PASS or MISS:
//
//		go test ./bench -count=1 -v -run '^TestScenario' -scenarios
//		go test ./bench -count=1 -v -run '^TestScenario' -scenarios -full -timeout 30m
//
//	  - TestScenarioOverhead: Stop versus a bare StopPipelineExecution.
//	  - TestScenarioConflict: conflict windows of 0.5 s to 5 s; Stop versus
//	    an Airflow-style policy and the bare SDK.
//	  - TestScenarioWait: detection lag and Describe calls of Wait versus
//	    fixed 30 s and 1 s polling; stops of 1 s to 20 min on a simulated
//	    status timeline driven by a fake clock (Options.Clock), checked on
//	    short real stops against the emulator.
//	  - TestScenarioStopAll: N stops under an emulator rate limit; StopAll
//	    versus a sequential loop and a goroutine per stop with the SDK's
//	    default retryer.
//	  - TestScenarioConsumer: M callback messages; the Consumer versus a
//	    one-at-a-time loop: messages/s, API calls and allocations per message.
//	  - TestScenarioEvents: waits woken by SageMaker's EventBridge events
//	    (the emulator's rule to an SQS queue, one Watcher) versus Wait's
//	    polling defaults and fixed 1 s and 30 s polls (30 s with -full
//	    only), in real time: detection lag (median, p99) and Describe and
//	    List calls for stops of 1 s to 60 s (CI: 1 s and 2 s); 1,000
//	    concurrent waits on one Watcher (CI: 50) with CPU time and
//	    allocations per wait; event faults (20% dropped, 10% duplicated,
//	    reordering delays; safety interval 2 s); the forced stop of
//	    executions held by an unanswered callback step (Options.Callbacks).
//	  - TestScenarioFleet: a rolling deployment's shutdown (issue 15): P
//	    processes, each with its own client, Stopper and StopAll, stop E
//	    executions each within a 30 s grace period, all at once, under one
//	    rate limit of R calls/s; StopAll versus a goroutine per stop and a
//	    sequential loop with the SDK's default retryer: time against N/R,
//	    missed deadlines, requests per stop and the spread of the
//	    processes' finish times. 5 x 4 at R = 10/s; -full: 50 x 20 at
//	    R = 50/s. It also runs, at CI size, in plain go test, where it
//	    asserts that StopAll stops every execution before its deadline:
//
//	go test ./bench -count=1 -v -run '^TestScenarioFleet$' -full -timeout 10m
//
// The scenarios assert behaviour (pipelinestop's own stops and answers
// succeed), never speed: a MISS is reported, not failed.
//
// TestSoakStopAndWait is a reliability test, not a benchmark: concurrent
// StopAndWait calls under 5xx answers, throttling, dropped connections and
// latency jitter must all end Stopped with exactly one stop token each. It
// runs in plain go test with 20 executions, and with 200 under -full:
//
//	go test ./bench -count=1 -v -run '^TestSoak' -full
//
// See BENCHMARKS.md for results.
package bench_test
