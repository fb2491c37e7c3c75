package pipelinestopotel_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/pipelinestopotel"
)

// telemetry is an Instrumentation on the SDK's in-memory exporters.
type telemetry struct {
	in     *pipelinestopotel.Instrumentation
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
}

func newTelemetry(t *testing.T) *telemetry {
	t.Helper()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		_ = mp.Shutdown(context.Background())
	})
	in, err := pipelinestopotel.New(pipelinestopotel.Config{TracerProvider: tp, MeterProvider: mp})
	if err != nil {
		t.Fatal(err)
	}
	return &telemetry{in: in, spans: spans, reader: reader}
}

// metrics collects every metric by name.
func (tm *telemetry) metrics(t *testing.T) map[string]metricdata.Metrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := tm.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	out := map[string]metricdata.Metrics{}
	for _, sm := range rm.ScopeMetrics {
		if sm.Scope.Name != pipelinestopotel.ScopeName {
			t.Errorf("scope %q", sm.Scope.Name)
		}
		for _, m := range sm.Metrics {
			out[m.Name] = m
		}
	}
	return out
}

// sum is the value of a counter's data point with the given attribute.
func sum(t *testing.T, m metricdata.Metrics, key attribute.Key, value string) int64 {
	t.Helper()
	s, ok := m.Data.(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("%s is %T, not a Sum[int64]", m.Name, m.Data)
	}
	var n int64
	for _, dp := range s.DataPoints {
		if v, ok := dp.Attributes.Value(key); ok && v.AsString() == value {
			n += dp.Value
		}
	}
	return n
}

// histCount is the number of values a histogram recorded with the given
// attribute.
func histCount[N int64 | float64](t *testing.T, m metricdata.Metrics, key attribute.Key, value string) uint64 {
	t.Helper()
	h, ok := m.Data.(metricdata.Histogram[N])
	if !ok {
		t.Fatalf("%s is %T", m.Name, m.Data)
	}
	var n uint64
	for _, dp := range h.DataPoints {
		if v, ok := dp.Attributes.Value(key); ok && v.AsString() == value {
			n += dp.Count
		}
	}
	return n
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestStopWaitAnswer stops an execution that a callback step holds, with a
// conflict on the way, and answers the step: spans for the stop, the wait
// and the answer, and the metrics of each, with no callback token
// anywhere.
func TestStopWaitAnswer(t *testing.T) {
	ctx := testCtx(t)
	tm := newTelemetry(t)
	emu := emulator.StartTest(t, emulator.Config{Timing: emulator.Timing{StepDuration: 50 * time.Millisecond,
		StopDelay: 20 * time.Millisecond, ConflictWindow: 300 * time.Millisecond}})
	sm, sq := emu.SageMakerClient(), emu.SQSClient()
	q, err := emu.CreateQueue("approvals")
	if err != nil {
		t.Fatal(err)
	}
	def := emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: q})
	if _, err := emu.CreatePipeline("otel", def); err != nil {
		t.Fatal(err)
	}
	arn, err := emu.StartExecution("otel")
	if err != nil {
		t.Fatal(err)
	}
	if err := emu.WaitStepStatus(ctx, arn, "Approve", emulator.StatusExecuting); err != nil {
		t.Fatal(err)
	}
	token, err := emu.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}

	stopper := pipelinestop.New(sm, tm.in.Options, func(o *pipelinestop.Options) {
		o.MinDelay, o.MaxDelay, o.RetryMaxDelay = 20*time.Millisecond, 50*time.Millisecond, 50*time.Millisecond
		o.StepsInterval = 20 * time.Millisecond
	})
	// The step is answered once the wait has reported it as blocking.
	blocked := make(chan struct{})
	var once sync.Once
	seeBlocked := func(o *pipelinestop.Options) {
		next := o.OnEvent // the instrumentation's: keep it
		o.OnEvent = func(ev pipelinestop.Event) {
			next(ev)
			if ev.Type == pipelinestop.EventBlocked && len(ev.Blocking) > 0 {
				once.Do(func() { close(blocked) })
			}
		}
	}
	ack := pipelinestop.NewAcknowledger(sm, tm.in.Options)
	var wg sync.WaitGroup
	var out *pipelinestop.Outcome
	var stopErr error
	wg.Go(func() { out, stopErr = tm.in.StopAndWait(ctx, stopper, arn, seeBlocked) })
	select {
	case <-blocked:
	case <-ctx.Done():
		t.Fatal("the wait never reported the callback step")
	}
	// Answer the Stopping message, as a consumer would.
	answered := false
	for i := 0; i < 30 && !answered; i++ {
		got, err := sq.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(q), WaitTimeSeconds: 1, MaxNumberOfMessages: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got.Messages {
			msg, err := pipelinestop.ParseCallbackMessage(aws.ToString(m.Body))
			if err != nil {
				t.Fatal(err)
			}
			if msg.IsStopping() {
				if err := tm.in.Succeed(ctx, ack, msg.Token, nil); err != nil {
					t.Fatal(err)
				}
				answered = true
			}
		}
	}
	wg.Wait()
	if !answered || stopErr != nil || out.Status != "Stopped" {
		t.Fatalf("answered %v, StopAndWait: %+v, %v", answered, out, stopErr)
	}

	byName := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range tm.spans.GetSpans().Snapshots() {
		byName[s.Name()] = s
	}
	for _, name := range []string{"pipelinestop.stop_and_wait", "pipelinestop.stop", "pipelinestop.wait", "pipelinestop.answer"} {
		if byName[name] == nil {
			t.Fatalf("no %s span among %v", name, keys(byName))
		}
	}
	stop, wait := byName["pipelinestop.stop"], byName["pipelinestop.wait"]
	if stop.Parent().SpanID() != byName["pipelinestop.stop_and_wait"].SpanContext().SpanID() {
		t.Errorf("the stop span is not a child of stop_and_wait")
	}
	attrs := attrMap(stop.Attributes())
	if attrs["cloud.resource_id"] != arn || attrs["cloud.region"] != "us-east-1" || attrs["pipelinestop.stop.result"] != "accepted" ||
		attrs["pipelinestop.stop.accepted"] != "true" || attrs["rpc.method"] != "StopPipelineExecution" {
		t.Errorf("stop span attributes %v", attrs)
	}
	var retries int
	for _, ev := range stop.Events() {
		if ev.Name == "retry" && attrMap(ev.Attributes)["error.type"] == "conflict" {
			retries++
		}
	}
	if retries == 0 || attrs["pipelinestop.stop.attempts"] != fmt.Sprint(retries+1) {
		t.Errorf("stop span: %d conflict retry events, attempts %s", retries, attrs["pipelinestop.stop.attempts"])
	}
	if a := attrMap(wait.Attributes()); a["pipelinestop.execution.status"] != "Stopped" || a["pipelinestop.wait.polls"] == "" {
		t.Errorf("wait span attributes %v", a)
	}
	var blockedEvent bool
	for _, ev := range wait.Events() {
		a := attrMap(ev.Attributes)
		blockedEvent = blockedEvent || ev.Name == "blocked" && a["pipelinestop.step.name"] == "Approve" && a["messaging.destination.name"] == "approvals"
	}
	if !blockedEvent {
		t.Errorf("the wait span has no blocked event for the callback step: %v", wait.Events())
	}

	m := tm.metrics(t)
	if n := sum(t, m["pipelinestop.stops"], "pipelinestop.stop.result", "accepted"); n != 1 {
		t.Errorf("pipelinestop.stops{accepted} = %d; want 1", n)
	}
	if n := sum(t, m["pipelinestop.retries"], "error.type", "conflict"); n != int64(retries) {
		t.Errorf("pipelinestop.retries{conflict} = %d; want %d", n, retries)
	}
	if n := histCount[float64](t, m["pipelinestop.wait.duration"], "pipelinestop.execution.status", "Stopped"); n != 1 {
		t.Errorf("pipelinestop.wait.duration{Stopped} count %d; want 1", n)
	}
	if n := histCount[int64](t, m["pipelinestop.wait.polls"], "pipelinestop.execution.status", "Stopped"); n != 1 {
		t.Errorf("pipelinestop.wait.polls{Stopped} count %d; want 1", n)
	}
	if n := histCount[float64](t, m["pipelinestop.answer.duration"], "pipelinestop.answer.result", "answered"); n != 1 {
		t.Errorf("pipelinestop.answer.duration{answered} count %d; want 1", n)
	}
	for name, md := range m {
		if md.Unit == "" {
			t.Errorf("%s has no unit", name)
		}
	}
	noToken(t, tm, token)
}

// TestConsumer runs a Consumer with the instrumented handler: a span per
// handled message, the messages by outcome, and no handler left active.
func TestConsumer(t *testing.T) {
	ctx := testCtx(t)
	tm := newTelemetry(t)
	emu := emulator.StartTest(t, emulator.Config{Timing: emulator.Timing{StepDuration: 20 * time.Millisecond}})
	q, err := emu.CreateQueue("jobs")
	if err != nil {
		t.Fatal(err)
	}
	def := emulator.Definition(emulator.Step{Name: "Approve", Type: emulator.StepTypeCallback, SqsQueueURL: q})
	if _, err := emu.CreatePipeline("otel-consumer", def); err != nil {
		t.Fatal(err)
	}
	arn, err := emu.StartExecution("otel-consumer")
	if err != nil {
		t.Fatal(err)
	}
	handled := make(chan struct{}, 1)
	h := tm.in.Handler(q, pipelinestop.Handler{Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
		return map[string]string{}, nil // success
	}})
	ack := pipelinestop.NewAcknowledger(emu.SageMakerClient(), tm.in.Options, func(o *pipelinestop.Options) {
		next := o.OnEvent
		o.OnEvent = func(ev pipelinestop.Event) {
			next(ev)
			if ev.Type == pipelinestop.EventAnswered {
				select {
				case handled <- struct{}{}:
				default:
				}
			}
		}
	})
	c, err := pipelinestop.NewConsumer(emu.SQSClient(), q, ack, h, tm.in.ConsumerOptions, func(o *pipelinestop.ConsumerOptions) {
		o.WaitTimeSeconds = 1
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- c.Run(runCtx) }()
	select {
	case <-handled:
	case <-ctx.Done():
		t.Fatal("the step was never answered")
	}
	stop()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	token, err := emu.CallbackToken(arn, "Approve")
	if err != nil {
		t.Fatal(err)
	}

	var handle sdktrace.ReadOnlySpan
	for _, s := range tm.spans.GetSpans().Snapshots() {
		if s.Name() == "pipelinestop.handle" {
			handle = s
		}
	}
	if handle == nil {
		t.Fatal("no pipelinestop.handle span")
	}
	if a := attrMap(handle.Attributes()); a["cloud.resource_id"] != arn || a["messaging.system"] != "aws_sqs" ||
		a["messaging.destination.name"] != "jobs" || a["pipelinestop.execution.status"] != "Executing" {
		t.Errorf("handle span attributes %v", a)
	}
	m := tm.metrics(t)
	if n := sum(t, m["pipelinestop.consumer.messages"], "pipelinestop.message.outcome", "answered"); n != 1 {
		t.Errorf("pipelinestop.consumer.messages{answered} = %d; want 1", n)
	}
	if n := sum(t, m["pipelinestop.consumer.active_handlers"], "messaging.destination.name", "jobs"); n != 0 {
		t.Errorf("pipelinestop.consumer.active_handlers = %d after the run; want 0", n)
	}
	noToken(t, tm, token)
}

// noToken fails when the callback token (or a long piece of it) appears in
// any span or metric.
func noToken(t *testing.T, tm *telemetry, token string) {
	t.Helper()
	var texts []string
	for _, s := range tm.spans.GetSpans().Snapshots() {
		texts = append(texts, s.Name(), s.Status().Description, fmt.Sprint(s.Attributes()))
		for _, ev := range s.Events() {
			texts = append(texts, ev.Name, fmt.Sprint(ev.Attributes))
		}
	}
	for _, m := range tm.metrics(t) {
		texts = append(texts, fmt.Sprintf("%+v", m.Data))
	}
	all := strings.Join(texts, "\n")
	if strings.Contains(all, token) || len(token) > 12 && strings.Contains(all, token[:12]) {
		t.Fatalf("the callback token appears in the telemetry:\n%s", all)
	}
}

func attrMap(kvs []attribute.KeyValue) map[string]string {
	m := map[string]string{}
	for _, kv := range kvs {
		m[string(kv.Key)] = kv.Value.String()
	}
	return m
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
