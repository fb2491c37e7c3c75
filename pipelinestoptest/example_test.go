package pipelinestoptest_test

import (
	"context"
	"fmt"
	"log"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// A shutdown hook stops an execution whose callback step waits for an
// approval. SageMaker sends the step a second message, "Stopping"; the
// execution stops once the step is answered.
func Example() {
	srv, err := pipelinestoptest.Start(pipelinestoptest.Config{}) // in a test: pipelinestoptest.New(t, ...)
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	queueURL, err := srv.CreateQueue("approvals")
	if err != nil {
		log.Fatal(err)
	}
	def := pipelinestoptest.Definition(pipelinestoptest.Step{
		Name: "Approve", Type: pipelinestoptest.StepTypeCallback, SqsQueueURL: queueURL,
	})
	if _, err := srv.CreatePipeline("train", def); err != nil {
		log.Fatal(err)
	}
	arn, err := srv.StartExecution("train")
	if err != nil {
		log.Fatal(err)
	}
	if err := srv.WaitStepStatus(ctx, arn, "Approve", pipelinestoptest.StatusExecuting); err != nil {
		log.Fatal(err)
	}

	// The code under test: stop, then answer the step's Stopping message.
	stopper := pipelinestop.New(srv.SageMakerClient())
	if _, err := stopper.Stop(ctx, arn); err != nil {
		log.Fatal(err)
	}
	q := srv.SQSClient()
	ack := pipelinestop.NewAcknowledger(srv.SageMakerClient())
	for answered := false; !answered; {
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(queueURL), WaitTimeSeconds: 1})
		if err != nil {
			log.Fatal(err)
		}
		for _, m := range out.Messages {
			msg, err := pipelinestop.ParseCallbackMessage(aws.ToString(m.Body))
			if err != nil {
				log.Fatal(err)
			}
			if msg.IsStopping() {
				if err := ack.Succeed(ctx, msg.Token, nil); err != nil {
					log.Fatal(err)
				}
				answered = true
			}
			if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: aws.String(queueURL), ReceiptHandle: m.ReceiptHandle}); err != nil {
				log.Fatal(err)
			}
		}
	}
	outcome, err := stopper.Wait(ctx, arn)
	if err != nil {
		log.Fatal(err)
	}

	// What the test checks.
	fmt.Println("execution:", outcome.Status)
	fmt.Println("effective stops:", srv.EffectiveStops(arn))
	for _, m := range srv.CallbackMessages() {
		fmt.Println("message:", m.StepName, m.Status, "answers:", len(srv.Answers(m.Token)))
	}
	// Output:
	// execution: Stopped
	// effective stops: 1
	// message: Approve Executing answers: 1
	// message: Approve Stopping answers: 1
}

// Definition builds pipeline definition JSON for CreatePipeline, here a
// training step followed by a callback step.
func ExampleDefinition() {
	fmt.Println(pipelinestoptest.Definition(
		pipelinestoptest.Step{Name: "Train", Type: "Training"},
		pipelinestoptest.Step{Name: "Approve", Type: pipelinestoptest.StepTypeCallback, DependsOn: []string{"Train"},
			SqsQueueURL: "http://127.0.0.1:4599/123456789012/approvals", Arguments: map[string]any{"model": "m1"}},
	))
	// Output:
	// {"Version":"2020-12-01","Steps":[{"Name":"Train","Type":"Training"},{"Name":"Approve","Type":"Callback","DependsOn":["Train"],"Arguments":{"model":"m1"},"SqsQueueUrl":"http://127.0.0.1:4599/123456789012/approvals"}]}
}

// SetFaults makes the server answer like a busy AWS account, to test
// retries: here every StopPipelineExecution beyond one per second is
// throttled, and the SDK's own retries count as requests.
func ExampleServer_SetFaults() {
	srv, err := pipelinestoptest.Start(pipelinestoptest.Config{Timing: pipelinestoptest.Timing{StepDuration: pipelinestoptest.Forever}})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	if _, err := srv.CreatePipeline("train", pipelinestoptest.Definition(pipelinestoptest.Step{Name: "Train"})); err != nil {
		log.Fatal(err)
	}
	if err := srv.SetFaults(pipelinestoptest.Faults{RateLimits: map[string]pipelinestoptest.RateLimit{
		"StopPipelineExecution": {PerSecond: 0.001, Burst: 1},
	}}); err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()
	client := srv.SageMakerClient(func(o *sagemaker.Options) { o.RetryMaxAttempts = 1 })
	for range 2 {
		arn, err := srv.StartExecution("train")
		if err != nil {
			log.Fatal(err)
		}
		_, err = client.StopPipelineExecution(ctx, &sagemaker.StopPipelineExecutionInput{
			PipelineExecutionArn: aws.String(arn), ClientRequestToken: aws.String(pipelinestop.NewToken()),
		})
		fmt.Println("stop:", err == nil, "effective stops:", srv.EffectiveStops(arn))
	}
	fmt.Println("requests:", srv.Requests("StopPipelineExecution"))
	// Output:
	// stop: true effective stops: 1
	// stop: false effective stops: 0
	// requests: 2
}

// A queue with a RedrivePolicy moves a message that was received
// maxReceiveCount times to its dead-letter queue, as SQS does.
func ExampleServer_QueueARN() {
	srv, err := pipelinestoptest.Start(pipelinestoptest.Config{})
	if err != nil {
		log.Fatal(err)
	}
	defer srv.Close()
	ctx := context.Background()
	q := srv.SQSClient()
	dlq, err := srv.CreateQueue("dead-letters")
	if err != nil {
		log.Fatal(err)
	}
	out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("approvals"), Attributes: map[string]string{
		"RedrivePolicy": `{"deadLetterTargetArn":"` + srv.QueueARN("dead-letters") + `","maxReceiveCount":1}`,
	}})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: out.QueueUrl, MessageBody: aws.String("not a callback message")}); err != nil {
		log.Fatal(err)
	}
	for i := range 2 {
		got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: out.QueueUrl, VisibilityTimeout: 0})
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("receive %d from approvals: %d message(s)\n", i+1, len(got.Messages))
		for _, m := range got.Messages { // give it back at once, as a failed handler would
			if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: out.QueueUrl, ReceiptHandle: m.ReceiptHandle}); err != nil {
				log.Fatal(err)
			}
		}
	}
	got, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: aws.String(dlq)})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("in the dead-letter queue:", aws.ToString(got.Messages[0].Body))
	// Output:
	// receive 1 from approvals: 1 message(s)
	// receive 2 from approvals: 0 message(s)
	// in the dead-letter queue: not a callback message
}
