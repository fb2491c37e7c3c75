// Command shutdownhook is a service that starts SageMaker pipeline
// executions and, when it is told to shut down (SIGTERM or SIGINT), stops
// every execution it started within a grace period, with
// pipelinestop.Stopper.StopAll. It logs, with log/slog, what it stopped and
// what it could not stop, and why: a callback step still waiting for an
// answer, a Lambda step still running, an execution that does not exist,
// a stop SageMaker kept refusing until the grace period ended.
//
// It shows the shutdown hook a real service needs when its executions must
// not outlive it (a batch driver, a job runner, a test harness):
//
//   - the stop runs on a context of its own, derived from the shutdown
//     signal but bounded by -grace, so that it ends before the
//     orchestrator's own deadline (Kubernetes sends SIGKILL 30 seconds after
//     SIGTERM by default; the default grace of 20 seconds leaves room);
//   - StopAll sends one idempotent StopPipelineExecution per execution
//     (with a token derived from the ARN, so a restarted replica repeats
//     the same request), retries conflicts and throttling, bounds the calls
//     in flight (-concurrency), and with -wait waits for each execution to
//     reach a terminal status;
//   - every result is classified with errors.Is against the pipelinestop
//     sentinels, and an execution still Stopping when the grace period
//     ends is logged with the steps that hold it.
//
// The logic is in run, which takes a context, a SageMaker client and a
// logger, so that it is tested without signals against the emulator.
//
// # Usage
//
//	shutdownhook [flags] [EXECUTION-ARN ...]
//
// It starts -count executions of -pipeline and also looks after the
// executions given as arguments (started elsewhere). It runs until every
// execution has ended on its own, or until SIGTERM or SIGINT, when it stops
// those still running. A second signal ends it at once. Exit status: 0 when
// nothing was left running, 1 when an execution could not be stopped or
// started, 2 for invalid flags or arguments.
//
// The AWS configuration is the standard one (config.LoadDefaultConfig):
// environment variables, shared config and credentials files, -profile and
// -region. -endpoint-url, or the AWS_ENDPOINT_URL environment variable
// that the SDK honours, sends the calls elsewhere, for example to the
// emulator.
//
// # Against the emulator
//
// Start the emulator in one terminal (it prints its endpoint):
//
//	go run ./examples/stopctl emulator --addr 127.0.0.1:4566
//
// In another, create a pipeline with a generic step and a callback step
// whose queue nobody answers, and run the service (the Go SDK reads
// AWS_ENDPOINT_URL; the AWS CLI v1 reads AWS_DEFAULT_REGION and is given
// --endpoint-url):
//
//	export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//	    AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
//	aws --endpoint-url $AWS_ENDPOINT_URL sqs create-queue --queue-name callbacks
//	aws --endpoint-url $AWS_ENDPOINT_URL sagemaker create-pipeline --pipeline-name train \
//	    --role-arn arn:aws:iam::123456789012:role/pipelines \
//	    --pipeline-definition '{"Version":"2020-12-01","Steps":[
//	      {"Name":"Prepare","Type":"Processing"},
//	      {"Name":"Approve","Type":"Callback","DependsOn":["Prepare"],
//	       "SqsQueueUrl":"http://127.0.0.1:4566/123456789012/callbacks"}]}'
//	go run ./examples/shutdownhook -pipeline train -count 3 -grace 5s
//
// Press Ctrl-C at once: the executions are still in their generic step and
// are Stopped. Press it after a second or two: the callback step holds them
// Stopping, and the service logs, after 5 seconds, that it could not stop
// them in time and that their callback step waits for an answer on the
// queue (answer it with `go run ./examples/callbackconsumer -queue
// http://127.0.0.1:4566/123456789012/callbacks`, and they stop).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"

	"github.com/pipelinestop/pipelinestop"
)

// Exit statuses.
const (
	exitOK       = 0 // nothing was left running
	exitNotDone  = 1 // an execution could not be started or stopped
	exitUsage    = 2 // invalid flags or arguments
	defaultGrace = 20 * time.Second
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default behaviour: a second one
	// ends the process at once.
	context.AfterFunc(ctx, stop)
	code := runMain(ctx, os.Args[1:], os.Stderr)
	stop()
	os.Exit(code)
}

// flags are the command line, parsed.
type flags struct {
	cfg         serviceConfig
	region      string
	profile     string
	endpointURL string
	logFormat   string
}

// runMain parses args, loads the AWS configuration, runs the service until
// ctx ends, and returns the exit status. Logs go to logOut.
func runMain(ctx context.Context, args []string, logOut io.Writer) int {
	f, err := parseFlags(args, logOut)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(logOut, "shutdownhook: %v\n", err)
		return exitUsage
	}
	log := newLogger(logOut, f.logFormat)
	awsCfg, err := loadAWSConfig(ctx, f.region, f.profile)
	if err != nil {
		log.Error("cannot load the AWS configuration", "error", err)
		return exitNotDone
	}
	client := sagemaker.NewFromConfig(awsCfg, func(o *sagemaker.Options) {
		if f.endpointURL != "" {
			// Set on the client, this wins over every configured endpoint,
			// AWS_ENDPOINT_URL_SAGEMAKER included, as the AWS CLI's
			// --endpoint-url does.
			o.BaseEndpoint = aws.String(f.endpointURL)
		}
	})
	sum, err := run(ctx, client, log, f.cfg)
	if err != nil {
		log.Error("service failed", "error", err)
		return exitNotDone
	}
	if len(sum.NotStopped) > 0 {
		return exitNotDone
	}
	return exitOK
}

// parseFlags parses the command line. Usage errors are returned; the flag
// package has already printed the usage to out.
func parseFlags(args []string, out io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("shutdownhook", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: shutdownhook [flags] [EXECUTION-ARN ...]")
		fmt.Fprintln(fs.Output(), "Starts pipeline executions and stops them all on SIGTERM or SIGINT.")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.cfg.Pipeline, "pipeline", "", "name of the pipeline to start executions of")
	fs.IntVar(&f.cfg.Count, "count", 1, "number of executions of -pipeline to start")
	fs.DurationVar(&f.cfg.Grace, "grace", defaultGrace, "time allowed to stop the executions on shutdown")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", pipelinestop.DefaultConcurrency, "SageMaker calls in flight while stopping")
	fs.BoolVar(&f.cfg.Wait, "wait", true, "wait within the grace period for each execution to be Stopped, and report what holds it")
	fs.StringVar(&f.region, "region", "", "AWS Region (default: from the environment or profile)")
	fs.StringVar(&f.profile, "profile", "", "shared configuration profile (default: AWS_PROFILE or \"default\")")
	fs.StringVar(&f.endpointURL, "endpoint-url", "", "endpoint for SageMaker calls, for example the emulator's (default: AWS_ENDPOINT_URL, else AWS)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&f.cfg.Verbose, "v", false, "also log the library's events: status changes, blocking steps")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	f.cfg.ExecutionARNs = fs.Args()
	if err := f.cfg.validate(); err != nil {
		return f, err
	}
	switch f.logFormat {
	case "text", "json":
	default:
		return f, fmt.Errorf("-log-format %q: want text or json", f.logFormat)
	}
	return f, nil
}

// newLogger returns a logger writing text or JSON records to w.
func newLogger(w io.Writer, format string) *slog.Logger {
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, nil))
	}
	return slog.New(slog.NewTextHandler(w, nil))
}

// loadAWSConfig loads the standard AWS configuration: environment
// variables (AWS_ENDPOINT_URL included), shared files, and the profile and
// Region when given.
func loadAWSConfig(ctx context.Context, region, profile string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	if profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS Region: set AWS_REGION, a profile's region, or -region")
	}
	return cfg, nil
}
