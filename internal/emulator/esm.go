package emulator

// SQS event source mappings, run as Lambda runs them: a poller per mapping
// receives from the emulator's own queue with the queue's visibility
// timeout, builds Lambda's SQS event, invokes the local function and
// deletes what succeeded.
//
// Mapping states (owner: the mapping, under b.mu):
//
//	state \ event   created   poller runs   update Enabled=false   update Enabled=true   delete
//	Creating        -         Enabled       Disabled               -                     Deleting
//	Enabled         -         -             Disabled               -                     Deleting
//	Disabled        -         -             -                      Enabled               Deleting
//	Deleting        (the mapping is forgotten: Get answers ResourceNotFoundException)
//
// Update answers the transitional Enabling/Disabling/Updating states, as
// Lambda does; the next read shows the settled state.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"
)

// Event source mapping limits for SQS.
const (
	DefaultBatchSize     = 10
	maxSQSBatchSize      = 10000
	maxBatchingWindow    = 300 * time.Second
	reportBatchFailures  = "ReportBatchItemFailures"
	pollWaitSeconds      = 20
	pollErrorBackoff     = time.Second
	lastResultNone       = "No records processed"
	lastResultOK         = "OK"
	lastResultFailed     = "PROBLEM: Function call failed"
	stateCreating        = "Creating"
	stateEnabled         = "Enabled"
	stateDisabled        = "Disabled"
	stateDeleting        = "Deleting"
	userInitiatedReason  = "USER_INITIATED"
	maxReceivePerRequest = 10
)

// EventSourceOptions configure an SQS event source mapping made with
// AddEventSource.
type EventSourceOptions struct {
	// BatchSize is the most records in one event: 1 to 10000, 0 means
	// DefaultBatchSize (10). Above 10 needs a MaximumBatchingWindow.
	BatchSize int

	// MaximumBatchingWindow is how long the poller gathers records,
	// counted from the first record of a batch, before it invokes: 0 to
	// 300 seconds. Lambda takes whole seconds; the Go API also takes
	// fractions.
	MaximumBatchingWindow time.Duration

	// ReportBatchItemFailures sets FunctionResponseTypes to
	// ["ReportBatchItemFailures"]: only then does the function's
	// batchItemFailures count.
	ReportBatchItemFailures bool

	// Disabled creates the mapping disabled (no polling).
	Disabled bool
}

// EventSourceStats counts what an event source mapping did.
type EventSourceStats struct {
	// Batches counts invocations.
	Batches int
	// Records counts records delivered, redeliveries included.
	Records int
	// Deleted counts records deleted from the queue after an invocation.
	Deleted int
	// Returned counts records left on the queue after an invocation (they
	// become visible again when their visibility timeout ends).
	Returned int
	// FunctionErrors counts invocations that failed or timed out.
	FunctionErrors int
}

type mappingConfig struct {
	batchSize int
	window    time.Duration
	rbif      bool
	enabled   bool
}

// eventSourceMapping is one SQS event source mapping. Fields are guarded
// by b.mu.
type eventSourceMapping struct {
	uuid       string
	queueARN   string
	queueName  string
	function   string // name
	cfg        mappingConfig
	state      string
	created    time.Time
	modified   time.Time
	lastResult string
	stats      EventSourceStats
	changed    chan struct{} // closed and replaced on update
	stop       chan struct{} // closed on delete
}

func (m *eventSourceMapping) notify() {
	close(m.changed)
	m.changed = make(chan struct{})
}

// AddEventSource maps the emulator's queue (a name, URL or ARN) to a local
// function, as CreateEventSourceMapping does, and returns the mapping's
// UUID. The poller starts at once unless opts.Disabled.
func (e *Emulator) AddEventSource(queue, function string, opts EventSourceOptions) (string, error) {
	arn := queue
	if !strings.HasPrefix(queue, "arn:") {
		name := queue[strings.LastIndex(queue, "/")+1:]
		arn = e.queues.arnFor(name)
	}
	cfg := mappingConfig{batchSize: opts.BatchSize, window: opts.MaximumBatchingWindow, rbif: opts.ReportBatchItemFailures, enabled: !opts.Disabled}
	m, aerr := e.lambdaBackend().createMapping(arn, function, cfg)
	if aerr != nil {
		return "", fmt.Errorf("add event source: %w", aerr)
	}
	return m.uuid, nil
}

// RemoveEventSource deletes an event source mapping, as
// DeleteEventSourceMapping does: its poller stops after the batch in
// progress.
func (e *Emulator) RemoveEventSource(uuid string) error {
	if _, aerr := e.lambdaBackend().deleteMapping(uuid); aerr != nil {
		return fmt.Errorf("remove event source: %w", aerr)
	}
	return nil
}

// EventSourceStats returns what an event source mapping did so far.
func (e *Emulator) EventSourceStats(uuid string) (EventSourceStats, error) {
	b := e.lambdaBackend()
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.mappings[uuid]
	if !ok {
		return EventSourceStats{}, fmt.Errorf("%w: event source mapping %s", ErrNotFound, uuid)
	}
	return m.stats, nil
}

func lambdaInvalid(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterValueException", format, args...)
}

func lambdaNotFound(format string, args ...any) *apiError {
	return errorf(http.StatusNotFound, "ResourceNotFoundException", format, args...)
}

// checkMappingConfig applies defaults and Lambda's SQS limits.
func checkMappingConfig(cfg *mappingConfig) *apiError {
	if cfg.batchSize == 0 {
		cfg.batchSize = DefaultBatchSize
	}
	switch {
	case cfg.batchSize < 1 || cfg.batchSize > maxSQSBatchSize:
		return lambdaInvalid("BatchSize %d is out of range: an SQS event source takes 1 to %d", cfg.batchSize, maxSQSBatchSize)
	case cfg.window < 0 || cfg.window > maxBatchingWindow:
		return lambdaInvalid("MaximumBatchingWindowInSeconds %g is out of range: 0 to 300", cfg.window.Seconds())
	case cfg.batchSize > 10 && cfg.window <= 0:
		return lambdaInvalid("Maximum batch window in seconds must be greater than 0 if maximum batch size is greater than 10")
	}
	return nil
}

func (b *lambdaBackend) createMapping(queueARN, function string, cfg mappingConfig) (*eventSourceMapping, *apiError) {
	if err := checkMappingConfig(&cfg); err != nil {
		return nil, err
	}
	if !b.enter() {
		return nil, errorf(http.StatusServiceUnavailable, "ServiceException", "emulator closed")
	}
	defer b.wg.Done()

	q := b.e.queues
	q.mu.Lock()
	sq := q.byARN(queueARN)
	var vis int
	if sq != nil {
		vis = sq.intAttr("VisibilityTimeout")
	}
	q.mu.Unlock()
	if sq == nil {
		return nil, lambdaInvalid("Error occurred while ReceiveMessage. SQS Error Code: AWS.SimpleQueueService.NonExistentQueue. SQS Error Message: The specified queue %s does not exist", queueARN)
	}

	b.mu.Lock()
	defer b.mu.Unlock()
	f, name := b.resolveFunction(function)
	if f == nil {
		return nil, lambdaNotFound("Function not found: %s", b.functionARN(name))
	}
	if time.Duration(vis)*time.Second < f.cfg.Timeout {
		return nil, lambdaInvalid("Queue visibility timeout: %d seconds is less than Function timeout: %d seconds", vis, timeoutSeconds(f.cfg.Timeout))
	}
	for _, other := range b.mappings {
		if other.queueARN == queueARN && other.function == f.cfg.Name {
			return nil, errorf(http.StatusConflict, "ResourceConflictException",
				"An event source mapping with SQS arn (\" %s \") and function (\" %s \") already exists. Please update or delete the existing mapping with UUID %s",
				queueARN, f.cfg.Name, other.uuid)
		}
	}
	m := &eventSourceMapping{uuid: newRequestID(), queueARN: queueARN, queueName: queueARN[strings.LastIndex(queueARN, ":")+1:],
		function: f.cfg.Name, cfg: cfg, state: stateCreating, created: time.Now(), modified: time.Now(), lastResult: lastResultNone,
		changed: make(chan struct{}), stop: make(chan struct{})}
	if !cfg.enabled {
		m.state = stateDisabled
	}
	b.mappings[m.uuid] = m
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.poll(m)
	}()
	return m, nil
}

func (b *lambdaBackend) deleteMapping(uuid string) (mappingView, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.mappings[uuid]
	if !ok {
		return mappingView{}, lambdaNotFound("The resource you requested does not exist.")
	}
	delete(b.mappings, uuid)
	m.state = stateDeleting
	close(m.stop)
	return b.viewLocked(m), nil
}

// snapshot returns the mapping's configuration, or false once deleted.
func (b *lambdaBackend) snapshot(m *eventSourceMapping) (mappingConfig, chan struct{}, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if m.state == stateDeleting {
		return mappingConfig{}, nil, false
	}
	if m.cfg.enabled {
		m.state = stateEnabled
	} else {
		m.state = stateDisabled
	}
	return m.cfg, m.changed, true
}

// poll is a mapping's poller: until the mapping is deleted or the
// emulator closes, gather a batch, invoke, settle.
func (b *lambdaBackend) poll(m *eventSourceMapping) {
	done := b.e.done
	for {
		cfg, changed, ok := b.snapshot(m)
		if !ok {
			return
		}
		if !cfg.enabled {
			select {
			case <-changed:
				continue
			case <-m.stop:
				return
			case <-done:
				return
			}
		}
		batch, err := b.gather(m, cfg, changed)
		select {
		case <-m.stop:
			return // what was gathered comes back when its visibility timeout ends
		case <-done:
			return
		default:
		}
		if err != nil {
			b.setResult(m, "PROBLEM: "+err.message)
			t := time.NewTimer(pollErrorBackoff)
			select {
			case <-t.C:
			case <-m.stop:
			case <-done:
			}
			t.Stop()
			continue
		}
		if len(batch) > 0 {
			b.deliver(m, cfg, batch)
		}
	}
}

func (b *lambdaBackend) setResult(m *eventSourceMapping, result string) {
	b.mu.Lock()
	m.lastResult = result
	b.mu.Unlock()
}

// gather receives one batch: up to batchSize records, waiting up to the
// batching window after the first one.
func (b *lambdaBackend) gather(m *eventSourceMapping, cfg mappingConfig, changed chan struct{}) ([]receivedMessage, *apiError) {
	ctx, cancel := context.WithCancel(context.Background())
	watcher := make(chan struct{})
	go func() {
		defer close(watcher)
		select {
		case <-m.stop:
		case <-b.e.done:
		case <-changed:
		case <-ctx.Done():
		}
		cancel()
	}()
	defer func() {
		cancel()
		<-watcher
	}()
	url := b.e.queues.urlFor(m.queueName)
	got, err := b.e.queues.receive(url, min(cfg.batchSize, maxReceivePerRequest), pollWaitSeconds, -1, ctx.Done())
	if err != nil || len(got) == 0 || cfg.window <= 0 {
		return got, err
	}
	wctx, wcancel := context.WithTimeout(ctx, cfg.window)
	defer wcancel()
	for len(got) < cfg.batchSize {
		more, err := b.e.queues.receive(url, min(cfg.batchSize-len(got), maxReceivePerRequest), pollWaitSeconds, -1, wctx.Done())
		if err != nil || len(more) == 0 {
			break
		}
		got = append(got, more...)
	}
	return got, nil
}

// deliver invokes the function with one batch and deletes what succeeded.
func (b *lambdaBackend) deliver(m *eventSourceMapping, cfg mappingConfig, batch []receivedMessage) {
	event := b.sqsEvent(m, batch)
	b.mu.Lock()
	f := b.functions[m.function]
	b.mu.Unlock()
	// The invocation runs to its end even if the mapping is deleted
	// meanwhile; it watches the emulator's closing itself.
	res, err := f.invoke(context.Background(), event)
	if err != nil {
		return // the emulator is closing
	}
	var keep map[string]bool // messageIds to leave on the queue; nil: none
	switch {
	case res.FunctionError != "":
		keep = allIDs(batch)
		b.e.log.Debug("event source: function failed, the batch goes back", "mapping", m.uuid, "error_type", res.ErrorType)
	case cfg.rbif:
		var ok bool
		if keep, ok = batchItemFailures(res.Payload, batch); !ok {
			keep = allIDs(batch)
			b.e.log.Debug("event source: invalid batchItemFailures, the batch goes back", "mapping", m.uuid)
		}
	}
	url := b.e.queues.urlFor(m.queueName)
	deleted := 0
	for _, g := range batch {
		if keep[g.m.id] {
			continue
		}
		if _, err := b.e.queues.deleteMessage(url, g.handle); err != nil {
			b.e.log.Debug("event source: delete failed", "mapping", m.uuid, "err", err)
			continue
		}
		deleted++
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m.stats.Batches++
	m.stats.Records += len(batch)
	m.stats.Deleted += deleted
	m.stats.Returned += len(batch) - deleted
	if res.FunctionError != "" {
		m.stats.FunctionErrors++
		m.lastResult = lastResultFailed
	} else {
		m.lastResult = lastResultOK
	}
}

func allIDs(batch []receivedMessage) map[string]bool {
	out := make(map[string]bool, len(batch))
	for _, g := range batch {
		out[g.m.id] = true
	}
	return out
}

// batchItemFailures reads a partial batch response. A null or empty
// response, or a null or empty list, means every record succeeded; a
// response that is not a JSON object, or an entry whose itemIdentifier is
// missing, empty or not a messageId of the batch, fails the whole batch
// (ok false).
func batchItemFailures(payload []byte, batch []receivedMessage) (map[string]bool, bool) {
	p := bytes.TrimSpace(payload)
	if len(p) == 0 || string(p) == "null" {
		return nil, true
	}
	var resp map[string]json.RawMessage
	if json.Unmarshal(p, &resp) != nil {
		return nil, false
	}
	raw, ok := resp["batchItemFailures"]
	if !ok || string(raw) == "null" {
		return nil, true
	}
	var items []map[string]json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		return nil, false
	}
	ids := allIDs(batch)
	keep := map[string]bool{}
	for _, item := range items {
		var id string
		if json.Unmarshal(item["itemIdentifier"], &id) != nil || id == "" || !ids[id] {
			return nil, false
		}
		keep[id] = true
	}
	return keep, true
}

// sqsEventRecord is one record of Lambda's SQS event, fields in Lambda's
// order.
type sqsEventRecord struct {
	MessageID              string                         `json:"messageId"`
	ReceiptHandle          string                         `json:"receiptHandle"`
	Body                   string                         `json:"body"`
	Attributes             sqsEventAttributes             `json:"attributes"`
	MessageAttributes      map[string]sqsEventMessageAttr `json:"messageAttributes"`
	MD5OfMessageAttributes string                         `json:"md5OfMessageAttributes,omitempty"`
	MD5OfBody              string                         `json:"md5OfBody"`
	EventSource            string                         `json:"eventSource"`
	EventSourceARN         string                         `json:"eventSourceARN"`
	AWSRegion              string                         `json:"awsRegion"`
}

// sqsEventMessageAttr is a message attribute as Lambda writes it (lower
// camel case, list members always present).
type sqsEventMessageAttr struct {
	StringValue      *string  `json:"stringValue,omitempty"`
	BinaryValue      []byte   `json:"binaryValue,omitempty"`
	StringListValues []string `json:"stringListValues"`
	BinaryListValues [][]byte `json:"binaryListValues"`
	DataType         string   `json:"dataType"`
}

// sqsEventAttributes are the system attributes: the four Lambda always
// sends, in its order, then any other (AWSTraceHeader, ...) by name.
type sqsEventAttributes map[string]string

var sqsEventAttributeOrder = []string{"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"}

// MarshalJSON implements json.Marshaler.
func (a sqsEventAttributes) MarshalJSON() ([]byte, error) {
	keys := slices.Clone(sqsEventAttributeOrder)
	for _, k := range sortedKeys(a) {
		if !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	for _, k := range keys {
		v, ok := a[k]
		if !ok {
			continue
		}
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(v)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(vb)
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// sqsEvent builds the event Lambda sends for a batch.
func (b *lambdaBackend) sqsEvent(m *eventSourceMapping, batch []receivedMessage) []byte {
	q := b.e.queues
	q.mu.Lock() // message fields change under the queue lock
	records := make([]sqsEventRecord, 0, len(batch))
	for _, g := range batch {
		attrs := map[string]sqsEventMessageAttr{}
		for name, a := range g.m.attrs {
			attrs[name] = sqsEventMessageAttr{StringValue: a.StringValue, BinaryValue: a.BinaryValue,
				StringListValues: []string{}, BinaryListValues: [][]byte{}, DataType: a.DataType}
		}
		sys := systemAttributes(g, []string{"All"})
		records = append(records, sqsEventRecord{
			MessageID: g.m.id, ReceiptHandle: g.handle, Body: g.m.body, Attributes: sys,
			MessageAttributes: attrs, MD5OfMessageAttributes: attributesMD5(g.m.attrs), MD5OfBody: g.m.md5,
			EventSource: "aws:sqs", EventSourceARN: m.queueARN, AWSRegion: b.e.cfg.Region,
		})
	}
	q.mu.Unlock()
	buf, _ := json.Marshal(struct {
		Records []sqsEventRecord `json:"Records"`
	}{records})
	return buf
}
