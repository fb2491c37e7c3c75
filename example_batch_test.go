package pipelinestop_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// A BatchHandler answers callback messages that the caller received
// itself, such as the SQS batch of a Lambda function, with the Consumer's
// rules; the caller deletes the messages whose outcome says so (a Lambda
// function reports the others as batch item failures).
func ExampleBatchHandler() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		log.Fatal(err)
	}
	// The batch: here read from the queue; in Lambda, the event's records.
	queueURL := em.QueueURL("approvals")
	out, err := em.SQSClient().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queueURL, MaxNumberOfMessages: 10})
	if err != nil {
		log.Fatal(err)
	}
	var batch []pipelinestop.BatchMessage
	for _, m := range out.Messages {
		batch = append(batch, pipelinestop.BatchMessage{ID: *m.MessageId, Body: *m.Body})
	}

	h, err := pipelinestop.NewBatchHandler(pipelinestop.NewAcknowledger(client), pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			return map[string]string{"approved": "yes"}, nil
		},
	})
	if err != nil {
		log.Fatal(err)
	}
	for _, o := range h.HandleBatch(ctx, batch) {
		fmt.Println("message:", o.Disposition)
	}
	status, err := em.WaitExecutionStatus(ctx, arn, "Succeeded", "Failed")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("execution:", status)
	// Output:
	// message: delete
	// execution: Succeeded
}

// With Options.Callbacks set to CallbackFail, a stop finishes even when
// nobody answers the callback step that holds it: after the grace period
// the wait answers the step with a failure itself.
func ExampleOptions_callbacks() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		log.Fatal(err)
	}
	s := pipelinestop.New(client, func(o *pipelinestop.Options) {
		o.Callbacks = pipelinestop.CallbackFail
		o.CallbackGrace = 100 * time.Millisecond // 30 s by default
		o.MinDelay = 20 * time.Millisecond
	})
	out, err := s.StopAndWait(ctx, arn) // no consumer reads the queue
	if err != nil {
		log.Fatal(err)
	}
	for _, st := range out.Answered {
		fmt.Println("answered:", st.Name)
	}
	fmt.Println("status:", out.Status)
	// Output:
	// answered: Approve
	// status: Stopped
}

// A Watcher reads SageMaker's EventBridge events from an SQS queue (the
// target of a rule: pipelinestoptest.Server.RouteEventsToQueue here,
// `stopctl events setup` against AWS) and wakes the waits that have it in
// Options.Watcher: they poll once, then only to confirm the end an event
// announced, and every SafetyInterval in case an event was lost.
func ExampleWatcher() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Train"})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	queueURL, err := em.RouteEventsToQueue(ctx, "pipeline-events")
	if err != nil {
		log.Fatal(err)
	}
	w, err := pipelinestop.NewWatcher(em.SQSClient(), queueURL)
	if err != nil {
		log.Fatal(err)
	}
	watchCtx, stopWatching := context.WithCancel(ctx)
	watching := make(chan error, 1)
	go func() { watching <- w.Run(watchCtx) }() // one receive loop for every wait
	defer func() {
		stopWatching()
		<-watching
	}()

	s := pipelinestop.New(client, func(o *pipelinestop.Options) { o.Watcher = w })
	out, err := s.StopAndWait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", out.Status)
	fmt.Println("at most two polls:", out.Polls <= 2) // one, and one to confirm the event
	// Output:
	// status: Stopped
	// at most two polls: true
}
