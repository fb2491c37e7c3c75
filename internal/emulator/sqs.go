package emulator

import (
	"net/http"
	"slices"
	"strconv"
	"time"
)

func (e *Emulator) sqsService() *service {
	return &service{
		name:        "sqs",
		contentType: "application/x-amz-json-1.0",
		ops: map[string]handlerFunc{
			"CreateQueue":                  e.sqsCreateQueue,
			"GetQueueUrl":                  e.sqsGetQueueURL,
			"GetQueueAttributes":           e.sqsGetQueueAttributes,
			"SendMessage":                  e.sqsSendMessage,
			"ReceiveMessage":               e.sqsReceiveMessage,
			"DeleteMessage":                e.sqsDeleteMessage,
			"DeleteMessageBatch":           e.sqsDeleteMessageBatch,
			"ChangeMessageVisibility":      e.sqsChangeMessageVisibility,
			"ChangeMessageVisibilityBatch": e.sqsChangeMessageVisibilityBatch,
			"PurgeQueue":                   e.sqsPurgeQueue,
		},
	}
}

type empty struct{}

func (e *Emulator) sqsCreateQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueName  string
		Attributes map[string]string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	u, err := e.queues.createQueue(in.QueueName, in.Attributes)
	if err != nil {
		return nil, err
	}
	return map[string]string{"QueueUrl": u}, nil
}

func (e *Emulator) sqsGetQueueURL(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ QueueName string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	q, ok := e.queues.queues[in.QueueName]
	if !ok {
		return nil, queueDoesNotExist()
	}
	return map[string]string{"QueueUrl": q.url}, nil
}

func (e *Emulator) sqsGetQueueAttributes(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl       string
		AttributeNames []string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	attrs, err := e.queues.attributes(in.QueueUrl, in.AttributeNames)
	if err != nil {
		return nil, err
	}
	return map[string]any{"Attributes": attrs}, nil
}

func (e *Emulator) sqsSendMessage(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl     string
		MessageBody  string
		DelaySeconds *int
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	delay := time.Duration(-1)
	if in.DelaySeconds != nil {
		if *in.DelaySeconds < 0 || *in.DelaySeconds > 900 {
			return nil, invalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.", *in.DelaySeconds)
		}
		delay = time.Duration(*in.DelaySeconds) * time.Second
	}
	m, err := e.queues.send(in.QueueUrl, in.MessageBody, delay)
	if err != nil {
		return nil, err
	}
	return map[string]string{"MessageId": m.id, "MD5OfMessageBody": m.md5}, nil
}

type sqsMessage struct {
	MessageId     string
	ReceiptHandle string
	MD5OfBody     string
	Body          string
	Attributes    map[string]string `json:",omitempty"`
}

func (e *Emulator) sqsReceiveMessage(r *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         *int
		WaitTimeSeconds             *int
		VisibilityTimeout           *int
		AttributeNames              []string
		MessageSystemAttributeNames []string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	n := 1
	if in.MaxNumberOfMessages != nil {
		n = *in.MaxNumberOfMessages
		if n < 1 || n > 10 {
			return nil, invalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", n)
		}
	}
	wait := time.Duration(-1)
	if in.WaitTimeSeconds != nil {
		if *in.WaitTimeSeconds < 0 || *in.WaitTimeSeconds > 20 {
			return nil, invalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", *in.WaitTimeSeconds)
		}
		wait = time.Duration(*in.WaitTimeSeconds) * time.Second
	}
	vis := time.Duration(-1)
	if in.VisibilityTimeout != nil {
		if *in.VisibilityTimeout < 0 || time.Duration(*in.VisibilityTimeout)*time.Second > maxVisibilityTimeout {
			return nil, invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", *in.VisibilityTimeout)
		}
		vis = time.Duration(*in.VisibilityTimeout) * time.Second
	}
	if wait < 0 {
		e.queues.mu.Lock()
		q, err := e.queues.lookup(in.QueueUrl)
		if err == nil {
			wait = q.wait
		}
		e.queues.mu.Unlock()
		if err != nil {
			return nil, err
		}
	}
	got, err := e.queues.receive(in.QueueUrl, n, wait, vis, r.Context().Done())
	if err != nil {
		return nil, err
	}
	names := append(slices.Clone(in.AttributeNames), in.MessageSystemAttributeNames...)
	out := struct{ Messages []sqsMessage }{Messages: []sqsMessage{}}
	for _, g := range got {
		out.Messages = append(out.Messages, sqsMessage{
			MessageId:     g.m.id,
			ReceiptHandle: g.handle,
			MD5OfBody:     g.m.md5,
			Body:          g.m.body,
			Attributes:    systemAttributes(g, names),
		})
	}
	return out, nil
}

// systemAttributes returns the message system attributes asked for.
func systemAttributes(g receivedMessage, names []string) map[string]string {
	all := slices.Contains(names, "All")
	out := map[string]string{}
	add := func(name, v string) {
		if all || slices.Contains(names, name) {
			out[name] = v
		}
	}
	add("ApproximateReceiveCount", strconv.Itoa(g.count))
	add("SentTimestamp", strconv.FormatInt(g.m.sent.UnixMilli(), 10))
	add("ApproximateFirstReceiveTimestamp", strconv.FormatInt(g.m.firstReceive.UnixMilli(), 10))
	add("SenderId", "AIDAEMULATOR")
	if len(out) == 0 {
		return nil
	}
	return out
}

type receiptInput struct {
	QueueUrl          string
	ReceiptHandle     string
	VisibilityTimeout int
}

func (e *Emulator) sqsDeleteMessage(_ *http.Request, body []byte) (any, *apiError) {
	var in receiptInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.queues.deleteMessage(in.QueueUrl, in.ReceiptHandle); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (e *Emulator) sqsChangeMessageVisibility(_ *http.Request, body []byte) (any, *apiError) {
	var in receiptInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.queues.changeVisibility(in.QueueUrl, in.ReceiptHandle, time.Duration(in.VisibilityTimeout)*time.Second); err != nil {
		return nil, err
	}
	return empty{}, nil
}

type batchEntry struct {
	Id                string
	ReceiptHandle     string
	VisibilityTimeout int
}

type batchResultError struct {
	Id          string
	Code        string
	Message     string
	SenderFault bool
}

type batchOutput struct {
	Successful []map[string]string
	Failed     []batchResultError
}

// runBatch checks a batch request and applies fn to each entry.
func (e *Emulator) runBatch(body []byte, fn func(queueURL string, entry batchEntry) *apiError) (any, *apiError) {
	var in struct {
		QueueUrl string
		Entries  []batchEntry
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	e.queues.mu.Lock()
	_, qerr := e.queues.lookup(in.QueueUrl)
	e.queues.mu.Unlock()
	if qerr != nil {
		return nil, qerr
	}
	switch {
	case len(in.Entries) == 0:
		return nil, &apiError{status: http.StatusBadRequest, code: "EmptyBatchRequest", queryCode: "AWS.SimpleQueueService.EmptyBatchRequest",
			message: "There should be at least one entry in the request."}
	case len(in.Entries) > 10:
		return nil, &apiError{status: http.StatusBadRequest, code: "TooManyEntriesInBatchRequest", queryCode: "AWS.SimpleQueueService.TooManyEntriesInBatchRequest",
			message: "Maximum number of entries per request are 10. You have sent " + strconv.Itoa(len(in.Entries)) + "."}
	}
	seen := map[string]bool{}
	for _, en := range in.Entries {
		if seen[en.Id] {
			return nil, &apiError{status: http.StatusBadRequest, code: "BatchEntryIdsNotDistinct", queryCode: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
				message: "Id " + en.Id + " repeated."}
		}
		seen[en.Id] = true
	}
	out := batchOutput{Successful: []map[string]string{}, Failed: []batchResultError{}}
	for _, en := range in.Entries {
		if err := fn(in.QueueUrl, en); err != nil {
			out.Failed = append(out.Failed, batchResultError{Id: en.Id, Code: err.code, Message: err.message, SenderFault: !err.server})
			continue
		}
		out.Successful = append(out.Successful, map[string]string{"Id": en.Id})
	}
	return out, nil
}

func (e *Emulator) sqsDeleteMessageBatch(_ *http.Request, body []byte) (any, *apiError) {
	return e.runBatch(body, func(queueURL string, en batchEntry) *apiError {
		return e.queues.deleteMessage(queueURL, en.ReceiptHandle)
	})
}

func (e *Emulator) sqsChangeMessageVisibilityBatch(_ *http.Request, body []byte) (any, *apiError) {
	return e.runBatch(body, func(queueURL string, en batchEntry) *apiError {
		return e.queues.changeVisibility(queueURL, en.ReceiptHandle, time.Duration(en.VisibilityTimeout)*time.Second)
	})
}

func (e *Emulator) sqsPurgeQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ QueueUrl string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.queues.purge(in.QueueUrl); err != nil {
		return nil, err
	}
	return empty{}, nil
}
