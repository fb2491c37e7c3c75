// Command naive is a callback-step function written like the public
// samples, the baseline of TestScenarioLambdaCallbacks: it answers every
// record with SendPipelineExecutionStepSuccess (no ClientRequestToken of
// its own, so the SDK makes a new one per call), ignores the status
// (Stopping messages are answered like Executing ones), and raises an error
// to put unfinished work back on the queue, which returns the whole batch.
// A step's work is done once the time in its argument ReadyAt (Unix
// seconds) has passed.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"log"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"
)

func main() {
	cfg, err := config.LoadDefaultConfig(context.Background())
	if err != nil {
		log.Fatal(err)
	}
	sm := sagemaker.NewFromConfig(cfg)
	lambda.Start(func(ctx context.Context, ev events.SQSEvent) error {
		for _, r := range ev.Records {
			var body struct {
				Token     string `json:"token"`
				Arguments struct {
					ReadyAt float64 `json:"ReadyAt"`
				} `json:"arguments"`
			}
			if err := json.Unmarshal([]byte(r.Body), &body); err != nil {
				log.Printf("bad message: %v", err)
				continue
			}
			if float64(time.Now().Unix()) < body.Arguments.ReadyAt {
				return errors.New("the step's work is not done yet: retry the batch")
			}
			_, err := sm.SendPipelineExecutionStepSuccess(ctx, &sagemaker.SendPipelineExecutionStepSuccessInput{
				CallbackToken:    aws.String(body.Token),
				OutputParameters: []types.OutputParameter{{Name: aws.String("Approved"), Value: aws.String("true")}},
			})
			if err != nil {
				log.Printf("answer: %v", err) // "already in a terminal status", as the samples log
			}
		}
		return nil
	})
}
