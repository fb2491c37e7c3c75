package emulator

import (
	"math"
	"net/http"
	"regexp"
	"strings"
	"time"
)

var roleARNPattern = regexp.MustCompile(`^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$`)

// pipelineFields are the members CreatePipeline and UpdatePipeline share.
type pipelineFields struct {
	PipelineName                 string
	PipelineDisplayName          string
	PipelineDescription          string
	PipelineDefinition           string
	PipelineDefinitionS3Location any
	RoleArn                      string
	ParallelismConfiguration     *parallelismConfiguration
}

// check validates the members that are set; create says whether the
// definition and role are required.
func (in *pipelineFields) check(create bool) (*definition, int, *apiError) {
	if err := firstError(
		checkRequired("PipelineName", in.PipelineName),
		checkLen("PipelineName", in.PipelineName, 1, 256),
		checkPattern("PipelineName", in.PipelineName, pipelineNamePattern),
		checkLen("PipelineDescription", in.PipelineDescription, 0, 3072),
	); err != nil {
		return nil, 0, err
	}
	if in.PipelineDisplayName != "" {
		if err := firstError(checkLen("PipelineDisplayName", in.PipelineDisplayName, 1, 256),
			checkPattern("PipelineDisplayName", in.PipelineDisplayName, pipelineNamePattern)); err != nil {
			return nil, 0, err
		}
	}
	if create || in.RoleArn != "" {
		if err := firstError(checkRequired("RoleArn", in.RoleArn), checkLen("RoleArn", in.RoleArn, 20, 2048),
			checkPattern("RoleArn", in.RoleArn, roleARNPattern)); err != nil {
			return nil, 0, err
		}
	}
	parallel, err := in.ParallelismConfiguration.check()
	if err != nil {
		return nil, 0, err
	}
	if in.PipelineDefinitionS3Location != nil {
		return nil, 0, validationError("PipelineDefinitionS3Location is not supported by the emulator; pass PipelineDefinition")
	}
	if !create && in.PipelineDefinition == "" {
		return nil, parallel, nil
	}
	if err := firstError(checkRequired("PipelineDefinition", in.PipelineDefinition),
		checkLen("PipelineDefinition", in.PipelineDefinition, 1, 1048576)); err != nil {
		return nil, 0, err
	}
	def, perr := parseDefinition(in.PipelineDefinition)
	if perr != nil {
		return nil, 0, validationError("Invalid PipelineDefinition: %v", perr)
	}
	return def, parallel, nil
}

func (e *Emulator) createPipeline(r *http.Request, body []byte) (any, *apiError) {
	var in struct {
		pipelineFields
		ClientRequestToken string
		Tags               []struct{ Key, Value string }
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	def, parallel, err := in.check(true)
	if err != nil {
		return nil, err
	}
	if err := checkClientToken(in.ClientRequestToken, true); err != nil {
		return nil, err
	}
	if len(in.Tags) > 50 {
		return nil, validationError("1 validation error detected: Value at 'tags' failed to satisfy constraint: Member must have length less than or equal to 50")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if p, exists := e.state.pipelines[in.PipelineName]; exists {
		if in.ClientRequestToken == p.createToken {
			return map[string]string{"PipelineArn": p.arn}, nil
		}
		return nil, validationError("Pipeline names must be unique within an AWS account and region. Pipeline with name (%s) already exists.", in.PipelineName)
	}
	p := e.newPipeline(in.PipelineName, in.PipelineDefinition, def, in.RoleArn)
	p.description, p.createToken, p.maxParallel = in.PipelineDescription, in.ClientRequestToken, parallel
	p.createdBy = e.caller(r)
	p.modifiedBy = p.createdBy
	if in.PipelineDisplayName != "" {
		p.displayName = in.PipelineDisplayName
	}
	return map[string]string{"PipelineArn": p.arn}, nil
}

// newPipeline registers a pipeline. Callers hold e.mu and checked that the
// name is free.
func (e *Emulator) newPipeline(name, src string, def *definition, roleArn string) *pipeline {
	e.state.pipelineSeq++
	now := time.Now()
	p := &pipeline{
		name: name, arn: e.pipelineARN(name), seq: e.state.pipelineSeq,
		definitionSrc: src, def: def, roleArn: roleArn, displayName: name,
		created: now, modified: now, version: 1,
	}
	e.state.pipelines[name] = p
	return p
}

func (e *Emulator) updatePipeline(r *http.Request, body []byte) (any, *apiError) {
	var in pipelineFields
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	def, parallel, err := in.check(false)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	p, ok := e.state.pipelines[in.PipelineName]
	if !ok {
		return nil, notFound("Pipeline '%s' does not exist.", e.pipelineARN(in.PipelineName))
	}
	if def != nil {
		p.def, p.definitionSrc = def, in.PipelineDefinition
	}
	if in.PipelineDisplayName != "" {
		p.displayName = in.PipelineDisplayName
	}
	if in.PipelineDescription != "" {
		p.description = in.PipelineDescription
	}
	if in.RoleArn != "" {
		p.roleArn = in.RoleArn
	}
	if in.ParallelismConfiguration != nil {
		p.maxParallel = parallel
	}
	p.version++
	p.modified = time.Now()
	p.modifiedBy = e.caller(r)
	return struct {
		PipelineArn       string
		PipelineVersionId int64
	}{p.arn, p.version}, nil
}

func (e *Emulator) deletePipeline(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ PipelineName, ClientRequestToken string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(
		checkRequired("PipelineName", in.PipelineName),
		checkLen("PipelineName", in.PipelineName, 1, 256),
		checkPattern("PipelineName", in.PipelineName, pipelineNamePattern),
		checkClientToken(in.ClientRequestToken, true),
	); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ok := map[string]string{"PipelineArn": e.pipelineARN(in.PipelineName)}
	if e.state.deleteTokens[in.PipelineName+"\x00"+in.ClientRequestToken] {
		return ok, nil
	}
	p, found := e.state.pipelines[in.PipelineName]
	if !found {
		return nil, notFound("Pipeline '%s' does not exist.", e.pipelineARN(in.PipelineName))
	}
	for _, ex := range p.executions {
		if ex.status == StatusExecuting || ex.status == StatusStopping {
			return nil, conflict("Pipeline %s has an execution in progress (%s is %s); stop it before deleting the pipeline.", p.arn, ex.arn, ex.status)
		}
	}
	for _, ex := range p.executions {
		delete(e.state.executions, ex.arn)
		for _, s := range ex.steps {
			if s.token != "" {
				delete(e.state.tokens, s.token)
			}
		}
	}
	for key := range e.state.startTokens {
		if strings.HasPrefix(key, p.name+"\x00") {
			delete(e.state.startTokens, key)
		}
	}
	delete(e.state.pipelines, p.name)
	e.state.deleteTokens[in.PipelineName+"\x00"+in.ClientRequestToken] = true
	e.state.notify()
	return ok, nil
}

// userContext is the CreatedBy and LastModifiedBy members. Callers of the
// API are IAM principals, not Studio users, so SageMaker fills only
// IamIdentity.
type userContext struct {
	IamIdentity *iamIdentity `json:",omitempty"`
}

type iamIdentity struct {
	Arn         string
	PrincipalId string
}

// caller is the IAM identity the emulator records for a request: the
// signature's access key ID stands for the principal (signatures are not
// checked, so no real identity is known), as the IAM user
// arn:aws:iam::<account>:user/<access key ID>; an unsigned request is the
// user "anonymous".
func (e *Emulator) caller(r *http.Request) userContext {
	id := "anonymous"
	if _, cred, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		if akid, _, ok := strings.Cut(cred, "/"); ok && akid != "" && !strings.ContainsAny(akid, " ,") {
			id = akid
		}
	}
	return userContext{IamIdentity: &iamIdentity{Arn: e.arnPrefix("iam", true) + "user/" + id, PrincipalId: id}}
}

type describePipelineOutput struct {
	PipelineArn              string
	PipelineName             string
	PipelineDisplayName      string
	PipelineDescription      string `json:",omitempty"`
	PipelineDefinition       string
	RoleArn                  string
	PipelineStatus           string
	CreationTime             *epochSeconds
	LastModifiedTime         *epochSeconds
	LastRunTime              *epochSeconds `json:",omitempty"`
	CreatedBy                userContext
	LastModifiedBy           userContext
	ParallelismConfiguration *parallelismOutput `json:",omitempty"`
}

type parallelismOutput struct{ MaxParallelExecutionSteps int }

func parallelism(n int) *parallelismOutput {
	if n <= 0 {
		return nil
	}
	return &parallelismOutput{n}
}

func (e *Emulator) describePipeline(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		PipelineName      string
		PipelineVersionId *int64
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRequired("PipelineName", in.PipelineName), checkLen("PipelineName", in.PipelineName, 1, 2048)); err != nil {
		return nil, err
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
	return describePipelineOutput{
		PipelineArn:              p.arn,
		PipelineName:             p.name,
		PipelineDisplayName:      p.displayName,
		PipelineDescription:      p.description,
		PipelineDefinition:       p.definitionSrc,
		RoleArn:                  p.roleArn,
		PipelineStatus:           "Active",
		CreationTime:             ts(p.created),
		LastModifiedTime:         ts(p.modified),
		LastRunTime:              ts(p.lastRun),
		ParallelismConfiguration: parallelism(p.maxParallel),
		CreatedBy:                p.createdBy,
		LastModifiedBy:           p.modifiedBy,
	}, nil
}

// timeFilter is the CreatedAfter and CreatedBefore members (epoch seconds).
type timeFilter struct {
	CreatedAfter  *float64
	CreatedBefore *float64
}

// keep reports whether t passes the filter: strictly after CreatedAfter
// and strictly before CreatedBefore.
func (f timeFilter) keep(t time.Time) bool {
	ms := float64(t.UnixMilli()) / 1000
	return (f.CreatedAfter == nil || ms > *f.CreatedAfter) && (f.CreatedBefore == nil || ms < *f.CreatedBefore)
}

func (f timeFilter) checkTimes() *apiError {
	for _, v := range []*float64{f.CreatedAfter, f.CreatedBefore} {
		if v != nil && (math.IsNaN(*v) || math.IsInf(*v, 0)) {
			return errorf(http.StatusBadRequest, "SerializationException", "timestamp %v is not a number of epoch seconds", *v)
		}
	}
	return nil
}

func checkSortBy(v string, allowed ...string) *apiError {
	if v == "" {
		return nil
	}
	for _, a := range allowed {
		if v == a {
			return nil
		}
	}
	return validationError("1 validation error detected: Value '%s' at 'sortBy' failed to satisfy constraint: Member must satisfy enum value set: [%s]", v, strings.Join(allowed, ", "))
}

type pipelineSummary struct {
	PipelineArn         string
	PipelineName        string
	PipelineDisplayName string
	PipelineDescription string `json:",omitempty"`
	RoleArn             string
	CreationTime        *epochSeconds
	LastModifiedTime    *epochSeconds
	LastExecutionTime   *epochSeconds `json:",omitempty"`
}

func (e *Emulator) listPipelines(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		pageInput
		timeFilter
		PipelineNamePrefix string
		SortBy             string
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(in.check(), in.checkTimes(), checkSortBy(in.SortBy, "Name", "CreationTime"),
		checkLen("PipelineNamePrefix", in.PipelineNamePrefix, 0, 256)); err != nil {
		return nil, err
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	var items []keyed[*pipeline]
	for _, p := range e.state.pipelines {
		if !strings.HasPrefix(p.name, in.PipelineNamePrefix) || !in.keep(p.created) {
			continue
		}
		key := seqKey(p.seq)
		if in.SortBy == "Name" {
			key = p.name
		}
		items = append(items, keyed[*pipeline]{key, p})
	}
	summaries, next, err := paginateAs(in.pageInput, "pipelines:"+in.SortBy+":"+in.PipelineNamePrefix, items, (*pipeline).summary)
	if err != nil {
		return nil, err
	}
	return struct {
		PipelineSummaries []pipelineSummary
		NextToken         string `json:",omitempty"`
	}{summaries, next}, nil
}

// summary is p as ListPipelines lists it.
func (p *pipeline) summary() pipelineSummary {
	return pipelineSummary{
		PipelineArn: p.arn, PipelineName: p.name, PipelineDisplayName: p.displayName,
		PipelineDescription: p.description, RoleArn: p.roleArn,
		CreationTime: ts(p.created), LastModifiedTime: ts(p.modified), LastExecutionTime: ts(p.lastRun),
	}
}

func (e *Emulator) describePipelineDefinitionForExecution(_ *http.Request, body []byte) (any, *apiError) {
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
	return struct {
		PipelineDefinition string
		CreationTime       *epochSeconds
	}{ex.definitionSrc, ts(ex.created)}, nil
}

func (e *Emulator) listPipelineParametersForExecution(_ *http.Request, body []byte) (any, *apiError) {
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
	if in.SortOrder != "" {
		return nil, errorf(http.StatusBadRequest, "SerializationException", "ListPipelineParametersForExecution has no member SortOrder")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	ex, err := e.lookupExecution(in.PipelineExecutionArn)
	if err != nil {
		return nil, err
	}
	var items []keyed[outputParameter]
	for i, d := range ex.def.params {
		items = append(items, keyed[outputParameter]{seqKey(i), outputParameter{Name: d.Name, Value: stringValue(ex.params[d.Name])}})
	}
	in.SortOrder = "Ascending"
	page, next, err := paginate(in.pageInput, "parameters:"+ex.arn, items)
	if err != nil {
		return nil, err
	}
	return struct {
		PipelineParameters []outputParameter
		NextToken          string `json:",omitempty"`
	}{page, next}, nil
}
