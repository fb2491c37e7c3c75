package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// The demo's emulator timings: short, so that the story takes a few
// seconds, and ordered so that every part of it shows.
const (
	// demoPrepare is the run time of the generic first step.
	demoPrepare = 400 * time.Millisecond
	// demoConflictWindow makes the first stop attempts, made right after
	// the callback and Lambda steps started, meet ConflictException.
	demoConflictWindow = 600 * time.Millisecond
	// demoLambdaRunTime keeps the Lambda step running well after the
	// callback step was answered, so it holds the stop on its own for a
	// while.
	demoLambdaRunTime = 2500 * time.Millisecond
	demoLambdaTimeout = 30 * time.Second
	demoStopDelay     = 100 * time.Millisecond
	// demoCleanup is how long the consumer's cleanup of the callback step
	// takes.
	demoCleanup = 500 * time.Millisecond
	// demoPoll is the delay between the demo's looks at the steps.
	demoPoll = 25 * time.Millisecond
	// demoDeadline bounds the whole demo.
	demoDeadline = 30 * time.Second
)

// Names in the demo's pipeline.
const (
	demoPipeline  = "nightly-training"
	demoQueue     = "model-approvals"
	demoGeneric   = "Prepare"
	demoCallback  = "Approve"
	demoLambda    = "Score"
	demoLambdaARN = "arn:aws:lambda:us-east-1:123456789012:function:score-model"
	// demoEventsQueue receives SageMaker's pipeline events from the
	// emulator's EventBridge rule, for the event-driven wait.
	demoEventsQueue = "pipeline-events"
	demoEventsRule  = "pipelinestop-pipeline-events"
)

// runDemo is "stopctl demo": the whole story against an in-process
// emulator. It exits 0 only when the story ended as it should.
func runDemo(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rest, err := e.parse(fs, args, globalOutput)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("demo: unexpected argument %q", rest[0])
	}
	if e.g.endpoint != "" || e.g.profile != "" || e.g.region != "" {
		return usagef("demo: --endpoint-url, --profile and --region do not apply (the demo runs its own emulator)")
	}
	parent := ctx
	ctx, cancel := context.WithTimeout(ctx, demoDeadline)
	defer cancel()

	var out io.Writer = e.stdout
	if e.g.json() {
		out = io.Discard
	}
	d := &demo{e: e, c: newConsole(out, !e.g.json() && isTerminal(e.stdout)), steps: map[string]types.StepStatus{}}
	defer d.c.Close()
	sum, err := d.run(ctx)
	d.c.Close()
	if e.g.json() && sum != nil {
		if jerr := e.printJSON(sum); jerr != nil {
			return jerr
		}
	}
	if err != nil && parent.Err() != nil {
		return &codeError{code: exitInterrupted, msg: "demo: interrupted"}
	}
	if err != nil {
		return err
	}
	if !sum.OK {
		return &codeError{code: exitError, msg: "demo: the story did not end as it should: " + strings.Join(sum.Problems, "; ")}
	}
	return nil
}

// demo is one run of the demo.
type demo struct {
	e *env
	c *console

	mu         sync.Mutex
	start      time.Time // the execution's start, from SageMaker
	timeline   []timelineEntry
	execStatus types.PipelineExecutionStatus
	steps      map[string]types.StepStatus
	stepOrder  []string
	conflicts  int
	attempts   int
	blocking   [][]pipelinestop.BlockingStep
	cleanups   int
	token      pipelinestop.CallbackToken
	compared   []waitComparison // an event-driven and a polling Wait on the same execution
}

// waitComparison is how one extra Wait on the demo's execution saw its
// end: the time from the terminal status to Wait returning, and its
// DescribePipelineExecution calls.
type waitComparison struct {
	Strategy  string  `json:"strategy"`
	LagMillis float64 `json:"lagMillis"`
	Describes int64   `json:"describeCalls"`
	Err       string  `json:"error,omitempty"`
}

// describeCounter counts the DescribePipelineExecution calls made through
// it.
type describeCounter struct {
	pipelinestop.StopAPIClient
	n atomic.Int64
}

func (c *describeCounter) DescribePipelineExecution(ctx context.Context, in *sagemaker.DescribePipelineExecutionInput, optFns ...func(*sagemaker.Options)) (*sagemaker.DescribePipelineExecutionOutput, error) {
	c.n.Add(1)
	return c.StopAPIClient.DescribePipelineExecution(ctx, in, optFns...)
}

// compareWaits starts, beside the story's own wait, an event-driven Wait
// (through w) and a Wait that polls with the library's defaults, both on
// arn. The returned function waits for both and records how they did.
func (d *demo) compareWaits(ctx context.Context, emu *emulator.Emulator, sm *sagemaker.Client, w *pipelinestop.Watcher, arn string) func() {
	strategies := []struct {
		name string
		opts func(*pipelinestop.Options)
	}{
		{"event-driven Wait (Watcher)", func(o *pipelinestop.Options) { o.Watcher = w }},
		{"polling Wait (defaults)", func(*pipelinestop.Options) {}},
	}
	res := make([]waitComparison, len(strategies))
	var wg sync.WaitGroup
	for i, st := range strategies {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := &describeCounter{StopAPIClient: sm}
			_, err := pipelinestop.New(c, st.opts).Wait(ctx, arn)
			returned := time.Now()
			res[i] = waitComparison{Strategy: st.name, Describes: c.n.Load()}
			ended, ok, eerr := emu.ExecutionEnded(arn)
			switch {
			case err != nil:
				res[i].Err = err.Error()
			case eerr != nil || !ok:
				res[i].Err = "the execution has not ended"
			default:
				res[i].LagMillis = float64(returned.Sub(ended).Microseconds()) / 1000
			}
		}()
	}
	return func() {
		wg.Wait()
		d.mu.Lock()
		d.compared = res
		d.mu.Unlock()
	}
}

type timelineEntry struct {
	at   time.Time
	what string
}

// demoSummary is the demo's result; with --output json it is printed.
type demoSummary struct {
	OK               bool              `json:"ok"`
	Problems         []string          `json:"problems,omitempty"`
	ExecutionARN     string            `json:"executionArn"`
	FinalStatus      string            `json:"finalStatus"`
	StopAttempts     int               `json:"stopAttempts"`
	ConflictsRetried int               `json:"conflictsRetried"`
	EffectiveStops   int               `json:"effectiveStops"`
	StopTokens       int               `json:"stopTokens"`
	BlockingSeen     []string          `json:"blockingSeen"`
	WaitComparison   []waitComparison  `json:"waitComparison,omitempty"`
	CallbackAnswers  []string          `json:"callbackAnswers"`
	ElapsedSeconds   float64           `json:"elapsedSeconds"`
	Timeline         []demoTimelineRow `json:"timeline"`
}

type demoTimelineRow struct {
	ElapsedSeconds float64 `json:"elapsedSeconds"`
	Event          string  `json:"event"`
}

// say prints a story line with the time since the demo began.
func (d *demo) say(format string, args ...any) {
	d.c.Printf("%s  %s", d.c.dim(fmt.Sprintf("%6s", d.c.elapsed())), fmt.Sprintf(format, args...))
}

// record adds an entry to the timeline.
func (d *demo) record(at time.Time, format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.timeline = append(d.timeline, timelineEntry{at: at, what: fmt.Sprintf(format, args...)})
}

// run tells the story and returns its summary; the error is for what
// kept the story from being told at all.
func (d *demo) run(ctx context.Context) (*demoSummary, error) {
	c := d.c
	c.Println(c.bold("stopctl demo") + ": stop a SageMaker Pipelines execution held by a callback step and a Lambda step,")
	c.Println("against an in-process emulator of SageMaker Pipelines and SQS (no AWS account needed).")
	c.Println("")
	emu, err := emulator.Start(emulator.Config{Timing: emulator.Timing{
		StepDuration: demoPrepare, StopDelay: demoStopDelay, LambdaRunTime: demoLambdaRunTime,
		LambdaTimeout: demoLambdaTimeout, ConflictWindow: demoConflictWindow}})
	if err != nil {
		return nil, err
	}
	defer emu.Close()
	sm, sq := emu.SageMakerClient(), emu.SQSClient()
	d.say("emulator listening on %s (conflict window %s after each step change)", emu.URL(), demoConflictWindow)

	// SageMaker's status events, through an EventBridge rule to a queue
	// (as `stopctl events setup` makes them), read by one Watcher.
	evs, err := setUpEvents(ctx, sq, emu.EventBridgeClient(), sm, demoEventsQueue, demoEventsRule, nil)
	if err != nil {
		return nil, fmt.Errorf("demo: %w", err)
	}
	watcher, err := pipelinestop.NewWatcher(sq, evs.QueueURL, func(o *pipelinestop.WatcherOptions) { o.WaitTimeSeconds = 1 })
	if err != nil {
		return nil, err
	}
	watcherCtx, cancelWatcher := context.WithCancel(ctx)
	watcherDone := make(chan error, 1)
	go func() { watcherDone <- watcher.Run(watcherCtx) }()
	stopWatcher := sync.OnceValue(func() error {
		cancelWatcher()
		return <-watcherDone
	})
	defer stopWatcher()
	d.say("EventBridge rule %s sends pipeline status events to queue %s, read by one Watcher", demoEventsRule, demoEventsQueue)

	qout, err := sq.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(demoQueue)})
	if err != nil {
		return nil, fmt.Errorf("demo: create queue: %w", err)
	}
	queueURL := aws.ToString(qout.QueueUrl)
	def := emulator.Definition(
		emulator.Step{Name: demoGeneric, Type: "Processing"},
		emulator.Step{Name: demoCallback, Type: emulator.StepTypeCallback, DependsOn: []string{demoGeneric},
			SqsQueueURL: queueURL, Arguments: map[string]any{"model": "churn-v7"}, Outputs: []string{"verdict"}},
		emulator.Step{Name: demoLambda, Type: emulator.StepTypeLambda, DependsOn: []string{demoGeneric}, FunctionArn: demoLambdaARN},
	)
	if _, err := sm.CreatePipeline(ctx, &sagemaker.CreatePipelineInput{PipelineName: aws.String(demoPipeline),
		PipelineDefinition: aws.String(def), RoleArn: aws.String("arn:aws:iam::123456789012:role/demo")}); err != nil {
		return nil, fmt.Errorf("demo: create pipeline: %w", err)
	}
	d.say("pipeline %s: %s (generic) → %s (callback, queue %s) ∥ %s (Lambda, %s run time)",
		c.bold(demoPipeline), demoGeneric, demoCallback, demoQueue, demoLambda, demoLambdaRunTime)
	c.Println(c.dim(fmt.Sprintf("        → runs after; ∥ runs at the same time (%s and %s both follow %s)", demoCallback, demoLambda, demoGeneric)))
	c.Println(c.dim("        A callback step sends its queue a message and waits for an answer"))
	c.Println(c.dim("        (SendPipelineExecutionStepSuccess or ...Failure): a stop waits for it too."))
	c.Println(c.dim(fmt.Sprintf("        Conflict window: for %s after each step change, SageMaker answers", demoConflictWindow)))
	c.Println(c.dim("        StopPipelineExecution with ConflictException; the stop retries it."))

	// The consumer of the callback queue: it leaves the step pending (a
	// reviewer would answer it) and cleans up when the stop's Stopping
	// message arrives.
	pending := make(chan struct{})
	var pendingOnce sync.Once
	ack := pipelinestop.NewAcknowledger(sm, func(o *pipelinestop.Options) { o.OnEvent = d.consumerEvent })
	consumer, err := pipelinestop.NewConsumer(sq, queueURL, ack, pipelinestop.Handler{
		Execute: func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
			d.mu.Lock()
			d.token = msg.Token
			d.mu.Unlock()
			d.pollSteps(ctx, sm, msg.PipelineExecutionARN) // show the step start first
			d.say("consumer: Executing message for %s (token %v): left pending, a reviewer would answer it", demoCallback, msg.Token)
			d.record(time.Now(), "consumer received the Executing message; left the step pending")
			pendingOnce.Do(func() { close(pending) })
			return nil, pipelinestop.ErrPending
		},
		Cleanup: func(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
			d.mu.Lock()
			d.cleanups++
			d.mu.Unlock()
			d.pollSteps(ctx, sm, msg.PipelineExecutionARN)
			d.say("consumer: %s message for %s (token %v): cleaning up the review task...", c.yellow("Stopping"), demoCallback, msg.Token)
			d.record(time.Now(), "consumer received the Stopping message; cleanup started")
			select {
			case <-time.After(demoCleanup):
			case <-ctx.Done():
				return ctx.Err()
			}
			d.say("consumer: cleaned up; answering the step with success so that the execution can stop")
			return nil
		},
	}, func(o *pipelinestop.ConsumerOptions) {
		o.WaitTimeSeconds = 1
		o.DrainTimeout = time.Second
	})
	if err != nil {
		return nil, err
	}
	consumerCtx, cancelConsumer := context.WithCancel(ctx)
	consumerDone := make(chan error, 1)
	go func() { consumerDone <- consumer.Run(consumerCtx) }()
	stopConsumer := sync.OnceValue(func() error {
		cancelConsumer()
		return <-consumerDone
	})
	defer stopConsumer()

	sout, err := sm.StartPipelineExecution(ctx, &sagemaker.StartPipelineExecutionInput{PipelineName: aws.String(demoPipeline)})
	if err != nil {
		return nil, fmt.Errorf("demo: start execution: %w", err)
	}
	arn := aws.ToString(sout.PipelineExecutionArn)
	desc, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)})
	if err != nil {
		return nil, fmt.Errorf("demo: describe execution: %w", err)
	}
	d.mu.Lock()
	d.start = aws.ToTime(desc.CreationTime)
	d.execStatus = desc.PipelineExecutionStatus
	d.mu.Unlock()
	d.record(d.start, "execution started (Executing)")
	d.say("started execution %s: %s", shortARN(arn), desc.PipelineExecutionStatus)
	d.setStatus()

	// Watch the steps through the API, as an operator's dashboard would.
	watchCtx, cancelWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		d.watch(watchCtx, sm, arn)
	}()
	stopWatch := sync.OnceFunc(func() {
		cancelWatch()
		<-watchDone
	})
	defer stopWatch()

	select {
	case <-pending:
	case err := <-consumerDone:
		consumerDone <- err // for stopConsumer
		return nil, fmt.Errorf("demo: the consumer stopped early: %v", err)
	case <-ctx.Done():
		return nil, fmt.Errorf("demo: the callback step's message never arrived: %w", ctx.Err())
	}

	c.Println("")
	compared := d.compareWaits(ctx, emu, sm, watcher, arn)
	d.say("%s the execution while %s waits for an answer and %s runs", c.bold("stopping"), demoCallback, demoLambda)
	s := pipelinestop.New(sm, func(o *pipelinestop.Options) {
		o.OnEvent = d.stopEvent
		o.RetryMaxDelay = 250 * time.Millisecond
		o.MinDelay = 100 * time.Millisecond
		o.MaxDelay = 300 * time.Millisecond
		o.StepsInterval = 300 * time.Millisecond
	})
	outcome, err := s.StopAndWait(ctx, arn)
	if err != nil {
		return nil, fmt.Errorf("demo: stop and wait: %w", err)
	}

	// Last look at the steps, then the consumer's shutdown.
	stopWatch()
	d.pollSteps(ctx, sm, arn)
	if err := stopConsumer(); err != nil {
		return nil, fmt.Errorf("demo: consumer: %w", err)
	}
	compared()
	if err := stopWatcher(); err != nil {
		return nil, fmt.Errorf("demo: events: %w", err)
	}
	if dout, err := sm.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)}); err == nil {
		d.record(aws.ToTime(dout.LastModifiedTime), "execution %s", dout.PipelineExecutionStatus)
	}
	c.SetStatus("")
	return d.finish(emu, arn, queueURL, outcome), nil
}

// watch polls the execution's steps until ctx ends.
func (d *demo) watch(ctx context.Context, sm *sagemaker.Client, arn string) {
	t := time.NewTicker(demoPoll)
	defer t.Stop()
	for {
		d.pollSteps(ctx, sm, arn)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// pollSteps lists the steps and reports the ones whose status changed.
func (d *demo) pollSteps(ctx context.Context, sm *sagemaker.Client, arn string) {
	out, err := sm.ListPipelineExecutionSteps(ctx, &sagemaker.ListPipelineExecutionStepsInput{
		PipelineExecutionArn: aws.String(arn), SortOrder: types.SortOrderAscending})
	if err != nil {
		return // the next poll will see it; the story's checks catch the rest
	}
	for _, st := range out.PipelineExecutionSteps {
		name := aws.ToString(st.StepName)
		d.mu.Lock()
		old, seen := d.steps[name]
		d.steps[name] = st.StepStatus
		if !seen {
			d.stepOrder = append(d.stepOrder, name)
		}
		d.mu.Unlock()
		if seen && old == st.StepStatus {
			continue
		}
		at := time.Now()
		switch st.StepStatus {
		case types.StepStatusExecuting:
			at = aws.ToTime(st.StartTime)
		case types.StepStatusSucceeded, types.StepStatusStopped, types.StepStatusFailed:
			at = aws.ToTime(st.EndTime)
		}
		kind := pipelinestop.NewBlockingStep(st).Type
		if kind == "" {
			kind = "generic"
		}
		what := fmt.Sprintf("step %s (%s) %s", name, kind, st.StepStatus)
		d.record(at, "%s", what)
		d.say("%s", d.colorStatus(what, string(st.StepStatus)))
		d.setStatus()
	}
}

// colorStatus colours a line by the status it reports.
func (d *demo) colorStatus(line, status string) string {
	switch status {
	case "Succeeded", "Stopped":
		return d.c.green(line)
	case "Stopping":
		return d.c.yellow(line)
	case "Failed":
		return d.c.red(line)
	}
	return line
}

// setStatus redraws the live status line.
func (d *demo) setStatus() {
	d.mu.Lock()
	parts := make([]string, 0, len(d.stepOrder))
	for _, name := range d.stepOrder {
		parts = append(parts, name+" "+string(d.steps[name]))
	}
	s := fmt.Sprintf("execution %s", d.execStatus)
	d.mu.Unlock()
	if len(parts) > 0 {
		s += " · " + strings.Join(parts, ", ")
	}
	d.c.SetStatus(s)
}

// stopEvent is the Stopper's OnEvent: retries, the stop, status changes
// and the steps that hold the execution.
func (d *demo) stopEvent(ev pipelinestop.Event) {
	switch ev.Type {
	case pipelinestop.EventAttempt:
		if ev.Op == "StopPipelineExecution" {
			d.mu.Lock()
			d.attempts = ev.Attempt
			d.mu.Unlock()
		}
	case pipelinestop.EventRetry:
		cause := strings.ReplaceAll(shortErr(ev.Err), ev.ExecutionARN, shortARN(ev.ExecutionARN))
		if errors.Is(ev.Err, pipelinestop.ErrConflict) && ev.Op == "StopPipelineExecution" {
			d.mu.Lock()
			d.conflicts++
			d.mu.Unlock()
		}
		d.say("%s attempt %d: %s %s", ev.Op, ev.Attempt, d.c.red(cause), d.c.dim(fmt.Sprintf("→ retry with the same token in %s", ev.Delay.Round(time.Millisecond))))
		d.record(ev.Time, "%s attempt %d: %s", ev.Op, ev.Attempt, firstWord(cause))
	case pipelinestop.EventStopped:
		d.say("%s accepted on attempt %d (one ClientRequestToken for every attempt)", d.c.green("StopPipelineExecution"), ev.Attempt)
		d.record(ev.Time, "stop accepted on attempt %d", ev.Attempt)
	case pipelinestop.EventStatus:
		d.mu.Lock()
		d.execStatus = ev.Status
		d.mu.Unlock()
		d.say("%s", d.colorStatus(fmt.Sprintf("execution %s", ev.Status), string(ev.Status)))
		d.setStatus()
	case pipelinestop.EventBlocked:
		d.mu.Lock()
		d.blocking = append(d.blocking, ev.Blocking)
		d.mu.Unlock()
		if len(ev.Blocking) == 0 {
			d.say("no step holds the stop any more")
			return
		}
		d.say("the stop waits for %d step%s:", len(ev.Blocking), plural(len(ev.Blocking)))
		for _, b := range ev.Blocking {
			d.c.Printf("          %s %s", d.c.yellow("⏳"), b)
		}
		d.record(ev.Time, "stop held by %s", blockingNames(ev.Blocking))
	}
}

// consumerEvent is the Acknowledger's and Consumer's OnEvent.
func (d *demo) consumerEvent(ev pipelinestop.Event) {
	switch ev.Type {
	case pipelinestop.EventAnswered:
		if ev.Err != nil {
			d.say("consumer: the step was already answered: %v", ev.Err)
			return
		}
		d.say("consumer: %s accepted: the Stopping message is answered", d.c.green(ev.Op))
		d.record(ev.Time, "consumer answered the step: %s", ev.Op)
	case pipelinestop.EventPending:
		d.record(ev.Time, "consumer deleted the Executing message without an answer")
	case pipelinestop.EventRetry, pipelinestop.EventRetryLater, pipelinestop.EventQueueError, pipelinestop.EventMalformed, pipelinestop.EventPanic:
		d.say("consumer: %s: %v", ev.Type, ev.Err)
	}
}

// finish checks that the story ended as it should, prints the result and
// the timeline, and returns the summary.
func (d *demo) finish(emu *emulator.Emulator, arn, queueURL string, out *pipelinestop.Outcome) *demoSummary {
	c := d.c
	d.mu.Lock()
	defer d.mu.Unlock()
	sum := &demoSummary{ExecutionARN: arn, FinalStatus: string(out.Status), StopAttempts: d.attempts,
		ConflictsRetried: d.conflicts, EffectiveStops: emu.EffectiveStops(arn), StopTokens: len(emu.StopTokens(arn)),
		ElapsedSeconds: out.Elapsed.Seconds(), BlockingSeen: []string{}, CallbackAnswers: []string{}}
	var sawCallback, sawLambda bool
	seen := map[string]bool{}
	for _, bs := range d.blocking {
		for _, b := range bs {
			sawCallback = sawCallback || b.Type == "Callback" && b.Name == demoCallback && b.QueueURL == queueURL
			sawLambda = sawLambda || b.Type == "Lambda" && b.Name == demoLambda && b.FunctionARN == demoLambdaARN
			if key := b.Type + " " + b.Name; !seen[key] {
				seen[key] = true
				sum.BlockingSeen = append(sum.BlockingSeen, b.String())
			}
		}
	}
	var answers []emulator.Answer
	if d.token != "" {
		answers = emu.Answers(string(d.token))
	}
	for _, a := range answers {
		s := a.Outcome
		if a.Replay {
			s += " (replay)"
		}
		sum.CallbackAnswers = append(sum.CallbackAnswers, s)
	}
	emuStatus, _, _ := emu.ExecutionStatus(arn)
	checks := []struct {
		ok   bool
		good string
		bad  string
	}{
		{out.Status == types.PipelineExecutionStatusStopped && emuStatus == emulator.StatusStopped,
			fmt.Sprintf("final status Stopped, %.1fs after the stop began", out.Elapsed.Seconds()),
			fmt.Sprintf("final status %s (emulator: %s), want Stopped", out.Status, emuStatus)},
		{d.conflicts >= 1,
			fmt.Sprintf("%d ConflictException%s retried with the same token", d.conflicts, plural(d.conflicts)),
			"no ConflictException was retried"},
		{sum.EffectiveStops == 1 && sum.StopTokens == 1,
			fmt.Sprintf("one effective stop, one ClientRequestToken over %d attempts", d.attempts),
			fmt.Sprintf("%d effective stops with %d tokens, want 1 and 1", sum.EffectiveStops, sum.StopTokens)},
		{sawCallback && sawLambda,
			"both blocking steps reported: the callback step with its queue, the Lambda step with its function",
			fmt.Sprintf("blocking steps seen: callback %v, Lambda %v; want both", sawCallback, sawLambda)},
		{len(answers) == 1 && answers[0].Outcome == emulator.OutcomeSuccess && d.cleanups == 1,
			"the callback step was cleaned up and answered exactly once (success)",
			fmt.Sprintf("the callback step was answered %v after %d cleanups; want one success after one cleanup", sum.CallbackAnswers, d.cleanups)},
	}
	sum.OK = true
	c.Println("")
	c.Println(c.bold("Result"))
	for _, ch := range checks {
		if ch.ok {
			c.Printf("  %s %s", c.green("✓"), ch.good)
			continue
		}
		sum.OK = false
		sum.Problems = append(sum.Problems, ch.bad)
		c.Printf("  %s %s", c.red("✗"), ch.bad)
	}

	if len(d.compared) > 0 {
		sum.WaitComparison = d.compared
		c.Println("")
		c.Println(c.bold("Waiting on events beside polling") + " (two more waits on this execution, from the stop on)")
		for _, w := range d.compared {
			if w.Err != "" {
				c.Printf("  %-28s %s", w.Strategy+":", c.red(w.Err))
				continue
			}
			c.Printf("  %-28s saw the end %.1f ms after Stopped, %d Describe call%s", w.Strategy+":", w.LagMillis, w.Describes, plural(int(w.Describes)))
		}
	}

	slices.SortStableFunc(d.timeline, func(a, b timelineEntry) int { return a.at.Compare(b.at) })
	c.Println("")
	c.Println(c.bold("Timeline") + " (seconds since the demo began, as in the log above)")
	for _, t := range d.timeline {
		el := t.at.Sub(c.start).Seconds()
		sum.Timeline = append(sum.Timeline, demoTimelineRow{ElapsedSeconds: el, Event: t.what})
		c.Printf("  %6.2fs  %s", el, t.what)
	}
	c.Println("")
	if sum.OK {
		c.Println(c.green("The execution stopped properly.") + " Try it on your own executions: stopctl stop --wait ARN")
	}
	return sum
}

// firstWord is the error code of "Code: message".
func firstWord(s string) string {
	code, _, _ := strings.Cut(s, ":")
	return code
}
