// Command callbackconsumer is a service that answers SageMaker Pipelines
// callback steps from their SQS queue with pipelinestop.Consumer, cleans up
// when an execution is being stopped, and shuts down gracefully.
//
// It shows what a real consumer needs:
//
//   - Execute (the Handler's Executing side) submits the step's work to
//     another system, here the in-process jobs registry that stands for a
//     batch service, and waits for it; its result becomes the step's output
//     parameters. Submitting is idempotent per step, because SQS delivers
//     at least once.
//   - Cleanup (the Stopping side) cancels that work. A stopped execution
//     stays Stopping until its callback step is answered; the Consumer
//     cancels a running Execute of the step, waits for it, runs Cleanup and
//     answers, so the execution stops.
//   - On SIGTERM or SIGINT the Consumer stops receiving, hands back the
//     messages it has not started, gives running steps -drain to finish,
//     then cancels them (their messages are delivered again and resume
//     the job), flushes its deletes and returns. A second signal ends the
//     process at once.
//   - Logs (log/slog) never hold a full callback token: the token answers
//     the step, so it is a secret, and pipelinestop.CallbackToken logs only
//     its first two characters.
//
// The logic is in run, which takes a context, the SageMaker and SQS
// clients and a logger, so that it is tested without signals against the
// emulator.
//
// # Usage
//
//	callbackconsumer -queue URL [flags]
//
// A step's arguments may set "input" (a string, echoed in the output
// "result") and "work_seconds" (a number, the job's run time; default
// -work). The step gets the output parameters "job_id" and "result". Exit
// status: 0 after a graceful shutdown, 1 when the queue cannot be read,
// 2 for invalid flags.
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
// In another, create the queue and a pipeline whose callback step sends
// to it, and run the consumer (the Go SDK reads AWS_ENDPOINT_URL; the AWS
// CLI v1 reads AWS_DEFAULT_REGION and is given --endpoint-url):
//
//	export AWS_ENDPOINT_URL=http://127.0.0.1:4566 AWS_REGION=us-east-1 \
//	    AWS_DEFAULT_REGION=us-east-1 AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test
//	aws --endpoint-url $AWS_ENDPOINT_URL sqs create-queue --queue-name callbacks
//	aws --endpoint-url $AWS_ENDPOINT_URL sagemaker create-pipeline --pipeline-name process \
//	    --role-arn arn:aws:iam::123456789012:role/pipelines \
//	    --pipeline-definition '{"Version":"2020-12-01","Steps":[
//	      {"Name":"Process","Type":"Callback",
//	       "SqsQueueUrl":"http://127.0.0.1:4566/123456789012/callbacks",
//	       "Arguments":{"input":"s3://bucket/data.csv","work_seconds":30},
//	       "OutputParameters":[{"OutputName":"job_id","OutputType":"String"},
//	                           {"OutputName":"result","OutputType":"String"}]}]}'
//	go run ./examples/callbackconsumer -queue http://127.0.0.1:4566/123456789012/callbacks
//
// In a third terminal (with the same environment), start an execution:
// its step succeeds after 30 seconds with the outputs job_id and result.
// Start another and stop it before: the consumer cancels the running
// step's work, cleans up its job and answers, and the execution is
// Stopped.
//
//	aws --endpoint-url $AWS_ENDPOINT_URL sagemaker start-pipeline-execution --pipeline-name process
//	aws --endpoint-url $AWS_ENDPOINT_URL sagemaker list-pipeline-execution-steps \
//	    --pipeline-execution-arn ARN
//	go run ./examples/stopctl stop --wait ARN
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
)

// Exit statuses.
const (
	exitOK    = 0 // shut down gracefully
	exitError = 1 // the queue could not be read, or the configuration loaded
	exitUsage = 2 // invalid flags
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

// runMain parses args, loads the AWS configuration, runs the consumer
// until ctx ends, and returns the exit status. Logs go to logOut.
func runMain(ctx context.Context, args []string, logOut io.Writer) int {
	f, err := parseFlags(args, logOut)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(logOut, "callbackconsumer: %v\n", err)
		return exitUsage
	}
	log := newLogger(logOut, f.logFormat)
	awsCfg, err := loadAWSConfig(ctx, f.region, f.profile)
	if err != nil {
		log.Error("cannot load the AWS configuration", "error", err)
		return exitError
	}
	sm := sagemaker.NewFromConfig(awsCfg, func(o *sagemaker.Options) {
		if f.endpointURL != "" {
			// Set on the client, this wins over every configured endpoint,
			// as the AWS CLI's --endpoint-url does.
			o.BaseEndpoint = aws.String(f.endpointURL)
		}
	})
	queue := sqs.NewFromConfig(awsCfg, func(o *sqs.Options) {
		if f.endpointURL != "" {
			o.BaseEndpoint = aws.String(f.endpointURL)
		}
	})
	if err := run(ctx, sm, queue, log, newJobs(), f.cfg); err != nil {
		log.Error("consumer failed", "error", err)
		return exitError
	}
	return exitOK
}

// parseFlags parses the command line. Usage errors are returned; the flag
// package has already printed the usage to out.
func parseFlags(args []string, out io.Writer) (flags, error) {
	var f flags
	fs := flag.NewFlagSet("callbackconsumer", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() {
		fmt.Fprintln(fs.Output(), "usage: callbackconsumer -queue URL [flags]")
		fmt.Fprintln(fs.Output(), "Answers SageMaker Pipelines callback steps from their SQS queue.")
		fs.PrintDefaults()
	}
	fs.StringVar(&f.cfg.QueueURL, "queue", "", "URL of the callback steps' SQS queue (required)")
	fs.IntVar(&f.cfg.Concurrency, "concurrency", pipelinestop.DefaultConsumerConcurrency, "steps handled at once")
	fs.DurationVar(&f.cfg.Drain, "drain", pipelinestop.DefaultDrainTimeout, "time running steps may go on after SIGTERM or SIGINT")
	fs.DurationVar(&f.cfg.Work, "work", 5*time.Second, "a job's run time when the step's work_seconds argument does not say")
	fs.DurationVar(&f.cfg.Visibility, "visibility", pipelinestop.DefaultVisibilityTimeout, "SQS visibility timeout, extended while a step works")
	fs.StringVar(&f.region, "region", "", "AWS Region (default: from the environment or profile)")
	fs.StringVar(&f.profile, "profile", "", "shared configuration profile (default: AWS_PROFILE or \"default\")")
	fs.StringVar(&f.endpointURL, "endpoint-url", "", "endpoint for SageMaker and SQS calls, for example the emulator's (default: AWS_ENDPOINT_URL, else AWS)")
	fs.StringVar(&f.logFormat, "log-format", "text", "log format: text or json")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments %q: the queue is given with -queue", fs.Args())
	}
	if err := f.cfg.validate(); err != nil {
		return f, err
	}
	if u, err := url.Parse(f.cfg.QueueURL); err != nil || u.Scheme == "" || u.Host == "" {
		return f, fmt.Errorf("-queue %q: want a queue URL such as https://sqs.us-east-1.amazonaws.com/123456789012/callbacks", f.cfg.QueueURL)
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
