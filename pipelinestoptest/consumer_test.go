package pipelinestoptest_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// The Consumer's claim, end to end: a malformed message is given back
// after the retry-later delay, never deleted, so the queue's redrive
// policy moves it to the dead-letter queue; valid work goes on.
func TestConsumerMalformedReachesDeadLetterQueue(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	q := srv.SQSClient()
	dlq, err := srv.CreateQueue("dead-letters")
	if err != nil {
		t.Fatal(err)
	}
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("approvals"), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"` + srv.QueueARN("dead-letters") + `","maxReceiveCount":2}`,
	}})
	if err != nil {
		t.Fatal(err)
	}
	queueURL := aws.ToString(out.QueueUrl)
	if _, err := srv.CreatePipeline("train", pipelinestoptest.Definition(pipelinestoptest.Step{
		Name: "Approve", Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: queueURL})); err != nil {
		t.Fatal(err)
	}
	arn, err := srv.StartExecution("train")
	if err != nil {
		t.Fatal(err)
	}
	const poison = `{"token": "not a token"`
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &queueURL, MessageBody: aws.String(poison)}); err != nil {
		t.Fatal(err)
	}

	consumer, err := pipelinestop.NewConsumer(q, queueURL, pipelinestop.NewAcknowledger(srv.SageMakerClient()), pipelinestop.Handler{
		Execute: func(context.Context, *pipelinestop.CallbackMessage) (map[string]string, error) { return nil, nil },
	}, func(o *pipelinestop.ConsumerOptions) {
		o.WaitTimeSeconds = 1
		o.RetryLaterMinDelay = time.Second
		o.RetryLaterMaxDelay = time.Second
	})
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- consumer.Run(runCtx) }()

	if st, err := srv.WaitExecutionStatus(ctx, arn, pipelinestoptest.StatusSucceeded); err != nil {
		t.Fatalf("the valid callback message was not answered: %s %v", st, err)
	}
	var moved []sqstypes.Message
	for i := 0; len(moved) == 0 && i < 100; i++ { // at most 100 long polls of 1 s, bounded by ctx
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &dlq, WaitTimeSeconds: 1})
		if err != nil {
			t.Fatal(err)
		}
		moved = got.Messages
	}
	stop()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Fatalf("Run: %v", err)
	}
	if len(moved) != 1 || aws.ToString(moved[0].Body) != poison {
		t.Fatalf("dead-letter queue holds %+v; want the malformed message", moved)
	}
	if n := srv.Requests(pipelinestoptest.StaleDeletes); n != 0 {
		t.Errorf("%d deletes with stale receipt handles", n)
	}
}
