// Command stopctl stops Amazon SageMaker Pipelines executions properly, from
// a terminal or a script, with the pipelinestop library: one idempotency
// token per execution, ConflictException retried, a wait that accepts
// Stopped and says what holds an execution in Stopping, and the answers to
// callback steps that a stop needs.
//
// Usage:
//
//	stopctl [global flags] COMMAND [flags] [args]
//
// Commands:
//
//	stop ARN...              stop executions (--pipeline NAME: every Executing one)
//	wait ARN                 wait for a terminal status, showing what blocks a stop
//	status ARN               show an execution, its steps and what blocks a stop
//	ack --token T ...        answer a callback step (--success or --failure);
//	                         --execution ARN --step NAME finds its token
//	consume --queue URL      answer callback steps from their SQS queue (or --queue NAME)
//	emulator                 serve a local SageMaker Pipelines + SQS emulator
//	demo                     run the whole story against an in-process emulator
//
// stop flags: --pipeline NAME, --wait, --timeout D, --token T (32 to 128
// characters; default derived from each ARN, so a repeated stop is the same
// request), --fail-if-not-running, --concurrency N (in each Region),
// --no-region-routing. wait: --timeout D, --no-region-routing.
//
// stop, wait, status and ack --execution send each execution's calls to
// the Region in its ARN, so one stop takes ARNs of several Regions (each
// Region paced on its own); an ARN of another partition than the
// configured Region's fails with an error that says so, before any call.
// --no-region-routing (on each of them) sends every call to --region (or
// --endpoint-url) instead: for a VPC endpoint or a proxy of one Region.
// ack --token, which names no execution, answers in the configured Region.
// ack: --token T ("-" reads it from standard input), or --execution ARN
// --step NAME (the token is looked up, never printed); --success with
// --param NAME=VALUE (repeatable), or --failure with --reason TEXT.
//
// consume flags: --queue URL or NAME (required; a name is resolved with
// GetQueueUrl); --on-executing CMD, run with
// sh -c for each Executing message, the message as JSON on standard input
// ({"token", "pipelineExecutionArn", "arguments", "status"}; also
// PIPELINESTOP_EXECUTION_ARN and PIPELINESTOP_STATUS in the environment):
// exit 0 with a JSON object of outputs (string values; numbers and
// booleans are sent as text) or nothing on standard output answers success,
// any other exit answers failure with the end of its standard error as the
// reason; without it, steps are left pending for another system to answer.
// --on-stopping CMD, the cleanup for each Stopping message: exit 0 answers
// success, anything else failure (without it: success). --concurrency N,
// --visibility-timeout D, --drain-timeout D (how long running hooks may go
// on after SIGINT/SIGTERM; then they get SIGTERM, and SIGKILL 3 s later).
// The log never shows a callback token in full. consume exits 0 after a
// graceful shutdown.
//
// emulator flags: --addr HOST:PORT (default 127.0.0.1:4599; port 0 picks
// one), --account-id ID, --step-duration D, --stop-delay D,
// --lambda-run-time D, --lambda-timeout D (the durations accept "forever"
// where it makes sense), --conflict-window D, --rate-limit OP=N/s[,BURST]
// (repeatable; OP "*" for every operation), --error-rate F,
// --latency D, --latency-jitter D, --sqs-latency D, --sqs-latency-jitter D,
// --drop-rate F, --drop-response-rate F,
// --include-sqs, --seed N, --callback-queue-endpoint URL, --verbose. The
// global --region sets the emulator's Region.
//
// demo takes only --output; it takes a few seconds, and with --output json
// it prints a summary instead of the story. emulator takes --region and
// --output of the global flags.
//
// Global flags (before the command, or among the command's flags):
//
//	--region R        AWS Region (default: the SDK's: AWS_REGION, profile, ...;
//	                  else the Region of the execution ARN)
//	--profile P       shared config profile
//	--endpoint-url U  send SageMaker and SQS calls to U (for example the emulator)
//	--output F        text (default) or json; logs go to standard error
//	--version         print the version (from the build information)
//
// The AWS configuration is loaded the standard way
// (config.LoadDefaultConfig): environment, shared config and credentials
// files, SSO, instance roles.
//
// Long waits show their progress on standard error: a line rewritten in
// place on a terminal (cut to its width), one plain line per change
// otherwise; NO_COLOR turns the colours off. Callback tokens
// are never printed, except by ack and consume hooks that are given them.
//
// # Exit codes
//
//	0  done: stopped (or already stopping/stopped), terminal status reached, answered
//	1  error (an API call failed, a hook command failed, ack's answer was
//	   not taken because the step had a different answer, ...)
//	2  usage: an invalid flag, argument or ARN
//	3  timed out (--timeout) before the execution reached a terminal status
//	4  not running: the execution had ended without being stopped and
//	   --fail-if-not-running was set (or --pipeline found nothing to stop)
//	5  the execution ended Failed or CompletedWithFailures
//	130 interrupted (SIGINT or SIGTERM) while waiting
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// After the first signal, restore the default handling: a second
	// Ctrl-C ends the process at once, even during a graceful shutdown.
	context.AfterFunc(ctx, stop)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
