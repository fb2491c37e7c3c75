package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"maps"
	"math"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// defaultEmulatorAddr is where "stopctl emulator" listens by default.
const defaultEmulatorAddr = "127.0.0.1:4599"

// emulatorOps are the operations the emulator serves, for --rate-limit.
var emulatorOps = emulator.Operations()

// maxRate is the largest --rate-limit rate: beyond it a limit means
// nothing, and the default burst (the rate, rounded up) must fit an int.
const maxRate = 1e9

// durationFlag is a duration flag that also accepts "forever" (a step
// that runs until it is stopped or answered).
type durationFlag struct {
	d       time.Duration
	forever bool // "forever" is allowed
}

func (f *durationFlag) String() string {
	if f == nil {
		return ""
	}
	if f.d == emulator.Forever {
		return "forever"
	}
	return f.d.String()
}

func (f *durationFlag) Set(s string) error {
	if f.forever && (s == "forever" || s == "never") {
		f.d = emulator.Forever
		return nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		if f.forever {
			return fmt.Errorf("want a duration such as 1.5s or 200ms, or forever")
		}
		return fmt.Errorf("want a duration such as 1.5s or 200ms")
	}
	if d < 0 {
		return fmt.Errorf("must not be negative")
	}
	f.d = d
	return nil
}

// timing converts a flag value to an emulator.Timing field: 0 means "at
// once", which Timing spells as a negative duration.
func (f *durationFlag) timing() time.Duration {
	if f.d == 0 {
		return -1
	}
	return f.d
}

// fractionFlag is a float flag in [0, 1].
type fractionFlag float64

func (f *fractionFlag) String() string { return strconv.FormatFloat(float64(*f), 'g', -1, 64) }

func (f *fractionFlag) Set(s string) error {
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(v) || v < 0 || v > 1 {
		return fmt.Errorf("want a fraction from 0 to 1, such as 0.05")
	}
	*f = fractionFlag(v)
	return nil
}

// parseRateLimit parses "Op=N/s[,burst]" (or "Op=N[,burst]"); Op may be
// "*" for every operation without its own limit.
func parseRateLimit(s string) (string, emulator.RateLimit, error) {
	op, spec, ok := strings.Cut(s, "=")
	if !ok || op == "" || spec == "" {
		return "", emulator.RateLimit{}, fmt.Errorf("want OPERATION=N/s[,BURST], such as StopPipelineExecution=2/s,5, got %q", s)
	}
	if op != emulator.AllOperations && !slices.Contains(emulatorOps, op) {
		return "", emulator.RateLimit{}, fmt.Errorf("unknown operation %q; want * or one of %s", op, strings.Join(emulatorOps, ", "))
	}
	rate, burstText, hasBurst := strings.Cut(spec, ",")
	rate = strings.TrimSuffix(rate, "/s")
	perSecond, err := strconv.ParseFloat(rate, 64)
	if err != nil || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) || perSecond < 0 {
		return "", emulator.RateLimit{}, fmt.Errorf("%s: rate %q is not a number of requests per second", op, rate)
	}
	if perSecond > maxRate {
		return "", emulator.RateLimit{}, fmt.Errorf("%s: rate %q is above %g requests per second; leave the operation unlimited instead", op, rate, maxRate)
	}
	burst := int(math.Max(1, math.Ceil(perSecond)))
	if hasBurst {
		if burst, err = strconv.Atoi(burstText); err != nil || burst < 1 {
			return "", emulator.RateLimit{}, fmt.Errorf("%s: burst %q is not a whole number of at least 1", op, burstText)
		}
	}
	return op, emulator.RateLimit{PerSecond: perSecond, Burst: burst}, nil
}

// emulatorFlags are the flags of "stopctl emulator".
type emulatorFlags struct {
	addr, account, callbackEndpoint string
	seed                            int64
	verbose                         bool

	stepDuration, stopDelay, lambdaRunTime, lambdaTimeout, conflictWindow durationFlag
	latency, latencyJitter                                                durationFlag
	sqsLatency, sqsLatencyJitter                                          durationFlag

	errorRate, dropRate, dropResponseRate fractionFlag
	includeSQS                            bool
	rateLimits                            map[string]emulator.RateLimit

	eventDelay, eventDelaySpread      durationFlag
	eventDuplicateRate, eventDropRate fractionFlag
	requireQueuePolicy                bool
	lambda                            lambdaFlags // --function, --function-timeout, --event-source (emulatorlambda.go)
}

// register defines the flags on fs with the emulator's defaults.
func (f *emulatorFlags) register(fs *flag.FlagSet) {
	f.stepDuration = durationFlag{d: emulator.DefaultStepDuration, forever: true}
	f.stopDelay = durationFlag{d: emulator.DefaultStopDelay}
	f.lambdaRunTime = durationFlag{d: emulator.DefaultLambdaRunTime, forever: true}
	f.lambdaTimeout = durationFlag{d: emulator.DefaultLambdaTimeout, forever: true}
	f.rateLimits = map[string]emulator.RateLimit{}
	fs.StringVar(&f.addr, "addr", defaultEmulatorAddr, "HOST:PORT to listen on (port 0: a free port)")
	fs.StringVar(&f.account, "account-id", emulator.DefaultAccountID, "12-digit account ID used in ARNs and queue URLs")
	fs.Var(&f.stepDuration, "step-duration", "`duration` of a generic step (0: at once; forever: until stopped)")
	fs.Var(&f.stopDelay, "stop-delay", "`duration` a stopped generic step stays Stopping")
	fs.Var(&f.lambdaRunTime, "lambda-run-time", "run time (a `duration`) of a Lambda step's function (forever: until it times out)")
	fs.Var(&f.lambdaTimeout, "lambda-timeout", "`duration` a Lambda step may run before it fails (forever: no timeout)")
	fs.Var(&f.conflictWindow, "conflict-window", "`duration` after each step transition during which StopPipelineExecution answers ConflictException (0: never)")
	fs.Func("rate-limit", "throttle an operation: `OPERATION=N/s[,BURST]`, OPERATION * for all (repeatable)", func(s string) error {
		op, rl, err := parseRateLimit(s)
		if err != nil {
			return err
		}
		if _, dup := f.rateLimits[op]; dup {
			return fmt.Errorf("%s given twice", op)
		}
		f.rateLimits[op] = rl
		return nil
	})
	fs.Var(&f.errorRate, "error-rate", "`fraction` of requests answered HTTP 500 InternalFailure or 503 ServiceUnavailable")
	fs.Var(&f.latency, "latency", "`duration` of latency added to every answer (of SageMaker; of SQS too with --include-sqs and no --sqs-latency)")
	fs.Var(&f.latencyJitter, "latency-jitter", "random extra latency, up to this `duration`")
	fs.Var(&f.sqsLatency, "sqs-latency", "`duration` of latency added to every SQS answer instead of --latency (with or without --include-sqs)")
	fs.Var(&f.sqsLatencyJitter, "sqs-latency-jitter", "random extra SQS latency, up to this `duration`")
	fs.Var(&f.dropRate, "drop-rate", "`fraction` of connections closed before the operation runs")
	fs.Var(&f.dropResponseRate, "drop-response-rate", "`fraction` of connections closed after the operation ran (the answer is lost)")
	fs.BoolVar(&f.includeSQS, "include-sqs", false, "apply the error rate, latency, drops and the * rate limit to SQS operations too")
	fs.Var(&f.eventDelay, "event-delay", "`duration` before each SageMaker event reaches the EventBridge bus")
	fs.Var(&f.eventDelaySpread, "event-delay-spread", "random extra event delay, up to this `duration` (reorders events)")
	fs.Var(&f.eventDuplicateRate, "event-duplicate-rate", "`fraction` of SageMaker events sent twice")
	fs.Var(&f.eventDropRate, "event-drop-rate", "`fraction` of SageMaker events never sent")
	fs.BoolVar(&f.requireQueuePolicy, "require-queue-policy", false, "deliver events to a queue only when its policy lets events.amazonaws.com send from the rule")
	fs.Int64Var(&f.seed, "seed", 0, "seed of the fault injector's random choices")
	fs.StringVar(&f.callbackEndpoint, "callback-queue-endpoint", "", "send callback step messages to this SQS endpoint (for example a moto_server) instead of the emulator's queues")
	fs.BoolVar(&f.verbose, "verbose", false, "log every request and state change on standard error")
	f.lambda.register(fs)
}

// check validates what the flag types cannot.
func (f *emulatorFlags) check() error {
	host, port, err := net.SplitHostPort(f.addr)
	if err != nil {
		return usagef("emulator: --addr %q is not HOST:PORT", f.addr)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		return usagef("emulator: --addr %q: port %q is not a number from 0 to 65535", f.addr, port)
	}
	if host == "" {
		return usagef("emulator: --addr %q has no host; use 127.0.0.1:PORT (the emulator checks no credentials)", f.addr)
	}
	if len(f.account) != 12 || strings.Trim(f.account, "0123456789") != "" {
		return usagef("emulator: --account-id %q is not 12 digits", f.account)
	}
	if f.callbackEndpoint != "" {
		if u, err := url.Parse(f.callbackEndpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return usagef("emulator: --callback-queue-endpoint %q is not an http(s) URL", f.callbackEndpoint)
		}
	}
	return f.lambda.check()
}

// config builds the emulator.Config the flags describe.
func (f *emulatorFlags) config(region string) emulator.Config {
	cfg := emulator.Config{
		Addr:      f.addr,
		Region:    region,
		AccountID: f.account,
		Timing: emulator.Timing{
			StepDuration:   f.stepDuration.timing(),
			StopDelay:      f.stopDelay.timing(),
			LambdaRunTime:  f.lambdaRunTime.timing(),
			LambdaTimeout:  f.lambdaTimeout.timing(),
			ConflictWindow: f.conflictWindow.d,
		},
		Faults: emulator.Faults{
			ErrorRate:        float64(f.errorRate),
			Latency:          f.latency.d,
			LatencyJitter:    f.latencyJitter.d,
			SQSLatency:       f.sqsLatency.d,
			SQSLatencyJitter: f.sqsLatencyJitter.d,
			DropRate:         float64(f.dropRate),
			DropResponseRate: float64(f.dropResponseRate),
			IncludeSQS:       f.includeSQS,
		},
		Seed:                  f.seed,
		CallbackQueueEndpoint: f.callbackEndpoint,
		EventFaults: emulator.EventFaults{Delay: f.eventDelay.d, DelaySpread: f.eventDelaySpread.d,
			DuplicateRate: float64(f.eventDuplicateRate), DropRate: float64(f.eventDropRate)},
		RequireQueuePolicy: f.requireQueuePolicy,
	}
	if len(f.rateLimits) > 0 {
		cfg.Faults.RateLimits = f.rateLimits
	}
	return cfg
}

// runEmulator is "stopctl emulator": serve the emulator until SIGINT or
// SIGTERM.
func runEmulator(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("emulator", flag.ContinueOnError)
	var f emulatorFlags
	f.register(fs)
	rest, err := e.parse(fs, args, globalRegion|globalOutput)
	if err != nil {
		return err
	}
	if len(rest) > 0 {
		return usagef("emulator: unexpected argument %q", rest[0])
	}
	if e.g.endpoint != "" || e.g.profile != "" {
		return usagef("emulator: --endpoint-url and --profile do not apply (the emulator is the endpoint)")
	}
	if err := f.check(); err != nil {
		return err
	}
	region := e.g.region
	if region == "" {
		region = emulator.DefaultRegion
	}
	cfg := f.config(region)
	if f.verbose {
		cfg.Logger = slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	emu, err := emulator.Start(cfg)
	if errors.Is(err, emulator.ErrInvalidRegion) {
		return usagef("emulator: --region: %v", err)
	}
	if err != nil {
		return err
	}
	defer emu.Close()
	if err := f.lambda.start(emu, e.stdout, e.stderr, e.g.json()); err != nil {
		return err
	}

	if e.g.json() {
		if err := e.printJSON(map[string]any{"endpoint": emu.URL(), "region": emu.Region(), "accountId": emu.AccountID(),
			"accessKeyId": "test", "secretAccessKey": "test"}); err != nil {
			return err
		}
	} else {
		e.printEmulatorBanner(emu, &f, cfg)
	}
	<-ctx.Done()
	if err := emu.Close(); err != nil {
		return fmt.Errorf("emulator: close: %w", err)
	}
	if !e.g.json() {
		fmt.Fprintln(e.stdout, "emulator stopped")
	}
	return nil
}

func (e *env) printEmulatorBanner(emu *emulator.Emulator, f *emulatorFlags, cfg emulator.Config) {
	w := e.stdout
	u := emu.URL()
	fmt.Fprintf(w, "SageMaker Pipelines + SQS + EventBridge emulator listening on %s (region %s, account %s)\n\n", u, emu.Region(), emu.AccountID())
	fmt.Fprintf(w, "Every Region is served with its own state: a request's Region is its signature's (--region of another\n"+
		"stopctl command, AWS_REGION of the CLI); unsigned requests and the region above are %s.\n", emu.Region())
	fmt.Fprintln(w, "It accepts any credentials. In another terminal:")
	fmt.Fprintf(w, "  export AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test AWS_REGION=%s AWS_DEFAULT_REGION=%[1]s\n", emu.Region())
	fmt.Fprintf(w, "  aws --endpoint-url %s sqs create-queue --queue-name approvals\n", u)
	fmt.Fprintf(w, "  aws --endpoint-url %s sagemaker list-pipeline-executions --pipeline-name NAME\n", u)
	fmt.Fprintf(w, "  stopctl --endpoint-url %s status EXECUTION_ARN\n\n", u)
	fmt.Fprintf(w, "Timing: generic steps %s (stop delay %s), Lambda steps %s (timeout %s), conflict window %s\n",
		f.stepDuration.String(), f.stopDelay.String(), f.lambdaRunTime.String(), f.lambdaTimeout.String(), f.conflictWindow.String())
	if faults := describeFaults(cfg.Faults); faults != "" {
		fmt.Fprintf(w, "Faults: %s (seed %d)\n", faults, cfg.Seed)
	}
	if faults := describeEventFaults(cfg.EventFaults); faults != "" {
		fmt.Fprintf(w, "Event faults: %s (seed %d)\n", faults, cfg.Seed)
	}
	if cfg.RequireQueuePolicy {
		fmt.Fprintln(w, "Events reach a queue only when its policy allows events.amazonaws.com")
	}
	if cfg.CallbackQueueEndpoint != "" {
		fmt.Fprintf(w, "Callback messages go to %s\n", cfg.CallbackQueueEndpoint)
	}
	fmt.Fprintln(w, "Press Ctrl-C to stop.")
}

// describeFaults lists the faults in force, or "" when there are none.
func describeFaults(f emulator.Faults) string {
	var parts []string
	for _, op := range slices.Sorted(maps.Keys(f.RateLimits)) {
		rl := f.RateLimits[op]
		parts = append(parts, fmt.Sprintf("%s throttled at %g/s (burst %d)", op, rl.PerSecond, rl.Burst))
	}
	if f.ErrorRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% server errors", 100*f.ErrorRate))
	}
	if f.Latency > 0 || f.LatencyJitter > 0 {
		parts = append(parts, fmt.Sprintf("latency %s + up to %s", f.Latency, f.LatencyJitter))
	}
	if f.SQSLatency > 0 || f.SQSLatencyJitter > 0 {
		parts = append(parts, fmt.Sprintf("SQS latency %s + up to %s", f.SQSLatency, f.SQSLatencyJitter))
	}
	if f.DropRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% requests dropped", 100*f.DropRate))
	}
	if f.DropResponseRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% answers dropped", 100*f.DropResponseRate))
	}
	if len(parts) > 0 && f.IncludeSQS {
		parts = append(parts, "SQS included")
	}
	return strings.Join(parts, ", ")
}

// describeEventFaults lists the event faults in force, or "" when there
// are none.
func describeEventFaults(f emulator.EventFaults) string {
	var parts []string
	if f.Delay > 0 || f.DelaySpread > 0 {
		parts = append(parts, fmt.Sprintf("delay %s + up to %s", f.Delay, f.DelaySpread))
	}
	if f.DuplicateRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% duplicated", 100*f.DuplicateRate))
	}
	if f.DropRate > 0 {
		parts = append(parts, fmt.Sprintf("%g%% dropped", 100*f.DropRate))
	}
	return strings.Join(parts, ", ")
}
