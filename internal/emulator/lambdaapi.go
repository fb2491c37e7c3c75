package emulator

// The Lambda API (REST-JSON, version 2015-03-31) for local functions and
// SQS event source mappings: what the Go SDK's service/lambda, boto3 and
// the AWS CLI send.

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
)

// lambdaAPIPrefix starts the path of every Lambda API request.
const lambdaAPIPrefix = "/2015-03-31/"

// lambdaHandler serves one Lambda operation: the HTTP status and the value
// to encode as JSON (or a rawResponse), or an error.
type lambdaHandler func(r *http.Request, body []byte) (status int, out any, err *apiError)

// serveLambdaAPI serves a request whose path starts with lambdaAPIPrefix.
func (e *Emulator) serveLambdaAPI(w http.ResponseWriter, r *http.Request) {
	if !e.enter() {
		http.Error(w, "emulator closed", http.StatusServiceUnavailable)
		return
	}
	defer e.inflight.Done()
	w.Header().Set("X-Amzn-Requestid", newRequestID())
	mux := e.lambdaBackend().mux
	if _, pattern := mux.Handler(r); pattern == "" {
		e.counters.request("Unknown")
		e.log.Warn("unsupported Lambda request", "method", r.Method, "path", r.URL.Path)
		writeLambdaError(w, errorf(http.StatusNotFound, "UnknownOperationException",
			"%s %s is not a Lambda operation the emulator serves", r.Method, r.URL.Path))
		return
	}
	mux.ServeHTTP(w, r) // sets the path values
}

// newMux routes the Lambda API.
func (b *lambdaBackend) newMux() *http.ServeMux {
	e := b.e
	mux := http.NewServeMux()
	{
		route := func(pattern, op string, h lambdaHandler) {
			mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
				e.counters.request(op)
				body, err := io.ReadAll(io.LimitReader(r.Body, maxInvokePayload+1))
				if err != nil {
					writeLambdaError(w, errorf(http.StatusBadRequest, "InvalidRequestContentException", "cannot read request body: %v", err))
					return
				}
				if len(body) > maxInvokePayload {
					writeLambdaError(w, errorf(http.StatusRequestEntityTooLarge, "RequestTooLargeException", "Request must be smaller than %d bytes for the invoke API", maxInvokePayload))
					return
				}
				status, out, aerr := h(r, body)
				if aerr != nil {
					e.log.Debug("Lambda request failed", "op", op, "code", aerr.code, "message", aerr.message)
					writeLambdaError(w, aerr)
					return
				}
				e.log.Debug("Lambda request served", "op", op)
				if raw, ok := out.(rawResponse); ok {
					raw.write(w, status)
					return
				}
				buf, _ := json.Marshal(out)
				w.Header().Set("Content-Type", "application/json")
				writeAnswer(w, status, buf)
			})
		}
		const esm = "/2015-03-31/event-source-mappings/"
		route("POST "+esm+"{$}", "CreateEventSourceMapping", b.apiCreateMapping)
		route("POST /2015-03-31/event-source-mappings", "CreateEventSourceMapping", b.apiCreateMapping)
		route("GET "+esm+"{$}", "ListEventSourceMappings", b.apiListMappings)
		route("GET /2015-03-31/event-source-mappings", "ListEventSourceMappings", b.apiListMappings)
		route("GET "+esm+"{uuid}", "GetEventSourceMapping", b.apiGetMapping)
		route("PUT "+esm+"{uuid}", "UpdateEventSourceMapping", b.apiUpdateMapping)
		route("DELETE "+esm+"{uuid}", "DeleteEventSourceMapping", b.apiDeleteMapping)
		route("GET /2015-03-31/functions/{$}", "ListFunctions", b.apiListFunctions)
		route("GET /2015-03-31/functions", "ListFunctions", b.apiListFunctions)
		route("GET /2015-03-31/functions/{name}", "GetFunction", b.apiGetFunction)
		route("GET /2015-03-31/functions/{name}/configuration", "GetFunctionConfiguration", b.apiGetFunctionConfiguration)
		route("POST /2015-03-31/functions/{name}/invocations", "Invoke", b.apiInvoke)
	}
	return mux
}

// writeLambdaError writes err as Lambda does: the code in
// X-Amzn-ErrorType, {"Type": "User", "Message": ...} in the body.
func writeLambdaError(w http.ResponseWriter, err *apiError) {
	kind := "User"
	if err.status >= 500 {
		kind = "Service"
	}
	buf, _ := json.Marshal(map[string]string{"Type": kind, "Message": err.message, "message": err.message})
	w.Header().Set("X-Amzn-ErrorType", err.code)
	w.Header().Set("Content-Type", "application/json")
	writeAnswer(w, err.status, buf)
}

// rawResponse is an answer that is not a JSON document of the emulator's
// (Invoke's payload).
type rawResponse struct {
	header http.Header
	body   []byte
}

func (raw rawResponse) write(w http.ResponseWriter, status int) {
	for k, v := range raw.header {
		w.Header()[k] = v
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	writeAnswer(w, status, raw.body)
}

// mappingView is EventSourceMappingConfiguration.
type mappingView struct {
	UUID                           string
	BatchSize                      int
	MaximumBatchingWindowInSeconds int
	EventSourceArn                 string
	EventSourceMappingArn          string
	FunctionArn                    string
	FunctionResponseTypes          []string
	LastModified                   *epochSeconds
	LastProcessingResult           string
	State                          string
	StateTransitionReason          string
}

// viewLocked describes m. Callers hold b.mu.
func (b *lambdaBackend) viewLocked(m *eventSourceMapping) mappingView {
	types := []string{}
	if m.cfg.rbif {
		types = append(types, reportBatchFailures)
	}
	return mappingView{
		UUID:                           m.uuid,
		BatchSize:                      m.cfg.batchSize,
		MaximumBatchingWindowInSeconds: int(m.cfg.window.Round(time.Second) / time.Second),
		EventSourceArn:                 m.queueARN,
		EventSourceMappingArn:          b.e.arnPrefix("lambda", false) + "event-source-mapping:" + m.uuid,
		FunctionArn:                    b.functionARN(m.function),
		FunctionResponseTypes:          types,
		LastModified:                   ts(m.modified),
		LastProcessingResult:           m.lastResult,
		State:                          m.state,
		StateTransitionReason:          userInitiatedReason,
	}
}

type mappingInput struct {
	EventSourceArn                 *string
	FunctionName                   *string
	Enabled                        *bool
	BatchSize                      *int
	MaximumBatchingWindowInSeconds *int
	FunctionResponseTypes          *[]string
}

// apply sets the fields given on cfg.
func (in *mappingInput) apply(cfg *mappingConfig) *apiError {
	if in.Enabled != nil {
		cfg.enabled = *in.Enabled
	}
	if in.BatchSize != nil {
		if *in.BatchSize == 0 {
			return lambdaInvalid("BatchSize 0 is out of range: an SQS event source takes 1 to %d", maxSQSBatchSize)
		}
		cfg.batchSize = *in.BatchSize
	}
	if in.MaximumBatchingWindowInSeconds != nil {
		cfg.window = time.Duration(*in.MaximumBatchingWindowInSeconds) * time.Second
	}
	if in.FunctionResponseTypes != nil {
		cfg.rbif = false
		for _, t := range *in.FunctionResponseTypes {
			if t != reportBatchFailures {
				return lambdaInvalid("1 validation error detected: Value '[%s]' at 'functionResponseTypes' failed to satisfy constraint: Member must satisfy enum value set: [ReportBatchItemFailures]", t)
			}
			cfg.rbif = true
		}
	}
	return nil
}

func (b *lambdaBackend) apiCreateMapping(_ *http.Request, body []byte) (int, any, *apiError) {
	var in mappingInput
	if err := decodeLambdaInput(body, &in); err != nil {
		return 0, nil, err
	}
	arn, fn := derefString(in.EventSourceArn), derefString(in.FunctionName)
	switch {
	case fn == "":
		return 0, nil, lambdaInvalid("FunctionName is required")
	case arn == "":
		return 0, nil, lambdaInvalid("EventSourceArn is required (the emulator serves SQS event sources)")
	case !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":sqs:"):
		return 0, nil, lambdaInvalid("Unrecognized event source %s: the emulator serves SQS queues only", arn)
	}
	cfg := mappingConfig{enabled: true}
	if err := in.apply(&cfg); err != nil {
		return 0, nil, err
	}
	m, err := b.createMapping(arn, fn, cfg)
	if err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	v := b.viewLocked(m)
	if cfg.enabled {
		v.State = stateCreating // the poller may already have started
	}
	return http.StatusAccepted, v, nil
}

func (b *lambdaBackend) apiGetMapping(r *http.Request, _ []byte) (int, any, *apiError) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.mappings[r.PathValue("uuid")]
	if !ok {
		return 0, nil, lambdaNotFound("The resource you requested does not exist.")
	}
	return http.StatusOK, b.viewLocked(m), nil
}

func (b *lambdaBackend) apiDeleteMapping(r *http.Request, _ []byte) (int, any, *apiError) {
	v, err := b.deleteMapping(r.PathValue("uuid"))
	if err != nil {
		return 0, nil, err
	}
	return http.StatusAccepted, v, nil
}

func (b *lambdaBackend) apiUpdateMapping(r *http.Request, body []byte) (int, any, *apiError) {
	var in mappingInput
	if err := decodeLambdaInput(body, &in); err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	m, ok := b.mappings[r.PathValue("uuid")]
	if !ok {
		return 0, nil, lambdaNotFound("The resource you requested does not exist.")
	}
	cfg := m.cfg
	if err := in.apply(&cfg); err != nil {
		return 0, nil, err
	}
	if err := checkMappingConfig(&cfg); err != nil {
		return 0, nil, err
	}
	if in.FunctionName != nil {
		f, name := b.resolveFunction(*in.FunctionName)
		if f == nil {
			return 0, nil, lambdaNotFound("Function not found: %s", b.functionARN(name))
		}
		m.function = f.cfg.Name
	}
	wasEnabled := m.cfg.enabled
	m.cfg = cfg
	m.modified = time.Now()
	m.notify()
	v := b.viewLocked(m)
	switch {
	case cfg.enabled && !wasEnabled:
		v.State = "Enabling"
	case !cfg.enabled && wasEnabled:
		v.State = "Disabling"
	default:
		v.State = "Updating"
	}
	return http.StatusAccepted, v, nil
}

func (b *lambdaBackend) apiListMappings(r *http.Request, _ []byte) (int, any, *apiError) {
	q := r.URL.Query()
	arn, fn := q.Get("EventSourceArn"), q.Get("FunctionName")
	start, maxItems, err := pageParams(q.Get("Marker"), q.Get("MaxItems"), 100, 10000)
	if err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	var name string
	if fn != "" {
		_, name = b.resolveFunction(fn)
	}
	var all []*eventSourceMapping
	for _, m := range b.mappings {
		if (arn == "" || m.queueARN == arn) && (name == "" || m.function == name) {
			all = append(all, m)
		}
	}
	slices.SortFunc(all, func(x, y *eventSourceMapping) int {
		if c := x.created.Compare(y.created); c != 0 {
			return c
		}
		return strings.Compare(x.uuid, y.uuid)
	})
	out := struct {
		EventSourceMappings []mappingView
		NextMarker          string `json:",omitempty"`
	}{EventSourceMappings: []mappingView{}}
	for i := start; i < len(all) && i < start+maxItems; i++ {
		out.EventSourceMappings = append(out.EventSourceMappings, b.viewLocked(all[i]))
	}
	if start+maxItems < len(all) {
		out.NextMarker = strconv.Itoa(start + maxItems)
	}
	return http.StatusOK, out, nil
}

// pageParams reads a Marker (an offset the emulator gave) and MaxItems.
func pageParams(marker, maxText string, def, limit int) (int, int, *apiError) {
	start, maxItems := 0, def
	if marker != "" {
		n, err := strconv.Atoi(marker)
		if err != nil || n < 0 {
			return 0, 0, lambdaInvalid("Invalid Marker %q", marker)
		}
		start = n
	}
	if maxText != "" {
		n, err := strconv.Atoi(maxText)
		if err != nil || n < 1 || n > limit {
			return 0, 0, lambdaInvalid("MaxItems must be between 1 and %d", limit)
		}
		maxItems = n
	}
	return start, maxItems, nil
}

// functionView is FunctionConfiguration.
type functionView struct {
	FunctionName     string
	FunctionArn      string
	Runtime          string
	Role             string
	Handler          string
	CodeSize         int64
	CodeSha256       string
	Description      string
	Timeout          int
	MemorySize       int
	LastModified     string
	Version          string
	Environment      *functionEnvironment `json:",omitempty"`
	TracingConfig    map[string]string
	RevisionId       string
	State            string
	LastUpdateStatus string
	PackageType      string
	Architectures    []string
	EphemeralStorage map[string]int
}

type functionEnvironment struct {
	Variables map[string]string
}

func (b *lambdaBackend) functionView(f *lambdaFunction) functionView {
	v := functionView{
		FunctionName: f.cfg.Name, FunctionArn: f.arn, Runtime: "provided.al2023",
		Role:    b.e.arnPrefix("iam", true) + "role/lambda-emulator",
		Handler: f.cfg.Handler, Timeout: timeoutSeconds(f.cfg.Timeout), MemorySize: f.cfg.MemoryMB,
		LastModified: f.modified.UTC().Format("2006-01-02T15:04:05.000-0700"), Version: "$LATEST",
		TracingConfig: map[string]string{"Mode": "PassThrough"}, RevisionId: f.revision,
		State: "Active", LastUpdateStatus: "Successful", PackageType: "Zip",
		Architectures: []string{"x86_64"}, EphemeralStorage: map[string]int{"Size": 512},
	}
	if data, err := os.ReadFile(f.cfg.Path); err == nil {
		sum := sha256.Sum256(data)
		v.CodeSize, v.CodeSha256 = int64(len(data)), base64.StdEncoding.EncodeToString(sum[:])
	}
	if len(f.cfg.Environment) > 0 {
		v.Environment = &functionEnvironment{Variables: f.cfg.Environment}
	}
	return v
}

// lookupFunction resolves the {name} of the path; a qualifier other than
// $LATEST is unknown.
func (b *lambdaBackend) lookupFunction(r *http.Request) (*lambdaFunction, *apiError) {
	ref := r.PathValue("name")
	if q := r.URL.Query().Get("Qualifier"); q != "" && q != "$LATEST" {
		return nil, lambdaNotFound("Function not found: %s:%s", b.functionARN(ref), q)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	f, name := b.resolveFunction(ref)
	if f == nil {
		return nil, lambdaNotFound("Function not found: %s", b.functionARN(name))
	}
	return f, nil
}

func (b *lambdaBackend) apiGetFunctionConfiguration(r *http.Request, _ []byte) (int, any, *apiError) {
	f, err := b.lookupFunction(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, b.functionView(f), nil
}

func (b *lambdaBackend) apiGetFunction(r *http.Request, _ []byte) (int, any, *apiError) {
	f, err := b.lookupFunction(r)
	if err != nil {
		return 0, nil, err
	}
	return http.StatusOK, map[string]any{
		"Configuration": b.functionView(f),
		"Code":          map[string]string{"RepositoryType": "Local", "Location": "file://" + f.cfg.Path},
	}, nil
}

func (b *lambdaBackend) apiListFunctions(r *http.Request, _ []byte) (int, any, *apiError) {
	q := r.URL.Query()
	start, maxItems, err := pageParams(q.Get("Marker"), q.Get("MaxItems"), 50, 50)
	if err != nil {
		return 0, nil, err
	}
	b.mu.Lock()
	names := sortedKeys(b.functions)
	fns := make([]*lambdaFunction, len(names))
	for i, n := range names {
		fns[i] = b.functions[n]
	}
	b.mu.Unlock()
	out := struct {
		Functions  []functionView
		NextMarker string `json:",omitempty"`
	}{Functions: []functionView{}}
	for i := start; i < len(fns) && i < start+maxItems; i++ {
		out.Functions = append(out.Functions, b.functionView(fns[i]))
	}
	if start+maxItems < len(fns) {
		out.NextMarker = strconv.Itoa(start + maxItems)
	}
	return http.StatusOK, out, nil
}

// apiInvoke is Invoke: RequestResponse waits for the answer, Event runs
// the invocation in the background (202), DryRun only checks (204).
func (b *lambdaBackend) apiInvoke(r *http.Request, body []byte) (int, any, *apiError) {
	f, err := b.lookupFunction(r)
	if err != nil {
		return 0, nil, err
	}
	if len(body) == 0 {
		body = []byte("{}")
	}
	if !json.Valid(body) {
		return 0, nil, errorf(http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: the payload is not JSON")
	}
	hdr := http.Header{}
	hdr.Set("X-Amz-Executed-Version", "$LATEST")
	switch t := r.Header.Get("X-Amz-Invocation-Type"); t {
	case "", "RequestResponse":
	case "DryRun":
		return http.StatusNoContent, rawResponse{header: hdr}, nil
	case "Event":
		if !b.enter() {
			return 0, nil, errorf(http.StatusServiceUnavailable, "ServiceException", "emulator closed")
		}
		go func() {
			defer b.wg.Done()
			_, _ = f.invoke(context.Background(), body)
		}()
		return http.StatusAccepted, rawResponse{header: hdr}, nil
	default:
		return 0, nil, lambdaInvalid("X-Amz-Invocation-Type %q is not RequestResponse, Event or DryRun", t)
	}
	res, ierr := f.invoke(r.Context(), body)
	if ierr != nil {
		return 0, nil, errorf(http.StatusServiceUnavailable, "ServiceException", "invoke: %v", ierr)
	}
	hdr.Set("X-Amz-Request-Id", res.RequestID)
	if res.FunctionError != "" {
		hdr.Set("X-Amz-Function-Error", res.FunctionError)
	}
	return http.StatusOK, rawResponse{header: hdr, body: res.Payload}, nil
}

func decodeLambdaInput(body []byte, v any) *apiError {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "InvalidRequestContentException", "Could not parse request body into json: %v", err)
	}
	return nil
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
