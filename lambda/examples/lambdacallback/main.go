// Command lambdacallback is an AWS Lambda function that answers SageMaker
// Pipelines callback steps from their SQS queue, built with lambda.Start
// and the pipelinestoplambda adapter.
//
// Execute "approves" the step: it waits the step's optional argument
// WaitSeconds (a number; as a stand-in for real work, which must stop when
// its context is canceled) and answers success with the output parameter
// Approved = "true". An argument Pending = true hands the step to another
// system instead (pipelinestop.ErrPending). Cleanup, for a Stopping
// message, logs the step being stopped; the adapter then answers it, so the
// execution can stop.
//
// Build it for Lambda's provided.al2023 runtime:
//
//	cd lambda && GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./examples/lambdacallback
//
// The function's role needs sagemaker:SendPipelineExecutionStepSuccess and
// sagemaker:SendPipelineExecutionStepFailure, and the SQS permissions of an
// event source (sqs:ReceiveMessage, sqs:DeleteMessage,
// sqs:GetQueueAttributes). With the environment variable
// PIPELINESTOP_RETRY_DELAYS=1 it also sets the retry delay of reported
// messages through SQS (sqs:ChangeMessageVisibility, sqs:GetQueueUrl).
// AWS_ENDPOINT_URL points it at an emulator ("stopctl emulator").
package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	pipelinestoplambda "github.com/pipelinestop/pipelinestop/lambda"
)

func main() {
	logger := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		logger.Error("load AWS configuration", "err", pipelinestop.RedactCredentials(err.Error()))
		os.Exit(1)
	}
	h, err := newHandler(cfg, logger, os.Getenv("PIPELINESTOP_RETRY_DELAYS") == "1")
	if err != nil {
		logger.Error("new handler", "err", err)
		os.Exit(1)
	}
	lambda.Start(h.Handle)
}

// newHandler builds the adapter from the AWS configuration. With
// retryDelays it changes the visibility of reported messages through SQS.
func newHandler(cfg aws.Config, logger *slog.Logger, retryDelays bool) (*pipelinestoplambda.Handler, error) {
	ack := pipelinestop.NewAcknowledger(sagemaker.NewFromConfig(cfg), func(o *pipelinestop.Options) { o.Logger = logger })
	return pipelinestoplambda.New(ack, pipelinestop.Handler{Execute: execute, Cleanup: cleanup(logger)}, func(o *pipelinestoplambda.Options) {
		o.Logger = logger
		if retryDelays {
			o.Queue = sqs.NewFromConfig(cfg)
		}
	})
}

// execute approves the step after the optional WaitSeconds argument.
func execute(ctx context.Context, msg *pipelinestop.CallbackMessage) (map[string]string, error) {
	var pending bool
	if raw, ok := msg.Arguments["Pending"]; ok && json.Unmarshal(raw, &pending) == nil && pending {
		return nil, pipelinestop.ErrPending
	}
	var wait float64
	if raw, ok := msg.Arguments["WaitSeconds"]; ok {
		if err := json.Unmarshal(raw, &wait); err != nil {
			return nil, err // a failure answer: the argument is wrong
		}
	}
	if wait > 0 {
		timer := time.NewTimer(time.Duration(wait * float64(time.Second)))
		defer timer.Stop()
		select {
		case <-timer.C:
		case <-ctx.Done():
			return nil, context.Cause(ctx) // stopped, or out of time: not answered here
		}
	}
	return map[string]string{"Approved": "true"}, nil
}

// cleanup logs the step being stopped; returning nil answers it with
// success.
func cleanup(logger *slog.Logger) func(context.Context, *pipelinestop.CallbackMessage) error {
	return func(ctx context.Context, msg *pipelinestop.CallbackMessage) error {
		logger.InfoContext(ctx, "callback step stopped", "execution", msg.PipelineExecutionARN, "token", msg.Token)
		return nil
	}
}
