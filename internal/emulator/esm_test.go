package emulator

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	ltypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"
)

// esmFixture is an emulator with the test function and a queue.
type esmFixture struct {
	e        *Emulator
	tf       testFunction
	lc       *lambda.Client
	sc       *sqs.Client
	queueURL string
	queueARN string
}

func newESMFixture(t *testing.T, fnTimeout time.Duration, visibility int) *esmFixture {
	t.Helper()
	tf := buildTestFunction(t)
	e := StartTest(t, Config{})
	tf.add(t, e, "fn", fnTimeout, nil)
	sc := e.SQSClient()
	out, err := sc.CreateQueue(testContext(t), &sqs.CreateQueueInput{QueueName: aws.String("q"),
		Attributes: map[string]string{"VisibilityTimeout": strconv.Itoa(visibility)}})
	if err != nil {
		t.Fatal(err)
	}
	return &esmFixture{e: e, tf: tf, lc: e.LambdaClient(), sc: sc, queueURL: aws.ToString(out.QueueUrl),
		queueARN: "arn:aws:sqs:us-east-1:123456789012:q"}
}

// send sends the bodies in one batch and returns their message IDs.
func (x *esmFixture) send(t *testing.T, bodies ...string) []string {
	t.Helper()
	var entries []sqstypes.SendMessageBatchRequestEntry
	for i, b := range bodies {
		entries = append(entries, sqstypes.SendMessageBatchRequestEntry{Id: aws.String(strconv.Itoa(i)), MessageBody: aws.String(b)})
	}
	out, err := x.sc.SendMessageBatch(testContext(t), &sqs.SendMessageBatchInput{QueueUrl: &x.queueURL, Entries: entries})
	if err != nil || len(out.Failed) > 0 {
		t.Fatalf("SendMessageBatch: %v %+v", err, out)
	}
	ids := make([]string, len(bodies))
	for _, s := range out.Successful {
		i, _ := strconv.Atoi(aws.ToString(s.Id))
		ids[i] = aws.ToString(s.MessageId)
	}
	return ids
}

// mapping creates an event source mapping through the Lambda API.
func (x *esmFixture) mapping(t *testing.T, in lambda.CreateEventSourceMappingInput) string {
	t.Helper()
	if in.EventSourceArn == nil {
		in.EventSourceArn = &x.queueARN
	}
	if in.FunctionName == nil {
		in.FunctionName = aws.String("fn")
	}
	out, err := x.lc.CreateEventSourceMapping(testContext(t), &in)
	if err != nil {
		t.Fatalf("CreateEventSourceMapping: %v", err)
	}
	return aws.ToString(out.UUID)
}

// waitBatches waits until the mapping has run n batches and returns its stats.
func (x *esmFixture) waitBatches(t *testing.T, uuid string, n int) EventSourceStats {
	t.Helper()
	var st EventSourceStats
	eventually(t, strconv.Itoa(n)+" batches", func() bool {
		st, _ = x.e.EventSourceStats(uuid)
		return st.Batches >= n
	})
	return st
}

// queued counts the messages left on the queue, visible or not.
func (x *esmFixture) queued(t *testing.T) int {
	t.Helper()
	out, err := x.sc.GetQueueAttributes(testContext(t), &sqs.GetQueueAttributesInput{QueueUrl: &x.queueURL,
		AttributeNames: []sqstypes.QueueAttributeName{"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"}})
	if err != nil {
		t.Fatal(err)
	}
	a, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessages"])
	b, _ := strconv.Atoi(out.Attributes["ApproximateNumberOfMessagesNotVisible"])
	return a + b
}

func TestEventSourceMappingAPI(t *testing.T) {
	x := newESMFixture(t, 3*time.Second, 30)
	ctx := testContext(t)
	created, err := x.lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{
		EventSourceArn: &x.queueARN, FunctionName: aws.String("fn"), BatchSize: aws.Int32(5),
		MaximumBatchingWindowInSeconds: aws.Int32(2),
		FunctionResponseTypes:          []ltypes.FunctionResponseType{ltypes.FunctionResponseTypeReportBatchItemFailures},
	})
	if err != nil {
		t.Fatal(err)
	}
	uuid := aws.ToString(created.UUID)
	if aws.ToString(created.State) != "Creating" || aws.ToInt32(created.BatchSize) != 5 ||
		aws.ToInt32(created.MaximumBatchingWindowInSeconds) != 2 || aws.ToString(created.FunctionArn) != x.e.FunctionARN("fn") ||
		aws.ToString(created.EventSourceArn) != x.queueARN || created.LastModified == nil ||
		!slices.Equal(created.FunctionResponseTypes, []ltypes.FunctionResponseType{"ReportBatchItemFailures"}) {
		t.Errorf("created %+v", created)
	}
	var got *lambda.GetEventSourceMappingOutput
	eventually(t, "the mapping Enabled", func() bool {
		got, err = x.lc.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: &uuid})
		return err == nil && aws.ToString(got.State) == "Enabled"
	})
	if aws.ToString(got.LastProcessingResult) != "No records processed" || aws.ToString(got.StateTransitionReason) != "USER_INITIATED" {
		t.Errorf("got %+v", got)
	}

	// Listed by function name or ARN, and by queue.
	for _, in := range []*lambda.ListEventSourceMappingsInput{
		{FunctionName: aws.String("fn")},
		{FunctionName: aws.String(x.e.FunctionARN("fn"))},
		{EventSourceArn: &x.queueARN},
		{},
	} {
		list, err := x.lc.ListEventSourceMappings(ctx, in)
		if err != nil {
			t.Fatal(err)
		}
		if len(list.EventSourceMappings) != 1 || aws.ToString(list.EventSourceMappings[0].UUID) != uuid {
			t.Errorf("list %+v: %+v", in, list.EventSourceMappings)
		}
	}
	list, err := x.lc.ListEventSourceMappings(ctx, &lambda.ListEventSourceMappingsInput{FunctionName: aws.String("other")})
	if err != nil || len(list.EventSourceMappings) != 0 {
		t.Errorf("list of another function: %v %+v", err, list)
	}

	cfg, err := x.lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("fn")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt32(cfg.Timeout) != 3 || aws.ToString(cfg.FunctionArn) != x.e.FunctionARN("fn") || aws.ToInt32(cfg.MemorySize) != 128 ||
		cfg.State != ltypes.StateActive || aws.ToString(cfg.Handler) != "bootstrap" {
		t.Errorf("configuration %+v", cfg)
	}

	// Update: disable and drop ReportBatchItemFailures.
	up, err := x.lc.UpdateEventSourceMapping(ctx, &lambda.UpdateEventSourceMappingInput{UUID: &uuid, Enabled: aws.Bool(false),
		FunctionResponseTypes: []ltypes.FunctionResponseType{}})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(up.State) != "Disabling" || len(up.FunctionResponseTypes) != 0 {
		t.Errorf("updated %+v", up)
	}
	eventually(t, "the mapping Disabled", func() bool {
		got, err = x.lc.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: &uuid})
		return err == nil && aws.ToString(got.State) == "Disabled"
	})

	del, err := x.lc.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: &uuid})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(del.State) != "Deleting" {
		t.Errorf("deleted %+v", del)
	}
	var nf *ltypes.ResourceNotFoundException
	if _, err := x.lc.GetEventSourceMapping(ctx, &lambda.GetEventSourceMappingInput{UUID: &uuid}); !errors.As(err, &nf) {
		t.Errorf("Get after Delete: %v; want ResourceNotFoundException", err)
	}
	if _, err := x.lc.DeleteEventSourceMapping(ctx, &lambda.DeleteEventSourceMappingInput{UUID: &uuid}); !errors.As(err, &nf) {
		t.Errorf("Delete twice: %v; want ResourceNotFoundException", err)
	}
	if _, err := x.lc.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String("nope")}); !errors.As(err, &nf) {
		t.Errorf("GetFunctionConfiguration of an unknown function: %v; want ResourceNotFoundException", err)
	}
}

func TestEventSourceMappingRefused(t *testing.T) {
	x := newESMFixture(t, 40*time.Second, 30)
	ctx := testContext(t)
	tf := x.tf
	tf.add(t, x.e, "short", time.Second, nil)
	var invalid *ltypes.InvalidParameterValueException
	var nf *ltypes.ResourceNotFoundException
	var conflict *ltypes.ResourceConflictException
	for name, c := range map[string]struct {
		in   lambda.CreateEventSourceMappingInput
		want any
		msg  string
	}{
		"visibility under the timeout": {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("fn")}, &invalid, "Queue visibility timeout: 30 seconds is less than Function timeout: 40 seconds"},
		"unknown function":             {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("nope")}, &nf, "Function not found"},
		"unknown queue":                {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), EventSourceArn: aws.String("arn:aws:sqs:us-east-1:123456789012:nope")}, &invalid, "does not exist"},
		"batch over 10 without window": {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), BatchSize: aws.Int32(20)}, &invalid, "Maximum batch window"},
		"batch too large":              {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), BatchSize: aws.Int32(10001), MaximumBatchingWindowInSeconds: aws.Int32(1)}, &invalid, "BatchSize"},
		"window too long":              {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), MaximumBatchingWindowInSeconds: aws.Int32(301)}, &invalid, "MaximumBatchingWindowInSeconds"},
		"response type":                {lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), FunctionResponseTypes: []ltypes.FunctionResponseType{"Other"}}, &invalid, "functionResponseTypes"},
	} {
		t.Run(name, func(t *testing.T) {
			if c.in.EventSourceArn == nil {
				c.in.EventSourceArn = &x.queueARN
			}
			_, err := x.lc.CreateEventSourceMapping(ctx, &c.in)
			if !errors.As(err, c.want) {
				t.Fatalf("error %v; want %T", err, c.want)
			}
			requireLambdaMessage(t, err, c.msg)
		})
	}
	x.mapping(t, lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), Enabled: aws.Bool(false)})
	_, err := x.lc.CreateEventSourceMapping(ctx, &lambda.CreateEventSourceMappingInput{FunctionName: aws.String("short"), EventSourceArn: &x.queueARN})
	if !errors.As(err, &conflict) {
		t.Errorf("a second mapping of the same queue and function: %v; want ResourceConflictException", err)
	}
}

func requireLambdaMessage(t *testing.T, err error, msg string) {
	t.Helper()
	if !bytes.Contains([]byte(err.Error()), []byte(msg)) {
		t.Errorf("error %q does not contain %q", err, msg)
	}
}

// The event is built as Lambda builds it for SQS.
func TestEventSourceEventShape(t *testing.T) {
	x := newESMFixture(t, 3*time.Second, 30)
	ctx := testContext(t)
	sent, err := x.sc.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: &x.queueURL, MessageBody: aws.String("hello"),
		MessageAttributes: map[string]sqstypes.MessageAttributeValue{
			"Color": {DataType: aws.String("String"), StringValue: aws.String("blue")},
			"Blob":  {DataType: aws.String("Binary"), BinaryValue: []byte{1, 2}},
		}})
	if err != nil {
		t.Fatal(err)
	}
	before := time.Now()
	uuid := x.mapping(t, lambda.CreateEventSourceMappingInput{})
	x.waitBatches(t, uuid, 1)
	invs := x.tf.invocations(t)
	if len(invs) != 1 {
		t.Fatalf("%d invocations; want 1", len(invs))
	}
	raw := invs[0].Event
	// Key order, as Lambda writes it.
	var ev struct{ Records []json.RawMessage }
	if err := json.Unmarshal(raw, &ev); err != nil || len(ev.Records) != 1 {
		t.Fatalf("event %s: %v", raw, err)
	}
	wantKeys := []string{"messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfMessageAttributes",
		"md5OfBody", "eventSource", "eventSourceARN", "awsRegion"}
	if keys := objectKeys(t, ev.Records[0]); !slices.Equal(keys, wantKeys) {
		t.Errorf("record keys %v; want %v", keys, wantKeys)
	}
	var rec struct {
		MessageID, ReceiptHandle, Body, MD5OfBody, MD5OfMessageAttributes, EventSource, EventSourceARN, AWSRegion string
		Attributes                                                                                                map[string]string
		MessageAttributes                                                                                         map[string]map[string]any
	}
	if err := json.Unmarshal(ev.Records[0], &rec); err != nil {
		t.Fatal(err)
	}
	if rec.MessageID != aws.ToString(sent.MessageId) || rec.Body != "hello" || rec.MD5OfBody != aws.ToString(sent.MD5OfMessageBody) ||
		rec.MD5OfMessageAttributes != aws.ToString(sent.MD5OfMessageAttributes) || rec.EventSource != "aws:sqs" ||
		rec.EventSourceARN != x.queueARN || rec.AWSRegion != "us-east-1" || len(rec.ReceiptHandle) == 0 {
		t.Errorf("record %+v", rec)
	}
	attrKeys := objectKeys(t, mustField(t, ev.Records[0], "attributes"))
	if !slices.Equal(attrKeys, []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}) {
		t.Errorf("attributes %v", attrKeys)
	}
	if rec.Attributes["ApproximateReceiveCount"] != "1" {
		t.Errorf("ApproximateReceiveCount %q", rec.Attributes["ApproximateReceiveCount"])
	}
	if ms, _ := strconv.ParseInt(rec.Attributes["ApproximateFirstReceiveTimestamp"], 10, 64); time.UnixMilli(ms).Before(before.Add(-time.Millisecond)) {
		t.Errorf("ApproximateFirstReceiveTimestamp %s is before the mapping", rec.Attributes["ApproximateFirstReceiveTimestamp"])
	}
	color, _ := json.Marshal(rec.MessageAttributes["Color"])
	if string(color) != `{"binaryListValues":[],"dataType":"String","stringListValues":[],"stringValue":"blue"}` {
		t.Errorf("Color %s", color)
	}
	blob, _ := json.Marshal(rec.MessageAttributes["Blob"])
	if string(blob) != `{"binaryListValues":[],"binaryValue":"AQI=","dataType":"Binary","stringListValues":[]}` {
		t.Errorf("Blob %s", blob)
	}
	if keys := objectKeys(t, mustField(t, mustField(t, ev.Records[0], "messageAttributes"), "Color")); !slices.Equal(keys,
		[]string{"stringValue", "stringListValues", "binaryListValues", "dataType"}) {
		t.Errorf("message attribute keys %v", keys)
	}
	eventually(t, "the message deleted", func() bool { return x.queued(t) == 0 })
}

func objectKeys(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(raw))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("not an object: %s", raw)
	}
	var keys []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return keys
}

func mustField(t *testing.T, raw json.RawMessage, name string) json.RawMessage {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m[name]
}

// Partial batch responses count only with ReportBatchItemFailures.
func TestEventSourcePartialBatch(t *testing.T) {
	rbif := []ltypes.FunctionResponseType{ltypes.FunctionResponseTypeReportBatchItemFailures}
	for _, c := range []struct {
		name                  string
		types                 []ltypes.FunctionResponseType
		bodies                []string
		deleted, left, errors int
	}{
		{"reported failure returns", rbif, []string{"ok", "fail", "ok"}, 2, 1, 0},
		{"ignored without the response type", nil, []string{"ok", "fail", "ok"}, 3, 0, 0},
		{"empty itemIdentifier fails all", rbif, []string{"ok", "badid", "ok"}, 0, 3, 0},
		{"unknown itemIdentifier fails all", rbif, []string{"ok", "unknownid", "ok"}, 0, 3, 0},
		{"no failures", rbif, []string{"ok", "ok"}, 2, 0, 0},
		{"function error returns all", rbif, []string{"ok", "error", "ok"}, 0, 3, 1},
		{"function error without the response type", nil, []string{"ok", "error"}, 0, 2, 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			x := newESMFixture(t, 3*time.Second, 30)
			x.send(t, c.bodies...)
			uuid := x.mapping(t, lambda.CreateEventSourceMappingInput{FunctionResponseTypes: c.types})
			st := x.waitBatches(t, uuid, 1)
			if err := x.e.RemoveEventSource(uuid); err != nil {
				t.Fatal(err)
			}
			want := EventSourceStats{Batches: 1, Records: len(c.bodies), Deleted: c.deleted, Returned: c.left, FunctionErrors: c.errors}
			if st != want {
				t.Errorf("stats %+v; want %+v", st, want)
			}
			if n := x.queued(t); n != c.left {
				t.Errorf("%d messages left on the queue; want %d", n, c.left)
			}
		})
	}
}

// A timeout gives the whole batch back; it comes back when its visibility
// timeout ends and a new process handles it.
func TestEventSourceTimeoutAndRestart(t *testing.T) {
	x := newESMFixture(t, time.Second, 1)
	ids := x.send(t, "ok", "exit-once")
	uuid := x.mapping(t, lambda.CreateEventSourceMappingInput{
		FunctionResponseTypes: []ltypes.FunctionResponseType{ltypes.FunctionResponseTypeReportBatchItemFailures}})
	st := x.waitBatches(t, uuid, 2)
	eventually(t, "the queue empty", func() bool { return x.queued(t) == 0 })
	st, _ = x.e.EventSourceStats(uuid)
	if st.FunctionErrors != 1 || st.Deleted != 2 || st.Batches != 2 {
		t.Errorf("stats %+v; want the first batch failed, the second deleted both", st)
	}
	fs, _ := x.e.FunctionStats("fn")
	if fs.Starts != 2 {
		t.Errorf("function stats %+v; want 2 starts", fs)
	}
	invs := x.tf.invocations(t)
	if len(invs) != 2 || invs[0].PID == invs[1].PID {
		t.Fatalf("invocations %+v; want 2 by 2 processes", invs)
	}
	var second struct {
		Records []struct {
			MessageID  string
			Attributes map[string]string
		}
	}
	if err := json.Unmarshal(invs[1].Event, &second); err != nil {
		t.Fatal(err)
	}
	for _, r := range second.Records {
		if !slices.Contains(ids, r.MessageID) || r.Attributes["ApproximateReceiveCount"] != "2" {
			t.Errorf("redelivered record %+v; want ApproximateReceiveCount 2", r)
		}
	}

	// A timeout.
	x.send(t, "sleep")
	st = x.waitBatches(t, uuid, 3)
	if st.FunctionErrors != 2 || st.Returned != 3 {
		t.Errorf("after the timeout %+v", st)
	}
	if err := x.e.RemoveEventSource(uuid); err != nil {
		t.Fatal(err)
	}
	fs, _ = x.e.FunctionStats("fn")
	if fs.Timeouts != 1 {
		t.Errorf("function stats %+v; want a timeout", fs)
	}
}

// BatchSize above 10 with a batching window gathers one batch.
func TestEventSourceBatching(t *testing.T) {
	x := newESMFixture(t, 3*time.Second, 30)
	var bodies []string
	for i := range 15 {
		bodies = append(bodies, "ok-"+strconv.Itoa(i))
	}
	x.send(t, bodies[:10]...)
	x.send(t, bodies[10:]...)
	uuid, err := x.e.AddEventSource("q", "fn", EventSourceOptions{BatchSize: 15, MaximumBatchingWindow: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	st := x.waitBatches(t, uuid, 1)
	if st.Records != 15 || st.Deleted != 15 {
		t.Errorf("stats %+v; want one batch of 15", st)
	}
	// The window ends a smaller batch.
	x.send(t, "ok")
	st = x.waitBatches(t, uuid, 2)
	if st.Records != 16 {
		t.Errorf("stats %+v; want a batch of 1 after the window", st)
	}
}
