package pipelinestoptest

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// SageMaker's event source and the detail types of its pipeline events,
// exactly as SageMaker writes them. The server emits one event at every
// execution and step status change.
const (
	EventSource               = "aws.sagemaker"
	DetailTypeExecutionStatus = "SageMaker Model Building Pipeline Execution Status Change"
	DetailTypeStepStatus      = "SageMaker Model Building Pipeline Execution Step Status Change"
)

// EventFaults are faults injected into the delivery of the server's
// status-change events. The zero value injects nothing: every event is
// delivered once, at once, in order. Random choices follow Config.Seed.
type EventFaults struct {
	// Delay is added before each event reaches the bus, plus a uniform
	// random extra of up to DelaySpread for every copy; a spread larger than
	// the time between two events reorders them.
	Delay, DelaySpread time.Duration
	// DuplicateRate is the fraction (0 to 1) of events sent twice; the copy
	// has its own id.
	DuplicateRate float64
	// DropRate is the fraction (0 to 1) of events never sent.
	DropRate float64
}

func (f EventFaults) check() error {
	for name, v := range map[string]float64{"DuplicateRate": f.DuplicateRate, "DropRate": f.DropRate} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return fmt.Errorf("%w: EventFaults.%s %v is not a fraction from 0 to 1", ErrInvalidConfig, name, v)
		}
	}
	if f.Delay < 0 || f.DelaySpread < 0 {
		return fmt.Errorf("%w: EventFaults.Delay %v and DelaySpread %v must not be negative", ErrInvalidConfig, f.Delay, f.DelaySpread)
	}
	return nil
}

func (f EventFaults) internal() emulator.EventFaults {
	return emulator.EventFaults{Delay: f.Delay, DelaySpread: f.DelaySpread, DuplicateRate: f.DuplicateRate, DropRate: f.DropRate}
}

// EventStats counts what happened to the server's events.
type EventStats struct {
	// Emitted counts status-change events produced, before faults.
	Emitted int
	// Dropped and Duplicated count the events EventFaults dropped and
	// sent twice.
	Dropped, Duplicated int
	// Delivered counts messages put on target queues; Undeliverable the
	// matching targets an event could not reach (no such queue, a queue
	// policy that does not allow it under Config.RequireQueuePolicy).
	Delivered, Undeliverable int
}

// EventBridgeClient returns an EventBridge client pointed at the server,
// for PutRule and PutTargets on the default bus. The option functions are
// applied after the server's settings.
func (s *Server) EventBridgeClient(optFns ...func(*eventbridge.Options)) *eventbridge.Client {
	return s.e.EventBridgeClient(optFns...)
}

// SetEventFaults replaces the faults injected into event delivery; events
// already delayed keep their delay. An unusable value returns an error
// wrapping ErrInvalidConfig and changes nothing.
func (s *Server) SetEventFaults(f EventFaults) error {
	if err := f.check(); err != nil {
		return err
	}
	return s.e.SetEventFaults(f.internal())
}

// EventStats returns the event counters.
func (s *Server) EventStats() EventStats {
	st := s.e.EventStats()
	return EventStats{Emitted: st.Emitted, Dropped: st.Dropped, Duplicated: st.Duplicated, Delivered: st.Delivered, Undeliverable: st.Undeliverable}
}

// RouteEventsToQueue creates (if needed) the queue named queueName and an
// EventBridge rule on the default bus that sends it every SageMaker
// pipeline event (both detail types), as `stopctl events setup` does
// against AWS, and returns the queue's URL: the queue to give a
// pipelinestop.Watcher. Calling it again for the same queue is harmless.
func (s *Server) RouteEventsToQueue(ctx context.Context, queueName string) (string, error) {
	url, err := s.CreateQueue(queueName)
	if err != nil {
		return "", err
	}
	pattern := fmt.Sprintf(`{"source":[%q],"detail-type":[%q,%q]}`, EventSource, DetailTypeExecutionStatus, DetailTypeStepStatus)
	eb := s.EventBridgeClient()
	rule := "pipelinestoptest-" + queueName
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(rule), EventPattern: aws.String(pattern)}); err != nil {
		return "", fmt.Errorf("route events to queue %s: %w", queueName, err)
	}
	out, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(rule),
		Targets: []ebtypes.Target{{Id: aws.String("queue"), Arn: aws.String(s.QueueARN(queueName))}}})
	if err != nil {
		return "", fmt.Errorf("route events to queue %s: %w", queueName, err)
	}
	if out.FailedEntryCount > 0 {
		return "", fmt.Errorf("route events to queue %s: the target was refused", queueName)
	}
	return url, nil
}
