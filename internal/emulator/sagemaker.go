package emulator

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

type outputParameter struct {
	Name  string `json:"Name"`
	Value string `json:"Value"`
}

func (e *Emulator) sageMakerService() *service {
	return &service{
		name:        "sagemaker",
		contentType: "application/x-amz-json-1.1",
		ops: map[string]handlerFunc{
			"CreatePipeline":                         e.createPipeline,
			"DescribePipeline":                       e.describePipeline,
			"StartPipelineExecution":                 e.startPipelineExecution,
			"DescribePipelineExecution":              e.describePipelineExecution,
			"ListPipelineExecutions":                 e.listPipelineExecutions,
			"ListPipelineExecutionSteps":             e.listPipelineExecutionSteps,
			"StopPipelineExecution":                  e.stopPipelineExecution,
			"RetryPipelineExecution":                 e.retryPipelineExecution,
			"UpdatePipeline":                         e.updatePipeline,
			"DeletePipeline":                         e.deletePipeline,
			"ListPipelines":                          e.listPipelines,
			"DescribePipelineDefinitionForExecution": e.describePipelineDefinitionForExecution,
			"ListPipelineParametersForExecution":     e.listPipelineParametersForExecution,
			"SendPipelineExecutionStepSuccess":       e.sendStepSuccess,
			"SendPipelineExecutionStepFailure":       e.sendStepFailure,
		},
	}
}

func (e *Emulator) pipelineARN(name string) string {
	return e.arnPrefix("sagemaker", false) + "pipeline/" + name
}

// lookupPipeline finds a pipeline by name or ARN. Callers hold e.mu.
func (e *Emulator) lookupPipeline(nameOrARN string) (*pipeline, *apiError) {
	name := nameOrARN
	if strings.HasPrefix(name, "arn:") {
		var ok bool
		// An ARN of another Region, partition or account names no
		// pipeline here.
		if name, ok = strings.CutPrefix(name, e.pipelineARN("")); !ok {
			return nil, notFound("Pipeline '%s' does not exist.", nameOrARN)
		}
	}
	p, ok := e.state.pipelines[name]
	if !ok {
		return nil, notFound("Pipeline '%s' does not exist.", e.pipelineARN(name))
	}
	return p, nil
}

// lookupExecution checks arn and finds its execution. Callers hold e.mu.
func (e *Emulator) lookupExecution(arn string) (*execution, *apiError) {
	if err := checkExecutionARN(arn); err != nil {
		return nil, err
	}
	ex, ok := e.state.executions[arn]
	if !ok {
		return nil, notFound("Pipeline execution '%s' does not exist.", arn)
	}
	return ex, nil
}

type startPipelineExecutionInput struct {
	PipelineName                 string
	ClientRequestToken           string
	PipelineExecutionDisplayName string
	PipelineExecutionDescription string
	PipelineParameters           []outputParameter
	ParallelismConfiguration     *parallelismConfiguration
	SelectiveExecutionConfig     any
	PipelineVersionId            *int64
}

// parallelismConfiguration is the ParallelismConfiguration member.
type parallelismConfiguration struct {
	MaxParallelExecutionSteps *int
}

// check validates MaxParallelExecutionSteps (at least 1) and returns it,
// 0 when c is nil.
func (c *parallelismConfiguration) check() (int, *apiError) {
	if c == nil {
		return 0, nil
	}
	if c.MaxParallelExecutionSteps == nil {
		return 0, validationError("1 validation error detected: Value null at 'parallelismConfiguration.maxParallelExecutionSteps' failed to satisfy constraint: Member must not be null")
	}
	if *c.MaxParallelExecutionSteps < 1 {
		return 0, validationError("1 validation error detected: Value '%d' at 'parallelismConfiguration.maxParallelExecutionSteps' failed to satisfy constraint: Member must have value greater than or equal to 1", *c.MaxParallelExecutionSteps)
	}
	return *c.MaxParallelExecutionSteps, nil
}

func (e *Emulator) startPipelineExecution(r *http.Request, body []byte) (any, *apiError) {
	var in startPipelineExecutionInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkRequired("PipelineName", in.PipelineName),
		checkClientToken(in.ClientRequestToken, true),
		checkLen("PipelineExecutionDisplayName", in.PipelineExecutionDisplayName, 0, 82),
		checkLen("PipelineExecutionDescription", in.PipelineExecutionDescription, 0, 3072),
	); err != nil {
		return nil, err
	}
	if in.PipelineExecutionDisplayName != "" {
		if err := checkPattern("PipelineExecutionDisplayName", in.PipelineExecutionDisplayName, pipelineNamePattern); err != nil {
			return nil, err
		}
	}
	if len(in.PipelineParameters) > 200 {
		return nil, validationError("1 validation error detected: Value at 'pipelineParameters' failed to satisfy constraint: Member must have length less than or equal to 200")
	}
	if in.SelectiveExecutionConfig != nil {
		return nil, validationError("SelectiveExecutionConfig is not supported by the emulator")
	}
	parallel, aerr := in.ParallelismConfiguration.check()
	if aerr != nil {
		return nil, aerr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.lookupPipeline(in.PipelineName)
	if err != nil {
		return nil, err
	}
	if in.PipelineVersionId != nil && *in.PipelineVersionId != p.version {
		return nil, validationError("The emulator keeps only the latest version (%d) of pipeline %s; PipelineVersionId %d is not available.", p.version, p.arn, *in.PipelineVersionId)
	}
	arn, err := e.startExecution(p, startRequest{
		token: in.ClientRequestToken, displayName: in.PipelineExecutionDisplayName,
		description: in.PipelineExecutionDescription, params: in.PipelineParameters, maxParallel: parallel,
		caller: e.caller(r),
	})
	if err != nil {
		return nil, err
	}
	return map[string]string{"PipelineExecutionArn": arn}, nil
}

// startRequest is what StartPipelineExecution asks for.
type startRequest struct {
	token, displayName, description string
	params                          []outputParameter
	maxParallel                     int // 0: the pipeline's
	caller                          userContext
}

// bindParams checks the parameters given to a start against the
// definition and returns every declared parameter's value.
func (d *definition) bindParams(given []outputParameter) (map[string]any, *apiError) {
	values := map[string]any{}
	for _, g := range given {
		if err := checkLen("PipelineParameters.member.Name", g.Name, 1, 256); err != nil {
			return nil, err
		}
		decl, ok := d.paramsByID[g.Name]
		if !ok {
			return nil, validationError("Pipeline parameter %q is not declared in the pipeline definition.", g.Name)
		}
		if _, dup := values[g.Name]; dup {
			return nil, validationError("Pipeline parameter %q is given more than once.", g.Name)
		}
		v, err := decl.typed(g.Value)
		if err != nil {
			return nil, validationError("Pipeline parameter %q: %v", g.Name, err)
		}
		values[g.Name] = v
	}
	for _, decl := range d.params {
		if _, ok := values[decl.Name]; ok {
			continue
		}
		if decl.DefaultValue == nil {
			return nil, validationError("Pipeline parameter %q has no default value and was not given a value.", decl.Name)
		}
		values[decl.Name] = decl.DefaultValue
	}
	return values, nil
}

// startExecution starts an execution of p, or returns the one an earlier
// start with the same token created. Callers hold e.mu.
func (e *Emulator) startExecution(p *pipeline, req startRequest) (string, *apiError) {
	key := p.name + "\x00" + req.token
	if arn, ok := e.state.startTokens[key]; ok {
		return arn, nil
	}
	params, aerr := p.def.bindParams(req.params)
	if aerr != nil {
		return "", aerr
	}
	var arn string
	for {
		arn = fmt.Sprintf("%s/execution/%s", p.arn, randomString("abcdefghijklmnopqrstuvwxyz0123456789", 12))
		if _, taken := e.state.executions[arn]; !taken {
			break
		}
	}
	now := time.Now()
	ex := &execution{
		arn:           arn,
		pipeline:      p,
		displayName:   req.displayName,
		description:   req.description,
		created:       now,
		byName:        map[string]*stepRun{},
		attempts:      map[string]int{},
		def:           p.def,
		definitionSrc: p.definitionSrc,
		params:        params,
		skipped:       map[string]bool{},
		maxParallel:   p.maxParallel,
	}
	if req.maxParallel > 0 {
		ex.maxParallel = req.maxParallel
	}
	ex.version = p.version
	ex.createdBy, ex.modifiedBy = req.caller, req.caller
	if p.def.experiment != nil {
		ex.experiment = &experimentConfig{}
		v, _ := resolve(p.def.experiment, ex.lookup) // Parameters and Execution only: checked at creation
		m, _ := v.(map[string]any)
		ex.experiment.ExperimentName = stringValue(m["ExperimentName"])
		ex.experiment.TrialName = stringValue(m["TrialName"])
	}
	if ex.displayName == "" {
		ex.displayName = "execution-" + strconv.FormatInt(now.UnixMilli(), 10)
	}
	e.state.startTokens[key] = arn
	e.state.executions[arn] = ex
	ex.seq = len(p.executions)
	p.executions = append(p.executions, ex)
	p.lastRun = now
	e.setExecution(ex, StatusExecuting, "")
	e.advance(ex)
	return arn, nil
}

type describePipelineExecutionOutput struct {
	PipelineArn                  string
	PipelineExecutionArn         string
	PipelineExecutionDisplayName string
	PipelineExecutionDescription string `json:",omitempty"`
	PipelineExecutionStatus      string
	FailureReason                string `json:",omitempty"`
	CreationTime                 *epochSeconds
	LastModifiedTime             *epochSeconds
	CreatedBy                    userContext
	LastModifiedBy               userContext
	PipelineExperimentConfig     *experimentConfig  `json:",omitempty"`
	ParallelismConfiguration     *parallelismOutput `json:",omitempty"`
	PipelineVersionId            int64
}

type experimentConfig struct {
	ExperimentName string `json:",omitempty"`
	TrialName      string `json:",omitempty"`
}

func (e *Emulator) describePipelineExecution(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ PipelineExecutionArn string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, err := e.lookupExecution(in.PipelineExecutionArn)
	if err != nil {
		return nil, err
	}
	return describePipelineExecutionOutput{
		PipelineArn:                  ex.pipeline.arn,
		PipelineExecutionArn:         ex.arn,
		PipelineExecutionDisplayName: ex.displayName,
		PipelineExecutionDescription: ex.description,
		PipelineExecutionStatus:      ex.status,
		FailureReason:                ex.failureReason,
		CreationTime:                 ts(ex.created),
		LastModifiedTime:             ts(ex.modified),
		PipelineExperimentConfig:     ex.experiment,
		ParallelismConfiguration:     parallelism(ex.maxParallel),
		PipelineVersionId:            ex.version,
		CreatedBy:                    ex.createdBy,
		LastModifiedBy:               ex.modifiedBy,
	}, nil
}

type pipelineExecutionSummary struct {
	PipelineExecutionArn           string
	PipelineExecutionDisplayName   string
	PipelineExecutionDescription   string `json:",omitempty"`
	PipelineExecutionStatus        string
	PipelineExecutionFailureReason string `json:",omitempty"`
	StartTime                      *epochSeconds
}

func (e *Emulator) listPipelineExecutions(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		pageInput
		timeFilter
		PipelineName string
		SortBy       string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRequired("PipelineName", in.PipelineName), in.check(), in.checkTimes(),
		checkSortBy(in.SortBy, "CreationTime", "PipelineExecutionArn")); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p, err := e.lookupPipeline(in.PipelineName)
	if err != nil {
		return nil, err
	}
	items := make([]keyed[*execution], 0, len(p.executions))
	for _, ex := range p.executions {
		if !in.keep(ex.created) {
			continue
		}
		key := seqKey(ex.seq)
		if in.SortBy == "PipelineExecutionArn" {
			key = ex.arn
		}
		items = append(items, keyed[*execution]{key, ex})
	}
	summaries, next, err := paginateAs(in.pageInput, "executions:"+in.SortBy+":"+p.arn, items, (*execution).summary)
	if err != nil {
		return nil, err
	}
	return struct {
		PipelineExecutionSummaries []pipelineExecutionSummary
		NextToken                  string `json:",omitempty"`
	}{summaries, next}, nil
}

// summary is ex as ListPipelineExecutions lists it.
func (ex *execution) summary() pipelineExecutionSummary {
	return pipelineExecutionSummary{
		PipelineExecutionArn:           ex.arn,
		PipelineExecutionDisplayName:   ex.displayName,
		PipelineExecutionDescription:   ex.description,
		PipelineExecutionStatus:        ex.status,
		PipelineExecutionFailureReason: ex.failureReason,
		StartTime:                      ts(ex.created),
	}
}

type stepMetadata struct {
	Callback  *callbackMetadata  `json:",omitempty"`
	Lambda    *lambdaMetadata    `json:",omitempty"`
	Condition *conditionMetadata `json:",omitempty"`
	Fail      *failMetadata      `json:",omitempty"`
}

type conditionMetadata struct {
	Outcome string
}

type failMetadata struct {
	ErrorMessage string
}

type callbackMetadata struct {
	CallbackToken    string
	SqsQueueUrl      string
	OutputParameters []outputParameter `json:",omitempty"`
}

type lambdaMetadata struct {
	Arn              string
	OutputParameters []outputParameter `json:",omitempty"`
}

type pipelineExecutionStep struct {
	StepName      string
	StepStatus    string
	StartTime     *epochSeconds
	EndTime       *epochSeconds `json:",omitempty"`
	FailureReason string        `json:",omitempty"`
	AttemptCount  int
	Metadata      *stepMetadata `json:",omitempty"`
}

func (e *Emulator) listPipelineExecutionSteps(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		pageInput
		PipelineExecutionArn string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkExecutionARN(in.PipelineExecutionArn), in.check()); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, err := e.lookupExecution(in.PipelineExecutionArn)
	if err != nil {
		return nil, err
	}
	items := make([]keyed[*stepRun], 0, len(ex.steps))
	for i, s := range ex.steps {
		items = append(items, keyed[*stepRun]{seqKey(i), s})
	}
	steps, next, err := paginateAs(in.pageInput, "steps:"+ex.arn, items, (*stepRun).describe)
	if err != nil {
		return nil, err
	}
	return struct {
		PipelineExecutionSteps []pipelineExecutionStep
		NextToken              string `json:",omitempty"`
	}{steps, next}, nil
}

func (s *stepRun) describe() pipelineExecutionStep {
	ps := pipelineExecutionStep{
		StepName:      s.def.Name,
		StepStatus:    s.status,
		StartTime:     ts(s.start),
		EndTime:       ts(s.end),
		FailureReason: s.failureReason,
		AttemptCount:  s.attempt,
	}
	switch s.def.Type {
	case StepTypeCallback:
		ps.Metadata = &stepMetadata{Callback: &callbackMetadata{CallbackToken: s.token, SqsQueueUrl: s.def.SqsQueueURL, OutputParameters: s.outputs}}
	case StepTypeLambda:
		ps.Metadata = &stepMetadata{Lambda: &lambdaMetadata{Arn: s.def.FunctionArn, OutputParameters: s.outputs}}
	case StepTypeCondition:
		if s.outcome != nil {
			ps.Metadata = &stepMetadata{Condition: &conditionMetadata{Outcome: map[bool]string{true: "True", false: "False"}[*s.outcome]}}
		}
	case StepTypeFail:
		ps.Metadata = &stepMetadata{Fail: &failMetadata{ErrorMessage: s.errorMessage}}
	}
	return ps
}

func (e *Emulator) stopPipelineExecution(r *http.Request, body []byte) (any, *apiError) {
	var in struct{ PipelineExecutionArn, ClientRequestToken string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkExecutionARN(in.PipelineExecutionArn), checkClientToken(in.ClientRequestToken, true)); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, err := e.lookupExecution(in.PipelineExecutionArn)
	if err != nil {
		return nil, err
	}
	if !slices.Contains(ex.stopTokensSeen, in.ClientRequestToken) {
		ex.stopTokensSeen = append(ex.stopTokensSeen, in.ClientRequestToken)
	}
	ok := map[string]string{"PipelineExecutionArn": ex.arn}
	if ex.stopToken != "" && ex.stopToken == in.ClientRequestToken {
		ex.stopSuccesses++
		return ok, nil
	}
	if ex.status != StatusExecuting {
		return nil, validationError("Pipeline execution with ARN %s has status %s. Only pipelines with 'Executing' status can be stopped.", ex.arn, ex.status)
	}
	if time.Now().Before(ex.conflictUntil) {
		return nil, conflict("Pipeline execution %s is transitioning between steps; try again", ex.arn)
	}
	ex.stopToken = in.ClientRequestToken
	ex.modifiedBy = e.caller(r)
	ex.effectiveStops++
	ex.stopSuccesses++
	e.stop(ex)
	return ok, nil
}

func (e *Emulator) retryPipelineExecution(r *http.Request, body []byte) (any, *apiError) {
	var in struct {
		PipelineExecutionArn, ClientRequestToken string
		ParallelismConfiguration                 *parallelismConfiguration
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkExecutionARN(in.PipelineExecutionArn), checkClientToken(in.ClientRequestToken, true)); err != nil {
		return nil, err
	}
	parallel, perr := in.ParallelismConfiguration.check()
	if perr != nil {
		return nil, perr
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, err := e.lookupExecution(in.PipelineExecutionArn)
	if err != nil {
		return nil, err
	}
	ok := map[string]string{"PipelineExecutionArn": ex.arn}
	if slices.Contains(ex.retryTokens, in.ClientRequestToken) {
		return ok, nil
	}
	if ex.status != StatusFailed {
		return nil, validationError("Pipeline execution with ARN %s has status %s. Only pipelines with 'Failed' status can be retried.", ex.arn, ex.status)
	}
	ex.retryTokens = append(ex.retryTokens, in.ClientRequestToken)
	ex.modifiedBy = e.caller(r)
	if parallel > 0 {
		ex.maxParallel = parallel
	}
	e.retry(ex)
	return ok, nil
}

type stepAnswerInput struct {
	CallbackToken      string
	ClientRequestToken string
	OutputParameters   []outputParameter
	FailureReason      string
}

func (e *Emulator) sendStepSuccess(_ *http.Request, body []byte) (any, *apiError) {
	return e.answerStep(body, OutcomeSuccess)
}

func (e *Emulator) sendStepFailure(_ *http.Request, body []byte) (any, *apiError) {
	return e.answerStep(body, OutcomeFailure)
}

func (in *stepAnswerInput) check(outcome string) *apiError {
	if err := firstError(
		checkRequired("CallbackToken", in.CallbackToken),
		checkPattern("CallbackToken", in.CallbackToken, callbackTokenPattern),
		checkClientToken(in.ClientRequestToken, false),
	); err != nil {
		return err
	}
	if outcome == OutcomeFailure {
		return checkLen("FailureReason", in.FailureReason, 0, 256)
	}
	if len(in.OutputParameters) > 50 {
		return validationError("1 validation error detected: Value at 'outputParameters' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	for i, p := range in.OutputParameters {
		if err := firstError(
			checkRequired(fmt.Sprintf("OutputParameters.%d.member.Name", i+1), p.Name),
			checkLen(fmt.Sprintf("OutputParameters.%d.member.Name", i+1), p.Name, 1, 256),
			checkLen(fmt.Sprintf("OutputParameters.%d.member.Value", i+1), p.Value, 0, 1024),
		); err != nil {
			return err
		}
	}
	return nil
}

// answerStep accepts a Success or Failure for a waiting callback step.
func (e *Emulator) answerStep(body []byte, outcome string) (any, *apiError) {
	var in stepAnswerInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := in.check(outcome); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	s, ok := e.state.tokens[in.CallbackToken]
	if !ok {
		return nil, notFound("Callback token %s does not exist.", in.CallbackToken)
	}
	okOut := map[string]string{"PipelineExecutionArn": s.ex.arn}
	a := Answer{
		Outcome:            outcome,
		ClientRequestToken: in.ClientRequestToken,
		FailureReason:      in.FailureReason,
		Time:               time.Now(),
	}
	if outcome == OutcomeSuccess {
		a.OutputParameters = map[string]string{}
		for _, p := range in.OutputParameters {
			a.OutputParameters[p.Name] = p.Value
		}
	}
	if len(s.answers) > 0 {
		first := s.answers[0]
		if in.ClientRequestToken != "" && in.ClientRequestToken == first.ClientRequestToken && outcome == first.Outcome {
			a.Replay = true
			s.answers = append(s.answers, a)
			return okOut, nil
		}
	}
	if !s.running() {
		s.refused = append(s.refused, a)
		return nil, conflict("Step %s of pipeline execution %s is already in a terminal status (%s).", s.def.Name, s.ex.arn, s.status)
	}
	s.answers = append(s.answers, a)
	if outcome == OutcomeSuccess {
		s.outputs = in.OutputParameters
	}
	switch {
	case s.status == StatusStopping:
		e.setStep(s, StatusStopped)
		e.finishStop(s.ex)
	case outcome == OutcomeSuccess:
		e.setStep(s, StatusSucceeded)
		e.advance(s.ex)
	default:
		e.failStep(s, in.FailureReason)
	}
	return okOut, nil
}
