package emulator

import (
	"slices"
	"sync"
	"time"
)

// SentCallback is one callback step message the emulator sent (to its own
// queue or handed to the external sender).
type SentCallback struct {
	// QueueURL is the step's SqsQueueUrl.
	QueueURL string
	// Body is the message body as sent.
	Body string
	// ExecutionARN, StepName, Token and Status are the fields of the body
	// and the step that sent it; Status is "Executing" or "Stopping".
	ExecutionARN, StepName, Token, Status string
	// Time is when the message was sent.
	Time time.Time
}

// sentLog records the callback messages sent, in order.
type sentLog struct {
	mu   sync.Mutex
	msgs []SentCallback
}

func (l *sentLog) record(m SentCallback) {
	l.mu.Lock()
	l.msgs = append(l.msgs, m)
	l.mu.Unlock()
}

// CallbackMessages returns every callback step message sent so far, in the
// order sent.
func (e *Emulator) CallbackMessages() []SentCallback {
	e.sent.mu.Lock()
	defer e.sent.mu.Unlock()
	return slices.Clone(e.sent.msgs)
}
