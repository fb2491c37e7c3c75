package emulator

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Service prefixes of the X-Amz-Target header.
const (
	sageMakerPrefix = "SageMaker."
	sqsPrefix       = "AmazonSQS."
	// eventsPrefix ("AWSEvents.") is in eventbridge.go.
)

// maxRequestBody bounds a request body: a SendMessageBatch of ten 1 MiB
// messages, JSON-escaped, fits.
const maxRequestBody = 16 << 20

// Operations lists the operations the emulator serves, SageMaker's, SQS's
// then EventBridge's, each sorted by name: the names Faults.RateLimits and
// Requests take.
func Operations() []string {
	var e Emulator // only the operation tables are read
	ops := append(sortedKeys(e.sageMakerService().ops), sortedKeys(e.sqsService().ops)...)
	return append(ops, sortedKeys(e.eventsService().ops)...)
}

// apiError is an error answer in the AWS JSON protocols.
type apiError struct {
	status  int
	code    string // shape name, e.g. "ConflictException"
	message string
	// queryCode is the awsQuery error code SQS adds in x-amzn-query-error;
	// empty means code.
	queryCode string
	server    bool // Receiver fault
}

func (e *apiError) Error() string { return e.code + ": " + e.message }

func errorf(status int, code, format string, args ...any) *apiError {
	return &apiError{status: status, code: code, message: fmt.Sprintf(format, args...)}
}

// handlerFunc serves one operation: it decodes body and returns the value
// to encode as JSON, or an error.
type handlerFunc func(r *http.Request, body []byte) (any, *apiError)

type service struct {
	name        string // "sagemaker" or "sqs"
	contentType string
	ops         map[string]handlerFunc
}

func (e *Emulator) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, lambdaAPIPrefix) {
		e.serveLambdaAPI(w, r) // Lambda's REST-JSON API (lambdaapi.go)
		return
	}
	if !e.enter() {
		http.Error(w, "emulator closed", http.StatusServiceUnavailable)
		return
	}
	defer e.inflight.Done()

	reqID := newRequestID()
	w.Header().Set("X-Amzn-Requestid", reqID)
	target := r.Header.Get("X-Amz-Target")
	var (
		svc *service
		op  string
	)
	switch {
	case strings.HasPrefix(target, sageMakerPrefix):
		svc, op = e.sageMakerService(), strings.TrimPrefix(target, sageMakerPrefix)
	case strings.HasPrefix(target, sqsPrefix):
		svc, op = e.sqsService(), strings.TrimPrefix(target, sqsPrefix)
	case strings.HasPrefix(target, eventsPrefix):
		svc, op = e.eventsService(), strings.TrimPrefix(target, eventsPrefix)
	default:
		e.counters.request("Unknown")
		e.log.Warn("unsupported request: unknown X-Amz-Target", "target", target, "method", r.Method, "path", r.URL.Path)
		writeJSONError(w, "application/x-amz-json-1.1", "sagemaker", errorf(http.StatusBadRequest, "UnknownOperationException",
			"unknown X-Amz-Target %q: this emulator serves SageMaker.<Operation> and AWSEvents.<Operation> (AWS JSON 1.1) and AmazonSQS.<Operation> (AWS JSON 1.0)", target))
		return
	}
	e.counters.request(op)
	h, ok := svc.ops[op]
	if !ok {
		e.log.Warn("unsupported operation", "service", svc.name, "op", op)
		writeJSONError(w, svc.contentType, svc.name, errorf(http.StatusBadRequest, "UnknownOperationException",
			"operation %s is not supported by the emulator", target))
		return
	}
	if r.Method != http.MethodPost {
		writeJSONError(w, svc.contentType, svc.name, errorf(http.StatusMethodNotAllowed, "InvalidAction", "use POST"))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxRequestBody+1))
	switch {
	case err != nil:
		// A body that cannot be read (a malformed chunked encoding, a
		// connection cut short) must not look like a success.
		e.log.Debug("request body unreadable", "op", op, "err", err, "request_id", reqID)
		writeJSONError(w, svc.contentType, svc.name, errorf(http.StatusBadRequest, "SerializationException", "cannot read request body: %v", err))
		return
	case len(body) > maxRequestBody:
		e.log.Debug("request body too large", "op", op, "request_id", reqID)
		writeJSONError(w, svc.contentType, svc.name, errorf(http.StatusRequestEntityTooLarge, "RequestEntityTooLarge",
			"request body is larger than %d bytes", maxRequestBody))
		return
	}

	f := e.faults.decide(op, svc.name != "sagemaker") // EventBridge's faults are SQS's
	if f.latency > 0 {
		t := time.NewTimer(f.latency)
		select {
		case <-t.C:
		case <-e.done:
			t.Stop()
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	switch {
	case f.drop:
		e.log.Debug("fault: dropping connection", "op", op)
		dropConnection(w)
		return
	case f.err != nil:
		e.log.Debug("fault: injected error", "op", op, "code", f.err.code)
		writeJSONError(w, svc.contentType, svc.name, f.err)
		return
	}

	out, aerr := h(r, body)
	if f.dropResponse {
		e.log.Debug("fault: dropping connection after the operation", "op", op)
		dropConnection(w)
		return
	}
	if aerr != nil {
		e.log.Debug("request failed", "op", op, "code", aerr.code, "message", redactCallbackToken(body, aerr.message), "request_id", reqID)
		writeJSONError(w, svc.contentType, svc.name, aerr)
		return
	}
	e.log.Debug("request served", "op", op, "request_id", reqID)
	buf, err := json.Marshal(out)
	if err != nil {
		writeJSONError(w, svc.contentType, svc.name, errorf(http.StatusInternalServerError, "InternalFailure", "encode response: %v", err))
		return
	}
	w.Header().Set("Content-Type", svc.contentType)
	writeAnswer(w, http.StatusOK, buf)
}

// writeAnswer writes an answer whose body is whole in memory: framed by
// Content-Length, as AWS frames its JSON answers, never chunked. The
// Content-Type is set by the caller. A 204 answer has no body and no
// Content-Length.
func writeAnswer(w http.ResponseWriter, status int, body []byte) {
	if status == http.StatusNoContent {
		w.WriteHeader(status)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// writeJSONError writes err the way the AWS JSON protocols do for the
// service named svcName. SQS errors carry the namespaced type, a lowercase
// "message" and the awsQuery compatible x-amzn-query-error header;
// SageMaker errors carry the bare shape name and "Message", EventBridge
// errors the bare shape name and "message", as each model names the
// member.
func writeJSONError(w http.ResponseWriter, contentType, svcName string, err *apiError) {
	body := map[string]string{}
	if svcName == "sqs" {
		body["__type"] = "com.amazonaws.sqs#" + err.code
		if err.message != "" {
			body["message"] = err.message
		}
		qc := err.queryCode
		if qc == "" {
			qc = err.code
		}
		fault := "Sender"
		if err.server {
			fault = "Receiver"
		}
		w.Header().Set("X-Amzn-Query-Error", qc+";"+fault)
	} else if svcName == "events" {
		body["__type"] = err.code
		body["message"] = err.message
	} else {
		body["__type"] = err.code
		body["Message"] = err.message
	}
	buf, _ := json.Marshal(body)
	w.Header().Set("Content-Type", contentType)
	writeAnswer(w, err.status, buf)
}

// dropConnection closes the client connection without an answer.
func dropConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http closes the connection
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		return
	}
	_ = conn.Close()
}

// redactCallbackToken returns msg with the request's CallbackToken, when
// it has one, shown as its first two characters and asterisks, as
// pipelinestop.CallbackToken prints itself: logs never carry a token that
// could answer a step.
func redactCallbackToken(body []byte, msg string) string {
	var in struct{ CallbackToken string }
	if json.Unmarshal(body, &in) != nil || in.CallbackToken == "" {
		return msg
	}
	shown := "**********"
	if len(in.CallbackToken) > 2 {
		shown = in.CallbackToken[:2] + "********"
	}
	return strings.ReplaceAll(msg, in.CallbackToken, shown)
}

// decodeInput decodes a JSON request body into v; an empty body is {}.
func decodeInput(body []byte, v any) *apiError {
	if len(strings.TrimSpace(string(body))) == 0 {
		return nil
	}
	if err := json.Unmarshal(body, v); err != nil {
		return errorf(http.StatusBadRequest, "SerializationException", "cannot decode request body: %v", err)
	}
	return nil
}

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// randomString returns n random characters of alphabet.
func randomString(alphabet string, n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = alphabet[rand.IntN(len(alphabet))]
	}
	return string(b)
}

func newRequestID() string {
	const hex = "0123456789abcdef"
	return randomString(hex, 8) + "-" + randomString(hex, 4) + "-" + randomString(hex, 4) + "-" +
		randomString(hex, 4) + "-" + randomString(hex, 12)
}

// epochSeconds is a timestamp written as epoch seconds, the AWS JSON
// protocols' default timestamp format.
type epochSeconds time.Time

// MarshalJSON implements json.Marshaler.
func (t epochSeconds) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

func ts(t time.Time) *epochSeconds {
	if t.IsZero() {
		return nil
	}
	v := epochSeconds(t)
	return &v
}
