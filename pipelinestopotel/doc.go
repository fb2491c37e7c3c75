// Package pipelinestopotel reports what pipelinestop does as OpenTelemetry
// traces and metrics, in a module of its own so that the core library has
// no OpenTelemetry dependency (as aws-sdk-go-v2 keeps smithyoteltracing and
// smithyotelmetrics apart from smithy-go).
//
// An [Instrumentation] is made once from a TracerProvider and a
// MeterProvider (the global ones by default). It gives:
//
//   - spans around the calls: [Instrumentation.Stop], [Instrumentation.Wait],
//     [Instrumentation.StopAndWait] and [Instrumentation.StopAll] wrap a
//     *pipelinestop.Stopper ("pipelinestop.stop", "pipelinestop.wait",
//     "pipelinestop.stop_and_wait", "pipelinestop.stop_all"),
//     [Instrumentation.Succeed] and [Instrumentation.Fail] an Acknowledger
//     ("pipelinestop.answer"), and [Instrumentation.Handler] a Consumer's
//     Handler ("pipelinestop.handle", a consumer span);
//   - metrics from the library's events: pass [Instrumentation.Options] to
//     pipelinestop.New and NewAcknowledger, and
//     [Instrumentation.ConsumerOptions] to NewConsumer.
//
// Span attributes: cloud.resource_id (the execution ARN), cloud.region,
// pipelinestop.execution.status, pipelinestop.stop.accepted,
// pipelinestop.stop.attempts, pipelinestop.wait.polls, the blocking steps
// as span events, rpc.method for the SageMaker operation, and error.type
// with the span status on errors. A callback token never becomes an
// attribute, an event or a metric label: answers and handler spans carry
// the execution ARN and the step's status only.
//
// Metrics (names and units after the OpenTelemetry semantic conventions;
// no execution ARN or other unbounded value is a metric attribute):
//
//	pipelinestop.stops                    counter   {stop}     pipelinestop.stop.result, error.type
//	pipelinestop.retries                  counter   {retry}    rpc.method, error.type (the cause: conflict, throttled, ...)
//	pipelinestop.wait.duration            histogram s          pipelinestop.execution.status, error.type
//	pipelinestop.wait.polls               histogram {poll}     pipelinestop.execution.status, error.type
//	pipelinestop.answer.duration          histogram s          rpc.method, pipelinestop.answer.result
//	pipelinestop.consumer.messages        counter   {message}  messaging.system, pipelinestop.message.outcome
//	pipelinestop.consumer.active_handlers updowncounter {handler} messaging.system, messaging.destination.name
//
// pipelinestop.stop.result is accepted, already_stopping (Stopping or
// Stopped before this stop), not_running (ended otherwise) or error.
// pipelinestop.message.outcome is answered, already_answered, pending,
// retry_later, malformed, panic or handler_canceled.
package pipelinestopotel
