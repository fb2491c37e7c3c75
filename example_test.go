package pipelinestop_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// exampleExecution starts the local emulator with one running execution
// whose steps are given, and returns a SageMaker client pointed at it,
// the execution's ARN and a function that closes the pipelinestoptest. In a real
// program the client comes from sagemaker.NewFromConfig.
func exampleExecution(steps ...pipelinestoptest.Step) (*sagemaker.Client, string, *pipelinestoptest.Server, func()) {
	em, err := pipelinestoptest.Start(pipelinestoptest.Config{Timing: pipelinestoptest.Timing{
		StepDuration: pipelinestoptest.Forever, StopDelay: 20 * time.Millisecond, ConflictWindow: 300 * time.Millisecond}})
	if err != nil {
		log.Fatal(err)
	}
	for i, s := range steps {
		if s.Type == pipelinestoptest.StepTypeCallback {
			if steps[i].SqsQueueURL, err = em.CreateQueue("approvals"); err != nil {
				log.Fatal(err)
			}
		}
	}
	if _, err := em.CreatePipeline("example", pipelinestoptest.Definition(steps...)); err != nil {
		log.Fatal(err)
	}
	arn, err := em.StartExecution("example")
	if err != nil {
		log.Fatal(err)
	}
	return em.SageMakerClient(), arn, em, func() { _ = em.Close() }
}

// New takes a *sagemaker.Client configured the standard AWS way.
func ExampleNew() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		log.Fatal(err)
	}
	stopper := pipelinestop.New(sagemaker.NewFromConfig(cfg), func(o *pipelinestop.Options) {
		o.MaxDelay = 10 * time.Second // poll at least every 10 s
	})
	_ = stopper
}

// StopAndWait stops an execution, retrying the ConflictException SageMaker
// answers while the execution moves between steps, and waits until the
// execution has stopped.
func ExampleStopper_StopAndWait() {
	client, arn, _, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Train", Type: "Training"})
	defer closeEmulator()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	stopper := pipelinestop.New(client, func(o *pipelinestop.Options) {
		o.MinDelay = 10 * time.Millisecond // the emulator stops fast
	})
	out, err := stopper.StopAndWait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", out.Status)
	fmt.Println("accepted:", out.Stop.Accepted)
	fmt.Println("retried a conflict:", out.Stop.Attempts > 1)
	fmt.Println("token derived from the ARN:", out.Stop.Token == pipelinestop.DeriveToken("StopPipelineExecution", arn))
	// Output:
	// status: Stopped
	// accepted: true
	// retried a conflict: true
	// token derived from the ARN: true
}

// A second stop of the same execution, from a restarted process or another
// replica, is not an error: the result says it was already stopping.
func ExampleStopResult_AlreadyStopping() {
	client, arn, _, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Train", Type: "Training"})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	if _, err := pipelinestop.New(client).Stop(ctx, arn); err != nil {
		log.Fatal(err)
	}
	// Another replica, with its own token.
	res, err := pipelinestop.New(client).Stop(ctx, arn, func(o *pipelinestop.Options) {
		o.Token = pipelinestop.NewToken()
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("accepted:", res.Accepted, "already stopping:", res.AlreadyStopping())
	// Output:
	// accepted: false already stopping: true
}

// When the context ends first, the error says what holds the execution in
// Stopping: here a callback step that nobody has answered.
func ExampleWaitError() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		log.Fatal(err)
	}

	short, cancelShort := context.WithTimeout(ctx, 2*time.Second)
	defer cancelShort()
	_, err := pipelinestop.New(client, func(o *pipelinestop.Options) { o.MinDelay = 10 * time.Millisecond }).
		StopAndWait(short, arn)

	var we *pipelinestop.WaitError
	if errors.As(err, &we) {
		fmt.Println("timed out:", errors.Is(err, pipelinestop.ErrWaitTimeout), errors.Is(err, context.DeadlineExceeded))
		fmt.Println("last status:", we.Status)
		for _, step := range we.Blocking {
			fmt.Printf("blocked by %s step %q\n", step.Type, step.Name)
		}
	}
	// Output:
	// timed out: true true
	// last status: Stopping
	// blocked by Callback step "Approve"
}

// StopAll stops every execution a service started, within a shutdown
// deadline, and reports each one.
func ExampleStopper_StopAll() {
	client, arn, _, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Train", Type: "Training"})
	defer closeEmulator()
	missing := arn[:len(arn)-1] + "x" // an execution that does not exist
	if missing == arn {
		missing = arn[:len(arn)-1] + "y"
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	results, err := pipelinestop.New(client).StopAll(ctx, []string{arn, missing})
	for _, r := range results {
		if r.Err != nil {
			fmt.Println("not stopped:", errors.Is(r.Err, pipelinestop.ErrNotFound))
			continue
		}
		fmt.Println("stopped:", r.Stop.Status)
	}
	fmt.Println("joined error matches ErrNotFound:", errors.Is(err, pipelinestop.ErrNotFound))
	// Output:
	// stopped: Stopping
	// not stopped: true
	// joined error matches ErrNotFound: true
}

// Classify gives errors from SDK calls made directly the same sentinels.
func ExampleClassify() {
	client, arn, _, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Train", Type: "Training"})
	defer closeEmulator()

	_, err := client.DescribePipelineExecution(context.Background(), &sagemaker.DescribePipelineExecutionInput{
		PipelineExecutionArn: ptr(arn + "0")})
	err = pipelinestop.Classify(err)

	var notFound *types.ResourceNotFound
	fmt.Println(errors.Is(err, pipelinestop.ErrNotFound), errors.As(err, &notFound))
	// Output:
	// true true
}

func ExampleParseExecutionARN() {
	a, err := pipelinestop.ParseExecutionARN("arn:aws:sagemaker:eu-west-1:123456789012:pipeline/train/execution/k1x2y3z4w5v6")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Region, a.PipelineName, a.ExecutionID)

	_, err = pipelinestop.ParseExecutionARN("arn:aws:sagemaker:eu-west-1:1234:pipeline/train/execution/x")
	fmt.Println(errors.Is(err, pipelinestop.ErrInvalidARN))
	fmt.Println(err)
	// Output:
	// eu-west-1 train k1x2y3z4w5v6
	// true
	// invalid pipeline execution ARN "arn:aws:sagemaker:eu-west-1:1234:pipeline/train/execution/x": account ID at position 28: "1234" is not 12 digits (want arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID)
}

// DeriveToken makes the same token from the same parts in every process.
func ExampleDeriveToken() {
	a := pipelinestop.DeriveToken("nightly-cleanup", "2026-11-25")
	b := pipelinestop.DeriveToken("nightly-cleanup", "2026-11-25")
	fmt.Println(a == b, len(a), pipelinestop.ValidateToken(a) == nil)
	fmt.Println(errors.Is(pipelinestop.ValidateToken("short"), pipelinestop.ErrInvalidToken))
	// Output:
	// true 64 true
	// true
}

// AckStopping answers the Stopping message that a callback step sends when
// its execution is being stopped: it runs the cleanup, then answers the
// step (success, or failure with the cleanup's error as the reason), and
// the execution can stop.
func ExampleAcknowledger_AckStopping() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := em.WaitStepStatus(ctx, arn, "Approve", "Executing"); err != nil {
		log.Fatal(err)
	}
	stopper := pipelinestop.New(client, func(o *pipelinestop.Options) { o.MinDelay = 10 * time.Millisecond })
	if _, err := stopper.Stop(ctx, arn); err != nil {
		log.Fatal(err)
	}

	// Read the step's queue until the Stopping message, as a consumer would.
	queue, queueURL := em.SQSClient(), em.QueueURL("approvals")
	var msg *pipelinestop.CallbackMessage
	var receipt *string
	for msg == nil {
		out, err := queue.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &queueURL, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range out.Messages {
			cm, err := pipelinestop.ParseCallbackMessage(*m.Body)
			if err != nil {
				log.Fatal(err)
			}
			if cm.IsStopping() {
				msg, receipt = cm, m.ReceiptHandle
			}
		}
	}

	ack := pipelinestop.NewAcknowledger(client)
	res, err := ack.AckStopping(ctx, msg, func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
		fmt.Println("cleaning up after the", m.Status, "message")
		return nil
	})
	if err != nil && !errors.Is(err, pipelinestop.ErrAlreadyAnswered) {
		log.Fatal(err) // leave the message: it comes back and is answered again
	}
	fmt.Println("answered:", res.Answer)
	// Delete the message only once the step is answered.
	if _, err := queue.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &queueURL, ReceiptHandle: receipt}); err != nil {
		log.Fatal(err)
	}

	out, err := stopper.Wait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", out.Status)
	// Output:
	// cleaning up after the Stopping message
	// answered: success
	// status: Stopped
}

// A Consumer runs the SQS loop of callback steps: Execute does a step's
// work and its outputs answer the step; Cleanup runs when the execution
// is stopped. Run returns once its context ends and its handlers are done.
func ExampleConsumer() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback,
		Arguments: map[string]any{"model": "churn-v2"}})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	// In a real program: sqs.NewFromConfig(cfg) and the step's SqsQueueUrl.
	consumer, err := pipelinestop.NewConsumer(em.SQSClient(), em.QueueURL("approvals"), pipelinestop.NewAcknowledger(client),
		pipelinestop.Handler{
			Execute: func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
				var model string
				if err := json.Unmarshal(msg.Arguments["model"], &model); err != nil {
					return nil, err // fails the step, with the error as its reason
				}
				fmt.Println("approving", model)
				return map[string]string{"approved": "yes"}, nil
			},
			Cleanup: func(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
				return nil // nothing to undo
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stopConsumer := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()

	out, err := pipelinestop.New(client, func(o *pipelinestop.Options) { o.MinDelay = 10 * time.Millisecond }).Wait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", out.Status)

	stopConsumer()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// approving churn-v2
	// status: Succeeded
}

// When an execution is stopped while its callback step's work runs, the
// Consumer cancels Execute's context, runs Cleanup and answers the step,
// so that StopAndWait sees the execution Stopped.
func ExampleConsumer_stop() {
	client, arn, em, closeEmulator := exampleExecution(pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback})
	defer closeEmulator()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	working := make(chan struct{})
	consumer, err := pipelinestop.NewConsumer(em.SQSClient(), em.QueueURL("approvals"), pipelinestop.NewAcknowledger(client),
		pipelinestop.Handler{
			Execute: func(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
				close(working)
				<-ctx.Done() // a long job, until the stop cancels it
				fmt.Println("work canceled")
				return nil, ctx.Err()
			},
			Cleanup: func(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
				fmt.Println("cleaning up")
				return nil
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	runCtx, stopConsumer := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()

	select {
	case <-working:
	case <-ctx.Done():
		log.Fatal(ctx.Err())
	}
	out, err := pipelinestop.New(client, func(o *pipelinestop.Options) { o.MinDelay = 10 * time.Millisecond }).StopAndWait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("status:", out.Status)

	stopConsumer()
	if err := <-done; err != nil {
		log.Fatal(err)
	}
	// Output:
	// work canceled
	// cleaning up
	// status: Stopped
}
