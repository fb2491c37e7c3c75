package emulator

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
)

// queueAttribute is one settable queue attribute: its default ("" means
// unset and not reported) and the check that turns a given value into its
// canonical form. An empty given value unsets an attribute without a
// default.
type queueAttribute struct {
	def   string
	check func(b *sqsBackend, queueName, v string) (string, *apiError)
}

func intRange(name string, lo, hi int) func(*sqsBackend, string, string) (string, *apiError) {
	return func(_ *sqsBackend, _, v string) (string, *apiError) {
		n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		if err != nil || n < int64(lo) || n > int64(hi) {
			return "", invalidAttributeValue(name, fmt.Sprintf("must be a whole number from %d to %d", lo, hi))
		}
		return strconv.FormatInt(n, 10), nil
	}
}

func jsonObject(name string) func(*sqsBackend, string, string) (string, *apiError) {
	return func(_ *sqsBackend, _, v string) (string, *apiError) {
		if v == "" {
			return "", nil
		}
		var obj map[string]any
		if err := json.Unmarshal([]byte(v), &obj); err != nil {
			return "", invalidAttributeValue(name, "must be a JSON object")
		}
		return v, nil
	}
}

func anyString(_ *sqsBackend, _, v string) (string, *apiError) { return v, nil }

func boolString(name string) func(*sqsBackend, string, string) (string, *apiError) {
	return func(_ *sqsBackend, _, v string) (string, *apiError) {
		switch strings.ToLower(v) {
		case "true", "false":
			return strings.ToLower(v), nil
		}
		return "", invalidAttributeValue(name, "must be true or false")
	}
}

// settableAttributes are the standard queue's attributes that CreateQueue
// and SetQueueAttributes take.
var settableAttributes = map[string]queueAttribute{
	"VisibilityTimeout":             {strconv.Itoa(defaultVisibilitySeconds), intRange("VisibilityTimeout", 0, maxVisibilitySeconds)},
	"DelaySeconds":                  {"0", intRange("DelaySeconds", 0, maxDelaySeconds)},
	"ReceiveMessageWaitTimeSeconds": {"0", intRange("ReceiveMessageWaitTimeSeconds", 0, maxWaitSeconds)},
	"MaximumMessageSize":            {strconv.Itoa(maxMessageSize), intRange("MaximumMessageSize", minMessageSize, maxMessageSize)},
	"MessageRetentionPeriod":        {strconv.Itoa(defaultRetentionSeconds), intRange("MessageRetentionPeriod", 60, 1209600)},
	"Policy":                        {"", jsonObject("Policy")},
	"RedrivePolicy":                 {"", checkRedrivePolicy},
	"RedriveAllowPolicy":            {"", jsonObject("RedriveAllowPolicy")},
	"KmsMasterKeyId":                {"", anyString},
	"KmsDataKeyReusePeriodSeconds":  {"", intRange("KmsDataKeyReusePeriodSeconds", 60, 86400)},
	"SqsManagedSseEnabled":          {"true", boolString("SqsManagedSseEnabled")},
}

// readOnlyAttributes are computed by the queue; "FifoQueue" is reported
// as absent on standard queues, as SQS does.
var readOnlyAttributes = []string{
	"ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible", "ApproximateNumberOfMessagesDelayed",
	"CreatedTimestamp", "LastModifiedTimestamp", "QueueArn",
}

// checkAttributes checks attributes given to CreateQueue or
// SetQueueAttributes and returns their canonical values. Unknown names
// (FIFO-only ones included) are InvalidAttributeName. Callers hold b.mu.
func (b *sqsBackend) checkAttributes(attrs map[string]string, queueName string) (map[string]string, *apiError) {
	out := map[string]string{}
	for _, k := range sortedKeys(attrs) {
		v := attrs[k]
		if k == "FifoQueue" && strings.EqualFold(v, "false") {
			continue // a standard queue, as asked
		}
		spec, ok := settableAttributes[k]
		if !ok {
			return nil, invalidAttributeName(k)
		}
		canon, err := spec.check(b, queueName, v)
		if err != nil {
			return nil, err
		}
		out[k] = canon
	}
	return out, nil
}

// checkRedrivePolicy checks a RedrivePolicy: a JSON object with
// deadLetterTargetArn (an existing queue of this account and Region other
// than the queue itself) and maxReceiveCount (1 to 1000, a number or a
// numeric string). The canonical form writes maxReceiveCount as a number.
func checkRedrivePolicy(b *sqsBackend, queueName, v string) (string, *apiError) {
	if v == "" {
		return "", nil
	}
	bad := func(reason string) *apiError {
		return &apiError{status: http.StatusBadRequest, code: "InvalidAttributeValue",
			message: fmt.Sprintf("Value %s for parameter RedrivePolicy is invalid. Reason: %s", v, reason)}
	}
	var raw map[string]any
	if err := json.Unmarshal([]byte(v), &raw); err != nil {
		return "", bad("Redrive policy is not a valid JSON object.")
	}
	target, _ := raw["deadLetterTargetArn"].(string)
	if target == "" {
		return "", bad("Redrive policy does not contain mandatory attribute: deadLetterTargetArn.")
	}
	var count int64
	switch c := raw["maxReceiveCount"].(type) {
	case float64:
		count = int64(c)
		if float64(count) != c {
			count = 0
		}
	case string:
		n, err := strconv.ParseInt(c, 10, 64)
		if err != nil {
			return "", bad("Invalid value for maxReceiveCount: " + c + ", valid values are from 1 to 1000 both inclusive.")
		}
		count = n
	case nil:
		return "", bad("Redrive policy does not contain mandatory attribute: maxReceiveCount.")
	default:
		return "", bad("Invalid value for maxReceiveCount, valid values are from 1 to 1000 both inclusive.")
	}
	if count < 1 || count > maxReceiveCountLimit {
		return "", bad(fmt.Sprintf("Invalid value for maxReceiveCount: %d, valid values are from 1 to 1000 both inclusive.", count))
	}
	for k := range raw {
		if k != "deadLetterTargetArn" && k != "maxReceiveCount" {
			return "", bad("Only deadLetterTargetArn and maxReceiveCount are allowed, not " + k + ".")
		}
	}
	if target == b.arnFor(queueName) {
		return "", bad("A queue cannot be its own dead-letter queue.")
	}
	if b.byARN(target) == nil {
		return "", bad("Dead letter target does not exist.")
	}
	buf, _ := json.Marshal(struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int64  `json:"maxReceiveCount"`
	}{target, count})
	return string(buf), nil
}

// attr returns a settable attribute's value, or its default. Callers hold
// b.mu.
func (q *queue) attr(name string) string {
	if v, ok := q.attrs[name]; ok {
		return v
	}
	return settableAttributes[name].def
}

// intAttr returns a numeric settable attribute. Callers hold b.mu.
func (q *queue) intAttr(name string) int {
	n, _ := strconv.Atoi(q.attr(name))
	return n
}

// redrivePolicy returns the queue's redrive policy, nil when it has none.
// Callers hold b.mu.
func (q *queue) redrivePolicy() *redrive {
	v := q.attr("RedrivePolicy")
	if v == "" {
		return nil
	}
	var p struct {
		DeadLetterTargetArn string `json:"deadLetterTargetArn"`
		MaxReceiveCount     int    `json:"maxReceiveCount"`
	}
	if json.Unmarshal([]byte(v), &p) != nil {
		return nil // canonical values always parse
	}
	return &redrive{target: p.DeadLetterTargetArn, maxReceiveCount: p.MaxReceiveCount}
}

// attributes returns the queue's attributes named in names ("All" for
// every one). No names means none, as SQS answers. Attributes that are not
// set (Policy, RedrivePolicy, ...) are left out, asked for or not.
func (b *sqsBackend) attributes(queueURL string, names []string) (map[string]string, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	q, err := b.lookup(queueURL)
	if err != nil {
		return nil, err
	}
	now := b.now()
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
	all := map[string]string{
		"ApproximateNumberOfMessages":           strconv.Itoa(visible),
		"ApproximateNumberOfMessagesNotVisible": strconv.Itoa(inflight),
		"ApproximateNumberOfMessagesDelayed":    strconv.Itoa(delayed),
		"CreatedTimestamp":                      strconv.FormatInt(q.created.Unix(), 10),
		"LastModifiedTimestamp":                 strconv.FormatInt(q.modified.Unix(), 10),
		"QueueArn":                              q.arn,
	}
	for name := range settableAttributes {
		if v := q.attr(name); v != "" {
			all[name] = v
		}
	}
	known := func(n string) bool {
		if _, ok := settableAttributes[n]; ok {
			return true
		}
		switch n {
		case "FifoQueue", "ContentBasedDeduplication", "DeduplicationScope", "FifoThroughputLimit":
			return true // FIFO attributes: absent on a standard queue
		}
		for _, r := range readOnlyAttributes {
			if r == n {
				return true
			}
		}
		return false
	}
	out := map[string]string{}
	for _, n := range names {
		if n == "All" {
			return all, nil
		}
		if !known(n) {
			return nil, invalidAttributeName(n)
		}
		if v, ok := all[n]; ok {
			out[n] = v
		}
	}
	return out, nil
}
