package emulator

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Queue limits. The message size is the current service model's (1 MiB).
const (
	defaultVisibilitySeconds = 30
	maxVisibilitySeconds     = 43200 // 12 hours, counted from the receive
	maxMessageSize           = 1 << 20
	minMessageSize           = 1024
	maxWaitSeconds           = 20
	maxDelaySeconds          = 900
	defaultRetentionSeconds  = 345600
	purgeInterval            = 60 * time.Second
	deletedNameReuse         = 60 * time.Second
	maxReceiveCountLimit     = 1000
	maxQueueTags             = 50
)

var queueNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)

// sqsBackend holds the in-memory queues.
type sqsBackend struct {
	endpoint, region, account string
	// home is the emulator's Config.Region: its queue URLs keep the short
	// form ENDPOINT/ACCOUNT/NAME; other Regions' carry the Region
	// (queueURLRegion).
	home string
	done <-chan struct{}
	// now is the clock of every queue rule (visibility, delays, the 12 hour
	// limit, purge and name reuse windows); tests may replace it before use.
	now func() time.Time

	mu      sync.Mutex
	queues  map[string]*queue
	deleted map[string]time.Time // queue name -> when it was deleted
}

type queue struct {
	name, url, arn string
	attrs          map[string]string // settable attributes, canonical values
	tags           map[string]string
	created        time.Time
	modified       time.Time
	lastPurge      time.Time
	messages       []*message
	deleted        map[string]bool // every handle of every message deleted or moved away
	arrived        chan struct{}   // closed and replaced when a message is sent or made visible
}

type message struct {
	id            string
	body          string
	md5           string
	attrs         map[string]messageAttribute
	system        map[string]string // AWSTraceHeader, MessageGroupId, DeadLetterQueueSourceArn
	sent          time.Time
	visibleAt     time.Time
	receiveCount  int
	firstReceive  time.Time
	lastReceive   time.Time
	handles       map[string]bool
	currentHandle string
}

func newSQSBackend(endpoint, region, account string, done <-chan struct{}) *sqsBackend {
	return &sqsBackend{endpoint: endpoint, region: region, account: account, done: done, now: time.Now,
		queues: map[string]*queue{}, deleted: map[string]time.Time{}}
}

// urlFor returns a queue's URL: ENDPOINT/ACCOUNT/NAME in the home Region,
// ENDPOINT/queue/REGION/ACCOUNT/NAME (LocalStack's path style) in others.
func (b *sqsBackend) urlFor(name string) string {
	if b.region == b.home || b.home == "" {
		return b.endpoint + "/" + b.account + "/" + name
	}
	return b.endpoint + "/queue/" + b.region + "/" + b.account + "/" + name
}

func (b *sqsBackend) arnFor(name string) string {
	return fmt.Sprintf("arn:%s:sqs:%s:%s:%s", Partition(b.region), b.region, b.account, name)
}

// queueURLRegion returns the Region of a queue URL: the REGION of a path
// /queue/REGION/ACCOUNT/NAME, else of an AWS host sqs.REGION.amazonaws.com
// (.cn in China) or REGION.queue.amazonaws.com, else home (the emulator's
// short form ENDPOINT/ACCOUNT/NAME, or any other host).
func queueURLRegion(u *url.URL, home string) string {
	if rest, ok := strings.CutPrefix(u.Path, "/queue/"); ok {
		if region, _, ok := strings.Cut(rest, "/"); ok && region != "" {
			return region
		}
	}
	host := strings.TrimSuffix(u.Hostname(), ".cn")
	if h, ok := strings.CutSuffix(host, ".amazonaws.com"); ok {
		if region, ok := strings.CutPrefix(h, "sqs."); ok && !strings.Contains(region, ".") {
			return region
		}
		if region, ok := strings.CutSuffix(h, ".queue"); ok && !strings.Contains(region, ".") {
			return region
		}
	}
	return home
}

func queueDoesNotExist() *apiError {
	return &apiError{status: http.StatusBadRequest, code: "QueueDoesNotExist", queryCode: "AWS.SimpleQueueService.NonExistentQueue",
		message: "The specified queue does not exist."}
}

func invalidParameter(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

func invalidAttributeName(name string) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "InvalidAttributeName", message: fmt.Sprintf("Unknown Attribute %s.", name)}
}

func invalidAttributeValue(name, reason string) *apiError {
	msg := fmt.Sprintf("Invalid value for the parameter %s.", name)
	if reason != "" {
		msg += " Reason: " + reason
	}
	return &apiError{status: http.StatusBadRequest, code: "InvalidAttributeValue", message: msg}
}

func unsupported(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: "UnsupportedOperation", queryCode: "AWS.SimpleQueueService.UnsupportedOperation",
		message: fmt.Sprintf(format, args...)}
}

// lookup finds a queue by URL: the last path segment is the name; a URL of
// another Region (queueURLRegion) names no queue of this one; the host is
// not otherwise checked. Callers hold b.mu.
func (b *sqsBackend) lookup(queueURL string) (*queue, *apiError) {
	if queueURL == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	u, err := url.Parse(queueURL)
	if err != nil {
		return nil, queueDoesNotExist()
	}
	if b.home != "" && queueURLRegion(u, b.home) != b.region {
		return nil, queueDoesNotExist()
	}
	name := u.Path[strings.LastIndex(u.Path, "/")+1:]
	q, ok := b.queues[name]
	if !ok {
		return nil, queueDoesNotExist()
	}
	return q, nil
}

// byARN finds a queue of this account and Region by ARN. Callers hold b.mu.
func (b *sqsBackend) byARN(arn string) *queue {
	prefix := b.arnFor("")
	if !strings.HasPrefix(arn, prefix) {
		return nil
	}
	return b.queues[strings.TrimPrefix(arn, prefix)]
}

func (b *sqsBackend) createQueue(name string, attrs map[string]string) (string, *apiError) {
	return b.createQueueWithTags(name, attrs, nil)
}

// createQueueWithTags creates a standard queue, or returns the URL of an
// existing one whose attributes match those given.
func (b *sqsBackend) createQueueWithTags(name string, attrs, tags map[string]string) (string, *apiError) {
	if strings.HasSuffix(name, ".fifo") || attrs["FifoQueue"] == "true" {
		return "", unsupported("FIFO queues are not supported by this emulator (queue %q): create a standard queue, without the .fifo suffix and FifoQueue", name)
	}
	if !queueNamePattern.MatchString(name) {
		return "", invalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	if err := checkTags(tags); err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	canon, err := b.checkAttributes(attrs, name)
	if err != nil {
		return "", err
	}
	if q, ok := b.queues[name]; ok {
		for _, k := range sortedKeys(canon) {
			if q.attr(k) != canon[k] {
				return "", &apiError{status: http.StatusBadRequest, code: "QueueNameExists", queryCode: "QueueAlreadyExists",
					message: fmt.Sprintf("A queue already exists with the same name and a different value for attribute %s", k)}
			}
		}
		return q.url, nil
	}
	if at, ok := b.deleted[name]; ok && b.now().Sub(at) < deletedNameReuse {
		return "", &apiError{status: http.StatusBadRequest, code: "QueueDeletedRecently", queryCode: "AWS.SimpleQueueService.QueueDeletedRecently",
			message: "You must wait 60 seconds after deleting a queue before you can create another with the same name."}
	}
	now := b.now()
	q := &queue{name: name, url: b.urlFor(name), arn: b.arnFor(name), attrs: canon, tags: map[string]string{},
		created: now, modified: now, deleted: map[string]bool{}, arrived: make(chan struct{})}
	for k, v := range tags {
		q.tags[k] = v
	}
	b.queues[name] = q
	return q.url, nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func checkTags(tags map[string]string) *apiError {
	if len(tags) > maxQueueTags {
		return invalidParameter("Too many tags: %d; a queue has at most %d.", len(tags), maxQueueTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > 128 || len(v) > 256 {
			return invalidParameter("Tag keys must be 1 to 128 characters and values at most 256 characters.")
		}
	}
	return nil
}

func (b *sqsBackend) setAttributes(queueURL string, attrs map[string]string) *apiError {
	if len(attrs) == 0 {
		return errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter Attributes.")
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	if _, ok := attrs["FifoQueue"]; ok {
		return invalidAttributeName("FifoQueue")
	}
	canon, err := b.checkAttributes(attrs, q.name)
	if err != nil {
		return err
	}
	for k, v := range canon {
		if v == "" {
			delete(q.attrs, k)
			continue
		}
		q.attrs[k] = v
	}
	q.modified = b.now()
	q.wakeReceivers() // a shorter delay or a redrive policy may apply now
	return nil
}

func (b *sqsBackend) deleteQueue(queueURL string) *apiError {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	delete(b.queues, q.name)
	b.deleted[q.name] = b.now()
	q.wakeReceivers()
	return nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// outgoing is one message to send.
type outgoing struct {
	body   string
	delay  int // seconds; -1 means the queue's DelaySeconds
	attrs  map[string]messageAttribute
	system map[string]messageAttribute
	group  string
	dedup  string
}

// check validates a message against the queue's limits. Callers hold b.mu.
func (o *outgoing) check(q *queue) *apiError {
	if o.body == "" {
		return errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if o.delay < -1 || o.delay > maxDelaySeconds {
		return invalidParameter("Value %d for parameter DelaySeconds is invalid. Reason: must be between 0 and 900.", o.delay)
	}
	if o.dedup != "" {
		return invalidParameter("The request include parameter that is not valid for this queue type (MessageDeduplicationId is for FIFO queues).")
	}
	if err := checkMessageBody(o.body); err != nil {
		return err
	}
	if err := checkMessageAttributes(o.attrs); err != nil {
		return err
	}
	for name, a := range o.system {
		if name != "AWSTraceHeader" {
			return invalidParameter("Message system attribute name '%s' is invalid; the only one is AWSTraceHeader.", name)
		}
		if a.DataType != "String" || a.StringValue == nil || *a.StringValue == "" {
			return invalidParameter("Message system attribute AWSTraceHeader must be a non-empty String.")
		}
	}
	if size, limit := messageSize(o.body, o.attrs), q.intAttr("MaximumMessageSize"); size > limit {
		return invalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", limit)
	}
	return nil
}

// send adds a message. Callers hold b.mu.
func (q *queue) send(now time.Time, o *outgoing) *message {
	delay := o.delay
	if delay < 0 {
		delay = q.intAttr("DelaySeconds")
	}
	m := &message{id: newRequestID(), body: o.body, md5: md5Hex(o.body), attrs: o.attrs, system: map[string]string{},
		sent: now, visibleAt: now.Add(time.Duration(delay) * time.Second), handles: map[string]bool{}}
	if a, ok := o.system["AWSTraceHeader"]; ok {
		m.system["AWSTraceHeader"] = *a.StringValue
	}
	if o.group != "" {
		m.system["MessageGroupId"] = o.group
	}
	q.messages = append(q.messages, m)
	q.wakeReceivers()
	return m
}

// sendOne checks and sends one message: the callback steps' path.
func (b *sqsBackend) sendOne(queueURL string, o *outgoing) (*message, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	if err := o.check(q); err != nil {
		return nil, err
	}
	return q.send(b.now(), o), nil
}

// send sends a plain body with the queue's delay (delay < 0) or the given
// one.
func (b *sqsBackend) send(queueURL, body string, delay time.Duration) (*message, *apiError) {
	d := -1
	if delay >= 0 {
		d = int(delay / time.Second)
	}
	return b.sendOne(queueURL, &outgoing{body: body, delay: d})
}

func (q *queue) wakeReceivers() {
	close(q.arrived)
	q.arrived = make(chan struct{})
}

// receive takes up to n visible messages, long polling up to wait. vis < 0
// means the queue's visibility timeout, wait < 0 the queue's
// ReceiveMessageWaitTimeSeconds. It returns early when the emulator closes
// or cancel fires.
func (b *sqsBackend) receive(queueURL string, n, wait, vis int, cancel <-chan struct{}) ([]receivedMessage, *apiError) {
	var deadline time.Time
	for {
		b.mu.Lock()
		q, err := b.lookup(queueURL)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		now := b.now()
		if deadline.IsZero() {
			if wait < 0 {
				wait = q.intAttr("ReceiveMessageWaitTimeSeconds")
			}
			deadline = now.Add(time.Duration(wait) * time.Second)
		}
		v := vis
		if v < 0 {
			v = q.intAttr("VisibilityTimeout")
		}
		got := b.take(q, now, n, v)
		if len(got) > 0 || !now.Before(deadline) {
			b.mu.Unlock()
			return got, nil
		}
		arrived := q.arrived
		next := deadline
		for _, m := range q.messages {
			if m.visibleAt.After(now) && m.visibleAt.Before(next) {
				next = m.visibleAt
			}
		}
		b.mu.Unlock()
		t := time.NewTimer(next.Sub(now))
		select {
		case <-t.C:
		case <-arrived:
		case <-b.done:
			t.Stop()
			return nil, nil
		case <-cancel:
			t.Stop()
			return nil, nil
		}
		t.Stop()
	}
}

type receivedMessage struct {
	m      *message
	handle string
	count  int
}

// redrive is a queue's parsed RedrivePolicy.
type redrive struct {
	target          string
	maxReceiveCount int
}

// take marks up to n visible messages in flight for vis seconds. Messages
// past the retention period are dropped; a message already received
// maxReceiveCount times moves to the dead-letter queue instead of being
// delivered. Callers hold b.mu.
func (b *sqsBackend) take(q *queue, now time.Time, n, vis int) []receivedMessage {
	retention := time.Duration(q.intAttr("MessageRetentionPeriod")) * time.Second
	rp := q.redrivePolicy()
	var dlq *queue
	if rp != nil {
		dlq = b.byARN(rp.target)
	}
	var out []receivedMessage
	kept := q.messages[:0]
	for _, m := range q.messages {
		switch {
		case now.Sub(m.sent) >= retention:
			q.forget(m)
			continue
		case len(out) == n || m.visibleAt.After(now):
		case dlq != nil && dlq != q && m.receiveCount >= rp.maxReceiveCount:
			q.forget(m)
			m.handles, m.currentHandle = map[string]bool{}, ""
			m.visibleAt = now
			m.system["DeadLetterQueueSourceArn"] = q.arn
			dlq.messages = append(dlq.messages, m)
			dlq.wakeReceivers()
			continue
		default:
			m.receiveCount++
			if m.firstReceive.IsZero() {
				m.firstReceive = now
			}
			m.lastReceive = now
			m.currentHandle = randomString(alnum, 96)
			m.handles[m.currentHandle] = true
			m.visibleAt = now.Add(time.Duration(vis) * time.Second)
			out = append(out, receivedMessage{m: m, handle: m.currentHandle, count: m.receiveCount})
		}
		kept = append(kept, m)
	}
	clear(q.messages[len(kept):])
	q.messages = kept
	return out
}

// forget records every handle of m as gone from q. Callers hold b.mu.
func (q *queue) forget(m *message) {
	for h := range m.handles {
		q.deleted[h] = true
	}
}

// byHandle finds the message that was ever given handle. Callers hold b.mu.
func (q *queue) byHandle(handle string) (int, *message) {
	for i, m := range q.messages {
		if m.handles[handle] {
			return i, m
		}
	}
	return -1, nil
}

func receiptHandleInvalid(handle string) *apiError {
	return &apiError{status: http.StatusNotFound, code: "ReceiptHandleIsInvalid",
		message: fmt.Sprintf("The input receipt handle \"%s\" is not a valid receipt handle.", handle)}
}

func receiptHandleExpired(handle string) *apiError {
	return invalidParameter("Value %s for parameter ReceiptHandle is invalid. Reason: The receipt handle has expired.", handle)
}

// deleteMessage deletes the message whose latest receipt handle is handle.
// An older handle of a message received again since succeeds without
// deleting (SQS: "you must provide the most recently received receipt
// handle ... otherwise, the request succeeds, but the message will not be
// deleted"); so does a handle of a message already deleted or moved to the
// dead-letter queue. A handle the queue never gave is
// ReceiptHandleIsInvalid. It reports whether a message was deleted.
func (b *sqsBackend) deleteMessage(queueURL, handle string) (bool, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return false, err
	}
	i, m := q.byHandle(handle)
	switch {
	case m == nil && q.deleted[handle]:
		return false, nil
	case m == nil:
		return false, receiptHandleInvalid(handle)
	case handle != m.currentHandle:
		return false, nil // stale: succeeds, deletes nothing
	}
	q.forget(m)
	q.messages = append(q.messages[:i], q.messages[i+1:]...)
	return true, nil
}

// changeVisibility makes the message whose latest receipt handle is handle
// visible again after seconds, counted from now. The message must be in
// flight (MessageNotInflight otherwise); an older handle, or one of a
// message deleted or moved, has expired; the total since the receive may
// not pass 12 hours.
func (b *sqsBackend) changeVisibility(queueURL, handle string, seconds int64) *apiError {
	if seconds < 0 || seconds > maxVisibilitySeconds {
		return invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", seconds)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	_, m := q.byHandle(handle)
	switch {
	case m == nil && q.deleted[handle]:
		return receiptHandleExpired(handle)
	case m == nil:
		return receiptHandleInvalid(handle)
	case handle != m.currentHandle:
		return receiptHandleExpired(handle)
	}
	now := b.now()
	if !m.visibleAt.After(now) {
		// The model's MessageNotInflight has no message member.
		return &apiError{status: http.StatusBadRequest, code: "MessageNotInflight", queryCode: "AWS.SimpleQueueService.MessageNotInflight"}
	}
	if elapsed := int64(now.Sub(m.lastReceive) / time.Second); elapsed+seconds > maxVisibilitySeconds {
		return invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Total VisibilityTimeout for the message is beyond the limit [43200 seconds]", seconds)
	}
	m.visibleAt = now.Add(time.Duration(seconds) * time.Second)
	if seconds == 0 {
		q.wakeReceivers()
	}
	return nil
}

func (b *sqsBackend) purge(queueURL string) *apiError {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	now := b.now()
	if !q.lastPurge.IsZero() && now.Sub(q.lastPurge) < purgeInterval {
		return &apiError{status: http.StatusForbidden, code: "PurgeQueueInProgress", queryCode: "AWS.SimpleQueueService.PurgeQueueInProgress",
			message: fmt.Sprintf("Only one PurgeQueue operation on %s is allowed every 60 seconds.", q.name)}
	}
	q.lastPurge = now
	for _, m := range q.messages {
		q.forget(m)
	}
	q.messages = nil
	return nil
}

// listQueues returns the URLs of the queues whose names start with prefix,
// sorted by name, after the name in token.
func (b *sqsBackend) listQueues(prefix string) []*queue {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []*queue
	for _, name := range sortedKeys(b.queues) {
		if strings.HasPrefix(name, prefix) {
			out = append(out, b.queues[name])
		}
	}
	return out
}

// deadLetterSources returns the queues whose redrive policy targets the
// queue at queueURL, sorted by name.
func (b *sqsBackend) deadLetterSources(queueURL string) ([]*queue, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	var out []*queue
	for _, name := range sortedKeys(b.queues) {
		if rp := b.queues[name].redrivePolicy(); rp != nil && rp.target == q.arn {
			out = append(out, b.queues[name])
		}
	}
	return out, nil
}

func (b *sqsBackend) tagQueue(queueURL string, tags map[string]string, remove []string) *apiError {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	next := map[string]string{}
	for k, v := range q.tags {
		next[k] = v
	}
	for k, v := range tags {
		next[k] = v
	}
	for _, k := range remove {
		delete(next, k)
	}
	if err := checkTags(next); err != nil {
		return err
	}
	q.tags = next
	return nil
}

func (b *sqsBackend) listTags(queueURL string) (map[string]string, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for k, v := range q.tags {
		out[k] = v
	}
	return out, nil
}
