package main

import (
	"context"
	"flag"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/pipelinestop/pipelinestop/lambdacheck"
)

// runLambda is "stopctl lambda": commands about a Lambda function that
// answers callback steps. Its one subcommand, "check --function NAME",
// reads the function's SQS event source mappings and their queues and says
// what is wrong (see package lambdacheck): ReportBatchItemFailures missing,
// a visibility timeout under six times the function timeout, no redrive
// policy, batches that cannot finish within the timeout. It prints the
// report (text, or JSON with --output json) and exits 0 when nothing is
// wrong, 1 when something is. --message-time D (about how long one message
// takes) and --concurrency N (the adapter's) enable the batch-time check.
func runLambda(ctx context.Context, e *env, args []string) error {
	if len(args) == 0 || args[0] != "check" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			fmt.Fprintf(e.stdout, "Usage: stopctl lambda %s\n\nRun 'stopctl lambda check -h' for its flags.\n", commandUsage("lambda"))
			return errHelp
		}
		return usagef("lambda: want the subcommand check (stopctl lambda check --function NAME)")
	}
	fs := flag.NewFlagSet("lambda", flag.ContinueOnError)
	function := fs.String("function", "", "the function's name or ARN (required)")
	messageTime := fs.Duration("message-time", 0, "about how long the function takes per message; enables the batch-time check")
	concurrency := fs.Int("concurrency", 0, "messages the function handles at once (the adapter's Concurrency; default 10)")
	rest, err := e.parse(fs, args[1:], awsGlobals)
	if err != nil {
		return err
	}
	switch {
	case len(rest) > 0:
		return usagef("lambda: unexpected argument %q", rest[0])
	case *function == "":
		return usagef("lambda: --function is required")
	case *messageTime < 0:
		return usagef("lambda: --message-time must not be negative")
	case *concurrency < 0:
		return usagef("lambda: --concurrency must not be negative")
	}
	cfg, err := e.awsConfig(ctx, "")
	if err != nil {
		return err
	}
	lc := lambda.NewFromConfig(cfg, func(o *lambda.Options) {
		if e.g.endpoint != "" {
			o.BaseEndpoint = aws.String(e.g.endpoint)
		}
	})
	qc, err := e.sqsClient(ctx)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	report, err := lambdacheck.Check(ctx, lc, qc, *function, func(o *lambdacheck.Options) {
		o.MessageTime = *messageTime
		o.Concurrency = *concurrency
	})
	if err != nil {
		return fmt.Errorf("lambda check: %w", err)
	}
	if e.g.json() {
		if err := e.printJSON(report); err != nil {
			return err
		}
	} else {
		fmt.Fprint(e.stdout, report.String())
	}
	if !report.OK() {
		return &codeError{code: exitError}
	}
	return nil
}
