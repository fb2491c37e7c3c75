package emulator

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
)

// SQSCallbackSender sends callback messages with an SQS client, for example
// one pointed at moto_server.
type SQSCallbackSender struct {
	client *sqs.Client
}

// NewSQSCallbackSender returns a CallbackSender that calls SendMessage on
// client with the step's SqsQueueUrl.
func NewSQSCallbackSender(client *sqs.Client) *SQSCallbackSender {
	return &SQSCallbackSender{client: client}
}

// SendCallback implements CallbackSender.
func (s *SQSCallbackSender) SendCallback(ctx context.Context, queueURL, body string) error {
	_, err := s.client.SendMessage(ctx, &sqs.SendMessageInput{QueueUrl: aws.String(queueURL), MessageBody: aws.String(body)})
	return err
}

// outbox delivers callback messages through a CallbackSender from one
// goroutine, in the order they were produced, so that a step's Executing
// message is sent before its Stopping message.
type outbox struct {
	sender CallbackSender
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	mu      sync.Mutex
	pending []outMessage
	wake    chan struct{}
	done    chan struct{}
}

type outMessage struct{ queueURL, body string }

// sendTimeout bounds one delivery attempt; failed deliveries are logged
// and dropped, like a message SageMaker could not send.
const sendTimeout = 10 * time.Second

func newOutbox(sender CallbackSender, log *slog.Logger) *outbox {
	ctx, cancel := context.WithCancel(context.Background())
	o := &outbox{sender: sender, log: log, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{})}
	go o.run()
	return o
}

func (o *outbox) push(queueURL, body string) {
	o.mu.Lock()
	o.pending = append(o.pending, outMessage{queueURL, body})
	o.mu.Unlock()
	select {
	case o.wake <- struct{}{}:
	default:
	}
}

func (o *outbox) run() {
	defer close(o.done)
	for {
		o.mu.Lock()
		batch := o.pending
		o.pending = nil
		o.mu.Unlock()
		for _, m := range batch {
			ctx, cancel := context.WithTimeout(o.ctx, sendTimeout)
			if err := o.sender.SendCallback(ctx, m.queueURL, m.body); err != nil {
				o.log.Warn("callback message lost", "queue", m.queueURL, "err", err)
			}
			cancel()
		}
		select {
		case <-o.wake:
		case <-o.ctx.Done():
			return
		}
	}
}

// close cancels deliveries in progress and waits for the goroutine.
func (o *outbox) close() {
	o.cancel()
	<-o.done
}
