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
//	ack --token T ...        answer a callback step (--success or --failure)
//	consume --queue URL      answer callback steps from their SQS queue
//	emulator                 serve a local SageMaker Pipelines + SQS emulator
//	demo                     run the whole story against an in-process emulator
//
// Global flags (before the command, or among the command's flags):
//
//	--region R        AWS Region (default: the SDK's: AWS_REGION, profile, ...)
//	--profile P       shared config profile
//	--endpoint-url U  send SageMaker and SQS calls to U (for example the emulator)
//	--output F        text (default) or json
//
// The AWS configuration is loaded the standard way
// (config.LoadDefaultConfig): environment, shared config and credentials
// files, SSO, instance roles.
//
// Long waits show their progress on standard error: a line rewritten in
// place on a terminal, one plain line per change otherwise. Callback tokens
// are never printed, except by ack and consume hooks that are given them.
//
// # Exit codes
//
//	0  done: stopped (or already stopping/stopped), terminal status reached, answered
//	1  error (an API call failed, a hook command failed, ...)
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
