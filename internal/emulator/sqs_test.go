package emulator

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
	"github.com/pipelinestop/pipelinestop/internal/motoserver"
)

// sqsScenarios is one suite of observable SQS behaviour. It runs against
// the emulator and against moto_server, which must agree.
func sqsScenarios(t *testing.T, q *sqs.Client) {
	ctx := testContext(t)
	create := func(t *testing.T, name string, vis int) string {
		t.Helper()
		out, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(name),
			Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(vis)}})
		if err != nil {
			t.Fatal(err)
		}
		return *out.QueueUrl
	}
	attrs := func(t *testing.T, url string) (visible, inflight string) {
		t.Helper()
		out, err := q.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: &url, AttributeNames: []sqstypes.QueueAttributeName{
			sqstypes.QueueAttributeNameApproximateNumberOfMessages, sqstypes.QueueAttributeNameApproximateNumberOfMessagesNotVisible}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Attributes["ApproximateNumberOfMessages"], out.Attributes["ApproximateNumberOfMessagesNotVisible"]
	}
	send := func(t *testing.T, url, body string) {
		t.Helper()
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &url, MessageBody: aws.String(body)}); err != nil {
			t.Fatal(err) // the SDK also checks MD5OfMessageBody
		}
	}
	recv := func(t *testing.T, url string, n, vis int32) []sqstypes.Message {
		t.Helper()
		out, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: n, VisibilityTimeout: vis, WaitTimeSeconds: 1,
			MessageSystemAttributeNames: []sqstypes.MessageSystemAttributeName{sqstypes.MessageSystemAttributeNameApproximateReceiveCount, sqstypes.MessageSystemAttributeNameSentTimestamp}})
		if err != nil {
			t.Fatal(err)
		}
		return out.Messages
	}

	t.Run("send receive delete", func(t *testing.T) {
		url := create(t, "basic", 30)
		got, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("basic")})
		if err != nil || *got.QueueUrl != url {
			t.Fatalf("GetQueueUrl %v %v", got, err)
		}
		send(t, url, `{"hello": "wörld"}`)
		if v, i := attrs(t, url); v != "1" || i != "0" {
			t.Fatalf("after send visible=%s inflight=%s", v, i)
		}
		msgs := recv(t, url, 10, 0)
		if len(msgs) != 1 || *msgs[0].Body != `{"hello": "wörld"}` || msgs[0].Attributes["ApproximateReceiveCount"] != "1" || msgs[0].Attributes["SentTimestamp"] == "" {
			t.Fatalf("received %+v", msgs)
		}
		if v, i := attrs(t, url); v != "0" || i != "1" {
			t.Fatalf("in flight visible=%s inflight=%s", v, i)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatal(err)
		}
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: msgs[0].ReceiptHandle}); err != nil {
			t.Fatalf("second delete: %v", err)
		}
		if v, i := attrs(t, url); v != "0" || i != "0" {
			t.Fatalf("after delete visible=%s inflight=%s", v, i)
		}
	})

	t.Run("visibility expiry and redelivery", func(t *testing.T) {
		url := create(t, "redeliver", 1)
		send(t, url, "again")
		first := recv(t, url, 1, 0)
		if len(first) != 1 {
			t.Fatal("no message")
		}
		start := time.Now()
		second := recv(t, url, 1, 0) // long poll of 1 s sees it come back
		for i := 0; len(second) == 0 && i < 3; i++ {
			second = recv(t, url, 1, 0)
		}
		if len(second) != 1 || time.Since(start) < 500*time.Millisecond {
			t.Fatalf("redelivery: %d messages after %v", len(second), time.Since(start))
		}
		if *second[0].ReceiptHandle == *first[0].ReceiptHandle || second[0].Attributes["ApproximateReceiveCount"] != "2" {
			t.Fatalf("redelivered message %+v", second[0])
		}
		// Visibility 0 makes it visible at once.
		if _, err := q.ChangeMessageVisibility(ctx, &sqs.ChangeMessageVisibilityInput{QueueUrl: &url, ReceiptHandle: second[0].ReceiptHandle, VisibilityTimeout: 0}); err != nil {
			t.Fatal(err)
		}
		third := recv(t, url, 1, 0)
		if len(third) != 1 || third[0].Attributes["ApproximateReceiveCount"] != "3" {
			t.Fatalf("after visibility 0: %+v", third)
		}
	})

	t.Run("batches", func(t *testing.T) {
		url := create(t, "batch", 30)
		for i := range 3 {
			send(t, url, fmt.Sprint("m", i))
		}
		var msgs []sqstypes.Message
		for i := 0; len(msgs) < 3 && i < 5; i++ {
			msgs = append(msgs, recv(t, url, 10, 0)...)
		}
		if len(msgs) != 3 {
			t.Fatalf("received %d of 3", len(msgs))
		}
		cv, err := q.ChangeMessageVisibilityBatch(ctx, &sqs.ChangeMessageVisibilityBatchInput{QueueUrl: &url, Entries: []sqstypes.ChangeMessageVisibilityBatchRequestEntry{
			{Id: aws.String("a"), ReceiptHandle: msgs[0].ReceiptHandle, VisibilityTimeout: 60},
			{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle"), VisibilityTimeout: 60},
		}})
		if err != nil || len(cv.Successful) != 1 || len(cv.Failed) != 1 || *cv.Failed[0].Id != "bad" || !cv.Failed[0].SenderFault {
			t.Fatalf("ChangeMessageVisibilityBatch %+v %v", cv, err)
		}
		var entries []sqstypes.DeleteMessageBatchRequestEntry
		for i, m := range msgs {
			entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String(fmt.Sprint("e", i)), ReceiptHandle: m.ReceiptHandle})
		}
		entries = append(entries, sqstypes.DeleteMessageBatchRequestEntry{Id: aws.String("bad"), ReceiptHandle: aws.String("not-a-handle")})
		del, err := q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: entries})
		if err != nil {
			t.Fatal(err)
		}
		var ok []string
		for _, s := range del.Successful {
			ok = append(ok, *s.Id)
		}
		sort.Strings(ok)
		if fmt.Sprint(ok) != "[e0 e1 e2]" || len(del.Failed) != 1 || *del.Failed[0].Code != "ReceiptHandleIsInvalid" {
			t.Fatalf("DeleteMessageBatch ok=%v failed=%+v", ok, del.Failed)
		}
		_, err = q.DeleteMessageBatch(ctx, &sqs.DeleteMessageBatchInput{QueueUrl: &url, Entries: []sqstypes.DeleteMessageBatchRequestEntry{}})
		var empty *sqstypes.EmptyBatchRequest
		if !errors.As(err, &empty) {
			t.Fatalf("empty batch: %v", err)
		}
	})

	t.Run("purge", func(t *testing.T) {
		url := create(t, "purge", 30)
		send(t, url, "x")
		if _, err := q.PurgeQueue(ctx, &sqs.PurgeQueueInput{QueueUrl: &url}); err != nil {
			t.Fatal(err)
		}
		if v, _ := attrs(t, url); v != "0" {
			t.Fatalf("after purge %s visible", v)
		}
	})

	t.Run("errors", func(t *testing.T) {
		url := create(t, "exists", 30)
		missing := strings.TrimSuffix(url, "exists") + "missing-queue"
		var dne *sqstypes.QueueDoesNotExist
		if _, err := q.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String("missing-queue")}); !errors.As(err, &dne) {
			t.Fatalf("GetQueueUrl of a missing queue: %v; want *types.QueueDoesNotExist", err)
		}
		if _, err := q.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &missing, MessageBody: aws.String("x")}); !errors.As(err, &dne) {
			t.Fatalf("SendMessage to a missing queue: %v", err)
		}
		var invalid *sqstypes.ReceiptHandleIsInvalid
		if _, err := q.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &url, ReceiptHandle: aws.String("bogus")}); !errors.As(err, &invalid) {
			t.Fatalf("DeleteMessage with a bogus handle: %v", err)
		}
		_, err := q.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &url, MaxNumberOfMessages: 11})
		requireCode(t, err, "InvalidParameterValue", "MaxNumberOfMessages")
		var exists *sqstypes.QueueNameExists
		if _, err := q.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String("exists"), Attributes: map[string]string{"VisibilityTimeout": "31"}}); !errors.As(err, &exists) {
			t.Fatalf("CreateQueue with other attributes: %v; want *types.QueueNameExists", err)
		}
	})
}

func TestSQSScenariosEmulator(t *testing.T) {
	e := StartTest(t, Config{})
	sqsScenarios(t, e.SQSClient())
}

func TestSQSScenariosMoto(t *testing.T) {
	endpoint := motoserver.Start(t)
	e := StartTest(t, Config{}) // only for its aws.Config
	sqsScenarios(t, sqs.NewFromConfig(e.AWSConfig(), func(o *sqs.Options) { o.BaseEndpoint = aws.String(endpoint) }))
}

func TestLongPollReturnsEarly(t *testing.T) {
	e := StartTest(t, Config{})
	q := e.SQSClient()
	url, _ := e.CreateQueue("poll")
	go func() {
		time.Sleep(100 * time.Millisecond)
		_, _ = e.queues.send(url, "late", -1)
	}()
	start := time.Now()
	out, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 10})
	if err != nil || len(out.Messages) != 1 {
		t.Fatalf("receive: %v, %d messages", err, len(out.Messages))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("long poll took %v; want an early return", d)
	}
}

func TestLongPollEndsOnClose(t *testing.T) {
	e, err := Start(Config{})
	if err != nil {
		t.Fatal(err)
	}
	url, _ := e.CreateQueue("closing")
	q := e.SQSClient(func(o *sqs.Options) { o.RetryMaxAttempts = 1 })
	done := make(chan error, 1)
	go func() {
		_, err := q.ReceiveMessage(testContext(t), &sqs.ReceiveMessageInput{QueueUrl: &url, WaitTimeSeconds: 20})
		done <- err
	}()
	time.Sleep(100 * time.Millisecond)
	start := time.Now()
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("long poll still running after Close")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Close took %v", d)
	}
}
