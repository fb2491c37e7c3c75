// Package regionfront is a test helper: a loopback SageMaker endpoint in
// front of the emulator that records the Region each request's SigV4
// signature names (its credential scope) before passing the request on. The
// emulator keeps one state per Region, so a call sent to the wrong Region is
// answered ResourceNotFound there; the record says where each call went.
package regionfront

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// Call is one request the front received.
type Call struct {
	Region string // from the Authorization header's credential scope
	Op     string // the X-Amz-Target operation, without "SageMaker."
	ARN    string // PipelineExecutionArn of the request, if any
	Token  string // CallbackToken of the request, if any
}

// Front is the recording endpoint; URL is its address. Ems, set by
// WithEmulator, holds each Region's view of the emulator behind it.
type Front struct {
	URL     string
	Ems     map[string]*emulator.Emulator
	regions []string
	mu      sync.Mutex
	log     []Call
	hook    func(c Call) (status int, body string)
}

// scopeRegion reads the Region of a SigV4 Authorization header:
// "AWS4-HMAC-SHA256 Credential=AKID/20261201/eu-west-1/sagemaker/aws4_request, ...".
var scopeRegion = regexp.MustCompile(`Credential=[^/]+/[0-9]{8}/([^/]+)/`)

// WithEmulator starts an emulator with cfg (its default Region is the
// first of regions, which must not be empty) and a front before it that
// passes on the requests signed for one of regions; Ems[r] is Region r's
// view of the emulator.
func WithEmulator(tb testing.TB, cfg emulator.Config, regions ...string) *Front {
	tb.Helper()
	cfg.Region = regions[0]
	em := emulator.StartTest(tb, cfg)
	ems := map[string]*emulator.Emulator{}
	for _, r := range regions {
		view, err := em.InRegion(r)
		if err != nil {
			tb.Fatal(err)
		}
		ems[r] = view
	}
	f := Start(tb, em.URL(), regions...)
	f.Ems = ems
	return f
}

// ScopeRegion returns the Region of a SigV4 Authorization header's
// credential scope, or "" when it names none.
func ScopeRegion(authorization string) string {
	if m := scopeRegion.FindStringSubmatch(authorization); m != nil {
		return m[1]
	}
	return ""
}

// Start starts a front that passes every request to target (the
// emulator's URL). A request signed for a Region not in regions is
// answered UnrecognizedClientException without reaching target. The front
// closes when tb ends.
func Start(tb testing.TB, target string, regions ...string) *Front {
	tb.Helper()
	u, err := url.Parse(target)
	if err != nil {
		tb.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f := &Front{regions: regions}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		var in struct {
			PipelineExecutionArn, CallbackToken string
		}
		_ = json.Unmarshal(body, &in)
		c := Call{Op: strings.TrimPrefix(r.Header.Get("X-Amz-Target"), "SageMaker."),
			ARN: in.PipelineExecutionArn, Token: in.CallbackToken}
		c.Region = ScopeRegion(r.Header.Get("Authorization"))
		f.mu.Lock()
		f.log = append(f.log, c)
		hook := f.hook
		f.mu.Unlock()
		if hook != nil {
			if status, body := hook(c); status != 0 {
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(status)
				_, _ = io.WriteString(w, body)
				return
			}
		}
		if !slices.Contains(f.regions, c.Region) {
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.WriteHeader(http.StatusBadRequest)
			_, _ = fmt.Fprintf(w, `{"__type":"UnrecognizedClientException","message":"no Region %q here"}`, c.Region)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	tb.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// Calls returns the requests received so far.
func (f *Front) Calls() []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.log)
}

// SetHook makes h see every request first; when it returns a non-zero
// status, the front answers with it and body instead of the emulator.
func (f *Front) SetHook(h func(c Call) (status int, body string)) {
	f.mu.Lock()
	f.hook = h
	f.mu.Unlock()
}
