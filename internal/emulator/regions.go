package emulator

import (
	"errors"
	"fmt"
	"hash/fnv"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// MaxRegions bounds how many Regions one emulator serves: a request for
// one more Region is refused (a client naming random Regions cannot grow
// the emulator without limit). AWS has fewer Regions than this.
const MaxRegions = 64

// ErrInvalidRegion is returned by Start (Config.Region) and InRegion for a
// Region name that is not one: lowercase letters, digits and single
// hyphens, at most 32 characters, such as "eu-west-1".
var ErrInvalidRegion = errors.New("emulator: invalid Region")

// regionPattern is what the emulator accepts as a Region name. It is
// looser than AWS's list so that test Regions ("local") keep working.
var regionPattern = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

// maxRegionLen bounds a Region name.
const maxRegionLen = 32

// checkRegion returns an error wrapping ErrInvalidRegion when region is
// not a Region name.
func checkRegion(region string) error {
	if len(region) > maxRegionLen || !regionPattern.MatchString(region) {
		return fmt.Errorf("%w: %q (want a name such as eu-west-1)", ErrInvalidRegion, region)
	}
	return nil
}

// Partition returns the AWS partition of region, as its ARNs spell it:
// "aws-cn" for cn-*, "aws-us-gov" for us-gov-*, "aws-iso" for us-iso-*,
// "aws-iso-b" for us-isob-*, "aws-iso-e" for eu-isoe-*, "aws-iso-f" for
// us-isof-*, and "aws" for every other Region.
func Partition(region string) string {
	switch {
	case strings.HasPrefix(region, "cn-"):
		return "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		return "aws-us-gov"
	case strings.HasPrefix(region, "us-iso-"):
		return "aws-iso"
	case strings.HasPrefix(region, "us-isob-"):
		return "aws-iso-b"
	case strings.HasPrefix(region, "eu-isoe-"):
		return "aws-iso-e"
	case strings.HasPrefix(region, "us-isof-"):
		return "aws-iso-f"
	default:
		return "aws"
	}
}

// regionSet is what an emulator's Regions share: the Region state of
// every Region served so far, created on first use. It is the only owner
// of the map; each Region's state has its own owner (its Emulator value).
// Lock order: regionSet.mu, then a Region's locks.
type regionSet struct {
	mu     sync.Mutex
	home   *Emulator // the Region of Config.Region, returned by Start
	cells  map[string]*Emulator
	closed bool // Close began: no Region is created any more
}

// errClosed is returned for a Region first named after Close began.
var errClosed = errors.New("emulator: closed")

// newRegionSet makes home the first Region of a new set.
func newRegionSet(home *Emulator) *regionSet {
	return &regionSet{home: home, cells: map[string]*Emulator{home.cfg.Region: home}}
}

// get returns region's state, creating it from the home Region's shared
// settings on first use.
func (s *regionSet) get(region string) (*Emulator, error) {
	if err := checkRegion(region); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.cells[region]; ok {
		return c, nil
	}
	if s.closed {
		return nil, errClosed
	}
	if len(s.cells) >= MaxRegions {
		return nil, fmt.Errorf("%w: %q: the emulator already serves %d Regions", ErrInvalidRegion, region, MaxRegions)
	}
	c := s.home.newRegion(region)
	s.cells[region] = c
	return c, nil
}

// lookup returns region's state when it was created, without creating it.
func (s *regionSet) lookup(region string) (*Emulator, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.cells[region]
	return c, ok
}

// close marks the set closed and returns every Region's state: no Region
// is created after it.
func (s *regionSet) close() []*Emulator {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	return s.all()
}

// all returns every Region's state, sorted by Region.
func (s *regionSet) all() []*Emulator {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Emulator, 0, len(s.cells))
	for _, r := range slices.Sorted(maps.Keys(s.cells)) {
		out = append(out, s.cells[r])
	}
	return out
}

// each calls fn for every Region's state with s.mu held, so that no Region
// is created in between: an emulator-wide setting reaches every Region.
func (s *regionSet) each(fn func(*Emulator)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.cells {
		fn(c)
	}
}

// newRegion returns the state of a new Region: its own pipelines,
// executions, queues, rules, functions, rate limit buckets and counters,
// sharing e's server, account, clock, outbox and settings (faults, event
// faults, step timings, Lambda step outputs, the conflict window, the SQS
// clock) as they are now. The caller holds
// e.regions.mu.
func (e *Emulator) newRegion(region string) *Emulator {
	e.mu.Lock()
	cfg := e.cfg // SetConflictWindow changes cfg.Timing under e.mu
	timings := maps.Clone(e.state.stepTimings)
	outputs := maps.Clone(e.state.lambdaOutputs) // values are never changed in place
	e.mu.Unlock()
	cfg.Region = region
	c := &Emulator{
		cfg:      cfg,
		log:      e.log.With("region", region),
		url:      e.url,
		done:     e.done,
		faults:   newFaultInjector(e.CurrentFaults(), regionSeed(cfg.Seed, region)),
		counters: newCounters(),
		bus:      newEventBus(),
		events:   newEventDelivery(e.CurrentEventFaults(), regionSeed(cfg.Seed, region)),
		outbox:   e.outbox,
		state:    newPipelineState(),
		regions:  e.regions,
	}
	c.state.stepTimings, c.state.lambdaOutputs = timings, outputs
	e.queues.mu.Lock()
	now := e.queues.now
	e.queues.mu.Unlock()
	c.queues = newSQSBackend(e.url, region, cfg.AccountID, e.done)
	c.queues.home = e.regions.home.cfg.Region
	c.queues.now = now
	c.awsCfg = e.awsCfg.Copy()
	c.awsCfg.Region = region
	return c
}

// regionSeed mixes a Region's name into seed, so that the Regions' random
// faults are deterministic but not the same sequence in every Region.
func regionSeed(seed int64, region string) int64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(region))
	return seed ^ int64(h.Sum64())
}

// InRegion returns the emulator's state in region, created on first use:
// its ready-made clients sign for region, and its methods create and read
// pipelines, executions, queues and counters of that Region. The methods
// that take an execution ARN act in the ARN's Region whichever Region they
// are called on; the emulator-wide settings (SetFaults, SetEventFaults,
// SetStepTiming, SetLambdaOutputs, SetConflictWindow, SetSQSClock) reach
// every Region, those created later too; Close
// closes the whole emulator. InRegion of Config.Region returns the value
// Start returned.
func (e *Emulator) InRegion(region string) (*Emulator, error) {
	return e.regions.get(region)
}

// Regions returns the Regions that have state, sorted: Config.Region and
// every Region a request or InRegion named.
func (e *Emulator) Regions() []string {
	var out []string
	for _, c := range e.regions.all() {
		out = append(out, c.cfg.Region)
	}
	return out
}

// TotalRequests returns Requests(op) summed over every Region.
func (e *Emulator) TotalRequests(op string) int {
	n := 0
	for _, c := range e.regions.all() {
		n += c.Requests(op)
	}
	return n
}

// RegionCounters returns the request counts of every Region by Region,
// then by operation (each Region's Counters).
func (e *Emulator) RegionCounters() map[string]map[string]int {
	out := map[string]map[string]int{}
	for _, c := range e.regions.all() {
		out[c.cfg.Region] = c.Counters()
	}
	return out
}

// forARN returns the state of the Region an ARN names when that Region
// exists and the ARN's partition is the Region's, else e (where the ARN
// is then not found).
func (e *Emulator) forARN(arn string) *Emulator {
	parts := strings.SplitN(arn, ":", 5)
	if len(parts) < 5 || parts[0] != "arn" || parts[1] != Partition(parts[3]) {
		return e
	}
	if c, ok := e.regions.lookup(parts[3]); ok {
		return c
	}
	return e
}

// forToken returns the state of the Region whose execution issued
// callbackToken, else e.
func (e *Emulator) forToken(callbackToken string) *Emulator {
	for _, c := range e.regions.all() {
		c.mu.Lock()
		_, ok := c.state.tokens[callbackToken]
		c.mu.Unlock()
		if ok {
			return c
		}
	}
	return e
}

// arnPrefix returns "arn:<partition>:<service>:<region>:<account>:" for
// this Region; global services (IAM) pass global to leave the Region out.
func (e *Emulator) arnPrefix(service string, global bool) string {
	region := e.cfg.Region
	if global {
		region = ""
	}
	return "arn:" + Partition(e.cfg.Region) + ":" + service + ":" + region + ":" + e.cfg.AccountID + ":"
}

// requestRegion returns the Region a request is for: the Region of its
// SigV4 credential scope (the Authorization header's Credential, or the
// X-Amz-Credential query parameter of a presigned URL), else "" (an
// unsigned request).
func requestRegion(r *http.Request) string {
	cred := r.URL.Query().Get("X-Amz-Credential")
	if _, c, ok := strings.Cut(r.Header.Get("Authorization"), "Credential="); ok {
		cred, _, _ = strings.Cut(c, ",")
	}
	// AKID/DATE/REGION/SERVICE/aws4_request
	parts := strings.Split(strings.TrimSpace(cred), "/")
	if len(parts) != 5 {
		return ""
	}
	return parts[2]
}

// serveRegion serves a request in the Region of its credential scope (the home
// Region for an unsigned request).
func (e *Emulator) serveRegion(w http.ResponseWriter, r *http.Request) {
	c := e
	if region := requestRegion(r); region != "" && region != e.cfg.Region {
		var err error
		if c, err = e.regions.get(region); errors.Is(err, errClosed) {
			http.Error(w, "emulator closed", http.StatusServiceUnavailable)
			return
		} else if err != nil {
			contentType, svc := "application/x-amz-json-1.1", "sagemaker"
			switch target := r.Header.Get("X-Amz-Target"); {
			case strings.HasPrefix(target, sqsPrefix):
				contentType, svc = "application/x-amz-json-1.0", "sqs"
			case strings.HasPrefix(target, eventsPrefix):
				svc = "events"
			}
			e.log.Warn("request refused: bad Region in the credential scope", "region", region)
			writeJSONError(w, contentType, svc, errorf(http.StatusForbidden, "InvalidSignatureException",
				"Credential should be scoped to a valid region: %v", err))
			return
		}
	}
	c.serveHTTP(w, r)
}

// closeRegion waits for the Region's requests, cancels its timers and ends
// its event delivery and functions. e.done is closed.
func (e *Emulator) closeRegion() {
	e.inflightMu.Lock()
	e.closing = true
	e.inflightMu.Unlock()
	e.inflight.Wait()
	e.mu.Lock()
	e.state.stopTimers()
	e.mu.Unlock()
	e.events.close()
	e.closeLambda()
}

// setSQSClock sets the queue clock of one Region.
func (e *Emulator) setSQSClock(now func() time.Time) {
	e.queues.mu.Lock()
	e.queues.now = now
	e.queues.mu.Unlock()
}
