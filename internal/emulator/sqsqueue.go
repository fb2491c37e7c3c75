package emulator

import (
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Queue attribute defaults and limits.
const (
	defaultVisibilityTimeout = 30 * time.Second
	maxVisibilityTimeout     = 12 * time.Hour
	maxMessageSize           = 256 * 1024
	maxWaitTime              = 20 * time.Second
)

var queueNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,80}$`)

// sqsBackend holds the in-memory queues.
type sqsBackend struct {
	endpoint, region, account string
	done                      <-chan struct{}

	mu     sync.Mutex
	queues map[string]*queue
}

type queue struct {
	name     string
	url      string
	attrs    map[string]string // as created, for CreateQueue comparison
	vis      time.Duration
	delay    time.Duration
	wait     time.Duration
	created  time.Time
	messages []*message
	deleted  map[string]bool // every handle of every deleted message
	arrived  chan struct{}   // closed and replaced when a message is sent or made visible
}

type message struct {
	id            string
	body          string
	md5           string
	sent          time.Time
	visibleAt     time.Time
	receiveCount  int
	firstReceive  time.Time
	handles       map[string]bool
	currentHandle string
}

func newSQSBackend(endpoint, region, account string, done <-chan struct{}) *sqsBackend {
	return &sqsBackend{endpoint: endpoint, region: region, account: account, done: done, queues: map[string]*queue{}}
}

func (b *sqsBackend) urlFor(name string) string {
	return b.endpoint + "/" + b.account + "/" + name
}

func queueDoesNotExist() *apiError {
	return &apiError{status: http.StatusBadRequest, code: "QueueDoesNotExist", queryCode: "AWS.SimpleQueueService.NonExistentQueue",
		message: "The specified queue does not exist."}
}

func invalidParameter(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "InvalidParameterValue", format, args...)
}

// lookup finds a queue by URL: the last path segment is the name, the host
// is not checked. Callers hold b.mu.
func (b *sqsBackend) lookup(queueURL string) (*queue, *apiError) {
	if queueURL == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter QueueUrl.")
	}
	u, err := url.Parse(queueURL)
	if err != nil {
		return nil, queueDoesNotExist()
	}
	name := u.Path[strings.LastIndex(u.Path, "/")+1:]
	q, ok := b.queues[name]
	if !ok {
		return nil, queueDoesNotExist()
	}
	return q, nil
}

// durationAttr parses a queue attribute in whole seconds within [0, hi].
func durationAttr(attrs map[string]string, name string, def, hi time.Duration) (time.Duration, *apiError) {
	v, ok := attrs[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || time.Duration(n)*time.Second > hi {
		return 0, &apiError{status: http.StatusBadRequest, code: "InvalidAttributeValue", message: fmt.Sprintf("Invalid value for the parameter %s.", name)}
	}
	return time.Duration(n) * time.Second, nil
}

func (b *sqsBackend) createQueue(name string, attrs map[string]string) (string, *apiError) {
	if !queueNamePattern.MatchString(name) {
		return "", invalidParameter("Can only include alphanumeric characters, hyphens, or underscores. 1 to 80 in length")
	}
	vis, err := durationAttr(attrs, "VisibilityTimeout", defaultVisibilityTimeout, maxVisibilityTimeout)
	if err != nil {
		return "", err
	}
	delay, err := durationAttr(attrs, "DelaySeconds", 0, 15*time.Minute)
	if err != nil {
		return "", err
	}
	wait, err := durationAttr(attrs, "ReceiveMessageWaitTimeSeconds", 0, maxWaitTime)
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if q, ok := b.queues[name]; ok {
		for k, v := range attrs {
			if q.attrs[k] != v {
				return "", &apiError{status: http.StatusBadRequest, code: "QueueNameExists", queryCode: "QueueAlreadyExists",
					message: fmt.Sprintf("A queue already exists with the same name and a different value for attribute %s", k)}
			}
		}
		return q.url, nil
	}
	q := &queue{name: name, url: b.urlFor(name), attrs: attrs, vis: vis, delay: delay, wait: wait, created: time.Now(), deleted: map[string]bool{}, arrived: make(chan struct{})}
	if q.attrs == nil {
		q.attrs = map[string]string{}
	}
	b.queues[name] = q
	return q.url, nil
}

func md5Hex(s string) string {
	sum := md5.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

// send adds a message; delay < 0 means the queue's DelaySeconds.
func (b *sqsBackend) send(queueURL, body string, delay time.Duration) (*message, *apiError) {
	if body == "" {
		return nil, errorf(http.StatusBadRequest, "MissingParameter", "The request must contain the parameter MessageBody.")
	}
	if len(body) > maxMessageSize {
		return nil, invalidParameter("One or more parameters are invalid. Reason: Message must be shorter than %d bytes.", maxMessageSize)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	if delay < 0 {
		delay = q.delay
	}
	now := time.Now()
	m := &message{id: newRequestID(), body: body, md5: md5Hex(body), sent: now, visibleAt: now.Add(delay), handles: map[string]bool{}}
	q.messages = append(q.messages, m)
	q.wakeReceivers()
	return m, nil
}

func (q *queue) wakeReceivers() {
	close(q.arrived)
	q.arrived = make(chan struct{})
}

// receive takes up to n visible messages, long polling up to wait. vis < 0
// means the queue's visibility timeout. It returns early when the emulator
// closes or cancel fires.
func (b *sqsBackend) receive(queueURL string, n int, wait, vis time.Duration, cancel <-chan struct{}) ([]receivedMessage, *apiError) {
	deadline := time.Now().Add(wait)
	for {
		b.mu.Lock()
		q, err := b.lookup(queueURL)
		if err != nil {
			b.mu.Unlock()
			return nil, err
		}
		if vis < 0 {
			vis = q.vis
		}
		now := time.Now()
		got := q.take(now, n, vis)
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

// take marks up to n visible messages in flight. Callers hold b.mu.
func (q *queue) take(now time.Time, n int, vis time.Duration) []receivedMessage {
	var out []receivedMessage
	for _, m := range q.messages {
		if len(out) == n {
			break
		}
		if m.visibleAt.After(now) {
			continue
		}
		m.receiveCount++
		if m.firstReceive.IsZero() {
			m.firstReceive = now
		}
		m.currentHandle = randomString(alnum, 96)
		m.handles[m.currentHandle] = true
		m.visibleAt = now.Add(vis)
		out = append(out, receivedMessage{m: m, handle: m.currentHandle, count: m.receiveCount})
	}
	return out
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

// deleteMessage deletes the message that was ever given handle. Deleting an
// already deleted message succeeds, like SQS and moto do.
func (b *sqsBackend) deleteMessage(queueURL, handle string) *apiError {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	i, _ := q.byHandle(handle)
	if i < 0 {
		if q.deleted[handle] {
			return nil
		}
		return receiptHandleInvalid(handle)
	}
	for h := range q.messages[i].handles {
		q.deleted[h] = true
	}
	q.messages = append(q.messages[:i], q.messages[i+1:]...)
	return nil
}

// changeVisibility makes the message that was ever given handle visible
// again after vis, counted from now.
func (b *sqsBackend) changeVisibility(queueURL, handle string, vis time.Duration) *apiError {
	if vis < 0 || vis > maxVisibilityTimeout {
		return invalidParameter("Value %d for parameter VisibilityTimeout is invalid. Reason: Must be between 0 and 43200.", vis/time.Second)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return err
	}
	_, m := q.byHandle(handle)
	if m == nil {
		return receiptHandleInvalid(handle)
	}
	m.visibleAt = time.Now().Add(vis)
	if vis == 0 {
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
	q.messages = nil
	return nil
}

// attributes returns the queue's attributes named in names ("All" for
// every one). No names means none, as SQS answers.
func (b *sqsBackend) attributes(queueURL string, names []string) (map[string]string, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	var visible, inflight, delayed int
	for _, m := range q.messages {
		switch {
		case !m.visibleAt.After(now):
			visible++
		case m.receiveCount > 0:
			inflight++
		default:
			delayed++
		}
	}
	secs := func(d time.Duration) string { return strconv.Itoa(int(d / time.Second)) }
	all := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"VisibilityTimeout":                     secs(q.vis),
		"DelaySeconds":                          secs(q.delay),
		"ReceiveMessageWaitTimeSeconds":         secs(q.wait),
		"MaximumMessageSize":                    strconv.Itoa(maxMessageSize),
		"MessageRetentionPeriod":                "345600",
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(q.created.Unix(), 10),
		"QueueArn":                              fmt.Sprintf("arn:aws:sqs:%s:%s:%s", b.region, b.account, q.name),
	}
	out := map[string]string{}
	for _, n := range names {
		if n == "All" {
			return all, nil
		}
		v, ok := all[n]
		if !ok {
			return nil, &apiError{status: http.StatusBadRequest, code: "InvalidAttributeName", message: fmt.Sprintf("Unknown Attribute %s.", n)}
		}
		out[n] = v
	}
	return out, nil
}
