package pipelinestoptest_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop/pipelinestoptest"
)

// TestEventsReachAQueue sets up the rule and target real setup code
// writes, with the server's EventBridge client, and receives the terminal
// execution event of a pipeline run.
func TestEventsReachAQueue(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{Timing: pipelinestoptest.Timing{StepDuration: -1}})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	url, err := srv.CreateQueue("events")
	if err != nil {
		t.Fatal(err)
	}
	eb := srv.EventBridgeClient()
	pattern, _ := json.Marshal(map[string]any{"source": []string{pipelinestoptest.EventSource},
		"detail-type": []string{pipelinestoptest.DetailTypeExecutionStatus},
		"detail":      map[string]any{"currentPipelineExecutionStatus": []string{"Succeeded"}}})
	if _, err := eb.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String("done"), EventPattern: aws.String(string(pattern))}); err != nil {
		t.Fatal(err)
	}
	if _, err := eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String("done"),
		Targets: []ebtypes.Target{{Id: aws.String("q"), Arn: aws.String(srv.QueueARN("events"))}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.CreatePipeline("p", pipelinestoptest.Definition(pipelinestoptest.Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	arn, err := srv.StartExecution("p")
	if err != nil {
		t.Fatal(err)
	}
	out, err := srv.SQSClient().ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 10})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("ReceiveMessage: %v, %d messages", err, len(out.Messages))
	}
	var ev struct {
		DetailType string `json:"detail-type"`
		Detail     struct {
			PipelineExecutionArn           string `json:"pipelineExecutionArn"`
			CurrentPipelineExecutionStatus string `json:"currentPipelineExecutionStatus"`
		} `json:"detail"`
	}
	if err := json.Unmarshal([]byte(aws.ToString(out.Messages[0].Body)), &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != pipelinestoptest.DetailTypeExecutionStatus || ev.Detail.PipelineExecutionArn != arn || ev.Detail.CurrentPipelineExecutionStatus != "Succeeded" {
		t.Errorf("event %+v", ev)
	}
	if st := srv.EventStats(); st.Emitted != 4 || st.Delivered != 1 {
		t.Errorf("EventStats %+v; want 4 emitted, 1 delivered", st)
	}
}

func TestInvalidEventFaults(t *testing.T) {
	srv := pipelinestoptest.New(t, pipelinestoptest.Config{})
	for _, f := range []pipelinestoptest.EventFaults{{DropRate: math.NaN()}, {DuplicateRate: 2}, {Delay: -1}, {DelaySpread: -time.Second}} {
		if _, err := pipelinestoptest.Start(pipelinestoptest.Config{EventFaults: f}); !errors.Is(err, pipelinestoptest.ErrInvalidConfig) {
			t.Errorf("Start with EventFaults %+v: %v; want ErrInvalidConfig", f, err)
		}
		if err := srv.SetEventFaults(f); !errors.Is(err, pipelinestoptest.ErrInvalidConfig) {
			t.Errorf("SetEventFaults(%+v): %v; want ErrInvalidConfig", f, err)
		}
	}
	if err := srv.SetEventFaults(pipelinestoptest.EventFaults{DropRate: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.CreatePipeline("p", pipelinestoptest.Definition(pipelinestoptest.Step{Name: "A"})); err != nil {
		t.Fatal(err)
	}
	arn, _ := srv.StartExecution("p")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := srv.WaitExecutionStatus(ctx, arn, "Succeeded"); err != nil {
		t.Fatal(err)
	}
	if st := srv.EventStats(); st.Emitted == 0 || st.Dropped != st.Emitted {
		t.Errorf("EventStats %+v with DropRate 1; want every event dropped", st)
	}
}
