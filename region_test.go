package pipelinestop_test

// Tests of Region routing: the real *sagemaker.Client over HTTP to a
// loopback front (internal/regionfront) that reads each request's SigV4
// credential scope, records the Region it names, and passes the request to
// the emulator, which keeps one state per Region: each Region knows only
// its own executions, so a call sent to the wrong Region is answered
// ResourceNotFound.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/fakeclock"
	"github.com/pipelinestop/pipelinestop/internal/regionfront"
)

// regionCall is one request the front received.
type regionCall = regionfront.Call

// regionFront is internal/regionfront's recording endpoint in front of one
// emulator, which keeps separate state per Region (from each request's
// SigV4 scope); ems[r] is Region r's view of that emulator.
type regionFront struct {
	*regionfront.Front
	url string
	ems map[string]*emulator.Emulator
}

// newRegionFront starts the emulator (its default Region is the first) and
// the front, which passes on the requests signed for one of regions.
func newRegionFront(t *testing.T, regions ...string) *regionFront {
	t.Helper()
	f := regionfront.WithEmulator(t, emulator.Config{
		Timing: emulator.Timing{StepDuration: 50 * time.Millisecond, StopDelay: 20 * time.Millisecond}}, regions...)
	return &regionFront{Front: f, url: f.URL, ems: f.Ems}
}

// client returns a SageMaker client configured for region, pointed at the
// front (BaseEndpoint), with static credentials.
func (f *regionFront) client(region string) *sagemaker.Client {
	return sagemaker.New(sagemaker.Options{
		Region:       region,
		BaseEndpoint: aws.String(f.url),
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("test", "test", "")),
	})
}

// regionOfARN returns the Region an execution ARN names.
func regionOfARN(t *testing.T, arn string) string {
	t.Helper()
	a, err := pipelinestop.ParseExecutionARN(arn)
	if err != nil {
		t.Fatal(err)
	}
	return a.Region
}

// requireRouted checks that every call about an execution went to the
// execution's Region, and that calls were made.
func (f *regionFront) requireRouted(t *testing.T) []regionCall {
	t.Helper()
	calls := f.Calls()
	if len(calls) == 0 {
		t.Fatal("no calls reached the front")
	}
	for _, c := range calls {
		if c.ARN != "" && c.Region != regionOfARN(t, c.ARN) {
			t.Errorf("%s about %s went to Region %q", c.Op, c.ARN, c.Region)
		}
	}
	return calls
}

// runningExecution starts, on em, an execution of a training step that
// runs until stopped and waits until the step runs.
func runningExecution(t *testing.T, em *emulator.Emulator, name string) string {
	t.Helper()
	em.SetStepTiming("Train", emulator.StepTiming{Duration: emulator.Forever, StopDelay: 20 * time.Millisecond})
	arn := startPipeline(t, em, name, emulator.Step{Name: "Train", Type: "Training"})
	if err := em.WaitStepStatus(testCtx(t, 10*time.Second), arn, "Train", "Executing"); err != nil {
		t.Fatal(err)
	}
	return arn
}

// Regions of the tests: three Regions with executions and a fourth, the
// clients' own.
const (
	clientRegion = "us-east-1"
	regionA      = "eu-west-1"
	regionB      = "ap-southeast-2"
	regionC      = "us-west-2"
)

// TestRegionStopAllRoutesEveryCall: StopAll (with Wait) over executions in
// three Regions, through a client configured for a fourth: every call
// (stops, their lookups, the wait's polls) goes to the execution's Region,
// none to the client's, and every execution ends Stopped.
func TestRegionStopAllRoutesEveryCall(t *testing.T) {
	f := newRegionFront(t, clientRegion, regionA, regionB, regionC)
	var arns []string
	for _, r := range []string{regionA, regionB, regionC} {
		for i := range 3 {
			arns = append(arns, runningExecution(t, f.ems[r], fmt.Sprintf("train-%d", i)))
		}
	}
	s := pipelinestop.New(f.client(clientRegion), fastWait)
	results, err := s.StopAll(testCtx(t, 20*time.Second), arns, func(o *pipelinestop.Options) { o.Wait = true })
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range results {
		if r.Outcome == nil || r.Outcome.Status != types.PipelineExecutionStatusStopped || !r.Stop.Accepted {
			t.Errorf("%s: %+v", r.ExecutionARN, r)
		}
		if st, _, _ := f.ems[regionOfARN(t, r.ExecutionARN)].ExecutionStatus(r.ExecutionARN); st != emulator.StatusStopped {
			t.Errorf("%s: the emulator of its Region says %s", r.ExecutionARN, st)
		}
	}
	perRegion := map[string]int{}
	for _, c := range f.requireRouted(t) {
		if c.Op == "StopPipelineExecution" {
			perRegion[c.Region]++
		}
	}
	if perRegion[regionA] != 3 || perRegion[regionB] != 3 || perRegion[regionC] != 3 || perRegion[clientRegion] != 0 {
		t.Errorf("stops per Region %v; want 3 in each execution Region, none in the client's", perRegion)
	}
}

// TestRegionStopAndWaitRouted: Stop, then Wait, and StopAndWait, each
// through a client of another Region, go to the execution's Region.
func TestRegionStopAndWaitRouted(t *testing.T) {
	f := newRegionFront(t, clientRegion, regionA, regionB)
	ctx := testCtx(t, 20*time.Second)
	s := pipelinestop.New(f.client(clientRegion), fastWait)

	arn := runningExecution(t, f.ems[regionA], "stop-then-wait")
	res, err := s.Stop(ctx, arn)
	if err != nil || !res.Accepted {
		t.Fatalf("Stop: %+v, %v", res, err)
	}
	out, err := s.Wait(ctx, arn)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("Wait: %+v, %v", out, err)
	}
	arn2 := runningExecution(t, f.ems[regionB], "stop-and-wait")
	out, err = s.StopAndWait(ctx, arn2)
	if err != nil || out.Status != types.PipelineExecutionStatusStopped {
		t.Fatalf("StopAndWait: %+v, %v", out, err)
	}
	ops := map[string]bool{}
	for _, c := range f.requireRouted(t) {
		ops[c.Op] = true
		if c.Region == clientRegion {
			t.Errorf("%s went to the client's Region", c.Op)
		}
	}
	if !ops["StopPipelineExecution"] || !ops["DescribePipelineExecution"] {
		t.Errorf("operations seen %v", ops)
	}
}

// TestRegionStopAllPacesEachRegionOnItsOwn: Region A throttles the first
// stop of each of its executions; the stops of Regions B and C are held at
// the front until A has been throttled once. With one call in flight per
// Region (Concurrency 1) and a clock that does not move, B's and C's stops
// all go through while A's pacer holds A's next stop for a turn that only
// a moving clock gives: B and C have pacers (and slots) of their own. With
// one pacer for all, B's and C's later stops would wait for A's paced
// turns (and with one slot for all, B's held stop would keep A from being
// throttled at all).
func TestRegionStopAllPacesEachRegionOnItsOwn(t *testing.T) {
	f := newRegionFront(t, regionA, regionB, regionC)
	var arns []string
	count := map[string]int{regionA: 2, regionB: 3, regionC: 3}
	for _, r := range []string{regionA, regionB, regionC} {
		for i := range count[r] {
			arns = append(arns, runningExecution(t, f.ems[r], fmt.Sprintf("paced-%d", i)))
		}
	}
	throttledA := make(chan struct{})
	var gateTimedOut atomic.Bool
	var once sync.Once
	var mu sync.Mutex
	stopsSeen := map[string]int{}
	f.SetHook(func(c regionCall) (int, string) {
		if c.Op != "StopPipelineExecution" {
			return 0, ""
		}
		mu.Lock()
		stopsSeen[c.ARN]++
		n := stopsSeen[c.ARN]
		mu.Unlock()
		if c.Region == regionA {
			if n == 1 {
				defer once.Do(func() { close(throttledA) })
				return http.StatusBadRequest, `{"__type":"ThrottlingException","message":"Rate exceeded"}`
			}
			return 0, ""
		}
		select {
		case <-throttledA:
		case <-time.After(10 * time.Second):
			// A could not be throttled while this stop was held: it
			// waited for a slot that this Region's stop held.
			gateTimedOut.Store(true)
		}
		return 0, ""
	})

	clock := fakeclock.NewManual(time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	var answeredAt sync.Map // ARN -> the clock's time when its stop was answered
	bcDone := make(chan struct{})
	var bcStopped atomic.Int32
	s := pipelinestop.New(f.client(clientRegion), fastWait, func(o *pipelinestop.Options) {
		o.Concurrency, o.Clock = 1, clock
		o.OnEvent = func(ev pipelinestop.Event) {
			if ev.Type != pipelinestop.EventStopped {
				return
			}
			answeredAt.Store(ev.ExecutionARN, clock.Now())
			if a, _ := pipelinestop.ParseExecutionARN(ev.ExecutionARN); a.Region != regionA &&
				int(bcStopped.Add(1)) == count[regionB]+count[regionC] {
				close(bcDone)
			}
		}
	})
	done := make(chan []pipelinestop.BatchResult, 1)
	ctx := testCtx(t, 30*time.Second)
	go func() {
		results, _ := s.StopAll(ctx, arns)
		done <- results
	}()

	// B's and C's stops all end while the clock stands still.
	start := clock.Now()
	var allBC bool
	select {
	case <-bcDone:
		allBC = true
	case <-time.After(15 * time.Second):
	}
	if gateTimedOut.Load() {
		t.Fatal("Region A's first stop was not made while a stop of another Region was in flight: they shared a slot")
	}
	if !allBC {
		t.Fatal("the stops of Regions B and C did not all end while the clock stood still: " +
			"they waited for Region A's pacer (or slot)")
	}
	for _, arn := range arns {
		if v, ok := answeredAt.Load(arn); ok && regionOfARN(t, arn) != regionA && !v.(time.Time).Equal(start) {
			t.Errorf("%s answered at %v, after the clock moved", arn, v)
		}
	}
	// A's second stop waits for its pacer's turn: move the clock until
	// StopAll returns.
	var results []pipelinestop.BatchResult
	for i := 0; results == nil && i < 2000; i++ {
		select {
		case results = <-done:
		case <-time.After(5 * time.Millisecond):
			clock.Advance(100 * time.Millisecond)
		}
	}
	if results == nil {
		t.Fatal("StopAll did not return")
	}
	for _, r := range results {
		if r.Err != nil || r.Stop == nil || !r.Stop.Accepted {
			t.Errorf("%s: %+v", r.ExecutionARN, r)
		}
	}
	if movedA := clock.Now().Sub(start); movedA == 0 {
		t.Error("Region A's stops never waited for the clock: A was not paced")
	}
	f.requireRouted(t)
	for _, arn := range arns {
		want := 1
		if regionOfARN(t, arn) == regionA {
			want = 2 // throttled, then accepted
		}
		if stopsSeen[arn] != want {
			t.Errorf("%s: %d stop calls; want %d", arn, stopsSeen[arn], want)
		}
	}
}

// chinaARN is an execution in the aws-cn partition.
const chinaARN = "arn:aws-cn:sagemaker:cn-north-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6"

// TestRegionPartitionMismatchIsTypedBeforeAnyCall: an execution of another
// partition than the client's Region (aws-cn, client in us-east-1) cannot
// be routed: Stop, Wait, StopAndWait, StopAll and the answers return an
// *Error matching ErrPartitionMismatch and no call reaches the front; an
// ARN whose Region is not of its partition is an invalid ARN that also
// matches ErrPartitionMismatch. A client of the same partition routes it.
func TestRegionPartitionMismatchIsTypedBeforeAnyCall(t *testing.T) {
	f := newRegionFront(t, clientRegion)
	ctx := testCtx(t, 10*time.Second)
	s := pipelinestop.New(f.client(clientRegion), fastWait)
	ack := pipelinestop.NewAcknowledger(f.client(clientRegion), fastWait)
	inChina := func(o *pipelinestop.Options) { o.CallbackExecutionARN = chinaARN }
	const token = pipelinestop.CallbackToken("AbCdEf1234")

	check := func(what string, err error) {
		t.Helper()
		var e *pipelinestop.Error
		if !errors.Is(err, pipelinestop.ErrPartitionMismatch) || !errors.As(err, &e) || e.Attempts != 0 {
			t.Errorf("%s: %v; want an *Error matching ErrPartitionMismatch, no attempt", what, err)
			return
		}
		if msg := err.Error(); !strings.Contains(msg, "aws-cn") || !strings.Contains(msg, "us-east-1") {
			t.Errorf("%s: %q; want the two partitions named", what, msg)
		}
	}
	_, err := s.Stop(ctx, chinaARN)
	check("Stop", err)
	_, err = s.Wait(ctx, chinaARN)
	check("Wait", err)
	_, err = s.StopAndWait(ctx, chinaARN)
	check("StopAndWait", err)
	results, err := s.StopAll(ctx, []string{chinaARN}, func(o *pipelinestop.Options) { o.Wait = true })
	check("StopAll", err)
	check("StopAll's result", results[0].Err)
	check("Succeed", ack.Succeed(ctx, token, nil, inChina))
	check("Fail", ack.Fail(ctx, token, "no", inChina))
	_, err = ack.AckStopping(ctx, &pipelinestop.CallbackMessage{Token: token, PipelineExecutionARN: chinaARN, Status: "Stopping"}, nil)
	check("AckStopping", err)

	mixed := "arn:aws:sagemaker:cn-north-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6"
	_, err = s.Stop(ctx, mixed)
	if !errors.Is(err, pipelinestop.ErrInvalidARN) || !errors.Is(err, pipelinestop.ErrPartitionMismatch) {
		t.Errorf("Stop of %s: %v; want ErrInvalidARN and ErrPartitionMismatch", mixed, err)
	}
	err = ack.Succeed(ctx, token, nil, func(o *pipelinestop.Options) { o.CallbackExecutionARN = mixed })
	if !errors.Is(err, pipelinestop.ErrInvalidARN) || !errors.Is(err, pipelinestop.ErrPartitionMismatch) {
		t.Errorf("Succeed for %s: %v; want ErrInvalidARN and ErrPartitionMismatch", mixed, err)
	}
	if calls := f.Calls(); len(calls) != 0 {
		t.Fatalf("calls were made: %+v", calls)
	}

	// A client of the partition (cn-northwest-1) sends the call to the
	// execution's Region, cn-north-1 (where the front has no emulator).
	_, err = pipelinestop.New(f.client("cn-northwest-1"), fastWait).Stop(ctx, chinaARN,
		func(o *pipelinestop.Options) { o.RetryBudget = time.Millisecond })
	if errors.Is(err, pipelinestop.ErrPartitionMismatch) {
		t.Fatalf("a client of the execution's partition: %v", err)
	}
	if calls := f.Calls(); len(calls) == 0 || calls[0].Region != "cn-north-1" {
		t.Fatalf("calls %+v; want the stop sent to cn-north-1", calls)
	}
}

// TestRegionRoutingDisabled: with Options.DisableRegionRouting every call
// goes to the client's Region, whatever the ARN says (here its emulator
// does not know the executions), and an execution of another partition is
// not refused before the call: the caller routes.
func TestRegionRoutingDisabled(t *testing.T) {
	f := newRegionFront(t, clientRegion, regionA, regionB)
	arns := []string{runningExecution(t, f.ems[regionA], "a"), runningExecution(t, f.ems[regionB], "b")}
	ctx := testCtx(t, 10*time.Second)
	off := func(o *pipelinestop.Options) { o.DisableRegionRouting = true }
	s := pipelinestop.New(f.client(clientRegion), fastWait, off)
	results, err := s.StopAll(ctx, arns)
	if !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Fatalf("StopAll: %v; want ErrNotFound (the client's Region does not know them)", err)
	}
	for _, r := range results {
		if !errors.Is(r.Err, pipelinestop.ErrNotFound) {
			t.Errorf("%s: %v", r.ExecutionARN, r.Err)
		}
	}
	if _, err := s.Stop(ctx, chinaARN); errors.Is(err, pipelinestop.ErrPartitionMismatch) || !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Errorf("Stop of an aws-cn execution with routing off: %v; want the call made (ErrNotFound)", err)
	}
	ack := pipelinestop.NewAcknowledger(f.client(clientRegion), fastWait, off)
	if err := ack.Succeed(ctx, "AbCdEf1234", nil, func(o *pipelinestop.Options) { o.CallbackExecutionARN = arns[0] }); !errors.Is(err, pipelinestop.ErrNotFound) {
		t.Errorf("Succeed with routing off: %v; want ErrNotFound from the client's Region", err)
	}
	calls := f.Calls()
	for _, c := range calls {
		if c.Region != clientRegion {
			t.Errorf("%s about %s went to %s with routing off", c.Op, c.ARN, c.Region)
		}
	}
	if len(calls) < 4 {
		t.Errorf("%d calls; want the two stops, the aws-cn stop and the answer", len(calls))
	}
}

// TestRegionAnswersRouted: answers to callback steps go to the Region of
// the execution: the Acknowledger's Succeed given CallbackExecutionARN,
// AckStopping (from the message), the Consumer and the BatchHandler (from
// each message), and a Wait's CallbackFail answer, all through clients of a fourth Region.
func TestRegionAnswersRouted(t *testing.T) {
	f := newRegionFront(t, clientRegion, regionA, regionB, regionC)
	ctx := testCtx(t, 30*time.Second)
	sm := f.client(clientRegion)
	ack := pipelinestop.NewAcknowledger(sm, fastWait)
	s := pipelinestop.New(sm, fastWait)

	t.Run("Succeed", func(t *testing.T) {
		arn, tok := callbackStep(t, f.ems[regionA], "succeed-routed")
		if err := ack.Succeed(ctx, tok, map[string]string{"ok": "yes"}); !errors.Is(err, pipelinestop.ErrNotFound) {
			t.Fatalf("Succeed without the execution: %v; want ErrNotFound from the client's Region", err)
		}
		if err := ack.Succeed(ctx, tok, map[string]string{"ok": "yes"},
			func(o *pipelinestop.Options) { o.CallbackExecutionARN = arn }); err != nil {
			t.Fatal(err)
		}
		if answers := f.ems[regionA].Answers(string(tok)); len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
			t.Fatalf("answers in %s: %+v", regionA, answers)
		}
	})
	t.Run("AckStopping", func(t *testing.T) {
		arn, tok := callbackStep(t, f.ems[regionB], "ackstopping-routed")
		if _, err := s.Stop(ctx, arn); err != nil {
			t.Fatal(err)
		}
		msg := &pipelinestop.CallbackMessage{Token: tok, PipelineExecutionARN: arn, Status: "Stopping"}
		if res, err := ack.AckStopping(ctx, msg, nil); err != nil || res.Answer != pipelinestop.AnsweredSuccess {
			t.Fatalf("AckStopping: %+v, %v", res, err)
		}
		if answers := f.ems[regionB].Answers(string(tok)); len(answers) != 1 {
			t.Fatalf("answers in %s: %+v", regionB, answers)
		}
		out, err := s.Wait(ctx, arn)
		if err != nil || out.Status != types.PipelineExecutionStatusStopped {
			t.Fatalf("Wait: %+v, %v", out, err)
		}
	})
	t.Run("Consumer", func(t *testing.T) {
		em := f.ems[regionC]
		arn, tok := callbackStep(t, em, "consumer-routed")
		consumer, err := pipelinestop.NewConsumer(em.SQSClient(), em.QueueURL("consumer-routed"), ack, pipelinestop.Handler{
			Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) {
				return map[string]string{"approved": "yes"}, nil
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- consumer.Run(runCtx) }()
		out, err := s.Wait(ctx, arn)
		stop()
		if runErr := <-done; runErr != nil {
			t.Errorf("Run: %v", runErr)
		}
		if err != nil || out.Status != types.PipelineExecutionStatusSucceeded {
			t.Fatalf("Wait: %+v, %v", out, err)
		}
		if answers := em.Answers(string(tok)); len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
			t.Fatalf("answers in %s: %+v", regionC, answers)
		}
	})
	t.Run("BatchHandler", func(t *testing.T) {
		arn, tok := callbackStep(t, f.ems[regionB], "batch-routed")
		bh, err := pipelinestop.NewBatchHandler(ack, pipelinestop.Handler{
			Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil },
		})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(map[string]string{"token": string(tok), "pipelineExecutionArn": arn, "status": "Executing"})
		out := bh.HandleBatch(ctx, []pipelinestop.BatchMessage{{ID: "m1", Body: string(body), ReceiveCount: 1}})
		if len(out) != 1 || out[0].Disposition != pipelinestop.DispositionDelete || out[0].Err != nil {
			t.Fatalf("HandleBatch: %+v", out)
		}
		if answers := f.ems[regionB].Answers(string(tok)); len(answers) != 1 || answers[0].Outcome != emulator.OutcomeSuccess {
			t.Fatalf("answers in %s: %+v", regionB, answers)
		}
	})
	t.Run("CallbackFail", func(t *testing.T) {
		arn, tok := callbackStep(t, f.ems[regionA], "callbackfail-routed")
		out, err := s.StopAndWait(ctx, arn, func(o *pipelinestop.Options) {
			o.Callbacks, o.CallbackGrace = pipelinestop.CallbackFail, time.Millisecond
			// Not the Stopper's: its answers go to the execution's Region.
			o.CallbackExecutionARN = chinaARN
		})
		if err != nil || out.Status != types.PipelineExecutionStatusStopped || len(out.Answered) != 1 {
			t.Fatalf("StopAndWait: %+v, %v", out, err)
		}
		if answers := f.ems[regionA].Answers(string(tok)); len(answers) != 1 || answers[0].Outcome != emulator.OutcomeFailure {
			t.Fatalf("answers in %s: %+v", regionA, answers)
		}
	})
	f.requireRouted(t)
	answersIn := map[string]int{}
	for _, c := range f.Calls() {
		if strings.HasPrefix(c.Op, "SendPipelineExecutionStep") {
			answersIn[c.Region]++
		}
	}
	if answersIn[regionA] != 2 || answersIn[regionB] != 2 || answersIn[regionC] != 1 || answersIn[clientRegion] != 1 {
		t.Errorf("answers per Region %v; want 2 in %s and %s, 1 in %s, and the one unrouted on purpose in %s",
			answersIn, regionA, regionB, regionC, clientRegion)
	}
}

// TestRegionEndpointResolvedPerPartition: without a BaseEndpoint, the SDK
// resolves the endpoint of the execution's Region, partition included
// (amazonaws.com.cn for aws-cn), and signs for that Region. The client's
// HTTP client records the request and answers it; nothing leaves the
// process.
func TestRegionEndpointResolvedPerPartition(t *testing.T) {
	for _, tc := range []struct{ client, arn, host string }{
		{"us-east-1", "arn:aws:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e", "api.sagemaker.eu-west-1.amazonaws.com"},
		{"cn-northwest-1", chinaARN, "api.sagemaker.cn-north-1.amazonaws.com.cn"},
		{"us-gov-west-1", "arn:aws-us-gov:sagemaker:us-gov-east-1:123456789012:pipeline/p/execution/e", "api.sagemaker.us-gov-east-1.amazonaws.com"},
		{"us-east-1", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e", "api.sagemaker.us-east-1.amazonaws.com"},
	} {
		t.Run(tc.arn, func(t *testing.T) {
			var mu sync.Mutex
			var hosts, scopes []string
			hc := doerFunc(func(r *http.Request) (*http.Response, error) {
				mu.Lock()
				hosts = append(hosts, r.URL.Host)
				if region := regionfront.ScopeRegion(r.Header.Get("Authorization")); region != "" {
					scopes = append(scopes, region)
				}
				mu.Unlock()
				body := `{"PipelineExecutionStatus":"Stopped"}`
				if strings.HasSuffix(r.Header.Get("X-Amz-Target"), "StopPipelineExecution") {
					body = fmt.Sprintf(`{"PipelineExecutionArn":%q}`, tc.arn)
				}
				return &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/x-amz-json-1.1"}},
					Body: io.NopCloser(strings.NewReader(body)), Request: r}, nil
			})
			client := sagemaker.New(sagemaker.Options{Region: tc.client, HTTPClient: hc,
				Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("test", "test", ""))})
			if _, err := pipelinestop.New(client).Stop(testCtx(t, 5*time.Second), tc.arn); err != nil {
				t.Fatal(err)
			}
			want := regionOfARN(t, tc.arn)
			for i := range hosts {
				if hosts[i] != tc.host || scopes[i] != want {
					t.Errorf("request %d to %s signed for %s; want %s and %s", i, hosts[i], scopes[i], tc.host, want)
				}
			}
			if len(hosts) != 2 || len(scopes) != 2 {
				t.Errorf("%d requests, %d signed; want the stop and its lookup", len(hosts), len(scopes))
			}
		})
	}
}

// doerFunc is an HTTP client made of a function.
type doerFunc func(*http.Request) (*http.Response, error)

func (f doerFunc) Do(r *http.Request) (*http.Response, error) { return f(r) }
