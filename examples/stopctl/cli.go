package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pipelinestop/pipelinestop"
	"github.com/pipelinestop/pipelinestop/internal/sdkbody"
)

// Exit codes, as documented in the package comment and the README.
const (
	exitOK          = 0
	exitError       = 1
	exitUsage       = 2
	exitTimeout     = 3
	exitNotRunning  = 4
	exitFailed      = 5
	exitInterrupted = 130
)

// command is one stopctl subcommand.
type command struct {
	name    string
	usage   string // arguments, for the help text
	summary string
	run     func(ctx context.Context, e *env, args []string) error
}

// commands lists the subcommands in the order the help text shows them.
func commands() []command {
	return []command{
		{"stop", "[flags] ARN... | --pipeline NAME", "stop executions, retrying conflicts with one token each", runStop},
		{"wait", "[flags] ARN", "wait for a terminal status, showing what blocks a stop", runWait},
		{"status", "[flags] ARN", "show an execution, its steps and what blocks a stop", runStatus},
		{"ack", "(--token T | --execution ARN --step NAME) (--success [--param NAME=VALUE]... | --failure --reason TEXT)", "answer a callback step", runAck},
		{"consume", "--queue URL|NAME [--on-executing CMD] [--on-stopping CMD] [flags]", "answer callback steps from their SQS queue", runConsume},
		{"emulator", "[--addr HOST:PORT] [timing and fault flags]", "serve a local SageMaker Pipelines + SQS emulator", runEmulator},
		{"lambda", "check --function NAME [--message-time D] [--concurrency N]", "check a callback function's SQS event source mapping and queue", runLambda},
		{"events", "setup --queue NAME [--rule NAME] [--pipeline NAME]... [--dry-run]", "route SageMaker's pipeline events to an SQS queue, for waits without polling", runEvents},
		{"demo", "", "stop an execution held by a callback and a Lambda step, live, against an in-process emulator", runDemo},
	}
}

// env is what a subcommand runs with: its standard streams and the global
// flags.
type env struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	g              globals
	// timeout is the command's --timeout, for "timed out after 8s".
	timeout time.Duration
}

// globals are the global flags: given before the command, or among its
// flags when the command takes them.
type globals struct {
	region, profile, endpoint, output string
}

// globalSet says which global flags a command takes.
type globalSet uint8

const (
	globalRegion globalSet = 1 << iota
	globalProfile
	globalEndpoint
	globalOutput

	// awsGlobals are the flags of the commands that call AWS.
	awsGlobals = globalRegion | globalProfile | globalEndpoint | globalOutput
)

// register adds the global flags in set to fs.
func (g *globals) register(fs *flag.FlagSet, set globalSet) {
	if set&globalRegion != 0 {
		fs.StringVar(&g.region, "region", g.region, "AWS Region (default: from the environment or profile, else the execution ARN's)")
	}
	if set&globalProfile != 0 {
		fs.StringVar(&g.profile, "profile", g.profile, "shared config profile")
	}
	if set&globalEndpoint != 0 {
		fs.StringVar(&g.endpoint, "endpoint-url", g.endpoint, "endpoint for SageMaker and SQS calls, for example the emulator's")
	}
	if set&globalOutput != 0 {
		fs.StringVar(&g.output, "output", g.output, "output format: text or json")
	}
}

func (g *globals) json() bool { return g.output == "json" }

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}

// codeError ends a command with a given exit code. Its message, when not
// empty, is printed on standard error.
type codeError struct {
	code int
	msg  string
}

func (e *codeError) Error() string { return e.msg }

// errHelp says that help was printed: exit 0.
var errHelp = errors.New("help printed")

// run is stopctl's entry point: it parses args, runs the command and
// returns the exit code. Errors are reported on stderr as one line.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	e := &env{stdin: stdin, stdout: stdout, stderr: stderr, g: globals{output: "text"}}
	fs := flag.NewFlagSet("stopctl", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	e.g.register(fs, awsGlobals)
	version := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			e.usage(stdout)
			return exitOK
		}
		return e.fail(usagef("%v", err))
	}
	if *version {
		fmt.Fprintln(stdout, versionText())
		return exitOK
	}
	if fs.NArg() == 0 {
		e.usage(stderr)
		return exitUsage
	}
	name := fs.Arg(0)
	if name == "help" {
		e.usage(stdout)
		return exitOK
	}
	for _, c := range commands() {
		if c.name == name {
			if err := e.checkGlobals(); err != nil {
				return e.fail(err)
			}
			return e.fail(c.run(ctx, e, fs.Args()[1:]))
		}
	}
	return e.fail(usagef("unknown command %q (commands: %s)", name, strings.Join(commandNames(), ", ")))
}

// commandUsage returns the usage line of the named command.
func commandUsage(name string) string {
	for _, c := range commands() {
		if c.name == name {
			return c.usage
		}
	}
	return ""
}

func commandNames() []string {
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	return names
}

func (e *env) checkGlobals() error {
	if e.g.output != "text" && e.g.output != "json" {
		return usagef("--output must be text or json, not %q", e.g.output)
	}
	return nil
}

func (e *env) usage(w io.Writer) {
	fmt.Fprintln(w, "Usage: stopctl [--region R] [--profile P] [--endpoint-url URL] [--output text|json] COMMAND ...")
	fmt.Fprintln(w, "       stopctl --version")
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'stopctl COMMAND -h' for a command's flags.")
	fmt.Fprintln(w, "Exit codes: 0 done, 1 error, 2 usage, 3 timed out, 4 not running, 5 execution failed, 130 interrupted.")
}

// fail reports err on stderr (one line) and returns its exit code.
func (e *env) fail(err error) int {
	code := exitCode(err)
	if err == nil || errors.Is(err, errHelp) {
		return code
	}
	msg := e.errorText(err)
	var ue *usageError
	if errors.As(err, &ue) {
		msg += " (run '" + helpCommand(msg) + "' for help)"
	}
	if msg != "" {
		fmt.Fprintf(e.stderr, "stopctl: %s\n", oneLine(msg))
	}
	return code
}

// errorText is err's message on one line, in an operator's words: the
// context's "context canceled" becomes "interrupted" and "context deadline
// exceeded" "timed out after 8s" (the --timeout given).
func (e *env) errorText(err error) string {
	// Errors from outside the library (loading the AWS configuration) are
	// scrubbed of credentials too.
	msg := oneLine(pipelinestop.RedactCredentials(err.Error()))
	timedOut := "timed out"
	if e.timeout > 0 {
		timedOut += " after " + e.timeout.String()
	}
	// A WaitError says "context deadline exceeded after 7.9s and 8 polls".
	msg = waitedPattern.ReplaceAllString(msg, "$1 (waited $2, $3 polls)")
	msg = strings.ReplaceAll(msg, context.DeadlineExceeded.Error(), timedOut)
	return strings.ReplaceAll(msg, context.Canceled.Error(), "interrupted")
}

// waitedPattern matches the end of a WaitError's context error.
var waitedPattern = regexp.MustCompile(`(context deadline exceeded|context canceled) after (\S+) and (\d+) polls`)

// helpCommand is the help to point a usage error at: the command's when
// the message names one ("stop: ..."), else stopctl's.
func helpCommand(msg string) string {
	for _, name := range commandNames() {
		if strings.HasPrefix(msg, name+": ") {
			return "stopctl " + name + " -h"
		}
	}
	return "stopctl -h"
}

// exitCode maps an error to the documented exit codes.
func exitCode(err error) int {
	var ue *usageError
	var ee *codeError
	switch {
	case err == nil, errors.Is(err, errHelp):
		return exitOK
	case errors.As(err, &ee):
		return ee.code
	case errors.As(err, &ue), errors.Is(err, pipelinestop.ErrInvalidARN),
		errors.Is(err, pipelinestop.ErrInvalidToken), errors.Is(err, pipelinestop.ErrInvalidCallback):
		return exitUsage
	case errors.Is(err, pipelinestop.ErrNotRunning):
		return exitNotRunning
	case errors.Is(err, context.Canceled):
		return exitInterrupted
	case errors.Is(err, pipelinestop.ErrWaitTimeout), errors.Is(err, context.DeadlineExceeded):
		return exitTimeout
	default:
		return exitError
	}
}

// oneLine joins the lines of a multi-line message (errors.Join) with "; "
// and collapses runs of white space.
func oneLine(s string) string {
	var parts []string
	for _, line := range strings.Split(s, "\n") {
		if line = strings.Join(strings.Fields(line), " "); line != "" {
			parts = append(parts, line)
		}
	}
	return strings.Join(parts, "; ")
}

// parse parses a subcommand's flags, which may come before, between or
// after its arguments, and returns the arguments. Everything after "--" is
// an argument.
func (e *env) parse(fs *flag.FlagSet, args []string, set globalSet) ([]string, error) {
	fs.SetOutput(io.Discard)
	e.g.register(fs, set)
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				fs.SetOutput(e.stdout)
				fmt.Fprintf(e.stdout, "Usage: stopctl %s %s\n\nFlags:\n", fs.Name(), commandUsage(fs.Name()))
				fs.PrintDefaults()
				return nil, errHelp
			}
			return nil, usagef("%s: %v", fs.Name(), err)
		}
		rest := fs.Args()
		if consumed := len(args) - len(rest); consumed > 0 && args[consumed-1] == "--" {
			return append(pos, rest...), e.checkGlobals()
		}
		if len(rest) == 0 {
			return pos, e.checkGlobals()
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

// awsConfig loads the AWS configuration the standard way, with the global
// flags applied. When no Region is configured, the Region of the execution
// ARN arn (if any) is used: the ARN says where the execution is.
func (e *env) awsConfig(ctx context.Context, arn string) (aws.Config, error) {
	var opts []func(*config.LoadOptions) error
	if e.g.region != "" {
		opts = append(opts, config.WithRegion(e.g.region))
	}
	if e.g.profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(e.g.profile))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS configuration: %w", err)
	}
	if cfg.Region == "" && arn != "" {
		if a, err := pipelinestop.ParseExecutionARN(arn); err == nil {
			cfg.Region = a.Region
		}
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS Region: set --region, AWS_REGION or a profile's region")
	}
	// Without it the SDK now and then closes its connection under an answer
	// it is reading when the answer comes before it finished writing the
	// request, as a local emulator's can (internal/sdkbody).
	cfg.APIOptions = append(cfg.APIOptions, sdkbody.NoWriteTo)
	return cfg, nil
}

// sageMaker returns a SageMaker client configured by the global flags.
func (e *env) sageMaker(ctx context.Context) (*sagemaker.Client, error) {
	return e.sageMakerFor(ctx, "")
}

// sageMakerFor returns a SageMaker client configured by the global flags,
// in the Region of the execution ARN arn when no Region is configured.
func (e *env) sageMakerFor(ctx context.Context, arn string) (*sagemaker.Client, error) {
	cfg, err := e.awsConfig(ctx, arn)
	if err != nil {
		return nil, err
	}
	return sagemaker.NewFromConfig(cfg, func(o *sagemaker.Options) {
		if e.g.endpoint != "" {
			o.BaseEndpoint = aws.String(e.g.endpoint)
		}
	}), nil
}

// sqsClient returns an SQS client configured by the global flags.
func (e *env) sqsClient(ctx context.Context) (*sqs.Client, error) {
	cfg, err := e.awsConfig(ctx, "")
	if err != nil {
		return nil, err
	}
	return sqs.NewFromConfig(cfg, func(o *sqs.Options) {
		if e.g.endpoint != "" {
			o.BaseEndpoint = aws.String(e.g.endpoint)
		}
	}), nil
}

// printJSON writes v as indented JSON on stdout.
func (e *env) printJSON(v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// parseARNs validates execution ARNs before any call: an invalid one is a
// usage error that says what is wrong.
func parseARNs(arns []string) error {
	for _, a := range arns {
		if _, err := pipelinestop.ParseExecutionARN(a); err != nil {
			return err
		}
	}
	return nil
}

// shortARN names an execution as PIPELINE/EXECUTION-ID for progress lines.
func shortARN(arn string) string {
	a, err := pipelinestop.ParseExecutionARN(arn)
	if err != nil {
		return arn
	}
	return a.PipelineName + "/" + a.ExecutionID
}
