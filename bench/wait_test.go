package bench_test

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/svgplot"
)

// Issue 14's targets for waiting without events: the median detection lag
// at most a tenth of the stop's duration in every class from 1 s to 20 min,
// with at most as many Describe calls as fixed 1 s polling below 2 minutes
// and a quarter of them from 2 minutes on.
const (
	waitLagTarget     = 0.10
	waitCallsTarget   = 0.25
	waitCallsFromSize = 2 * time.Minute
)

// Fixed polling intervals of the baselines: 30 s is the SageMaker Python
// SDK's PipelineExecution.wait(delay=30), Airflow's check_interval and
// ACK's requeue; 1 s is an impatient hand-written loop.
const (
	slowPoll = 30 * time.Second
	fastPoll = time.Second
)

// maxPolls bounds every polling loop of this file in count (contexts bound
// them in time).
const maxPolls = 100_000

// waitStrategy waits for one execution to reach a terminal status through
// client, on clock.
type waitStrategy struct {
	name string
	wait func(ctx context.Context, client pipelinestop.StopAPIClient, clock pipelinestop.Clock, arn string) error
}

// waitStrategies are Wait with its default options, fixed 1 s polling (the
// calls target's reference, second), Wait's previous default schedule and,
// when slow is set, fixed 30 s polling. The fixed pollers are modelled
// generously: they poll at once, then every interval, and accept every
// terminal status (the SageMaker Python SDK's waiter never accepts Stopped
// and would poll until its 60 attempts run out).
func waitStrategies(slow bool) []waitStrategy {
	ss := []waitStrategy{
		{"pipelinestop Wait (defaults)", func(ctx context.Context, c pipelinestop.StopAPIClient, clock pipelinestop.Clock, arn string) error {
			_, err := pipelinestop.New(c, func(o *pipelinestop.Options) { o.Clock = clock }).Wait(ctx, arn)
			return err
		}},
		{"fixed 1 s polling", fixedPoller(fastPoll)},
		{"Wait's previous defaults (0.5 s x1.2)", growingPoller(500*time.Millisecond, 1.2, 30*time.Second)},
	}
	if slow {
		ss = append(ss, waitStrategy{"fixed 30 s polling (SDK, Airflow, ACK)", fixedPoller(slowPoll)})
	}
	return ss
}

// growingPoller polls at once, then after first, and after each poll
// waits the last delay times m, capped at limit: Wait's default schedule
// before issue 14 (first 500 ms, x1.2, 30 s), whose poll times are about
// 1.2 x the time waited + 0.5 s.
func growingPoller(first time.Duration, m float64, limit time.Duration) func(context.Context, pipelinestop.StopAPIClient, pipelinestop.Clock, string) error {
	return func(ctx context.Context, c pipelinestop.StopAPIClient, clock pipelinestop.Clock, arn string) error {
		in := &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)}
		delay := first
		for range maxPolls {
			out, err := c.DescribePipelineExecution(ctx, in)
			if err != nil {
				return err
			}
			if pipelinestop.IsTerminal(out.PipelineExecutionStatus) {
				return nil
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-clock.After(delay):
			}
			delay = min(time.Duration(float64(delay)*m), limit)
		}
		return fmt.Errorf("no terminal status after %d polls", maxPolls)
	}
}

// fixedPoller polls DescribePipelineExecution at once and then every
// interval until the status is terminal.
func fixedPoller(interval time.Duration) func(context.Context, pipelinestop.StopAPIClient, pipelinestop.Clock, string) error {
	return growingPoller(interval, 1, interval)
}

// waitRun is one strategy's wait for one stop.
type waitRun struct {
	d         time.Duration // the stop's duration: Stopping to Stopped
	lag       time.Duration // Stopped reached to Stopped seen
	describes int64
	lists     int64
}

// timelineClient is the simulated-time model of one stopping execution:
// DescribePipelineExecution answers Stopping until stoppedAt on clock,
// then Stopped; ListPipelineExecutionSteps lists the one step that holds
// it. It records when the Stopped status was first seen. It is used by
// one goroutine at a time.
type timelineClient struct {
	clock     *fakeclock.Auto
	arn       string
	start     time.Time
	stoppedAt time.Time
	seen      time.Time
	describes int64
	lists     int64
}

func (c *timelineClient) StopPipelineExecution(context.Context, *sagemaker.StopPipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.StopPipelineExecutionOutput, error) {
	return &sagemaker.StopPipelineExecutionOutput{PipelineExecutionArn: aws.String(c.arn)}, nil
}

func (c *timelineClient) DescribePipelineExecution(context.Context, *sagemaker.DescribePipelineExecutionInput, ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	c.describes++
	now, status, modified := c.clock.Now(), types.PipelineExecutionStatusStopping, c.start
	if !now.Before(c.stoppedAt) {
		status, modified = types.PipelineExecutionStatusStopped, c.stoppedAt
		if c.seen.IsZero() {
			c.seen = now
		}
	}
	return &sagemaker.DescribePipelineExecutionOutput{PipelineExecutionArn: aws.String(c.arn),
		PipelineExecutionStatus: status, LastModifiedTime: aws.Time(modified)}, nil
}

func (c *timelineClient) ListPipelineExecutionSteps(context.Context, *sagemaker.ListPipelineExecutionStepsInput, ...func(*sagemaker.Options)) (*sagemaker.ListPipelineExecutionStepsOutput, error) {
	c.lists++
	status := types.StepStatusStopping
	if !c.clock.Now().Before(c.stoppedAt) {
		status = types.StepStatusStopped
	}
	return &sagemaker.ListPipelineExecutionStepsOutput{PipelineExecutionSteps: []types.PipelineExecutionStep{{
		StepName: aws.String("Train"), StepStatus: status, StartTime: aws.Time(c.start),
		Metadata: &types.PipelineExecutionStepMetadata{TrainingJob: &types.TrainingJobStepMetadata{}},
	}}}, nil
}

// modelWait runs one strategy against a simulated stop of duration d: the
// stop is accepted at the clock's start, when the wait begins.
func modelWait(ctx context.Context, s waitStrategy, arn string, d time.Duration) (waitRun, error) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := fakeclock.NewAuto(start)
	c := &timelineClient{clock: clock, arn: arn, start: start, stoppedAt: start.Add(d)}
	if err := s.wait(ctx, c, clock, arn); err != nil {
		return waitRun{}, err
	}
	if c.seen.IsZero() {
		return waitRun{}, fmt.Errorf("%s returned before the execution was seen Stopped", s.name)
	}
	return waitRun{d: d, lag: c.seen.Sub(c.stoppedAt), describes: c.describes, lists: c.lists}, nil
}

// spread returns k durations spread over d ± 10% by the golden-ratio
// sequence: evenly, and never on whole seconds alike, so that the fixed
// pollers meet every phase and not only a lucky one.
func spread(d time.Duration, k int) []time.Duration {
	const phi = 0.6180339887498949
	out := make([]time.Duration, k)
	for i := range out {
		u := float64(i)*phi + 0.5
		u -= float64(int(u))
		out[i] = time.Duration(float64(d) * (0.9 + 0.2*u)).Round(time.Millisecond)
	}
	return out
}

// waitSummary summarises one strategy's runs for one duration class.
type waitSummary struct {
	medLag, maxLag         time.Duration
	medDescribes, medLists int64
}

func summarise(runs []waitRun) waitSummary {
	var lags []time.Duration
	var ds, ls []int64
	for _, r := range runs {
		lags = append(lags, r.lag)
		ds = append(ds, r.describes)
		ls = append(ls, r.lists)
	}
	return waitSummary{medLag: median(lags), maxLag: slices.Max(lags), medDescribes: median(ds), medLists: median(ls)}
}

// lagBound is the lag target for a stop of duration d.
func lagBound(d time.Duration) time.Duration {
	return time.Duration(float64(d) * waitLagTarget)
}

// callsBound is the calls target for a class of duration d: the median
// Describe calls of 1 s polling (fast), or a quarter of them from
// waitCallsFromSize on.
func callsBound(d time.Duration, fast int64) (float64, string) {
	if d >= waitCallsFromSize {
		return waitCallsTarget * float64(fast), fmt.Sprintf("calls <= %.2fx", waitCallsTarget)
	}
	return float64(fast), "calls <= 1 s polling"
}

// waitTable prints one class-by-strategy table of waits (runs[class][strategy])
// with the targets for strategy 0, judged against strategy 1 (1 s
// polling) for the calls, and returns the points of the plots: median
// lag/stop and median Describe calls per class, per strategy.
func waitTable(title string, classes []time.Duration, names []string, runs [][][]waitRun) (lag, calls [][]svgplot.Point) {
	tb := newTable(title,
		"stop", "strategy", "median lag", "median lag/stop", "max lag", "Describe calls", "List calls", "Describe vs 1 s",
		"target", "verdict (lag)", "verdict (calls)")
	lag, calls = make([][]svgplot.Point, len(names)), make([][]svgplot.Point, len(names))
	for ci, d := range classes {
		fast := summarise(runs[ci][1]).medDescribes
		for si, name := range names {
			sm := summarise(runs[ci][si])
			target, vLag, vCalls := "", "", ""
			if si == 0 {
				bound, what := callsBound(d, fast)
				target = fmt.Sprintf("lag <= %s, %s", ms(lagBound(d)), what)
				vLag = verdict(sm.medLag <= lagBound(d))
				vCalls = verdict(float64(sm.medDescribes) <= bound)
			}
			tb.row(d.String(), name, sm.medLag, ratio(sm.medLag, d), sm.maxLag, sm.medDescribes, sm.medLists,
				ratio(sm.medDescribes, fast), target, vLag, vCalls)
			// A lag of 0 cannot go on a log axis: plot it as 0.1 ms.
			lag[si] = append(lag[si], svgplot.Point{X: d.Seconds(), Y: max(ratio(sm.medLag, d), 1e-4/d.Seconds())})
			calls[si] = append(calls[si], svgplot.Point{X: d.Seconds(), Y: float64(max(sm.medDescribes, 1))})
		}
	}
	tb.flush()
	return lag, calls
}

// plotName is a strategy's name short enough for a plot's legend.
func plotName(name string) string {
	if short, ok := map[string]string{
		"pipelinestop Wait (defaults)":           "Wait (defaults)",
		"Wait's previous defaults (0.5 s x1.2)":  "Wait, old defaults",
		"fixed 30 s polling (SDK, Airflow, ACK)": "30 s polling",
		"fixed 1 s polling":                      "1 s polling",
		"events (Watcher, safety 60 s)":          "events (Watcher)",
	}[name]; ok {
		return short
	}
	return name
}

// lagChart is the plot of median lag/stop against the stop's duration.
func lagChart(title string, names []string, lag [][]svgplot.Point, classes []time.Duration) svgplot.Chart {
	c := svgplot.Chart{Title: title, XLabel: "stop duration (s)", YLabel: "median lag / stop duration", LogX: true, LogY: true}
	for si, name := range names {
		c.Series = append(c.Series, svgplot.Series{Name: plotName(name), Points: lag[si]})
	}
	var target []svgplot.Point
	for _, d := range classes {
		target = append(target, svgplot.Point{X: d.Seconds(), Y: waitLagTarget})
	}
	c.Series = append(c.Series, svgplot.Series{Name: "target: 10%", Points: target, Dashed: true})
	return c
}

// TestScenarioWait compares Wait's detection lag and Describe calls with
// fixed 30 s and 1 s polling, in two parts. The model part runs every
// strategy against a simulated SageMaker status timeline on a fake clock
// (Options.Clock for Wait, the same clock for the pollers): stops of 1 s to
// 20 min are exact and take no real time. The emulator part checks the
// model on short real stops: the real *sagemaker.Client against the
// emulator, whose executions stay Stopping for the stop's duration, lag
// measured from the LastModifiedTime of the Stopped answer.
func TestScenarioWait(t *testing.T) {
	needScenarios(t)
	t.Run("model", testWaitModel)
	t.Run("emulator", testWaitEmulator)
}

func testWaitModel(t *testing.T) {
	classes := []time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second,
		time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 20 * time.Minute}
	k := size(21, 101)
	arn := fmt.Sprintf("arn:aws:sagemaker:us-east-1:123456789012:pipeline/model/execution/%s", "abcdef123456")
	ctx := boundedCtx(t, time.Minute)
	strategies := waitStrategies(true)
	names := make([]string, len(strategies))
	for si, s := range strategies {
		names[si] = s.name
	}

	runs := make([][][]waitRun, len(classes))
	for ci, d := range classes {
		runs[ci] = make([][]waitRun, len(strategies))
		for si, s := range strategies {
			for _, dd := range spread(d, k) {
				r, err := modelWait(ctx, s, arn, dd)
				if err != nil {
					t.Fatalf("%s, %v stop: %v", s.name, dd, err)
				}
				runs[ci][si] = append(runs[ci][si], r)
			}
		}
	}
	lag, calls := waitTable(fmt.Sprintf("(3) Waiting, simulated time: %d stops per class and strategy spread over +-10%% of its duration; each wait starts when its stop is accepted", k),
		classes, names, runs)
	writePlot(t, "wait-lag-model", lagChart("Polling waits, simulated time: detection lag against stop duration", names, lag, classes))
	callsChart := svgplot.Chart{Title: "Polling waits, simulated time: Describe calls against stop duration",
		XLabel: "stop duration (s)", YLabel: "median Describe calls per wait", LogX: true, LogY: true}
	for si, name := range names {
		callsChart.Series = append(callsChart.Series, svgplot.Series{Name: plotName(name), Points: calls[si]})
	}
	var quarter []svgplot.Point
	for ci, d := range classes {
		if d >= waitCallsFromSize {
			quarter = append(quarter, svgplot.Point{X: d.Seconds(), Y: waitCallsTarget * calls[1][ci].Y})
		}
	}
	callsChart.Series = append(callsChart.Series, svgplot.Series{Name: "target: 1/4 of 1 s", Points: quarter, Dashed: true})
	writePlot(t, "wait-calls-model", callsChart)

	// Pooled: stop durations log-uniform over 1 s .. 20 min, each judged
	// against its own bound, so that no class's phase luck decides.
	pooled := logUniform(time.Second, 20*time.Minute, 10*k)
	fastCalls := make([]int64, len(pooled))
	tb := newTable(fmt.Sprintf("(3) Waiting, simulated time, pooled: %d stops log-uniform over 1 s .. 20 min", len(pooled)),
		"strategy", "median lag/stop", "p90 lag/stop", "stops within 10%", "median Describe vs 1 s", "total Describe calls",
		"total List calls", "target", "verdict (lag)")
	order := []int{1, 0, 2, 3} // 1 s polling first: the others' calls are compared with it
	for _, si := range order {
		s := strategies[si]
		var perStop, callRatio []float64
		var within int
		var describes, lists int64
		for i, d := range pooled {
			r, err := modelWait(ctx, s, arn, d)
			if err != nil {
				t.Fatalf("%s, %v stop: %v", s.name, d, err)
			}
			if si == 1 {
				fastCalls[i] = r.describes
			}
			perStop = append(perStop, ratio(r.lag, d))
			callRatio = append(callRatio, ratio(r.describes, fastCalls[i]))
			if r.lag <= lagBound(d) {
				within++
			}
			describes += r.describes
			lists += r.lists
		}
		target, vLag := "", ""
		if si == 0 {
			target = "median lag/stop <= 0.10"
			vLag = verdict(median(perStop) <= waitLagTarget)
		}
		tb.row(s.name, median(perStop), percentile(perStop, 0.9), fmt.Sprintf("%d/%d", within, len(pooled)), median(callRatio),
			describes, lists, target, vLag)
	}
	tb.flush()
	fmt.Println("lag = Stopped reached to Stopped seen; the calls targets are per class (table above)")
}

// logUniform returns n durations spread log-uniformly over [lo, hi] by
// the golden-ratio sequence.
func logUniform(lo, hi time.Duration, n int) []time.Duration {
	const phi = 0.6180339887498949
	out := make([]time.Duration, n)
	span := math.Log(float64(hi) / float64(lo))
	for i := range out {
		u := float64(i)*phi + 0.5
		u -= math.Floor(u)
		out[i] = time.Duration(float64(lo) * math.Exp(u*span)).Round(time.Millisecond)
	}
	return out
}

// realWaitClient counts the calls made through it, records when the first
// terminal status was seen and adds each Describe's round trip to rtts.
type realWaitClient struct {
	*countingClient
	rtts *latencies
	mu   sync.Mutex
	seen time.Time
}

func (c *realWaitClient) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	start := time.Now()
	out, err := c.countingClient.DescribePipelineExecution(ctx, in, optFns...)
	now := time.Now()
	c.rtts.add(now.Sub(start))
	if err == nil && pipelinestop.IsTerminal(out.PipelineExecutionStatus) {
		c.mu.Lock()
		if c.seen.IsZero() {
			c.seen = now
		}
		c.mu.Unlock()
	}
	return out, err
}

// latencies collects durations from many goroutines.
type latencies struct {
	mu sync.Mutex
	ds []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.ds = append(l.ds, d)
	l.mu.Unlock()
}

// String prints the median, p99 and max.
func (l *latencies) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.ds) == 0 {
		return "none"
	}
	return fmt.Sprintf("median %s, p99 %s, max %s", ms(median(l.ds)), ms(percentile(l.ds, 0.99)), ms(slices.Max(l.ds)))
}

type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }

// testWaitEmulator runs the strategies in real time against the emulator,
// with the event-driven wait (a Watcher of the emulator's EventBridge
// events, issue 11) beside the polling ones: every stop of every class at
// once, so the run takes about the longest class (plus 30 s polling's
// last interval, -full only).
func testWaitEmulator(t *testing.T) {
	classes := size([]time.Duration{time.Second, 2 * time.Second},
		[]time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute})
	reps := size(3, 20)
	env := newEventsEnv(t)
	strategies := append(waitStrategies(*full), // 30 s polling takes up to 90 s of real time: -full only
		waitStrategy{"events (Watcher, safety 60 s)", func(ctx context.Context, c pipelinestop.StopAPIClient, clock pipelinestop.Clock, arn string) error {
			_, err := pipelinestop.New(c, func(o *pipelinestop.Options) { o.Clock, o.Watcher = clock, env.w }).Wait(ctx, arn)
			return err
		}})
	names := make([]string, len(strategies))
	for si, s := range strategies {
		names[si] = s.name
	}
	em := env.em
	client := em.SageMakerClient()
	ctx := boundedCtx(t, slices.Max(classes)+2*slowPoll+2*time.Minute)

	// One pipeline per duration, one execution of it per strategy; the
	// start events are drained before the stops, so that the Watcher
	// meets only the stops' events.
	arns := make([][][]string, len(classes))
	durs := make([][]time.Duration, len(classes))
	for ci, d := range classes {
		durs[ci] = spread(d, reps)
		arns[ci] = make([][]string, reps)
		for r, dd := range durs[ci] {
			step := fmt.Sprintf("Stop%dms", dd.Milliseconds())
			em.SetStepTiming(step, emulator.StepTiming{Duration: emulator.Forever, StopDelay: dd})
			arns[ci][r] = startExecutions(t, em, fmt.Sprintf("wait-%d-%d", ci, r), step, len(strategies))
		}
	}
	env.drain(ctx, t)

	// The stops start spread over stopSpread (by the golden-ratio sequence):
	// hundreds of stops and first polls in one instant measured this
	// machine's queueing (a stop answered late starts its wait late) more
	// than the strategies.
	stopSpread := size(500*time.Millisecond, 10*time.Second)
	runs := make([][][]waitRun, len(classes))
	var stops, rtts latencies
	var wg sync.WaitGroup
	n := 0
	for ci := range classes {
		runs[ci] = make([][]waitRun, len(strategies))
		for si, s := range strategies {
			runs[ci][si] = make([]waitRun, reps)
			for r, dd := range durs[ci] {
				arn := arns[ci][r][si]
				u := float64(n)*0.6180339887498949 + 0.5
				offset := time.Duration((u - math.Floor(u)) * float64(stopSpread))
				n++
				wg.Go(func() {
					select {
					case <-ctx.Done():
						return
					case <-time.After(offset):
					}
					before := time.Now()
					if err := bareStop(ctx, client, arn); err != nil {
						t.Errorf("stop: %v", err)
						return
					}
					stops.add(time.Since(before))
					c := &realWaitClient{countingClient: &countingClient{StopAPIClient: client}, rtts: &rtts}
					if err := s.wait(ctx, c, systemClock{}, arn); err != nil {
						t.Errorf("%s: %v", s.name, err)
						return
					}
					reached, err := env.ended(arn)
					if err != nil {
						t.Errorf("%s: %v", s.name, err)
						return
					}
					c.mu.Lock()
					seen := c.seen
					c.mu.Unlock()
					runs[ci][si][r] = waitRun{d: dd, lag: seen.Sub(reached), describes: c.describes.Load(), lists: c.lists.Load()}
				})
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lag, _ := waitTable(fmt.Sprintf("(3) Waiting, real time against the emulator: %d stops per class and strategy spread over +-10%% of its duration, the stops made over %s", reps, stopSpread),
		classes, names, runs)
	fmt.Println("lag = the emulator's terminal transition to the first Describe answer that shows it (for events: the confirming Describe)")
	fmt.Printf("load in this run: StopPipelineExecution answered in %s; DescribePipelineExecution round trip %s\n", &stops, &rtts)
	writePlot(t, "wait-lag-realtime", lagChart("Waits in real time against the emulator: detection lag against stop duration", names, lag, classes))
}
