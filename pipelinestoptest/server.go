package pipelinestoptest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"github.com/aws/smithy-go/middleware"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
	"github.com/pipelinestop/pipelinestop/internal/sdkbody"
)

// Default values used when a Config field is left at its zero value.
const (
	// DefaultRegion is the Region of ARNs and of the ready-made clients.
	DefaultRegion = "us-east-1"
	// DefaultAccountID is the account of ARNs and queue URLs.
	DefaultAccountID = "123456789012"
	// DefaultAddr is a random free port on the loopback interface.
	DefaultAddr = "127.0.0.1:0"
)

// Execution and step statuses, as SageMaker writes them.
const (
	StatusExecuting = "Executing"
	StatusStopping  = "Stopping"
	StatusStopped   = "Stopped"
	StatusFailed    = "Failed"
	StatusSucceeded = "Succeeded"
)

// Step types with their own behaviour; any other type is a generic step
// that runs for Timing.StepDuration.
const (
	StepTypeCallback = "Callback"
	StepTypeLambda   = "Lambda"
)

// Answer outcomes.
const (
	OutcomeSuccess = "Success"
	OutcomeFailure = "Failure"
)

// Forever is a duration that never elapses: a step whose run time is
// Forever runs until it is stopped, answered or completed with CompleteStep.
const Forever = time.Duration(math.MaxInt64)

// AllOperations is the Faults.RateLimits key that applies to every
// operation without its own entry.
const AllOperations = "*"

// StaleDeletes is the Requests key counting DeleteMessage calls (and batch
// entries) that succeeded without deleting anything: an older receipt
// handle of a message received again since, or a message already deleted
// or moved to its dead-letter queue.
const StaleDeletes = "DeleteMessage (no effect)"

// MaxRegions is how many Regions one server serves at most.
const MaxRegions = emulator.MaxRegions

// ErrInvalidRegion is returned by Start (Config.Region) and InRegion for
// a name that is not a Region: lowercase letters, digits and single
// hyphens, such as "eu-west-1". Test with errors.Is.
var ErrInvalidRegion = emulator.ErrInvalidRegion

// ErrNotFound is returned for an unknown pipeline, execution, step or
// queue. Test with errors.Is.
var ErrNotFound = emulator.ErrNotFound

// ErrInvalidConfig is returned by Start and SetFaults for a Config or
// Faults value that cannot be used: a fraction outside 0 to 1 (or NaN), a
// negative latency, a rate limit on an operation the server does not
// serve, or a negative, NaN or infinite rate. Test with errors.Is.
var ErrInvalidConfig = errors.New("pipelinestoptest: invalid configuration")

// Config configures a Server. The zero value is ready to use.
type Config struct {
	// Addr is the TCP address to listen on. Empty means DefaultAddr.
	Addr string
	// Region is the default Region: the Region of the value Start returns
	// (its ARNs, queue URLs and ready-made clients) and of unsigned
	// requests. The server serves every Region (see InRegion). Empty means
	// DefaultRegion.
	Region string
	// AccountID is the 12-digit account used in ARNs and queue URLs. Empty
	// means DefaultAccountID.
	AccountID string
	// Timing sets how long simulated steps take; zero fields take the
	// defaults documented on Timing.
	Timing Timing
	// Faults are injected from the start; change them with SetFaults.
	Faults Faults
	// EventFaults are injected into the delivery of status-change events
	// from the start; change them with SetEventFaults.
	EventFaults EventFaults
	// RequireQueuePolicy makes the server deliver events to a queue only
	// when its Policy lets events.amazonaws.com send from the rule, as AWS
	// does. By default policies are not checked.
	RequireQueuePolicy bool
	// Seed seeds the fault injector's random choices.
	Seed int64
	// Logger receives debug logs of requests and state changes (callback
	// tokens redacted). Nil discards them.
	Logger *slog.Logger
}

// Default durations used when a Timing field is zero.
const (
	DefaultStepDuration  = time.Second
	DefaultStopDelay     = 200 * time.Millisecond
	DefaultLambdaRunTime = 2 * time.Second
	DefaultLambdaTimeout = 120 * time.Second
)

// Timing sets how long simulated work takes. A zero field takes its
// default; a negative field means no time at all.
type Timing struct {
	// StepDuration is how long a generic step runs before it succeeds.
	// Default DefaultStepDuration.
	StepDuration time.Duration
	// StopDelay is how long a stopped generic step stays Stopping before it
	// is Stopped. Default DefaultStopDelay.
	StopDelay time.Duration
	// LambdaRunTime is how long a Lambda step's function runs. Default
	// DefaultLambdaRunTime.
	LambdaRunTime time.Duration
	// LambdaTimeout is how long a Lambda step may run before it fails,
	// counted from the step's start. Default DefaultLambdaTimeout.
	LambdaTimeout time.Duration
	// ConflictWindow is how long after each step transition
	// StopPipelineExecution answers ConflictException. Default 0 (never).
	ConflictWindow time.Duration
}

// StepTiming overrides the Timing of the steps with a given name. A zero
// field keeps the server's Timing; a negative field means no time at all.
type StepTiming struct {
	// Duration is the step's run time: StepDuration for a generic step,
	// LambdaRunTime for a Lambda step.
	Duration time.Duration
	// StopDelay overrides Timing.StopDelay.
	StopDelay time.Duration
	// LambdaTimeout overrides Timing.LambdaTimeout.
	LambdaTimeout time.Duration
}

// Faults are injected failures. The zero value injects nothing.
type Faults struct {
	// RateLimits maps an operation name (for example
	// "StopPipelineExecution", or AllOperations) to a token bucket per
	// Region; a request that finds its bucket empty is answered
	// ThrottlingException.
	RateLimits map[string]RateLimit
	// ErrorRate is the fraction (0 to 1) of requests answered HTTP 500
	// InternalFailure or 503 ServiceUnavailable without running.
	ErrorRate float64
	// Latency is added before every answer, plus a uniform random extra of
	// up to LatencyJitter: of SageMaker operations, and of SQS operations
	// when IncludeSQS is set and SQSLatency and SQSLatencyJitter are 0.
	Latency, LatencyJitter time.Duration
	// SQSLatency is added before every answer of an SQS operation, plus a
	// uniform random extra of up to SQSLatencyJitter, whether or not
	// IncludeSQS is set; when either is positive it takes the place of
	// Latency and LatencyJitter for SQS operations, so that SQS and
	// SageMaker calls can take different times.
	SQSLatency, SQSLatencyJitter time.Duration
	// DropRate is the fraction of connections closed before the operation
	// runs; DropResponseRate the fraction closed after it ran (the answer
	// is lost, the effect is not).
	DropRate, DropResponseRate float64
	// IncludeSQS applies ErrorRate, latency, drops and the AllOperations
	// rate limit to SQS operations too; by default they apply to SageMaker
	// operations only.
	IncludeSQS bool
}

// RateLimit is a token bucket: PerSecond tokens are added each second up
// to Burst (at least 1).
type RateLimit struct {
	PerSecond float64
	Burst     int
}

// Conversions are field by field so that the internal types may grow.
func (t Timing) internal() emulator.Timing {
	return emulator.Timing{StepDuration: t.StepDuration, StopDelay: t.StopDelay, LambdaRunTime: t.LambdaRunTime,
		LambdaTimeout: t.LambdaTimeout, ConflictWindow: t.ConflictWindow}
}

// check reports the first unusable field, wrapped in ErrInvalidConfig.
func (f Faults) check() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidConfig, fmt.Sprintf(format, args...))
	}
	for name, v := range map[string]float64{"ErrorRate": f.ErrorRate, "DropRate": f.DropRate, "DropResponseRate": f.DropResponseRate} {
		if math.IsNaN(v) || v < 0 || v > 1 {
			return bad("Faults.%s %v is not a fraction from 0 to 1", name, v)
		}
	}
	if f.Latency < 0 || f.LatencyJitter < 0 {
		return bad("Faults.Latency %v and LatencyJitter %v must not be negative", f.Latency, f.LatencyJitter)
	}
	if f.SQSLatency < 0 || f.SQSLatencyJitter < 0 {
		return bad("Faults.SQSLatency %v and SQSLatencyJitter %v must not be negative", f.SQSLatency, f.SQSLatencyJitter)
	}
	for op, rl := range f.RateLimits {
		if op != AllOperations && !slices.Contains(emulator.Operations(), op) {
			return bad("Faults.RateLimits: %q is not an operation the server serves (%s) nor AllOperations", op, strings.Join(emulator.Operations(), ", "))
		}
		if math.IsNaN(rl.PerSecond) || math.IsInf(rl.PerSecond, 0) || rl.PerSecond < 0 || rl.Burst < 0 {
			return bad("Faults.RateLimits[%q]: PerSecond %v must be a finite number of at least 0 and Burst %d at least 0", op, rl.PerSecond, rl.Burst)
		}
	}
	return nil
}

func (f Faults) internal() emulator.Faults {
	out := emulator.Faults{ErrorRate: f.ErrorRate, Latency: f.Latency, LatencyJitter: f.LatencyJitter,
		SQSLatency: f.SQSLatency, SQSLatencyJitter: f.SQSLatencyJitter,
		DropRate: f.DropRate, DropResponseRate: f.DropResponseRate, IncludeSQS: f.IncludeSQS}
	if f.RateLimits != nil {
		out.RateLimits = map[string]emulator.RateLimit{}
		for op, rl := range f.RateLimits {
			out.RateLimits[op] = emulator.RateLimit{PerSecond: rl.PerSecond, Burst: rl.Burst}
		}
	}
	return out
}

// Server is a running SageMaker Pipelines and SQS emulator. Its methods are
// safe for concurrent use.
type Server struct {
	e *emulator.Emulator
}

// Start starts a server. Close it when done; in a test, New does that for
// you.
func Start(cfg Config) (*Server, error) {
	if err := cfg.Faults.check(); err != nil {
		return nil, err
	}
	if err := cfg.EventFaults.check(); err != nil {
		return nil, err
	}
	e, err := emulator.Start(emulator.Config{
		Addr:      cfg.Addr,
		Region:    cfg.Region,
		AccountID: cfg.AccountID,
		Timing:    cfg.Timing.internal(),
		Faults:    cfg.Faults.internal(),
		Seed:      cfg.Seed,

		EventFaults:        cfg.EventFaults.internal(),
		RequireQueuePolicy: cfg.RequireQueuePolicy,
		Logger:             cfg.Logger,
	})
	if err != nil {
		return nil, fmt.Errorf("pipelinestoptest: %w", err)
	}
	return &Server{e: e}, nil
}

// New starts a server for a test and closes it in the test's Cleanup. It
// fails the test when the server cannot start.
func New(t testing.TB, cfg Config) *Server {
	t.Helper()
	s, err := Start(cfg)
	if err != nil {
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("close emulator: %v", err)
		}
	})
	return s
}

// Close stops the server, ends long polls and simulated timers and waits
// for its goroutines, in every Region (also when called on a value
// InRegion returned). It is safe to call more than once.
func (s *Server) Close() error { return s.e.Close() }

// URL returns the server's endpoint, for example "http://127.0.0.1:43121".
func (s *Server) URL() string { return s.e.URL() }

// Region returns the Region of this value: Config.Region, or the Region
// named for a value InRegion returned. Its ARNs, queue URLs, ready-made
// clients and counters are of this Region.
func (s *Server) Region() string { return s.e.Region() }

// InRegion returns the server in region: a value whose ready-made clients
// (SageMakerClient, SQSClient, EventBridgeClient, AWSConfig) sign for
// region, and whose CreateQueue, CreatePipeline, StartExecution,
// Requests, Counters, EventStats and CallbackMessages create and read that
// Region's resources. Each Region has its own pipelines, executions,
// queues, rules and rate limit buckets, as in AWS; ARNs are built in the
// Region's partition (arn:aws-cn:... in cn-north-1, arn:aws-us-gov:... in
// us-gov-west-1, arn:aws-iso:..., arn:aws-iso-b:...). Any client reaches
// the Region of its signature: a client built with another Region works
// without InRegion. The methods that take an execution ARN or a callback
// token act in its Region whichever value they are called on; SetFaults,
// SetEventFaults, SetStepTiming and SetConflictWindow reach every Region.
// A Region name that is not lowercase letters, digits and hyphens (or one
// more than MaxRegions) returns an error wrapping ErrInvalidRegion.
func (s *Server) InRegion(region string) (*Server, error) {
	e, err := s.e.InRegion(region)
	if err != nil {
		return nil, fmt.Errorf("pipelinestoptest: %w", err)
	}
	return &Server{e: e}, nil
}

// Regions returns the Regions the server has state in, sorted:
// Config.Region and every Region a request or InRegion named.
func (s *Server) Regions() []string { return s.e.Regions() }

// AccountID returns the account used in ARNs and queue URLs.
func (s *Server) AccountID() string { return s.e.AccountID() }

// AWSConfig returns an aws.Config pointed at the server: static
// credentials "test"/"test", the server's Region and BaseEndpoint set to
// URL. Build any client from it. Its APIOptions carry NoWriteTo.
func (s *Server) AWSConfig() aws.Config { return s.e.AWSConfig() }

// NoWriteTo is an SDK API option (for aws.Config.APIOptions or a client's
// Options.APIOptions) that works around a race in the SDK's HTTP layer: when
// a server on the same host answers before the SDK's transport has finished
// writing the request, the SDK can close its own connection under an answer
// of more than 4 KiB, and the call fails with "use of closed network
// connection" (aws/aws-sdk-go-v2 issues #1825 and #2737). Against the
// emulator about 1 to 5 ReceiveMessage calls of 10 messages in 100 failed
// that way. AWSConfig and the clients of Server carry it; add it to SDK
// clients you build otherwise against URL. See internal/sdkbody for the
// mechanism.
func NoWriteTo(stack *middleware.Stack) error { return sdkbody.NoWriteTo(stack) }

// SageMakerClient returns a SageMaker client pointed at the server. The
// option functions are applied after the server's settings.
func (s *Server) SageMakerClient(optFns ...func(*sagemaker.Options)) *sagemaker.Client {
	return s.e.SageMakerClient(optFns...)
}

// SQSClient returns an SQS client pointed at the server. The option
// functions are applied after the server's settings.
func (s *Server) SQSClient(optFns ...func(*sqs.Options)) *sqs.Client {
	return s.e.SQSClient(optFns...)
}

// CreateQueue creates a standard queue with default attributes and returns
// its URL; an existing queue's URL is returned. Use SQSClient for queues
// with attributes (a RedrivePolicy, for example).
func (s *Server) CreateQueue(name string) (string, error) {
	u, err := s.e.CreateQueue(name)
	if err != nil {
		return "", fmt.Errorf("pipelinestoptest: create queue %s: %w", name, err)
	}
	return u, nil
}

// QueueURL returns the URL a queue with the given name has (or would
// have) on this server.
func (s *Server) QueueURL(name string) string { return s.e.QueueURL(name) }

// QueueARN returns the ARN a queue with the given name has (or would have)
// on this server, as a RedrivePolicy's deadLetterTargetArn names it. The
// ARN is in the partition of the server's Region (arn:aws-cn:sqs:... in
// cn-north-1).
func (s *Server) QueueARN(name string) string { return s.e.QueueARN(name) }

// CreatePipeline creates a pipeline from its definition JSON (see
// Definition for a builder) and returns its ARN. The definition is
// checked as CreatePipeline checks it.
func (s *Server) CreatePipeline(name, definitionJSON string) (string, error) {
	return s.e.CreatePipeline(name, definitionJSON)
}

// StartExecution starts an execution of the named pipeline and returns its
// ARN.
func (s *Server) StartExecution(pipelineName string) (string, error) {
	return s.e.StartExecution(pipelineName)
}

// ExecutionStatus returns an execution's status and failure reason.
func (s *Server) ExecutionStatus(executionARN string) (status, failureReason string, err error) {
	return s.e.ExecutionStatus(executionARN)
}

// StepStatus returns a step's status, or "" when it has not started.
func (s *Server) StepStatus(executionARN, stepName string) (string, error) {
	return s.e.StepStatus(executionARN, stepName)
}

// CallbackToken returns the callback token of a started callback step.
func (s *Server) CallbackToken(executionARN, stepName string) (string, error) {
	return s.e.CallbackToken(executionARN, stepName)
}

// WaitExecutionStatus waits until the execution has one of statuses and
// returns it. When ctx ends first the error wraps ctx.Err() and names the
// last status seen.
func (s *Server) WaitExecutionStatus(ctx context.Context, executionARN string, statuses ...string) (string, error) {
	return s.e.WaitExecutionStatus(ctx, executionARN, statuses...)
}

// WaitStepStatus waits until the step has one of statuses. When ctx ends
// first the error wraps ctx.Err() and names the last status seen.
func (s *Server) WaitStepStatus(ctx context.Context, executionARN, stepName string, statuses ...string) error {
	return s.e.WaitStepStatus(ctx, executionARN, stepName, statuses...)
}

// CompleteStep ends a running generic or Lambda step now, as if its run
// time had passed. Callback steps are answered through the SageMaker API.
func (s *Server) CompleteStep(executionARN, stepName string) error {
	return s.e.CompleteStep(executionARN, stepName)
}

// SetStepTiming overrides the timing of every step named stepName, for
// steps that start after the call. A zero StepTiming removes the override.
func (s *Server) SetStepTiming(stepName string, t StepTiming) {
	s.e.SetStepTiming(stepName, emulator.StepTiming{Duration: t.Duration, StopDelay: t.StopDelay, LambdaTimeout: t.LambdaTimeout})
}

// SetConflictWindow changes Timing.ConflictWindow for transitions after
// the call; zero or negative turns it off.
func (s *Server) SetConflictWindow(d time.Duration) { s.e.SetConflictWindow(d) }

// SetFaults replaces the injected faults in every Region. Rate limit
// buckets start full; each Region has its own, as throttling is per
// account and Region. An unusable value returns an error wrapping ErrInvalidConfig and changes
// nothing.
func (s *Server) SetFaults(f Faults) error {
	if err := f.check(); err != nil {
		return err
	}
	s.e.SetFaults(f.internal())
	return nil
}

// Requests returns how many requests for op (for example
// "StopPipelineExecution" or "ReceiveMessage") the server received in
// this value's Region (a request's Region is its signature's; an unsigned
// request's is Config.Region), including those answered with an injected
// fault. TotalRequests counts every Region.
func (s *Server) Requests(op string) int { return s.e.Requests(op) }

// TotalRequests returns how many requests for op the server received in
// all Regions.
func (s *Server) TotalRequests(op string) int { return s.e.TotalRequests(op) }

// Counters returns a snapshot of this Region's request counts by
// operation.
func (s *Server) Counters() map[string]int { return maps.Clone(s.e.Counters()) }

// RegionCounters returns a snapshot of the request counts of every Region,
// by Region then by operation.
func (s *Server) RegionCounters() map[string]map[string]int { return s.e.RegionCounters() }

// StopTokens returns every distinct ClientRequestToken seen in a
// StopPipelineExecution call for the execution, in the order first seen.
func (s *Server) StopTokens(executionARN string) []string { return s.e.StopTokens(executionARN) }

// AcceptedStopToken returns the ClientRequestToken of the stop that took
// effect on the execution, or "".
func (s *Server) AcceptedStopToken(executionARN string) string {
	return s.e.AcceptedStopToken(executionARN)
}

// EffectiveStops returns how many StopPipelineExecution calls changed the
// execution's state: 0 or 1. A test asserts "exactly one effective stop"
// with it.
func (s *Server) EffectiveStops(executionARN string) int { return s.e.EffectiveStops(executionARN) }

// StopCalls returns how many StopPipelineExecution calls for the execution
// were answered with success, replays of the accepted token included.
func (s *Server) StopCalls(executionARN string) int { return s.e.StopCalls(executionARN) }

// Answer is one accepted SendPipelineExecutionStepSuccess or
// SendPipelineExecutionStepFailure call for a callback token.
type Answer struct {
	// Outcome is OutcomeSuccess or OutcomeFailure.
	Outcome string
	// ClientRequestToken is the call's token ("" when none was sent).
	ClientRequestToken string
	// OutputParameters are a Success call's outputs.
	OutputParameters map[string]string
	// FailureReason is a Failure call's reason.
	FailureReason string
	// Replay is true when the call repeated the accepted answer with the
	// same ClientRequestToken and had no effect.
	Replay bool
	// Time is when the server accepted the call.
	Time time.Time
}

// Answers returns the accepted answers for a callback token in order,
// replays included. "No step answered twice" holds when every entry after
// the first is a Replay.
func (s *Server) Answers(callbackToken string) []Answer {
	var out []Answer
	for _, a := range s.e.Answers(callbackToken) {
		out = append(out, Answer{Outcome: a.Outcome, ClientRequestToken: a.ClientRequestToken, OutputParameters: a.OutputParameters,
			FailureReason: a.FailureReason, Replay: a.Replay, Time: a.Time})
	}
	return out
}

// CallbackMessage is one message a callback step sent to its queue.
type CallbackMessage struct {
	// QueueURL is the step's SqsQueueUrl.
	QueueURL string
	// Body is the message body as sent: {"token", "pipelineExecutionArn",
	// "arguments", "status"}.
	Body string
	// ExecutionARN, StepName, Token and Status describe the message;
	// Status is StatusExecuting when the step started and StatusStopping
	// when the execution was stopped while the step waited.
	ExecutionARN, StepName, Token, Status string
	// Time is when the message was sent.
	Time time.Time
}

// CallbackMessages returns every callback step message sent so far, in
// the order sent.
func (s *Server) CallbackMessages() []CallbackMessage {
	var out []CallbackMessage
	for _, m := range s.e.CallbackMessages() {
		out = append(out, CallbackMessage{QueueURL: m.QueueURL, Body: m.Body, ExecutionARN: m.ExecutionARN,
			StepName: m.StepName, Token: m.Token, Status: m.Status, Time: m.Time})
	}
	return out
}
