package emulator

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"regexp"
	"strconv"
)

func (e *Emulator) sqsService() *service {
	return &service{
		name:        "sqs",
		contentType: "application/x-amz-json-1.0",
		ops: map[string]handlerFunc{
			"CreateQueue":                  e.sqsCreateQueue,
			"GetQueueUrl":                  e.sqsGetQueueURL,
			"GetQueueAttributes":           e.sqsGetQueueAttributes,
			"SetQueueAttributes":           e.sqsSetQueueAttributes,
			"DeleteQueue":                  e.sqsDeleteQueue,
			"ListQueues":                   e.sqsListQueues,
			"ListDeadLetterSourceQueues":   e.sqsListDeadLetterSourceQueues,
			"TagQueue":                     e.sqsTagQueue,
			"UntagQueue":                   e.sqsUntagQueue,
			"ListQueueTags":                e.sqsListQueueTags,
			"SendMessage":                  e.sqsSendMessage,
			"SendMessageBatch":             e.sqsSendMessageBatch,
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

func missing(name string) *apiError {
	return errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter %s.", name)
}

func (e *Emulator) sqsCreateQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueName  string
		Attributes map[string]string
		Tags       map[string]string `json:"tags"`
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, missing("QueueName")
	}
	u, err := e.queues.createQueueWithTags(in.QueueName, in.Attributes, in.Tags)
	if err != nil {
		return nil, err
	}
	return map[string]string{"QueueUrl": u}, nil
}

func (e *Emulator) sqsGetQueueURL(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ QueueName, QueueOwnerAWSAccountId string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if in.QueueName == "" {
		return nil, missing("QueueName")
	}
	if in.QueueOwnerAWSAccountId != "" && in.QueueOwnerAWSAccountId != e.cfg.AccountID {
		return nil, queueDoesNotExist()
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
	if len(attrs) == 0 {
		return empty{}, nil
	}
	return map[string]any{"Attributes": attrs}, nil
}

func (e *Emulator) sqsSetQueueAttributes(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl   string
		Attributes map[string]string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.queues.setAttributes(in.QueueUrl, in.Attributes); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (e *Emulator) sqsDeleteQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ QueueUrl string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.queues.deleteQueue(in.QueueUrl); err != nil {
		return nil, err
	}
	return empty{}, nil
}

// listPage pages a name-sorted list of queues: MaxResults 1 to 1000 (no
// NextToken without it, as SQS answers), NextToken the base64 of the last
// name returned.
func listPage(qs []*queue, maxResults *int64, token string) (urls []string, next string, err *apiError) {
	if maxResults != nil && (*maxResults < 1 || *maxResults > 1000) {
		return nil, "", invalidParameter("Value %d for parameter MaxResults is invalid. Reason: Must be between 1 and 1000.", *maxResults)
	}
	after := ""
	if token != "" {
		b, derr := base64.RawURLEncoding.DecodeString(token)
		if derr != nil || len(b) == 0 {
			return nil, "", invalidParameter("Invalid NextToken value.")
		}
		after = string(b)
	}
	limit := 1000
	if maxResults != nil {
		limit = int(*maxResults)
	}
	for i, q := range qs {
		if after != "" && q.name <= after {
			continue
		}
		if len(urls) == limit {
			if maxResults != nil {
				next = base64.RawURLEncoding.EncodeToString([]byte(qs[i-1].name))
			}
			break
		}
		urls = append(urls, q.url)
	}
	return urls, next, nil
}

func (e *Emulator) sqsListQueues(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueNamePrefix string
		NextToken       string
		MaxResults      *int64
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	urls, next, err := listPage(e.queues.listQueues(in.QueueNamePrefix), in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	return struct {
		QueueUrls []string `json:",omitempty"`
		NextToken string   `json:",omitempty"`
	}{urls, next}, nil
}

func (e *Emulator) sqsListDeadLetterSourceQueues(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl   string
		NextToken  string
		MaxResults *int64
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	qs, err := e.queues.deadLetterSources(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	urls, next, err := listPage(qs, in.MaxResults, in.NextToken)
	if err != nil {
		return nil, err
	}
	if urls == nil {
		urls = []string{} // queueUrls is required
	}
	return struct {
		QueueUrls []string `json:"queueUrls"`
		NextToken string   `json:",omitempty"`
	}{urls, next}, nil
}

func (e *Emulator) sqsTagQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl string
		Tags     map[string]string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if len(in.Tags) == 0 {
		return nil, missing("Tags")
	}
	if err := e.queues.tagQueue(in.QueueUrl, in.Tags, nil); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (e *Emulator) sqsUntagQueue(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl string
		TagKeys  []string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if len(in.TagKeys) == 0 {
		return nil, missing("TagKeys")
	}
	if err := e.queues.tagQueue(in.QueueUrl, nil, in.TagKeys); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (e *Emulator) sqsListQueueTags(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ QueueUrl string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	tags, err := e.queues.listTags(in.QueueUrl)
	if err != nil {
		return nil, err
	}
	if len(tags) == 0 {
		return empty{}, nil
	}
	return map[string]any{"Tags": tags}, nil
}

// sendInput is SendMessage's input and a SendMessageBatch entry.
type sendInput struct {
	QueueUrl                string
	Id                      string
	MessageBody             string
	DelaySeconds            *int64
	MessageAttributes       map[string]messageAttribute
	MessageSystemAttributes map[string]messageAttribute
	MessageDeduplicationId  string
	MessageGroupId          string
}

func (in *sendInput) outgoing() *outgoing {
	o := &outgoing{body: in.MessageBody, delay: -1, attrs: in.MessageAttributes, system: in.MessageSystemAttributes,
		group: in.MessageGroupId, dedup: in.MessageDeduplicationId}
	if in.DelaySeconds != nil {
		o.delay = -2 // out of range unless it fits
		if d := *in.DelaySeconds; d >= 0 && d <= maxDelaySeconds {
			o.delay = int(d)
		}
	}
	return o
}

// sendResult is SendMessage's output and a SendMessageBatch result entry.
type sendResult struct {
	Id                           string `json:",omitempty"`
	MessageId                    string
	MD5OfMessageBody             string
	MD5OfMessageAttributes       string `json:",omitempty"`
	MD5OfMessageSystemAttributes string `json:",omitempty"`
}

func resultOf(id string, m *message, in *sendInput) sendResult {
	return sendResult{Id: id, MessageId: m.id, MD5OfMessageBody: m.md5,
		MD5OfMessageAttributes: attributesMD5(in.MessageAttributes), MD5OfMessageSystemAttributes: attributesMD5(in.MessageSystemAttributes)}
}

func delayError(in *sendInput) *apiError {
	return invalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.", *in.DelaySeconds)
}

func (e *Emulator) sqsSendMessage(_ *http.Request, body []byte) (any, *apiError) {
	var in sendInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	o := in.outgoing()
	if o.delay == -2 {
		return nil, delayError(&in)
	}
	m, err := e.queues.sendOne(in.QueueUrl, o)
	if err != nil {
		return nil, err
	}
	return resultOf("", m, &in), nil
}

var batchIDPattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)

type batchResultError struct {
	Id          string
	Code        string
	Message     string
	SenderFault bool
}

// batch is a decoded batch request whose entries were checked.
type batch struct {
	queueURL string
	entries  []json.RawMessage
	ids      []string
}

// decodeBatch checks a batch request: the queue exists, 1 to 10 entries
// with distinct IDs of 1 to 80 letters, digits, '-' and '_'.
func (e *Emulator) decodeBatch(body []byte) (*batch, *apiError) {
	var in struct {
		QueueUrl string
		Entries  []json.RawMessage
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
	b := &batch{queueURL: in.QueueUrl, entries: in.Entries}
	seen := map[string]bool{}
	for _, raw := range in.Entries {
		var en struct{ Id string }
		if err := json.Unmarshal(raw, &en); err != nil {
			return nil, errorf(http.StatusBadRequest, "SerializationException", "cannot decode batch entry: %v", err)
		}
		if !batchIDPattern.MatchString(en.Id) {
			return nil, &apiError{status: http.StatusBadRequest, code: "InvalidBatchEntryId", queryCode: "AWS.SimpleQueueService.InvalidBatchEntryId",
				message: "A batch entry id can only contain alphanumeric characters, hyphens and underscores. It can be at most 80 letters long."}
		}
		if seen[en.Id] {
			return nil, &apiError{status: http.StatusBadRequest, code: "BatchEntryIdsNotDistinct", queryCode: "AWS.SimpleQueueService.BatchEntryIdsNotDistinct",
				message: "Id " + en.Id + " repeated."}
		}
		seen[en.Id] = true
		b.ids = append(b.ids, en.Id)
	}
	return b, nil
}

func failure(id string, err *apiError) batchResultError {
	return batchResultError{Id: id, Code: err.code, Message: err.message, SenderFault: !err.server}
}

func (e *Emulator) sqsSendMessageBatch(_ *http.Request, body []byte) (any, *apiError) {
	b, err := e.decodeBatch(body)
	if err != nil {
		return nil, err
	}
	ins := make([]sendInput, len(b.entries))
	total := 0
	for i, raw := range b.entries {
		if derr := json.Unmarshal(raw, &ins[i]); derr != nil {
			return nil, errorf(http.StatusBadRequest, "SerializationException", "cannot decode batch entry: %v", derr)
		}
		total += messageSize(ins[i].MessageBody, ins[i].MessageAttributes)
	}
	q := e.queues
	q.mu.Lock()
	defer q.mu.Unlock()
	queue, err := q.lookup(b.queueURL)
	if err != nil {
		return nil, err
	}
	if limit := queue.intAttr("MaximumMessageSize"); total > limit {
		return nil, &apiError{status: http.StatusBadRequest, code: "BatchRequestTooLong", queryCode: "AWS.SimpleQueueService.BatchRequestTooLong",
			message: "Batch requests cannot be longer than " + strconv.Itoa(limit) + " bytes. You have sent " + strconv.Itoa(total) + " bytes."}
	}
	out := struct {
		Successful []sendResult
		Failed     []batchResultError
	}{Successful: []sendResult{}, Failed: []batchResultError{}}
	now := q.now()
	for i := range ins {
		in := &ins[i]
		o := in.outgoing()
		if o.delay == -2 {
			out.Failed = append(out.Failed, failure(b.ids[i], delayError(in)))
			continue
		}
		if cerr := o.check(queue); cerr != nil {
			out.Failed = append(out.Failed, failure(b.ids[i], cerr))
			continue
		}
		out.Successful = append(out.Successful, resultOf(b.ids[i], queue.send(now, o), in))
	}
	return out, nil
}

type sqsMessage struct {
	MessageId              string
	ReceiptHandle          string
	MD5OfBody              string
	Body                   string
	Attributes             map[string]string           `json:",omitempty"`
	MD5OfMessageAttributes string                      `json:",omitempty"`
	MessageAttributes      map[string]messageAttribute `json:",omitempty"`
}

func (e *Emulator) sqsReceiveMessage(r *http.Request, body []byte) (any, *apiError) {
	var in struct {
		QueueUrl                    string
		MaxNumberOfMessages         *int64
		WaitTimeSeconds             *int64
		VisibilityTimeout           *int64
		AttributeNames              []string
		MessageSystemAttributeNames []string
		MessageAttributeNames       []string
		ReceiveRequestAttemptId     string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	n := 1
	if in.MaxNumberOfMessages != nil {
		if v := *in.MaxNumberOfMessages; v < 1 || v > 10 {
			return nil, invalidParameter("Value %d for parameter MaxNumberOfMessages is invalid. Reason: Must be between 1 and 10, if provided.", v)
		}
		n = int(*in.MaxNumberOfMessages)
	}
	wait := -1
	if in.WaitTimeSeconds != nil {
		if v := *in.WaitTimeSeconds; v < 0 || v > maxWaitSeconds {
			return nil, invalidParameter("Value %d for parameter WaitTimeSeconds is invalid. Reason: Must be >= 0 and <= 20, if provided.", v)
		}
		wait = int(*in.WaitTimeSeconds)
	}
	vis := -1
	if in.VisibilityTimeout != nil {
		if v := *in.VisibilityTimeout; v < 0 || v > maxVisibilitySeconds {
			return nil, invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", v)
		}
		vis = int(*in.VisibilityTimeout)
	}
	got, err := e.queues.receive(in.QueueUrl, n, wait, vis, r.Context().Done())
	if err != nil {
		return nil, err
	}
	if len(got) == 0 {
		return empty{}, nil // SQS leaves "Messages" out when there are none
	}
	names := append(append([]string(nil), in.AttributeNames...), in.MessageSystemAttributeNames...)
	var out struct{ Messages []sqsMessage }
	e.queues.mu.Lock()
	defer e.queues.mu.Unlock()
	for _, g := range got {
		attrs := selectAttributes(g.m.attrs, in.MessageAttributeNames)
		out.Messages = append(out.Messages, sqsMessage{
			MessageId:              g.m.id,
			ReceiptHandle:          g.handle,
			MD5OfBody:              g.m.md5,
			Body:                   g.m.body,
			Attributes:             systemAttributes(g, names),
			MD5OfMessageAttributes: attributesMD5(attrs),
			MessageAttributes:      attrs,
		})
	}
	return out, nil
}

type receiptInput struct {
	QueueUrl          string
	ReceiptHandle     string
	VisibilityTimeout *int64
}

func (e *Emulator) sqsDeleteMessage(_ *http.Request, body []byte) (any, *apiError) {
	var in receiptInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.deleteMessage(in.QueueUrl, in.ReceiptHandle); err != nil {
		return nil, err
	}
	return empty{}, nil
}

func (e *Emulator) deleteMessage(queueURL, handle string) *apiError {
	if handle == "" {
		return missing("ReceiptHandle")
	}
	deleted, err := e.queues.deleteMessage(queueURL, handle)
	if err == nil && !deleted {
		e.counters.request(StaleDeletes)
		e.log.Debug("delete with an old receipt handle: no message deleted", "queue", queueURL)
	}
	return err
}

// StaleDeletes is the Requests key that counts DeleteMessage calls and
// batch entries that succeeded without deleting anything: an old receipt
// handle, or a message already deleted or moved to the dead-letter queue.
const StaleDeletes = "DeleteMessage (no effect)"

func (e *Emulator) changeVisibility(queueURL string, in receiptInput) *apiError {
	if in.ReceiptHandle == "" {
		return missing("ReceiptHandle")
	}
	if in.VisibilityTimeout == nil {
		return missing("VisibilityTimeout")
	}
	return e.queues.changeVisibility(queueURL, in.ReceiptHandle, *in.VisibilityTimeout)
}

func (e *Emulator) sqsChangeMessageVisibility(_ *http.Request, body []byte) (any, *apiError) {
	var in receiptInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.changeVisibility(in.QueueUrl, in); err != nil {
		return nil, err
	}
	return empty{}, nil
}

// runReceiptBatch applies fn to each entry of a DeleteMessageBatch or
// ChangeMessageVisibilityBatch request.
func (e *Emulator) runReceiptBatch(body []byte, fn func(queueURL string, en receiptInput) *apiError) (any, *apiError) {
	b, err := e.decodeBatch(body)
	if err != nil {
		return nil, err
	}
	out := struct {
		Successful []map[string]string
		Failed     []batchResultError
	}{Successful: []map[string]string{}, Failed: []batchResultError{}}
	for i, raw := range b.entries {
		var en receiptInput
		if derr := json.Unmarshal(raw, &en); derr != nil {
			return nil, errorf(http.StatusBadRequest, "SerializationException", "cannot decode batch entry: %v", derr)
		}
		if ferr := fn(b.queueURL, en); ferr != nil {
			out.Failed = append(out.Failed, failure(b.ids[i], ferr))
			continue
		}
		out.Successful = append(out.Successful, map[string]string{"Id": b.ids[i]})
	}
	return out, nil
}

func (e *Emulator) sqsDeleteMessageBatch(_ *http.Request, body []byte) (any, *apiError) {
	return e.runReceiptBatch(body, func(queueURL string, en receiptInput) *apiError {
		return e.deleteMessage(queueURL, en.ReceiptHandle)
	})
}

func (e *Emulator) sqsChangeMessageVisibilityBatch(_ *http.Request, body []byte) (any, *apiError) {
	return e.runReceiptBatch(body, e.changeVisibility)
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
