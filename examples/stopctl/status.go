package main

import (
	"context"
	"flag"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker"
	"github.com/aws/aws-sdk-go-v2/service/sagemaker/types"

	"github.com/pipelinestop/pipelinestop"
)

// statusReport is the output of "stopctl status". It never holds a
// callback token.
type statusReport struct {
	ExecutionARN     string       `json:"executionArn"`
	Status           string       `json:"status"`
	FailureReason    string       `json:"failureReason,omitempty"`
	StartTime        *time.Time   `json:"startTime,omitempty"`
	LastModifiedTime *time.Time   `json:"lastModifiedTime,omitempty"`
	Steps            []stepReport `json:"steps"`
	// Blocking says what holds the execution in Stopping, or, while it is
	// Executing, what a stop would wait for.
	Blocking []blockingReport `json:"blocking,omitempty"`
}

type stepReport struct {
	Name          string     `json:"name"`
	Type          string     `json:"type,omitempty"`
	Status        string     `json:"status"`
	StartTime     *time.Time `json:"startTime,omitempty"`
	EndTime       *time.Time `json:"endTime,omitempty"`
	AttemptCount  int32      `json:"attemptCount,omitempty"`
	FailureReason string     `json:"failureReason,omitempty"`
	QueueURL      string     `json:"queueUrl,omitempty"`
	FunctionARN   string     `json:"functionArn,omitempty"`
}

// runStatus is "stopctl status": the execution, its steps, and what blocks
// (or would block) a stop.
func runStatus(ctx context.Context, e *env, args []string) error {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	noRouting := fs.Bool("no-region-routing", false, noRoutingUsage)
	arns, err := e.parse(fs, args, awsGlobals)
	if err != nil {
		return err
	}
	if len(arns) != 1 {
		return usagef("status: give exactly one execution ARN")
	}
	if err := parseARNs(arns); err != nil {
		return err
	}
	client, err := e.sageMakerFor(ctx, arns[0])
	if err != nil {
		return err
	}
	route, err := routeTo(client, arns[0], *noRouting)
	if err != nil {
		return err
	}
	rep, err := executionStatus(ctx, client, arns[0], route...)
	if err != nil {
		return err
	}
	if e.g.json() {
		return e.printJSON(rep)
	}
	e.printStatus(rep)
	return nil
}

// executionStatus describes the execution and lists all its steps, with
// the per-call options optFns.
func executionStatus(ctx context.Context, client *sagemaker.Client, arn string, optFns ...func(*sagemaker.Options)) (*statusReport, error) {
	d, err := client.DescribePipelineExecution(ctx, &sagemaker.DescribePipelineExecutionInput{PipelineExecutionArn: aws.String(arn)}, optFns...)
	if err != nil {
		return nil, pipelinestop.Classify(err)
	}
	rep := &statusReport{ExecutionARN: arn, Status: string(d.PipelineExecutionStatus),
		FailureReason: aws.ToString(d.FailureReason), StartTime: d.CreationTime, LastModifiedTime: d.LastModifiedTime}
	p := sagemaker.NewListPipelineExecutionStepsPaginator(client, &sagemaker.ListPipelineExecutionStepsInput{
		PipelineExecutionArn: aws.String(arn), MaxResults: aws.Int32(100), SortOrder: types.SortOrderAscending})
	stopping := d.PipelineExecutionStatus == types.PipelineExecutionStatusStopping
	executing := d.PipelineExecutionStatus == types.PipelineExecutionStatusExecuting
	rep.Steps = []stepReport{}
	for p.HasMorePages() {
		page, err := p.NextPage(ctx, optFns...)
		if err != nil {
			return nil, pipelinestop.Classify(err)
		}
		for _, st := range page.PipelineExecutionSteps {
			b := pipelinestop.NewBlockingStep(st)
			rep.Steps = append(rep.Steps, stepReport{Name: b.Name, Type: b.Type, Status: string(st.StepStatus),
				StartTime: st.StartTime, EndTime: st.EndTime, AttemptCount: aws.ToInt32(st.AttemptCount),
				FailureReason: aws.ToString(st.FailureReason), QueueURL: b.QueueURL, FunctionARN: b.FunctionARN})
			if !running(st.StepStatus) {
				continue
			}
			// While Stopping every running step holds the execution; while
			// Executing, a stop would wait for callback and Lambda steps.
			if stopping || executing && (b.Type == "Callback" || b.Type == "Lambda") {
				rep.Blocking = append(rep.Blocking, newBlockingReport(b))
			}
		}
	}
	return rep, nil
}

func running(s types.StepStatus) bool {
	return s == types.StepStatusStarting || s == types.StepStatusExecuting || s == types.StepStatusStopping
}

func (e *env) printStatus(rep *statusReport) {
	w := e.stdout
	fmt.Fprintf(w, "Execution  %s\n", rep.ExecutionARN)
	fmt.Fprintf(w, "Status     %s", rep.Status)
	if rep.StartTime != nil {
		fmt.Fprintf(w, " (started %s", rep.StartTime.Local().Format(dateTimeZone))
		if rep.LastModifiedTime != nil {
			fmt.Fprintf(w, ", last change %s", rep.LastModifiedTime.Local().Format(timeZone))
		}
		fmt.Fprint(w, ")")
	}
	fmt.Fprintln(w)
	if rep.FailureReason != "" {
		fmt.Fprintf(w, "Reason     %s\n", rep.FailureReason)
	}
	fmt.Fprintf(w, "\nSteps (%d):\n", len(rep.Steps))
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	zone := time.Now().Format("MST")
	if rep.StartTime != nil {
		zone = rep.StartTime.Local().Format("MST")
	}
	fmt.Fprintf(tw, "  NAME\tTYPE\tSTATUS\tSTARTED (%s)\tENDED\tDETAIL\n", zone)
	for _, s := range rep.Steps {
		detail := s.FailureReason
		if detail == "" {
			detail = s.QueueURL + s.FunctionARN
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\t%s\t%s\n", s.Name, orDash(s.Type), s.Status, clock(s.StartTime), clock(s.EndTime), detail)
	}
	_ = tw.Flush()
	fmt.Fprintln(w)
	switch {
	case rep.Status == string(types.PipelineExecutionStatusStopping) && len(rep.Blocking) > 0:
		fmt.Fprintln(w, "Stopping is held by:")
	case rep.Status == string(types.PipelineExecutionStatusStopping):
		fmt.Fprintln(w, "Stopping; no running step holds it: it should end soon.")
	case rep.Status == string(types.PipelineExecutionStatusExecuting) && len(rep.Blocking) > 0:
		fmt.Fprintln(w, "A stop would wait for:")
	case rep.Status == string(types.PipelineExecutionStatusExecuting):
		fmt.Fprintln(w, "A stop would not wait for a callback or Lambda step.")
	default:
		fmt.Fprintf(w, "The execution has ended (%s): nothing to stop.\n", rep.Status)
	}
	for _, b := range rep.Blocking {
		fmt.Fprintf(w, "  - %s\n", b.Description)
	}
}

// The layouts of times shown to people: with their zone, in local time.
const (
	dateTimeZone = "2006-01-02 15:04:05 MST"
	timeZone     = "15:04:05 MST"
)

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func clock(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.TimeOnly)
}
