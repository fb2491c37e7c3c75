package main

import (
	"context"
	"flag"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
)

// runStop is "stopctl stop": stop executions by ARN or every Executing
// execution of a pipeline, optionally waiting for them to end.
func runStop(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("stop", flag.ContinueOnError)
	pipeline := fs.String("pipeline", "", "stop every Executing execution of this pipeline")
	wait := fs.Bool("wait", false, "wait for each execution to reach a terminal status")
	timeout := fs.Duration("timeout", 0, "give up after this long, exit 3 (0: no limit; SIGINT also ends a wait)")
	token := fs.String("token", "", "ClientRequestToken, 32 to 128 characters (default: derived from each ARN, so a repeated stop is the same request)")
	failIfNotRunning := fs.Bool("fail-if-not-running", false, "exit 4 when an execution had already ended without being stopped")
	concurrency := fs.Int("concurrency", pipelinestop.DefaultConcurrency, "stop at most this many executions at once (in each Region)")
	noRouting := fs.Bool("no-region-routing", false, noRoutingUsage)
	ev := addEventsFlags(fs)
	arns, err := e.parse(fs, args, awsGlobals)
	if err != nil {
		return err
	}
	switch {
	case len(arns) == 0 && *pipeline == "":
		return usagef("stop: give execution ARNs or --pipeline NAME")
	case *concurrency < 1:
		return usagef("stop: --concurrency must be at least 1")
	case *timeout < 0:
		return usagef("stop: --timeout must not be negative")
	case !*wait && (*ev.queue != "" || *ev.answerCallbacks != ""):
		return usagef("stop: --events-queue and --answer-callbacks go with --wait")
	}
	if err := ev.check("stop"); err != nil {
		return err
	}
	if *token != "" {
		if err := pipelinestop.ValidateToken(*token); err != nil {
			return usagef("stop: --token: %v", err)
		}
	}
	for _, a := range arns {
		if !strings.HasPrefix(a, "arn:") && pipelineNamePattern.MatchString(a) {
			return usagef("stop: %q is not an execution ARN; to stop every Executing execution of pipeline %s, run: stopctl stop --pipeline %s", a, a, a)
		}
	}
	if err := parseARNs(arns); err != nil {
		return err
	}
	ctx, cancel := e.withTimeout(ctx, *timeout)
	defer cancel()
	first := ""
	if len(arns) > 0 {
		first = arns[0]
	}
	client, err := e.sageMakerFor(ctx, first)
	if err != nil {
		return err
	}
	if *pipeline != "" {
		found, err := executingExecutions(ctx, client, *pipeline, !*noRouting)
		if err != nil {
			return err
		}
		if len(found) == 0 && len(arns) == 0 {
			return e.nothingToStop(*pipeline, *failIfNotRunning)
		}
		arns = append(arns, found...)
	}

	p := e.newProgress(len(arns) > 1)
	opts := []func(*pipelinestop.Options){func(o *pipelinestop.Options) {
		o.Token = *token
		o.FailIfNotRunning = *failIfNotRunning
		o.Concurrency = *concurrency
		o.Wait = *wait
		o.OnEvent = p.event
		o.DisableRegionRouting = *noRouting
	}}
	stopEvents, err := ev.start(ctx, e, &opts)
	if err != nil {
		return err
	}
	defer stopEvents()
	s := pipelinestop.New(client, opts...)
	var results []pipelinestop.BatchResult
	if len(arns) == 1 {
		r := pipelinestop.BatchResult{ExecutionARN: arns[0]}
		if *wait {
			r.Outcome, r.Err = s.StopAndWait(ctx, arns[0])
			if r.Outcome != nil {
				r.Stop = r.Outcome.Stop
			}
		} else {
			r.Stop, r.Err = s.Stop(ctx, arns[0])
		}
		results = []pipelinestop.BatchResult{r}
	} else {
		results, _ = s.StopAll(ctx, arns) // each result holds its own error
	}
	p.Close()
	return e.report(results)
}

// noRoutingUsage is the usage of --no-region-routing.
const noRoutingUsage = "send every call to --region (or --endpoint-url) instead of the Region in each execution ARN " +
	"(for a VPC endpoint or proxy of one Region)"

// routeTo returns the per-call options that send client's calls about the
// execution arn to the Region in the ARN, as the library's Stopper does
// for stop and wait: none when routing is off, the ARN has no Region or
// the client is in it already. An ARN of another partition than the
// client's Region is an error matching pipelinestop.ErrPartitionMismatch.
func routeTo(client *sagemaker.Client, arn string, off bool) ([]func(*sagemaker.Options), error) {
	a, err := pipelinestop.ParseExecutionARN(arn)
	if err != nil {
		return nil, nil
	}
	return routeToRegion(client, shortARN(arn), a.Region, a.Partition, off)
}

// routeToRegion is routeTo for a resource (named what in errors) of
// region in partition.
func routeToRegion(client *sagemaker.Client, what, region, partition string, off bool) ([]func(*sagemaker.Options), error) {
	own := client.Options().Region
	if off || region == "" || own == region {
		return nil, nil
	}
	if p, ok := pipelinestop.RegionPartition(own); ok && p != partition {
		return nil, fmt.Errorf("%w: %s is in Region %s of partition %s, and the configured Region %s is in partition %s: "+
			"use --region (or a profile) of a Region of %s", pipelinestop.ErrPartitionMismatch, what, region,
			partition, own, p, partition)
	}
	return []func(*sagemaker.Options){func(o *sagemaker.Options) { o.Region = region }}, nil
}

// pipelineNamePattern is SageMaker's pattern of a pipeline name.
var pipelineNamePattern = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$`)

// withTimeout bounds ctx by d when d is positive, and records d for the
// error messages ("timed out after 8s").
func (e *env) withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d > 0 {
		e.timeout = d
		return context.WithTimeout(ctx, d)
	}
	return context.WithCancel(ctx)
}

// executingExecutions lists (every page of) a pipeline's executions and
// returns those that are Executing.
func executingExecutions(ctx context.Context, client *sagemaker.Client, pipeline string, route bool) ([]string, error) {
	p := sagemaker.NewListPipelineExecutionsPaginator(client, &sagemaker.ListPipelineExecutionsInput{
		PipelineName: aws.String(pipeline), MaxResults: aws.Int32(100)})
	// A pipeline ARN is listed in its Region, as execution ARNs are
	// stopped in theirs.
	partition, region := pipelineARNRegion(pipeline)
	opts, err := routeToRegion(client, "pipeline "+pipeline, region, partition, !route)
	if err != nil {
		return nil, err
	}
	var arns []string
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("list executions of pipeline %s: %w", pipeline, pipelinestop.Classify(err))
		}
		for _, s := range page.PipelineExecutionSummaries {
			if s.PipelineExecutionStatus == types.PipelineExecutionStatusExecuting {
				arns = append(arns, aws.ToString(s.PipelineExecutionArn))
			}
		}
	}
	return arns, nil
}

// pipelineARNRegion returns the partition and Region of a pipeline ARN
// (arn:PARTITION:sagemaker:REGION:ACCOUNT:pipeline/NAME), or "" for a name.
func pipelineARNRegion(pipeline string) (partition, region string) {
	parts := strings.SplitN(pipeline, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "sagemaker" || !strings.HasPrefix(parts[5], "pipeline/") {
		return "", ""
	}
	return parts[1], parts[3]
}

func (e *env) nothingToStop(pipeline string, fail bool) error {
	msg := fmt.Sprintf("pipeline %s has no Executing execution: nothing to stop", pipeline)
	if e.g.json() {
		if err := e.printJSON(map[string]any{"executions": []execReport{}}); err != nil {
			return err
		}
	} else if !fail {
		fmt.Fprintln(e.stdout, msg)
	}
	if fail {
		return &codeError{code: exitNotRunning, msg: msg}
	}
	return nil
}

// execReport is one execution's line in the output of stop and wait.
type execReport struct {
	ExecutionARN   string           `json:"executionArn"`
	Token          string           `json:"clientRequestToken,omitempty"`
	Accepted       bool             `json:"stopAccepted,omitempty"`
	Attempts       int              `json:"stopAttempts,omitempty"`
	StopStatus     string           `json:"statusAtStop,omitempty"`
	Status         string           `json:"status,omitempty"`
	FailureReason  string           `json:"failureReason,omitempty"`
	ElapsedSeconds float64          `json:"elapsedSeconds"`
	Blocking       []blockingReport `json:"blocking,omitempty"`
	// Answered are the callback steps stopctl answered with a failure
	// (--answer-callbacks fail) because nobody else did in time.
	Answered []blockingReport `json:"answeredByStopctl,omitempty"`
	Error    string           `json:"error,omitempty"`
	ExitCode int              `json:"exitCode"`

	err error
}

// blockingReport is a step that holds (or would hold) a stop, in JSON. It
// never holds a callback token.
type blockingReport struct {
	Name        string     `json:"name"`
	Type        string     `json:"type,omitempty"`
	Status      string     `json:"status,omitempty"`
	StartTime   *time.Time `json:"startTime,omitempty"`
	QueueURL    string     `json:"queueUrl,omitempty"`
	FunctionARN string     `json:"functionArn,omitempty"`
	// Description says why the step blocks and what to do, in a sentence.
	Description string `json:"description"`
}

func newBlockingReport(b pipelinestop.BlockingStep) blockingReport {
	r := blockingReport{Name: b.Name, Type: b.Type, Status: string(b.Status), QueueURL: b.QueueURL,
		FunctionARN: b.FunctionARN, Description: b.String()}
	if !b.StartTime.IsZero() {
		t := b.StartTime
		r.StartTime = &t
	}
	return r
}

func (e *env) newExecReport(r pipelinestop.BatchResult) execReport {
	rep := execReport{ExecutionARN: r.ExecutionARN, err: r.Err}
	if st := r.Stop; st != nil {
		rep.Token, rep.Accepted, rep.Attempts = st.Token, st.Accepted, st.Attempts
		rep.StopStatus = string(st.Status)
		rep.ElapsedSeconds = st.Elapsed.Seconds()
	}
	if out := r.Outcome; out != nil {
		rep.Status, rep.FailureReason = string(out.Status), out.FailureReason
		rep.ElapsedSeconds = out.Elapsed.Seconds()
		answered := map[string]bool{}
		for _, b := range out.Answered {
			rep.Answered = append(rep.Answered, newBlockingReport(b))
			answered[b.Name] = true
		}
		for _, b := range out.Blocking {
			if !answered[b.Name] || !pipelinestop.IsTerminal(out.Status) {
				rep.Blocking = append(rep.Blocking, newBlockingReport(b))
			}
		}
	}
	if r.Err != nil {
		rep.Error = e.errorText(r.Err)
	}
	rep.ExitCode = resultCode(r)
	return rep
}

// resultCode is the exit code one execution calls for.
func resultCode(r pipelinestop.BatchResult) int {
	switch {
	case r.Err != nil:
		return exitCode(r.Err)
	case r.Stop != nil && r.Stop.NotRunning():
		return exitOK
	case r.Outcome != nil && (r.Outcome.Status == types.PipelineExecutionStatusFailed ||
		r.Outcome.Status == types.PipelineExecutionStatusCompletedWithFailures):
		return exitFailed
	}
	return exitOK
}

// worse returns the exit code that matters more when several executions
// end differently: errors, then interruptions and timeouts, then not
// running, then failed executions.
func worse(a, b int) int {
	rank := map[int]int{exitOK: 0, exitFailed: 1, exitNotRunning: 2, exitTimeout: 3, exitInterrupted: 4, exitUsage: 5, exitError: 6}
	if rank[b] > rank[a] {
		return b
	}
	return a
}

// report prints what happened to each execution, as text or JSON, and
// returns the exit code they call for.
func (e *env) report(results []pipelinestop.BatchResult) error {
	code := exitOK
	reports := make([]execReport, 0, len(results))
	for _, r := range results {
		rep := e.newExecReport(r)
		code = worse(code, rep.ExitCode)
		reports = append(reports, rep)
	}
	if e.g.json() {
		if err := e.printJSON(map[string]any{"executions": reports}); err != nil {
			return err
		}
	} else {
		for _, rep := range reports {
			e.printReport(rep, len(reports) > 1)
		}
	}
	if code == exitOK {
		return nil
	}
	if len(reports) == 1 && reports[0].err != nil && !e.g.json() {
		return reports[0].err // printed once, by run
	}
	return &codeError{code: code}
}

// printReport writes one execution's result as text: the outcome on
// stdout, an error on stderr.
func (e *env) printReport(rep execReport, multi bool) {
	name := rep.ExecutionARN
	if rep.err != nil {
		if multi {
			fmt.Fprintf(e.stderr, "stopctl: %s: %s\n", shortARN(name), rep.Error)
		}
		return
	}
	var parts []string
	switch {
	case rep.Accepted:
		s := fmt.Sprintf("stop accepted after %d attempt%s", rep.Attempts, plural(rep.Attempts))
		if rep.StopStatus != "" && rep.StopStatus != string(types.PipelineExecutionStatusStopping) {
			// A replayed stop: the status seen since, not Stopping.
			s += " (status " + rep.StopStatus + ")"
		}
		parts = append(parts, s)
	case rep.StopStatus == "":
	case rep.StopStatus == string(types.PipelineExecutionStatusStopping) || rep.StopStatus == string(types.PipelineExecutionStatusStopped):
		parts = append(parts, "already "+rep.StopStatus)
	default:
		parts = append(parts, fmt.Sprintf("not running (%s): nothing to stop", rep.StopStatus))
	}
	if rep.Status != "" {
		s := fmt.Sprintf("%s after %.1fs", rep.Status, rep.ElapsedSeconds)
		if rep.FailureReason != "" {
			s += ": " + rep.FailureReason
		}
		parts = append(parts, s)
	}
	for _, a := range rep.Answered {
		parts = append(parts, fmt.Sprintf("callback step %q answered with a failure by stopctl (nobody answered in time)", a.Name))
	}
	fmt.Fprintf(e.stdout, "%s  %s\n", name, strings.Join(parts, "; "))
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}
