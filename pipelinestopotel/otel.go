package pipelinestopotel

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/pipelinestop/pipelinestop"
)

// ScopeName is the instrumentation scope of the tracer and the meter.
const ScopeName = "github.com/pipelinestop/pipelinestop/pipelinestopotel"

// Attribute keys of this package; the others are OpenTelemetry's semantic
// conventions.
const (
	// ExecutionStatusKey is the execution's status: Stopped, Stopping, ...
	ExecutionStatusKey = attribute.Key("pipelinestop.execution.status")
	// StopResultKey is a stop's result: accepted, already_stopping,
	// not_running or error.
	StopResultKey = attribute.Key("pipelinestop.stop.result")
	// StopAcceptedKey says whether SageMaker accepted the stop request.
	StopAcceptedKey = attribute.Key("pipelinestop.stop.accepted")
	// StopAttemptsKey is the number of StopPipelineExecution attempts.
	StopAttemptsKey = attribute.Key("pipelinestop.stop.attempts")
	// WaitPollsKey is the number of status polls a wait made.
	WaitPollsKey = attribute.Key("pipelinestop.wait.polls")
	// AnswerResultKey is an answer's result: answered, already_answered,
	// or the error.type of what ended it.
	AnswerResultKey = attribute.Key("pipelinestop.answer.result")
	// MessageOutcomeKey is what became of a callback message: answered,
	// already_answered, pending, retry_later, malformed, panic or
	// handler_canceled.
	MessageOutcomeKey = attribute.Key("pipelinestop.message.outcome")
	// StepNameKey is a blocking step's name.
	StepNameKey = attribute.Key("pipelinestop.step.name")
	// StepTypeKey is a blocking step's type: Callback, Lambda, ...
	StepTypeKey = attribute.Key("pipelinestop.step.type")
	// StepFunctionARNKey is a blocking Lambda step's function ARN.
	StepFunctionARNKey = attribute.Key("pipelinestop.step.function_arn")
)

// maxPendingAnswers bounds the answers whose start is remembered for
// pipelinestop.answer.duration, so that answers that never end (their
// call failed without an event) cannot grow the memory.
const maxPendingAnswers = 10000

// Config configures an Instrumentation. The zero value uses the global
// providers.
type Config struct {
	// TracerProvider makes the tracer. Default: otel.GetTracerProvider().
	TracerProvider trace.TracerProvider
	// MeterProvider makes the meter. Default: otel.GetMeterProvider().
	MeterProvider metric.MeterProvider
}

// Instrumentation turns pipelinestop's calls and events into spans and
// metrics. It is safe for concurrent use.
type Instrumentation struct {
	tracer trace.Tracer

	stops          metric.Int64Counter
	retries        metric.Int64Counter
	waitDuration   metric.Float64Histogram
	waitPolls      metric.Int64Histogram
	answerDuration metric.Float64Histogram
	messages       metric.Int64Counter
	activeHandlers metric.Int64UpDownCounter

	mu sync.Mutex
	// answerStarts maps a callback step (a hash of its token, never the
	// token) to the start of the answer in flight.
	answerStarts map[string]time.Time
}

// New makes an Instrumentation. Its error says which instrument could not
// be made.
func New(cfg Config) (*Instrumentation, error) {
	tp, mp := cfg.TracerProvider, cfg.MeterProvider
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	m := mp.Meter(ScopeName)
	in := &Instrumentation{tracer: tp.Tracer(ScopeName), answerStarts: map[string]time.Time{}}
	var err error
	var errs []error
	collect := func(e error) {
		if e != nil {
			errs = append(errs, e)
		}
	}
	in.stops, err = m.Int64Counter("pipelinestop.stops", metric.WithUnit("{stop}"),
		metric.WithDescription("Stops of pipeline executions, by result."))
	collect(err)
	in.retries, err = m.Int64Counter("pipelinestop.retries", metric.WithUnit("{retry}"),
		metric.WithDescription("SageMaker calls retried, by operation and cause."))
	collect(err)
	in.waitDuration, err = m.Float64Histogram("pipelinestop.wait.duration", metric.WithUnit("s"),
		metric.WithDescription("Time a wait took to see a terminal status (or to give up)."))
	collect(err)
	in.waitPolls, err = m.Int64Histogram("pipelinestop.wait.polls", metric.WithUnit("{poll}"),
		metric.WithDescription("Status polls a wait made before it saw a terminal status (or gave up)."))
	collect(err)
	in.answerDuration, err = m.Float64Histogram("pipelinestop.answer.duration", metric.WithUnit("s"),
		metric.WithDescription("Time to answer a callback step, retries included."))
	collect(err)
	in.messages, err = m.Int64Counter("pipelinestop.consumer.messages", metric.WithUnit("{message}"),
		metric.WithDescription("Callback messages a consumer finished, by outcome."))
	collect(err)
	in.activeHandlers, err = m.Int64UpDownCounter("pipelinestop.consumer.active_handlers", metric.WithUnit("{handler}"),
		metric.WithDescription("Consumer handlers running now."))
	collect(err)
	if len(errs) > 0 {
		return nil, fmt.Errorf("pipelinestopotel: make instruments: %w", errors.Join(errs...))
	}
	return in, nil
}

// Options makes a Stopper or an Acknowledger (pipelinestop.New,
// NewAcknowledger, or one call) report retries and answers as metrics. An
// OnEvent hook set before it is still called.
func (in *Instrumentation) Options(o *pipelinestop.Options) {
	next := o.OnEvent
	o.OnEvent = func(ev pipelinestop.Event) {
		in.event(ev)
		if next != nil {
			next(ev)
		}
	}
}

// ConsumerOptions makes a Consumer (pipelinestop.NewConsumer) report its
// messages by outcome. An OnEvent hook set before it is still called.
func (in *Instrumentation) ConsumerOptions(o *pipelinestop.ConsumerOptions) {
	next := o.OnEvent
	o.OnEvent = func(ev pipelinestop.Event) {
		in.event(ev)
		if next != nil {
			next(ev)
		}
	}
}

// event records the metrics an event carries.
func (in *Instrumentation) event(ev pipelinestop.Event) {
	ctx := context.Background()
	switch ev.Type {
	case pipelinestop.EventRetry:
		in.retries.Add(ctx, 1, metric.WithAttributes(semconv.RPCMethodKey.String(ev.Op), semconv.ErrorTypeKey.String(errorType(ev.Err))))
	case pipelinestop.EventAttempt:
		if isAnswerOp(ev.Op) && ev.Attempt == 1 && ev.CallbackToken != "" {
			in.mu.Lock()
			if len(in.answerStarts) < maxPendingAnswers {
				in.answerStarts[answerKey(ev.CallbackToken)] = ev.Time
			}
			in.mu.Unlock()
		}
	case pipelinestop.EventAnswered:
		result, outcome := "answered", "answered"
		if ev.Err != nil {
			result, outcome = "already_answered", "already_answered"
			if !errors.Is(ev.Err, pipelinestop.ErrAlreadyAnswered) {
				result, outcome = errorType(ev.Err), "already_answered"
			}
		}
		in.mu.Lock()
		start, ok := in.answerStarts[answerKey(ev.CallbackToken)]
		delete(in.answerStarts, answerKey(ev.CallbackToken))
		in.mu.Unlock()
		if ok && !ev.Time.Before(start) {
			in.answerDuration.Record(ctx, ev.Time.Sub(start).Seconds(), metric.WithAttributes(
				semconv.RPCMethodKey.String(ev.Op), AnswerResultKey.String(result)))
		}
		in.message(ctx, outcome)
	case pipelinestop.EventPending:
		in.message(ctx, "pending")
	case pipelinestop.EventRetryLater:
		in.message(ctx, "retry_later")
	case pipelinestop.EventMalformed:
		in.message(ctx, "malformed")
	case pipelinestop.EventPanic:
		in.message(ctx, "panic")
	case pipelinestop.EventHandlerCanceled:
		in.message(ctx, "handler_canceled")
	}
}

func (in *Instrumentation) message(ctx context.Context, outcome string) {
	in.messages.Add(ctx, 1, metric.WithAttributes(semconv.MessagingSystemAWSSQS, MessageOutcomeKey.String(outcome)))
}

func isAnswerOp(op string) bool {
	return op == "SendPipelineExecutionStepSuccess" || op == "SendPipelineExecutionStepFailure"
}

// answerKey identifies a callback step without keeping its token: the
// derived idempotency token of the answer is a one-way hash of it.
func answerKey(t pipelinestop.CallbackToken) string {
	return pipelinestop.DeriveToken("pipelinestopotel.answer", string(t))
}

// errorType is the error.type of err: the pipelinestop sentinel it
// matches, the context's end, or "_OTHER".
func errorType(err error) string {
	switch {
	case err == nil:
		return ""
	case errors.Is(err, pipelinestop.ErrConflict):
		return "conflict"
	case errors.Is(err, pipelinestop.ErrThrottled):
		return "throttled"
	case errors.Is(err, pipelinestop.ErrUnavailable):
		return "unavailable"
	case errors.Is(err, pipelinestop.ErrNotFound):
		return "not_found"
	case errors.Is(err, pipelinestop.ErrNotRunning):
		return "not_running"
	case errors.Is(err, pipelinestop.ErrAlreadyAnswered):
		return "already_answered"
	case errors.Is(err, pipelinestop.ErrInvalidARN):
		return "invalid_arn"
	case errors.Is(err, pipelinestop.ErrInvalidToken):
		return "invalid_token"
	case errors.Is(err, pipelinestop.ErrInvalidCallback):
		return "invalid_callback"
	case errors.Is(err, pipelinestop.ErrWaitTimeout), errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	case errors.Is(err, context.Canceled):
		return "canceled"
	}
	return "_OTHER"
}

// executionAttrs are the span attributes naming an execution.
func executionAttrs(arn string) []attribute.KeyValue {
	attrs := []attribute.KeyValue{semconv.CloudResourceIDKey.String(arn)}
	if a, err := pipelinestop.ParseExecutionARN(arn); err == nil {
		attrs = append(attrs, semconv.CloudRegionKey.String(a.Region))
	}
	return attrs
}

// end ends span with err's status; the error's message never holds a
// callback token (pipelinestop redacts them).
func end(span trace.Span, err error) {
	if err != nil {
		span.SetAttributes(semconv.ErrorTypeKey.String(errorType(err)))
		span.SetStatus(codes.Error, err.Error())
	}
	span.End()
}

// spanEvents is a per-call option that adds the Stopper's events to span
// as span events: retries and the steps that block a stop.
func spanEvents(span trace.Span) func(*pipelinestop.Options) {
	return func(o *pipelinestop.Options) {
		next := o.OnEvent
		o.OnEvent = func(ev pipelinestop.Event) {
			switch ev.Type {
			case pipelinestop.EventRetry:
				span.AddEvent("retry", trace.WithTimestamp(ev.Time), trace.WithAttributes(semconv.RPCMethodKey.String(ev.Op),
					semconv.ErrorTypeKey.String(errorType(ev.Err)), attribute.Int("pipelinestop.attempt", ev.Attempt),
					attribute.Float64("pipelinestop.retry.delay", ev.Delay.Seconds())))
			case pipelinestop.EventStatus:
				span.AddEvent("status", trace.WithTimestamp(ev.Time), trace.WithAttributes(ExecutionStatusKey.String(string(ev.Status))))
			case pipelinestop.EventBlocked:
				for _, b := range ev.Blocking {
					span.AddEvent("blocked", trace.WithTimestamp(ev.Time), trace.WithAttributes(blockingAttrs(b)...))
				}
			}
			if next != nil {
				next(ev)
			}
		}
	}
}

// blockingAttrs describe a blocking step, without its callback token.
func blockingAttrs(b pipelinestop.BlockingStep) []attribute.KeyValue {
	attrs := []attribute.KeyValue{StepNameKey.String(b.Name), StepTypeKey.String(b.Type)}
	if b.QueueURL != "" {
		attrs = append(attrs, semconv.MessagingDestinationNameKey.String(queueName(b.QueueURL)))
	}
	if b.FunctionARN != "" {
		attrs = append(attrs, StepFunctionARNKey.String(b.FunctionARN))
	}
	return attrs
}

// queueName is the name of the SQS queue at u.
func queueName(u string) string {
	if p, err := url.Parse(u); err == nil && p.Path != "" {
		return p.Path[strings.LastIndex(p.Path, "/")+1:]
	}
	return u
}

// stopResult is the pipelinestop.stop.result of a stop.
func stopResult(r *pipelinestop.StopResult, err error) string {
	switch {
	case err != nil || r == nil:
		return "error"
	case r.Accepted:
		return "accepted"
	case r.AlreadyStopping():
		return "already_stopping"
	}
	return "not_running"
}

// recordStop records a stop's metric and span attributes.
func (in *Instrumentation) recordStop(ctx context.Context, span trace.Span, r *pipelinestop.StopResult, err error) {
	attrs := []attribute.KeyValue{StopResultKey.String(stopResult(r, err))}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
	}
	in.stops.Add(ctx, 1, metric.WithAttributes(attrs...))
	if r != nil {
		span.SetAttributes(StopResultKey.String(stopResult(r, err)), StopAcceptedKey.Bool(r.Accepted),
			StopAttemptsKey.Int(r.Attempts), ExecutionStatusKey.String(string(r.Status)))
	}
}

// recordWait records a wait's metrics and span attributes.
func (in *Instrumentation) recordWait(ctx context.Context, span trace.Span, out *pipelinestop.Outcome, err error) {
	var status types.PipelineExecutionStatus
	var elapsed time.Duration
	var polls int
	var we *pipelinestop.WaitError
	switch {
	case out != nil:
		status, elapsed, polls = out.Status, out.Elapsed, out.Polls
	case errors.As(err, &we):
		status, elapsed, polls = we.Status, we.Elapsed, we.Polls
		for _, b := range we.Blocking {
			span.AddEvent("blocked", trace.WithAttributes(blockingAttrs(b)...))
		}
	default:
		return // the wait never polled
	}
	attrs := []attribute.KeyValue{ExecutionStatusKey.String(string(status))}
	if err != nil {
		attrs = append(attrs, semconv.ErrorTypeKey.String(errorType(err)))
	}
	in.waitDuration.Record(ctx, elapsed.Seconds(), metric.WithAttributes(attrs...))
	in.waitPolls.Record(ctx, int64(polls), metric.WithAttributes(attrs...))
	span.SetAttributes(ExecutionStatusKey.String(string(status)), WaitPollsKey.Int(polls))
}

// Stop calls s.Stop in a "pipelinestop.stop" span and records the stop.
func (in *Instrumentation) Stop(ctx context.Context, s *pipelinestop.Stopper, arn string, optFns ...func(*pipelinestop.Options)) (*pipelinestop.StopResult, error) {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.stop", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(append(executionAttrs(arn), semconv.RPCMethodKey.String("StopPipelineExecution"))...))
	r, err := s.Stop(ctx, arn, append(optFns, spanEvents(span))...)
	in.recordStop(ctx, span, r, err)
	end(span, err)
	return r, err
}

// Wait calls s.Wait in a "pipelinestop.wait" span and records the wait.
func (in *Instrumentation) Wait(ctx context.Context, s *pipelinestop.Stopper, arn string, optFns ...func(*pipelinestop.Options)) (*pipelinestop.Outcome, error) {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.wait", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(executionAttrs(arn)...))
	out, err := s.Wait(ctx, arn, append(optFns, spanEvents(span))...)
	in.recordWait(ctx, span, out, err)
	end(span, err)
	return out, err
}

// StopAndWait stops and waits in a "pipelinestop.stop_and_wait" span with
// a "pipelinestop.stop" and a "pipelinestop.wait" span inside, and
// records both.
func (in *Instrumentation) StopAndWait(ctx context.Context, s *pipelinestop.Stopper, arn string, optFns ...func(*pipelinestop.Options)) (*pipelinestop.Outcome, error) {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.stop_and_wait", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(executionAttrs(arn)...))
	r, err := in.Stop(ctx, s, arn, optFns...)
	if err != nil {
		end(span, err)
		return nil, err
	}
	span.SetAttributes(StopAcceptedKey.Bool(r.Accepted), StopAttemptsKey.Int(r.Attempts))
	out, err := in.Wait(ctx, s, arn, optFns...)
	if out != nil {
		out.Stop = r
		span.SetAttributes(ExecutionStatusKey.String(string(out.Status)))
	}
	end(span, err)
	return out, err
}

// StopAll calls s.StopAll in a "pipelinestop.stop_all" span and records
// each execution's stop (and wait, with Options.Wait).
func (in *Instrumentation) StopAll(ctx context.Context, s *pipelinestop.Stopper, arns []string, optFns ...func(*pipelinestop.Options)) ([]pipelinestop.BatchResult, error) {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.stop_all", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(attribute.Int("pipelinestop.executions", len(arns))))
	results, err := s.StopAll(ctx, arns, append(optFns, spanEvents(span))...)
	for _, r := range results {
		in.recordStop(ctx, noSpan, r.Stop, r.Err)
		if r.Outcome != nil {
			in.recordWait(ctx, noSpan, r.Outcome, nil)
		}
	}
	end(span, err)
	return results, err
}

// noSpan takes the attributes of a StopAll's executions, which are
// counted, not traced one by one.
var noSpan = trace.SpanFromContext(context.Background())

// Succeed calls a.Succeed in a "pipelinestop.answer" span.
func (in *Instrumentation) Succeed(ctx context.Context, a *pipelinestop.Acknowledger, token pipelinestop.CallbackToken, outputs map[string]string, optFns ...func(*pipelinestop.Options)) error {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.answer", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.RPCMethodKey.String("SendPipelineExecutionStepSuccess")))
	err := a.Succeed(ctx, token, outputs, append(optFns, in.Options)...)
	end(span, err)
	return err
}

// Fail calls a.Fail in a "pipelinestop.answer" span.
func (in *Instrumentation) Fail(ctx context.Context, a *pipelinestop.Acknowledger, token pipelinestop.CallbackToken, reason string, optFns ...func(*pipelinestop.Options)) error {
	ctx, span := in.tracer.Start(ctx, "pipelinestop.answer", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(semconv.RPCMethodKey.String("SendPipelineExecutionStepFailure")))
	err := a.Fail(ctx, token, reason, append(optFns, in.Options)...)
	end(span, err)
	return err
}

// Handler wraps a Consumer's handler: each Execute and Cleanup runs in a
// "pipelinestop.handle" consumer span (the execution ARN and the message's
// status as attributes, never its token) and counts in
// pipelinestop.consumer.active_handlers while it runs. queueURL names the
// queue in messaging.destination.name.
func (in *Instrumentation) Handler(queueURL string, h pipelinestop.Handler) pipelinestop.Handler {
	dest := semconv.MessagingDestinationNameKey.String(queueName(queueURL))
	active := metric.WithAttributes(semconv.MessagingSystemAWSSQS, dest)
	start := func(ctx context.Context, m *pipelinestop.CallbackMessage) (context.Context, trace.Span) {
		in.activeHandlers.Add(ctx, 1, active)
		return in.tracer.Start(ctx, "pipelinestop.handle", trace.WithSpanKind(trace.SpanKindConsumer),
			trace.WithAttributes(append(executionAttrs(m.PipelineExecutionARN), semconv.MessagingSystemAWSSQS, dest,
				ExecutionStatusKey.String(m.Status))...))
	}
	finish := func(ctx context.Context, span trace.Span, err error) {
		if errors.Is(err, pipelinestop.ErrPending) {
			span.SetAttributes(MessageOutcomeKey.String("pending"))
			err = nil
		}
		end(span, err)
		in.activeHandlers.Add(ctx, -1, active)
	}
	out := h
	if h.Execute != nil {
		out.Execute = func(ctx context.Context, m *pipelinestop.CallbackMessage) (outputs map[string]string, err error) {
			ctx, span := start(ctx, m)
			defer func() { finish(ctx, span, err) }()
			return h.Execute(ctx, m)
		}
	}
	if h.Cleanup != nil {
		out.Cleanup = func(ctx context.Context, m *pipelinestop.CallbackMessage) (err error) {
			ctx, span := start(ctx, m)
			defer func() { finish(ctx, span, err) }()
			return h.Cleanup(ctx, m)
		}
	}
	return out
}
