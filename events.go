package pipelinestop

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

// EventType says what an Event reports.
type EventType int

// Event types. Each says which of the Stopper, the Acknowledger and the
// Consumer report it; the Consumer also reports the Acknowledger's events
// for the answers it sends.
const (
	// EventAttempt: a SageMaker call is about to be made (Attempt counts
	// from 1). Reported by Stop and by the Acknowledger's answers.
	EventAttempt EventType = iota + 1
	// EventRetry: a call failed with Err and is made again after Delay.
	// Reported by Stop, by Wait for a failed status poll (Attempt counts
	// the polls) and by the Acknowledger's answers.
	EventRetry
	// EventStopped: Stop succeeded; Status says what it found.
	EventStopped
	// EventStatus: Wait saw the execution's status change to Status.
	EventStatus
	// EventBlocked: Wait saw the steps holding a Stopping execution change
	// to Blocking.
	EventBlocked
	// EventAnswered: the Acknowledger's answer (Op says which) to the
	// callback step CallbackToken was accepted, or Err says the step was
	// already answered or is gone.
	EventAnswered
	// EventMalformed: the Consumer received a message (MessageID) that is
	// not a valid callback message (Err); it becomes visible again after
	// Delay, or is deleted (Delay 0) with ConsumerOptions.DeleteMalformed.
	EventMalformed
	// EventRetryLater: the Consumer could not finish a message (MessageID)
	// now (Err); it becomes visible again after Delay.
	EventRetryLater
	// EventPending: the Consumer's handler said another system answers the
	// step later; the message (MessageID) was deleted without an answer.
	EventPending
	// EventPanic: the Consumer's handler panicked (Err); the step is
	// answered as failed.
	EventPanic
	// EventQueueError: an SQS call of the Consumer (Op) failed with Err,
	// for the message MessageID when it concerns one entry of a batch.
	EventQueueError
	// EventHandlerCanceled: the Consumer received a Stopping message for a
	// step whose Executing handler was running; its context was canceled.
	EventHandlerCanceled
)

var eventNames = map[EventType]string{
	EventAttempt: "attempt",
	EventRetry:   "retry",
	EventStopped: "stopped",
	EventStatus:  "status",
	EventBlocked: "blocked",

	EventAnswered:        "answered",
	EventMalformed:       "malformed",
	EventRetryLater:      "retry_later",
	EventPending:         "pending",
	EventPanic:           "panic",
	EventQueueError:      "queue_error",
	EventHandlerCanceled: "handler_canceled",
}

// String returns the event type's name, such as "retry".
func (t EventType) String() string {
	if n, ok := eventNames[t]; ok {
		return n
	}
	return fmt.Sprintf("EventType(%d)", int(t))
}

// Event reports progress to Options.OnEvent and Options.Logger. Only the
// fields that matter for its Type are set.
type Event struct {
	// Type says what happened.
	Type EventType
	// Time is when it happened, by Options.Clock.
	Time time.Time
	// Op is the SageMaker or SQS operation concerned.
	Op string
	// ExecutionARN is the execution concerned.
	ExecutionARN string
	// Attempt counts a call's attempts, or Wait's polls, from 1.
	Attempt int
	// Delay is the wait before the next attempt (EventRetry).
	Delay time.Duration
	// Err is the error the event reports (a retry's cause, a malformed
	// message's problem, a handler's error, ...). It never holds the raw
	// callback token.
	Err error
	// Status is the execution's status.
	Status types.PipelineExecutionStatus
	// Blocking are the steps holding a Stopping execution.
	Blocking []BlockingStep
	// Elapsed is the time since the call began.
	Elapsed time.Duration
	// CallbackToken is the callback step concerned. It prints redacted.
	CallbackToken CallbackToken
	// MessageID is the SQS message concerned.
	MessageID string
}

// observer reports Events. It owns what Options say about reporting
// (OnEvent, Logger and the Clock that stamps Event.Time) and the redaction
// of an event's callback token from Event.Err, so that the Stopper, the
// Acknowledger and the Consumer report the same way.
type observer struct {
	onEvent func(Event)
	logger  *slog.Logger
	clock   Clock
}

// observer returns the observer of o, which must have its defaults
// (withDefaults).
func (o *Options) observer() observer {
	return observer{onEvent: o.OnEvent, logger: o.Logger, clock: o.Clock}
}

// emit sends ev to o's observer (see observer.emit).
func (o *Options) emit(ctx context.Context, ev Event) { o.observer().emit(ctx, ev) }

// emit stamps ev with the time when it has none, redacts its callback
// token from its error, and sends it to the OnEvent hook and the logger.
func (ob observer) emit(ctx context.Context, ev Event) {
	if ev.Time.IsZero() {
		ev.Time = ob.clock.Now()
	}
	// A handler's or cleanup's error can quote the token it failed on.
	ev.Err = ev.CallbackToken.scrubErr(ev.Err)
	if ob.onEvent != nil {
		ob.onEvent(ev)
	}
	level := slog.LevelInfo
	switch ev.Type {
	case EventAttempt:
		level = slog.LevelDebug
	case EventRetry, EventMalformed, EventRetryLater, EventQueueError:
		level = slog.LevelWarn
	case EventPanic:
		level = slog.LevelError
	}
	if !ob.logger.Enabled(ctx, level) {
		return
	}
	attrs := []slog.Attr{slog.String("event", ev.Type.String())}
	if ev.Op != "" {
		attrs = append(attrs, slog.String("op", ev.Op))
	}
	if ev.ExecutionARN != "" {
		attrs = append(attrs, slog.String("execution_arn", ev.ExecutionARN))
	}
	if ev.Attempt > 0 {
		attrs = append(attrs, slog.Int("attempt", ev.Attempt))
	}
	if ev.Delay > 0 {
		attrs = append(attrs, slog.Duration("delay", ev.Delay))
	}
	if ev.Status != "" {
		attrs = append(attrs, slog.String("status", string(ev.Status)))
	}
	if ev.Elapsed > 0 {
		attrs = append(attrs, slog.Duration("elapsed", ev.Elapsed))
	}
	if ev.CallbackToken != "" {
		attrs = append(attrs, slog.Any("callback_token", ev.CallbackToken))
	}
	if ev.MessageID != "" {
		attrs = append(attrs, slog.String("message_id", ev.MessageID))
	}
	for _, b := range ev.Blocking {
		attrs = append(attrs, slog.String("blocking_step", b.String()))
	}
	if ev.Err != nil {
		attrs = append(attrs, slog.String("error", ev.Err.Error()))
	}
	ob.logger.LogAttrs(ctx, level, "pipelinestop "+ev.Type.String(), attrs...)
}
