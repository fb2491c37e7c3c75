package bench_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// Issue 11's targets for event-driven waits: the detection lag's median
// at most 50 ms plus the injected event delay, its p99 at most 250 ms.
const (
	eventLagMedianTarget = 50 * time.Millisecond
	eventLagP99Target    = 250 * time.Millisecond
)

// faultSafetyInterval is the safety interval of the faults scenario: short,
// so that lost events are noticed in a few seconds of real time.
const faultSafetyInterval = 2 * time.Second

// eventsEnv is an emulator whose EventBridge sends SageMaker's pipeline
// events to one queue, read by one running Watcher.
type eventsEnv struct {
	em *emulator.Emulator
	w  *pipelinestop.Watcher
}

// newEventsEnv sets up, with the SDK clients as `stopctl events setup`
// does, a queue, a rule for SageMaker's pipeline events and the queue as
// its target, and runs a Watcher of the queue until the test ends.
func newEventsEnv(t *testing.T) *eventsEnv {
	t.Helper()
	em := emulator.StartTest(t, emulator.Config{})
	ctx := boundedCtx(t, 30*time.Second)
	sq, eb := em.SQSClient(), em.EventBridgeClient()
	q, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("pipeline-events")})
	if err != nil {
		t.Fatal(err)
	}
	attrs, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl,
		AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		t.Fatal(err)
	}
	pattern, _ := json.Marshal(map[string]any{"source": []string{pipelinestop.EventSource},
		"detail-type": []string{pipelinestop.ExecutionStatusChangeType, pipelinestop.StepStatusChangeType}})
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("pipeline-events"),
		EventPattern: aws.String(string(pattern)), State: ebtypes.RuleStateEnabled}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("pipeline-events"),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(attrs.Attributes["QueueArn"])}}}); err != nil {
		t.Fatal(err)
	}
	w, err := pipelinestop.NewWatcher(sq, aws.ToString(q.QueueUrl))
	if err != nil {
		t.Fatal(err)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- w.Run(runCtx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Watcher.Run: %v", err)
		}
	})
	return &eventsEnv{em: em, w: w}
}

// drain waits until the Watcher has taken every message off the queue,
// visible or in flight (bounded by ctx and in count).
func (env *eventsEnv) drain(ctx context.Context, t *testing.T) {
	t.Helper()
	sq := env.em.SQSClient()
	url := env.em.QueueURL("pipeline-events")
	for range maxPolls {
		out, err := sq.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: aws.String(url),
			AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameApproximateNumberOfMessages,
				sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		if out.Attributes["ApproximateNumberOfMessages"] == "0" && out.Attributes["ApproximateNumberOfMessagesNotVisible"] == "0" {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatal("the events queue never drained")
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatal("the events queue never drained")
}

// ended returns when the emulator recorded arn's terminal status.
func (env *eventsEnv) ended(arn string) (time.Time, error) {
	at, ok, err := env.em.ExecutionEnded(arn)
	if err == nil && !ok {
		err = fmt.Errorf("execution %s has not ended", arn)
	}
	return at, err
}

// p99 returns the 99th percentile of ds by nearest rank (0 for none).
func p99(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := (99*len(s)+99)/100 - 1
	return s[min(max(i, 0), len(s)-1)]
}

// evRun is one wait of an event scenario.
type evRun struct {
	d         time.Duration
	lag       time.Duration // terminal status reached to Wait returning
	describes int64
	lists     int64
}

// TestScenarioEvents measures event-driven waits (a Watcher of an SQS queue
// fed by the emulator's EventBridge rule) against polling, in real time:
// detection lag and calls per wait, many concurrent waits on one Watcher,
// event faults, and the forced stop of an execution held by a callback
// step that nobody answers.
func TestScenarioEvents(t *testing.T) {
	needScenarios(t)
	t.Run("lag", testEventsLag)
	t.Run("concurrent", testEventsConcurrent)
	t.Run("faults", testEventsFaults)
	t.Run("forced", testEventsForced)
}

// evStrategy is a way to wait for one execution, through client.
type evStrategy struct {
	name   string
	safety time.Duration // the safety interval of an event-driven wait; 0 for polling
	wait   func(ctx context.Context, c pipelinestop.StopAPIClient, arn string) error
}

func eventStrategies(w *pipelinestop.Watcher, slow bool) []evStrategy {
	evented := func(safety time.Duration) func(context.Context, pipelinestop.StopAPIClient, string) error {
		return func(ctx context.Context, c pipelinestop.StopAPIClient, arn string) error {
			_, err := pipelinestop.New(c, func(o *pipelinestop.Options) { o.Watcher, o.SafetyInterval = w, safety }).Wait(ctx, arn)
			return err
		}
	}
	fixed := func(interval time.Duration) func(context.Context, pipelinestop.StopAPIClient, string) error {
		p := fixedPoller(interval)
		return func(ctx context.Context, c pipelinestop.StopAPIClient, arn string) error {
			return p(ctx, c, systemClock{}, arn)
		}
	}
	ss := []evStrategy{
		{"events (safety 60 s, the default)", pipelinestop.DefaultSafetyInterval, evented(pipelinestop.DefaultSafetyInterval)},
		{"events (safety 2 s)", 2 * time.Second, evented(2 * time.Second)},
		{"Wait polling (defaults)", 0, func(ctx context.Context, c pipelinestop.StopAPIClient, arn string) error {
			_, err := pipelinestop.New(c).Wait(ctx, arn)
			return err
		}},
		{"fixed 1 s polling", 0, fixed(fastPoll)},
	}
	if slow {
		ss = append(ss, evStrategy{"fixed 30 s polling (SDK, Airflow, ACK)", 0, fixed(slowPoll)})
	}
	return ss
}

// testEventsLag runs the lag scenario twice: with every stop made at once
// (a burst of events), and with the stops made one after another, 20 ms
// apart (-full only).
func testEventsLag(t *testing.T) {
	t.Run("burst", func(t *testing.T) { testEventsLagRun(t, 0) })
	if *full {
		t.Run("staggered", func(t *testing.T) { testEventsLagRun(t, 20*time.Millisecond) })
	}
}

// testEventsLagRun: stops of 1 s to 60 s (CI: 1 s and 2 s), every strategy
// waiting on its own executions; the k-th stop is made k*stagger after the
// queue has drained the executions' start events; no injected event delay.
func testEventsLagRun(t *testing.T, stagger time.Duration) {
	classes := size([]time.Duration{time.Second, 2 * time.Second},
		[]time.Duration{time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 30 * time.Second, time.Minute})
	reps := size(5, 20)
	env := newEventsEnv(t)
	client := env.em.SageMakerClient()
	strategies := eventStrategies(env.w, *full) // 30 s polling takes up to 30 s more of real time: -full only
	n := len(classes) * reps * len(strategies)
	ctx := boundedCtx(t, slices.Max(classes)+2*slowPoll+2*time.Minute+time.Duration(n)*stagger)

	arns := make([][][]string, len(classes))
	for ci, d := range classes {
		arns[ci] = make([][]string, reps)
		for r, dd := range spread(d, reps) {
			step := fmt.Sprintf("Stop%dms", dd.Milliseconds())
			env.em.SetStepTiming(step, emulator.StepTiming{Duration: emulator.Forever, StopDelay: dd})
			arns[ci][r] = startExecutions(t, env.em, fmt.Sprintf("events-%d-%d", ci, r), step, len(strategies))
			for _, arn := range arns[ci][r] {
				if err := env.em.WaitStepStatus(ctx, arn, step, "Executing"); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	env.drain(ctx, t)
	runs := make([][][]evRun, len(classes))
	var wg sync.WaitGroup
	k := 0
	for ci, d := range classes {
		ds := spread(d, reps)
		runs[ci] = make([][]evRun, len(strategies))
		for si, s := range strategies {
			runs[ci][si] = make([]evRun, reps)
			for r, dd := range ds {
				arn := arns[ci][r][si]
				wait := time.Duration(k) * stagger
				k++
				wg.Add(1)
				go func() {
					defer wg.Done()
					select {
					case <-time.After(wait):
					case <-ctx.Done():
						return
					}
					if err := bareStop(ctx, client, arn); err != nil {
						t.Errorf("stop: %v", err)
						return
					}
					c := &countingClient{StopAPIClient: client}
					if err := s.wait(ctx, c, arn); err != nil {
						t.Errorf("%s: %v", s.name, err)
						return
					}
					returned := time.Now()
					endedAt, err := env.ended(arn)
					if err != nil {
						t.Errorf("%s: %v", s.name, err)
						return
					}
					if st, _, _ := env.em.ExecutionStatus(arn); st != emulator.StatusStopped {
						t.Errorf("%s: execution %s, want Stopped", s.name, st)
					}
					runs[ci][si][r] = evRun{d: dd, lag: returned.Sub(endedAt), describes: c.describes.Load(), lists: c.lists.Load()}
				}()
			}
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}

	how := "all stops made at once"
	if stagger > 0 {
		how = fmt.Sprintf("the stops made %s apart", stagger)
	}
	tb := newTable(fmt.Sprintf("(9) Waiting on events, real time against the emulator: %d stops per class and strategy spread over +-10%% of its duration, %s; no injected event delay", reps, how),
		"stop", "strategy", "median lag", "p99 lag", "max lag", "median Describe", "max Describe", "formula 2+floor(d/S)",
		"median List", "max List", "target", "verdict")
	pooled := make([][]time.Duration, len(strategies))
	for ci, d := range classes {
		for si, s := range strategies {
			var lags, ds, ls []time.Duration
			var formula []int64
			for _, r := range runs[ci][si] {
				lags = append(lags, r.lag)
				ds = append(ds, time.Duration(r.describes))
				ls = append(ls, time.Duration(r.lists))
				if s.safety > 0 {
					formula = append(formula, 2+int64(r.d/s.safety))
				}
			}
			pooled[si] = append(pooled[si], lags...)
			target, v, f := "", "", ""
			if s.safety > 0 {
				target = fmt.Sprintf("median <= %s, p99 <= %s", ms(eventLagMedianTarget), ms(eventLagP99Target))
				v = verdict(median(lags) <= eventLagMedianTarget && p99(lags) <= eventLagP99Target)
				f = fmt.Sprintf("%d..%d", slices.Min(formula), slices.Max(formula))
			}
			tb.row(d.String(), s.name, median(lags), p99(lags), slices.Max(lags), int64(median(ds)), int64(slices.Max(ds)), f,
				int64(median(ls)), int64(slices.Max(ls)), target, v)
		}
	}
	tb.flush()
	tb = newTable("(9) Waiting on events, pooled over every stop duration", "strategy", "waits", "median lag", "p99 lag", "max lag", "target", "verdict")
	for si, s := range strategies {
		target, v := "", ""
		if s.safety > 0 {
			target = fmt.Sprintf("median <= %s, p99 <= %s", ms(eventLagMedianTarget), ms(eventLagP99Target))
			v = verdict(median(pooled[si]) <= eventLagMedianTarget && p99(pooled[si]) <= eventLagP99Target)
		}
		tb.row(s.name, len(pooled[si]), median(pooled[si]), p99(pooled[si]), slices.Max(pooled[si]), target, v)
	}
	tb.flush()
	st := env.em.EventStats()
	fmt.Printf("%d executions; %d events put on the queue, Watcher %+v\n", n, st.Delivered, env.w.Stats())
	fmt.Println("lag = the emulator's terminal transition to Wait returning; S = safety interval; Describe target for a stop shorter than S: <= 2, List 0")
}

// usage is the process's CPU time so far.
func usage(t *testing.T) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// testEventsConcurrent: N waits at once in one process, half on stopped
// executions and half on executions that succeed, event-driven through one
// Watcher and then, as the baseline, polling with Wait's defaults.
func testEventsConcurrent(t *testing.T) {
	n := size(50, 1000)
	d := size(3*time.Second, 5*time.Second)
	env := newEventsEnv(t)
	client := env.em.SageMakerClient()
	ctx := boundedCtx(t, 5*time.Minute)
	env.em.SetStepTiming("Hold", emulator.StepTiming{Duration: emulator.Forever, StopDelay: d})
	env.em.SetStepTiming("Run", emulator.StepTiming{Duration: d})

	tb := newTable(fmt.Sprintf("(9) Concurrent waits in one process: %d at once (half stopped after a %s stop, half succeeding after %s), one queue, one Watcher", n, d, d),
		"strategy", "right status", "wall time", "CPU/wait", "allocated/wait", "allocs/wait", "Describe/wait", "List/wait", "Watcher delivered")
	for pi, phase := range []string{"events (one Watcher)", "Wait polling (defaults)"} {
		stopped := startExecutions(t, env.em, fmt.Sprintf("hold-%d", pi), "Hold", n/2)
		succeeding := startExecutions(t, env.em, fmt.Sprintf("run-%d", pi), "Run", n-n/2)
		for _, arn := range stopped {
			if err := env.em.WaitStepStatus(ctx, arn, "Hold", "Executing"); err != nil {
				t.Fatal(err)
			}
			if err := bareStop(ctx, client, arn); err != nil {
				t.Fatal(err)
			}
		}
		want := map[string]types.PipelineExecutionStatus{}
		for _, arn := range stopped {
			want[arn] = types.PipelineExecutionStatusStopped
		}
		for _, arn := range succeeding {
			want[arn] = types.PipelineExecutionStatusSucceeded
		}
		c := &countingClient{StopAPIClient: client}
		s := pipelinestop.New(c, func(o *pipelinestop.Options) {
			if pi == 0 {
				o.Watcher = env.w
			}
		})
		delivered := env.w.Stats().Delivered
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		cpu0, start := usage(t), time.Now()
		var mu sync.Mutex
		right := 0
		var wg sync.WaitGroup
		for arn, st := range want {
			wg.Add(1)
			go func() {
				defer wg.Done()
				out, err := s.Wait(ctx, arn)
				if err != nil {
					t.Errorf("%s: %v", phase, err)
					return
				}
				if out.Status != st {
					t.Errorf("%s: %s ended %s, want %s", phase, arn, out.Status, st)
					return
				}
				mu.Lock()
				right++
				mu.Unlock()
			}()
		}
		wg.Wait()
		wall, cpu := time.Since(start), usage(t)-cpu0
		runtime.ReadMemStats(&after)
		tb.row(phase, fmt.Sprintf("%d/%d", right, n), wall, cpu/time.Duration(n),
			fmt.Sprintf("%.1f KiB", float64(after.TotalAlloc-before.TotalAlloc)/1024/float64(n)),
			(after.Mallocs-before.Mallocs)/uint64(n), ratio(c.describes.Load(), int64(n)), ratio(c.lists.Load(), int64(n)),
			env.w.Stats().Delivered-delivered)
	}
	tb.flush()
	fmt.Println("CPU is the process's rusage (user+system) over the waits, the in-process emulator's share (HTTP, SQS, EventBridge) included; allocations likewise")
}

// testEventsFaults: 20% of events dropped, 10% duplicated, delays of 0 to
// a few seconds that reorder them; event-driven waits with a 2 s safety
// interval.
func testEventsFaults(t *testing.T) {
	n := size(30, 200)
	spreadMax := size(3*time.Second, 5*time.Second)
	env := newEventsEnv(t)
	if err := env.em.SetEventFaults(emulator.EventFaults{DropRate: 0.2, DuplicateRate: 0.1, DelaySpread: spreadMax}); err != nil {
		t.Fatal(err)
	}
	client := env.em.SageMakerClient()
	ctx := boundedCtx(t, 5*time.Minute)
	s := pipelinestop.New(client, func(o *pipelinestop.Options) { o.Watcher, o.SafetyInterval = env.w, faultSafetyInterval })
	durs := spread(2*time.Second, n) // stops of 1.8 s to 2.2 s
	arns := make([]string, n)
	for i, dd := range durs {
		step := fmt.Sprintf("Stop%dms", dd.Milliseconds())
		env.em.SetStepTiming(step, emulator.StepTiming{Duration: emulator.Forever, StopDelay: dd})
		arns[i] = startExecutions(t, env.em, fmt.Sprintf("faults-%d", i), step, 1)[0]
	}
	lags := make([]time.Duration, n)
	var wg sync.WaitGroup
	for i, arn := range arns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.em.WaitStepStatus(ctx, arn, fmt.Sprintf("Stop%dms", durs[i].Milliseconds()), "Executing"); err != nil {
				t.Errorf("start: %v", err)
				return
			}
			out, err := s.StopAndWait(ctx, arn)
			if err != nil {
				t.Errorf("StopAndWait: %v", err)
				return
			}
			returned := time.Now()
			if out.Status != types.PipelineExecutionStatusStopped {
				t.Errorf("%s ended %s, want Stopped", arn, out.Status)
				return
			}
			endedAt, err := env.ended(arn)
			if err != nil {
				t.Error(err)
				return
			}
			lags[i] = returned.Sub(endedAt)
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	lost := map[string]bool{}
	for _, ev := range env.em.EmittedEvents() {
		if ev.DetailType == emulator.DetailTypeExecutionStatus && ev.Current == emulator.StatusStopped && ev.Dropped {
			lost[ev.ExecutionARN] = true
		}
	}
	var lostLags, otherLags []time.Duration
	for i, arn := range arns {
		if lost[arn] {
			lostLags = append(lostLags, lags[i])
		} else {
			otherLags = append(otherLags, lags[i])
		}
	}
	st, ws := env.em.EventStats(), env.w.Stats()
	bound := faultSafetyInterval + eventLagP99Target
	tb := newTable(fmt.Sprintf("(9) Event faults: %d StopAndWait of 1.8-2.2 s stops; 20%% of events dropped, 10%% duplicated, each delayed 0-%s (reordered); safety interval %s", n, spreadMax, faultSafetyInterval),
		"waits", "right status", "median lag", "p99 lag", "max lag", "target", "verdict")
	row := func(name string, ls []time.Duration, target string, ok bool) {
		if len(ls) == 0 {
			tb.row(name+" (none)", "0", "-", "-", "-", target, "")
			return
		}
		tb.row(name, fmt.Sprintf("%d/%d", len(ls), len(ls)), median(ls), p99(ls), slices.Max(ls), target, verdict(ok))
	}
	row("terminal event lost", lostLags, "max <= "+ms(bound)+" (S + one poll)", len(lostLags) == 0 || slices.Max(lostLags) <= bound)
	row("terminal event sent", otherLags, "max <= "+ms(bound), len(otherLags) == 0 || slices.Max(otherLags) <= bound)
	tb.flush()
	fmt.Printf("emulator: %d events emitted, %d dropped, %d duplicated, %d delivered; Watcher: %+v\n",
		st.Emitted, st.Dropped, st.Duplicated, st.Delivered, ws)
}

// testEventsForced: executions held by a callback step with no consumer.
// With Options.Callbacks CallbackFail the wait answers the step after the
// grace period, once, and the execution ends Stopped; without it (the
// baseline) the execution is still Stopping when the wait gives up.
func testEventsForced(t *testing.T) {
	n := size(3, 10)
	grace := size(2*time.Second, 10*time.Second)
	env := newEventsEnv(t)
	approvals, err := env.em.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	client := env.em.SageMakerClient()
	ctx := boundedCtx(t, 5*time.Minute)
	type result struct {
		elapsed time.Duration
		status  types.PipelineExecutionStatus
		answers int
	}
	strategies := []struct {
		name string
		opts func(*pipelinestop.Options)
	}{
		{"events + CallbackFail", func(o *pipelinestop.Options) {
			o.Watcher, o.Callbacks, o.CallbackGrace = env.w, pipelinestop.CallbackFail, grace
		}},
		{"Wait polling (defaults) + CallbackFail", func(o *pipelinestop.Options) {
			o.Callbacks, o.CallbackGrace = pipelinestop.CallbackFail, grace
		}},
		{"events, no forced answers (baseline)", func(o *pipelinestop.Options) { o.Watcher = env.w }},
	}
	results := make([][]result, len(strategies))
	var wg sync.WaitGroup
	for si, s := range strategies {
		results[si] = make([]result, n)
		if _, err := env.em.CreatePipeline(fmt.Sprintf("forced-%d", si), emulator.Definition(
			emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: approvals})); err != nil {
			t.Fatal(err)
		}
		for i := range n {
			arn, err := env.em.StartExecution(fmt.Sprintf("forced-%d", si))
			if err != nil {
				t.Fatal(err)
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				if err := env.em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
					t.Errorf("start: %v", err)
					return
				}
				token, err := env.em.CallbackToken(arn, "Approve")
				if err != nil {
					t.Error(err)
					return
				}
				wctx := ctx
				if si == 2 {
					var cancel context.CancelFunc
					wctx, cancel = context.WithTimeout(ctx, grace+2*time.Second)
					defer cancel()
				}
				start := time.Now()
				out, err := pipelinestop.New(client, s.opts).StopAndWait(wctx, arn)
				r := result{elapsed: time.Since(start), answers: len(env.em.Answers(token))}
				if out != nil {
					r.status = out.Status
				}
				switch {
				case si < 2 && err != nil:
					t.Errorf("%s: %v", s.name, err)
				case si < 2 && (r.status != types.PipelineExecutionStatusStopped || r.answers != 1 ||
					env.em.Answers(token)[0].Outcome != emulator.OutcomeFailure):
					t.Errorf("%s: %s ended %s with %d answers; want Stopped, one failure", s.name, arn, r.status, r.answers)
				case si == 2 && !errors.Is(err, context.DeadlineExceeded):
					t.Errorf("%s: %v (%+v), want the wait to time out", s.name, err, out)
				}
				results[si][i] = r
			}()
		}
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	tb := newTable(fmt.Sprintf("(9) Forced stop: %d executions per strategy held by a callback step with no consumer; grace %s", n, grace),
		"strategy", "ended Stopped", "answered once", "median wait", "max wait", "target", "verdict")
	for si, s := range strategies {
		var stopped, once int
		var els []time.Duration
		for _, r := range results[si] {
			if r.status == types.PipelineExecutionStatusStopped {
				stopped++
			}
			if r.answers == 1 {
				once++
			}
			els = append(els, r.elapsed)
		}
		target, v := "", ""
		if si < 2 {
			bound := grace + pipelinestop.DefaultMaxDelay
			if si == 0 {
				bound = grace + eventLagP99Target
			}
			target = "max <= " + ms(bound) + " (grace + one poll)"
			v = verdict(slices.Max(els) <= bound)
		}
		tb.row(s.name, fmt.Sprintf("%d/%d", stopped, n), fmt.Sprintf("%d/%d", once, n), median(els), slices.Max(els), target, v)
	}
	tb.flush()
	fmt.Println("wait = StopAndWait called to returning; the baseline's waits gave up after grace + 2 s with the execution still Stopping")
}
