package bench_test

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// fleetTarget is issue 15's bound on a fleet's time: every stop done
// within 1.3 x N/R.
const fleetTarget = 1.3

// fleetGrace is each process's grace period, its context's deadline:
// Kubernetes' default terminationGracePeriodSeconds.
const fleetGrace = 30 * time.Second

// fleetProcess is what one process of a fleet did.
type fleetProcess struct {
	finish time.Duration // from the fleet's start to the end of the process's last stop
	done   int           // stops that succeeded
	missed int           // stops not done when the process's deadline passed
	other  int           // stops that failed otherwise (throttled, retry quota)
	quota  int           // of other: the SDK's client-side retry quota ran out
}

// fleetRun is what one strategy did to the fleet's N executions.
type fleetRun struct {
	procs    []fleetProcess
	elapsed  time.Duration // the fleet's start to the last process's end
	requests int           // StopPipelineExecution requests the emulator received
	stopped  int           // executions the emulator saw stopped exactly once
}

// fleetStrategy is how every process of a fleet stops its executions.
type fleetStrategy struct {
	name     string
	baseline bool
	// run stops arns with client, the process's own, within ctx.
	run func(ctx context.Context, client *sagemaker.Client, arns []string) []error
}

// fleetStopAll is a process that calls StopAll with the library's
// defaults.
func fleetStopAll(ctx context.Context, client *sagemaker.Client, arns []string) []error {
	results, _ := pipelinestop.New(client).StopAll(ctx, arns)
	errs := make([]error, len(results))
	for i, r := range results {
		errs[i] = r.Err
	}
	return errs
}

// fleetVariants adds to TestScenarioFleet rows of StopAll with caller-side
// changes (a jittered start, fewer calls in flight), to show what they
// change.
var fleetVariants = flag.Bool("fleet-variants", false, "TestScenarioFleet: add rows of StopAll with a jittered start and with Concurrency 1")

// fleetJitteredStart returns a process that waits a random time of up to
// spread (within its grace period) before it calls run: processes that
// start together spread their first calls.
func fleetJitteredStart(spread time.Duration, run func(context.Context, *sagemaker.Client, []string) []error) func(context.Context, *sagemaker.Client, []string) []error {
	return func(ctx context.Context, client *sagemaker.Client, arns []string) []error {
		select {
		case <-time.After(rand.N(spread)):
		case <-ctx.Done():
		}
		return run(ctx, client, arns)
	}
}

// fleetStopAllConcurrency1 is a process that calls StopAll with
// Concurrency 1: one call in flight, so an unpaced start sends one call
// per process, not eight.
func fleetStopAllConcurrency1(ctx context.Context, client *sagemaker.Client, arns []string) []error {
	results, _ := pipelinestop.New(client, func(o *pipelinestop.Options) { o.Concurrency = 1 }).StopAll(ctx, arns)
	errs := make([]error, len(results))
	for i, r := range results {
		errs[i] = r.Err
	}
	return errs
}

// fleetGoroutines is a process that stops each execution in a goroutine
// of its own with a plain SDK call (the SDK's default retryer).
func fleetGoroutines(ctx context.Context, client *sagemaker.Client, arns []string) []error {
	errs := make([]error, len(arns))
	var wg sync.WaitGroup
	for i, arn := range arns {
		wg.Go(func() { errs[i] = bareStop(ctx, client, arn) })
	}
	wg.Wait()
	return errs
}

// fleetSequential is a process that stops its executions one after
// another with plain SDK calls (the SDK's default retryer).
func fleetSequential(ctx context.Context, client *sagemaker.Client, arns []string) []error {
	errs := make([]error, len(arns))
	for i, arn := range arns {
		errs[i] = bareStop(ctx, client, arn)
	}
	return errs
}

// TestScenarioFleet simulates a rolling deployment's shutdown (issue 15):
// P processes each stop E executions within a 30-second grace period (their
// own context deadline), all at once, against one emulator admitting R
// StopPipelineExecution calls per second (a token bucket of burst 1, shared
// by the whole fleet as an account's limit is).
//
// Each process is modelled in-process but on its own: its own
// *sagemaker.Client (with its own HTTP transport, SDK retryer and
// client-side retry quota), its own Stopper, StopAll and pacer; processes
// share nothing but the emulator. They start at the same instant (a
// barrier): the worst case, what a Deployment deleted or scaled down, or
// a rolling update whose batch covers the fleet, does.
//
// It runs in plain go test at CI size (5 x 4 executions) and asserts
// behaviour only: StopAll stops every execution, exactly once, before its
// process's deadline. -full runs 50 x 20 at R = 50/s (N/R = 20 s).
func TestScenarioFleet(t *testing.T) {
	procs, per := size(5, 50), size(4, 20)
	rate := size(10.0, 50.0)
	n := procs * per
	ideal := time.Duration(float64(n) / rate * float64(time.Second))
	em := emulator.StartTest(t, emulator.Config{})
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: -1})

	strategies := []fleetStrategy{
		{"pipelinestop StopAll (defaults)", false, fleetStopAll},
		{"goroutine per stop, SDK retryer", true, fleetGoroutines},
		{"sequential loop, SDK retryer", true, fleetSequential},
	}
	if *fleetVariants {
		// Not baselines: StopAll with caller-side changes. They are held to
		// the target and checked like the defaults.
		strategies = slices.Insert(strategies, 1,
			fleetStrategy{"StopAll, start jittered over 2s", false, fleetJitteredStart(2*time.Second, fleetStopAll)},
			fleetStrategy{"StopAll, Concurrency 1", false, fleetStopAllConcurrency1},
			fleetStrategy{"StopAll, Concurrency 1, start jittered over 2s", false, fleetJitteredStart(2*time.Second, fleetStopAllConcurrency1)})
	}
	runs := make([]fleetRun, len(strategies))
	for si, s := range strategies {
		arns := startExecutions(t, em, fmt.Sprintf("fleet-%d", si), "Train", n)
		em.SetFaults(emulator.Faults{RateLimits: map[string]emulator.RateLimit{
			"StopPipelineExecution": {PerSecond: rate, Burst: 1}}}) // a full bucket for each strategy
		before := em.Requests("StopPipelineExecution")
		r, errs := runFleet(t, em, procs, per, arns, s.run)
		em.SetFaults(emulator.Faults{})
		r.requests = em.Requests("StopPipelineExecution") - before
		for _, arn := range arns {
			if len(em.StopTokens(arn)) >= 1 && em.EffectiveStops(arn) == 1 {
				r.stopped++
			}
		}
		if !s.baseline {
			failures := 0
			for _, p := range r.procs {
				failures += p.missed + p.other
			}
			// Every stop done is asserted at CI size only, where N/R is a
			// fifteenth of the grace period: at full size whether the fleet
			// makes its deadline is the measurement, reported not failed.
			if !*full && (failures > 0 || r.stopped != n) {
				t.Errorf("%s: %d stops failed, %d of %d executions stopped; first error: %v", s.name, failures, r.stopped, n, errors.Join(errs...))
			}
			// At any size: a stop retried by StopAll keeps its token (one
			// not sent before the deadline has none).
			for _, arn := range arns {
				if k := len(em.StopTokens(arn)); k > 1 {
					t.Errorf("%s sent %d distinct tokens for %s, want at most 1", s.name, k, arn)
				}
			}
		}
		runs[si] = r
	}
	printFleet(procs, per, rate, ideal, strategies, runs)
}

// runFleet runs procs processes of strategy run, each with per of arns and
// a client of its own, released at once; it returns what each did and
// every stop's error, in the order of arns.
func runFleet(tb testing.TB, em *emulator.Emulator, procs, per int, arns []string,
	run func(context.Context, *sagemaker.Client, []string) []error) (fleetRun, []error) {
	// Bounded in time: each process's own deadline is fleetGrace.
	parent := boundedCtx(tb, fleetGrace+time.Minute)
	// A process's client is made when it starts, long before its shutdown
	// hook runs: so here, before the barrier. HTTPClient is set to make
	// the separate transport explicit (the SDK would make one per client
	// anyway); the retryer, with its retry quota, is the SDK's default,
	// one per client.
	clients := make([]*sagemaker.Client, procs)
	for p := range clients {
		clients[p] = em.SageMakerClient(func(o *sagemaker.Options) { o.HTTPClient = awshttp.NewBuildableClient() })
	}
	r := fleetRun{procs: make([]fleetProcess, procs)}
	errs := make([]error, len(arns))
	release := make(chan struct{})
	var ready, wg sync.WaitGroup
	var start time.Time
	for p := range procs {
		ready.Add(1)
		wg.Go(func() {
			mine := arns[p*per : (p+1)*per]
			ready.Done()
			<-release
			ctx, cancel := context.WithTimeout(parent, fleetGrace)
			defer cancel()
			perr := run(ctx, clients[p], mine)
			pr := &r.procs[p]
			pr.finish = time.Since(start)
			for i, err := range perr {
				errs[p*per+i] = err
				switch {
				case err == nil:
					pr.done++
				case errors.Is(err, context.DeadlineExceeded):
					pr.missed++
				default:
					pr.other++
					if errors.As(err, new(ratelimit.QuotaExceededError)) {
						pr.quota++
					}
				}
			}
		})
	}
	ready.Wait()
	start = time.Now()
	close(release)
	wg.Wait()
	r.elapsed = time.Since(start)
	return r, errs
}

// printFleet prints the fleet table: totals, then the spread of the
// processes' finish times.
func printFleet(procs, per int, rate float64, ideal time.Duration, strategies []fleetStrategy, runs []fleetRun) {
	n := procs * per
	tb := newTable(fmt.Sprintf("(7) A fleet stopping together: P=%d processes x E=%d executions = N=%d, all at once, each within a %s grace period; R=%.0f StopPipelineExecution/s (burst 1) for the fleet, N/R = %s",
		procs, per, n, fleetGrace, rate, ms(ideal)),
		"strategy", "time", "time/(N/R)", "done", "missed deadline", "other failures", "retry quota", "stopped once",
		"stop requests", "requests/stop", "offered/s", "admitted/s", "random-arrival bound/s", "processes all done", "finish min", "finish median", "finish max", "slowest/(N/R)",
		"target", "verdict")
	for si, s := range strategies {
		r := runs[si]
		var done, missed, other, quota, complete int
		finishes := make([]time.Duration, len(r.procs))
		for i, p := range r.procs {
			done += p.done
			missed += p.missed
			other += p.other
			quota += p.quota
			if p.done == per {
				complete++
			}
			finishes[i] = p.finish
		}
		offered := float64(r.requests) / r.elapsed.Seconds()
		target, v := "", ""
		if !s.baseline {
			target = fmt.Sprintf("all done, <= %.1fx N/R, none starved", fleetTarget)
			v = verdict(done == n && complete == procs && ratio(r.elapsed, ideal) <= fleetTarget)
		}
		tb.row(s.name, r.elapsed, ratio(r.elapsed, ideal), fmt.Sprintf("%d/%d", done, n), missed, other, quota,
			fmt.Sprintf("%d/%d", r.stopped, n), r.requests, ratio(r.requests, n), offered, float64(done)/r.elapsed.Seconds(),
			rate/(1+rate/offered), fmt.Sprintf("%d/%d", complete, procs),
			slices.Min(finishes), median(finishes), slices.Max(finishes), ratio(slices.Max(finishes), ideal), target, v)
	}
	tb.flush()
	fmt.Println("missed deadline = not done when the process's grace period ended; other failures = still throttled when the SDK's retries gave up, or its retry quota ran out (retry quota); finish = the fleet's start to the end of the process's last stop; offered/s = stop requests / time; admitted/s = stops done / time; random-arrival bound/s = R / (1 + R/offered), what a burst-1 bucket admits of calls arriving at random at the offered rate")
}
