package emulator

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pipelinestop/pipelinestop/internal/sdkbody"
)

// Default values used when a Config field is left at its zero value.
const (
	DefaultRegion    = "us-east-1"
	DefaultAccountID = "123456789012"
	DefaultAddr      = "127.0.0.1:0"
)

// Config configures an Emulator. The zero value is ready to use.
type Config struct {
	// Addr is the TCP address to listen on. Empty means DefaultAddr (a random
	// loopback port).
	Addr string

	// Region is the AWS Region used in ARNs and by the ready-made clients.
	// Empty means DefaultRegion.
	Region string

	// AccountID is the 12-digit account used in ARNs and queue URLs. Empty
	// means DefaultAccountID.
	AccountID string

	// Timing sets how long simulated steps take. Zero fields take the
	// defaults documented on Timing.
	Timing Timing

	// Faults are the faults injected from the start. They can be changed
	// later with SetFaults.
	Faults Faults

	// Seed seeds the fault injector so that a sequential client sees the same
	// faults on every run.
	Seed int64

	// EventFaults are the faults injected into the delivery of status-change
	// events from the start; change them with SetEventFaults.
	EventFaults EventFaults

	// RequireQueuePolicy makes EventBridge deliver to a queue only when its
	// Policy lets events.amazonaws.com send from the rule, as AWS does. By
	// default policies are not checked.
	RequireQueuePolicy bool

	// CallbackQueueEndpoint, when set, is the endpoint of an external SQS
	// service (for example moto_server) that receives callback step messages
	// instead of the emulator's own queues. The step's SqsQueueUrl is sent
	// unchanged as the QueueUrl of the SendMessage call.
	CallbackQueueEndpoint string

	// CallbackSender, when set, delivers callback step messages. It takes
	// precedence over CallbackQueueEndpoint.
	CallbackSender CallbackSender

	// Logger receives debug logs of requests and state changes. Nil means
	// discard.
	Logger *slog.Logger
}

// CallbackSender delivers the SQS messages that callback steps send.
type CallbackSender interface {
	// SendCallback sends body to the queue at queueURL.
	SendCallback(ctx context.Context, queueURL, body string) error
}

// Emulator is a running SageMaker Pipelines and SQS emulator. All its
// methods are safe for concurrent use.
type Emulator struct {
	cfg    Config
	log    *slog.Logger
	ln     net.Listener
	srv    *http.Server
	url    string
	awsCfg aws.Config

	done      chan struct{}
	closeOnce sync.Once
	closeErr  error

	inflightMu sync.Mutex
	closing    bool
	inflight   sync.WaitGroup

	faults   *faultInjector
	counters *counters
	queues   *sqsBackend
	outbox   *outbox
	sent     sentLog
	bus      *eventBus
	events   *eventDelivery

	mu    sync.Mutex
	state *pipelineState

	lambdaOnce sync.Once
	lambda     *lambdaBackend // local functions and event source mappings (lambdafunc.go)

	regions *regionSet // every Region's state, this one included (regions.go)
}

// Start starts an emulator listening on cfg.Addr. Close it when done.
func Start(cfg Config) (*Emulator, error) {
	if cfg.Addr == "" {
		cfg.Addr = DefaultAddr
	}
	if cfg.Region == "" {
		cfg.Region = DefaultRegion
	}
	if cfg.AccountID == "" {
		cfg.AccountID = DefaultAccountID
	}
	if err := checkRegion(cfg.Region); err != nil {
		return nil, err
	}
	if !accountPattern.MatchString(cfg.AccountID) {
		return nil, fmt.Errorf("emulator: account ID %q is not 12 digits", cfg.AccountID)
	}
	cfg.Timing = cfg.Timing.withDefaults()
	if err := cfg.EventFaults.check(); err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: listen: %w", err)
	}
	e := &Emulator{
		cfg:      cfg,
		log:      log,
		ln:       ln,
		url:      "http://" + ln.Addr().String(),
		done:     make(chan struct{}),
		faults:   newFaultInjector(cfg.Faults, cfg.Seed),
		counters: newCounters(),
		bus:      newEventBus(),
		events:   newEventDelivery(cfg.EventFaults, cfg.Seed),
	}
	e.queues = newSQSBackend(e.url, cfg.Region, cfg.AccountID, e.done)
	e.queues.home = cfg.Region
	e.state = newPipelineState()
	e.regions = newRegionSet(e)
	e.awsCfg = clientConfig(e.url, cfg.Region)
	sender := cfg.CallbackSender
	if sender == nil && cfg.CallbackQueueEndpoint != "" {
		sender = NewSQSCallbackSender(sqs.NewFromConfig(e.awsCfg, func(o *sqs.Options) {
			o.BaseEndpoint = aws.String(cfg.CallbackQueueEndpoint)
		}))
	}
	if sender != nil {
		e.outbox = newOutbox(sender, log)
	}
	e.srv = &http.Server{
		Handler:           http.HandlerFunc(e.serveRegion),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelDebug),
	}
	go func() {
		if err := e.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			log.Error("emulator server stopped", "err", err)
		}
	}()
	log.Info("emulator listening", "url", e.url)
	return e, nil
}

// clientConfig is the aws.Config of the emulator's clients: static
// credentials, the Region, the endpoint url and sdkbody.NoWriteTo, without
// which the SDK now and then closes the connection under an answer larger
// than 4 KiB that the emulator sent before the SDK finished writing the
// request (issue 14; see internal/sdkbody).
func clientConfig(url, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("test", "test", "")),
		BaseEndpoint: aws.String(url),
		APIOptions:   []func(*middleware.Stack) error{sdkbody.NoWriteTo},
	}
}

// StartTest starts an emulator for a test and closes it in the test's
// Cleanup. It fails the test when the emulator cannot start.
func StartTest(t testing.TB, cfg Config) *Emulator {
	t.Helper()
	e, err := Start(cfg)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	return e
}

// Close stops the server, wakes long polls, cancels every simulated timer
// and waits for the emulator's goroutines to end, in every Region
// whichever Region's value it is called on. It is safe to call more than
// once.
func (e *Emulator) Close() error {
	e = e.regions.home // the server and its Regions close together
	e.closeOnce.Do(func() {
		close(e.done)
		e.inflightMu.Lock()
		e.closing = true
		e.inflightMu.Unlock()
		e.closeErr = e.srv.Close()
		for _, c := range e.regions.close() {
			c.closeRegion()
		}
		if e.outbox != nil {
			e.outbox.close()
		}
	})
	return e.closeErr
}

// URL returns the emulator's endpoint, for example "http://127.0.0.1:43121".
func (e *Emulator) URL() string { return e.url }

// Region returns the Region of this value: Config.Region for the value
// Start returned, the Region named for one InRegion returned. ARNs and
// queue URLs it makes, and its ready-made clients, are of this Region.
func (e *Emulator) Region() string { return e.cfg.Region }

// AccountID returns the account the emulator uses in ARNs and queue URLs.
func (e *Emulator) AccountID() string { return e.cfg.AccountID }

// AWSConfig returns an aws.Config pointed at the emulator: static
// credentials "test"/"test", the emulator's Region, BaseEndpoint set to
// URL and sdkbody.NoWriteTo in APIOptions (so the SDK never closes its
// connection under an answer it is reading; see the package doc's
// "Framing").
func (e *Emulator) AWSConfig() aws.Config { return e.awsCfg.Copy() }

// SageMakerClient returns a SageMaker client pointed at the emulator. The
// option functions are applied after the emulator's settings.
func (e *Emulator) SageMakerClient(optFns ...func(*sagemaker.Options)) *sagemaker.Client {
	return sagemaker.NewFromConfig(e.AWSConfig(), optFns...)
}

// SQSClient returns an SQS client pointed at the emulator. The option
// functions are applied after the emulator's settings.
func (e *Emulator) SQSClient(optFns ...func(*sqs.Options)) *sqs.Client {
	return sqs.NewFromConfig(e.AWSConfig(), optFns...)
}

// EventBridgeClient returns an EventBridge client pointed at the emulator.
// The option functions are applied after the emulator's settings.
func (e *Emulator) EventBridgeClient(optFns ...func(*eventbridge.Options)) *eventbridge.Client {
	return eventbridge.NewFromConfig(e.AWSConfig(), optFns...)
}

// QueueURL returns the URL of the emulator's queue with the given name,
// whether or not the queue exists.
func (e *Emulator) QueueURL(name string) string { return e.queues.urlFor(name) }

// QueueARN returns the ARN of the emulator's queue with the given name,
// whether or not the queue exists.
func (e *Emulator) QueueARN(name string) string { return e.queues.arnFor(name) }

// enter registers an in-flight request; it reports false once Close began.
func (e *Emulator) enter() bool {
	e.inflightMu.Lock()
	defer e.inflightMu.Unlock()
	if e.closing {
		return false
	}
	e.inflight.Add(1)
	return true
}
