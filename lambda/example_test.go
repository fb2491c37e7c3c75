package pipelinestoplambda_test

import (
	"context"
	"log"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	pipelinestoplambda "github.com/pipelinestop/pipelinestop/lambda"
)

// The main function of a Lambda function whose event source mapping
// (with FunctionResponseTypes ReportBatchItemFailures) is the callback
// queue.
func ExampleNew() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	ack := pipelinestop.NewAcknowledger(sagemaker.NewFromConfig(cfg))
	h, err := pipelinestoplambda.New(ack, pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			return map[string]string{"approved": "true"}, nil // or an error: the step fails
		},
		Cleanup: func(ctx context.Context, m *pipelinestop.CallbackMessage) error {
			return nil // release what the step holds; nil answers success
		},
	}, func(o *pipelinestoplambda.Options) {
		o.Queue = sqs.NewFromConfig(cfg) // optional: retry delays through SQS
		o.ConsumerOptions = append(o.ConsumerOptions, func(co *pipelinestop.ConsumerOptions) {
			co.Concurrency = 5
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}
