// Command adapter is the pipelinestoplambda side of
// TestScenarioLambdaCallbacks: the same work rule as the naive baseline (a
// step's work is done once the Unix time in its argument ReadyAt has
// passed), answered through the adapter: RetryLater for unfinished work
// (that record alone comes back, after a 1-second delay set through SQS),
// Stopping messages cleaned up and answered, idempotent answers.
package main

import (
	"context"
	"encoding/json"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	pipelinestoplambda "github.com/pipelinestop/pipelinestop/lambda"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	h, err := pipelinestoplambda.New(pipelinestop.NewAcknowledger(sagemaker.NewFromConfig(cfg)), pipelinestop.Handler{
		Execute: func(ctx context.Context, m *pipelinestop.CallbackMessage) (map[string]string, error) {
			var readyAt float64
			_ = json.Unmarshal(m.Arguments["ReadyAt"], &readyAt)
			if float64(time.Now().Unix()) < readyAt {
				return nil, pipelinestop.RetryLater(nil)
			}
			return map[string]string{"Approved": "true"}, nil
		},
	}, func(o *pipelinestoplambda.Options) {
		o.Queue = sqs.NewFromConfig(cfg)
		o.ConsumerOptions = append(o.ConsumerOptions, func(co *pipelinestop.ConsumerOptions) {
			co.RetryLaterMinDelay, co.RetryLaterMaxDelay = time.Second, time.Second
		})
	})
	if err != nil {
		log.Fatal(err)
	}
	lambda.Start(h.Handle)
}
