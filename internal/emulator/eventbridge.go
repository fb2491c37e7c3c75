package emulator

import (
	"encoding/base64"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"
)

// eventsPrefix is the X-Amz-Target prefix of EventBridge operations.
const eventsPrefix = "AWSEvents."

// defaultBus is the only event bus the emulator has.
const defaultBus = "default"

// EventBridge limits from the service model and quotas.
const (
	maxTargetsPerRule   = 5
	maxTargetsPerCall   = 10
	maxRemoveIDsPerCall = 100
	maxRulesPerBus      = 300
)

var (
	ruleNamePattern = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)
	targetIDPattern = regexp.MustCompile(`^[\.\-_A-Za-z0-9]{1,64}$`)
)

// eventBus holds the default bus's rules. It is guarded by its own mutex;
// the lock order is Emulator.mu, then eventBus.mu, then the SQS backend's.
type eventBus struct {
	mu    sync.Mutex
	rules map[string]*eventRule // by name
}

type eventRule struct {
	name, arn, description, state, roleArn string
	patternSrc                             string
	pattern                                *eventPattern
	targets                                map[string]*eventTarget // by Id
	created                                time.Time
}

// eventTarget is a rule's target as PutTargets stored it. Only the
// members the emulator acts on are typed; the rest are echoed back.
type eventTarget struct {
	ID               string            `json:"Id"`
	Arn              string            `json:"Arn"`
	RoleArn          string            `json:"RoleArn,omitempty"`
	Input            string            `json:"Input,omitempty"`
	InputPath        string            `json:"InputPath,omitempty"`
	SqsParameters    map[string]string `json:"SqsParameters,omitempty"`
	DeadLetterConfig map[string]string `json:"DeadLetterConfig,omitempty"`
	RetryPolicy      map[string]int    `json:"RetryPolicy,omitempty"`
	InputTransformer map[string]any    `json:"InputTransformer,omitempty"`
}

func newEventBus() *eventBus { return &eventBus{rules: map[string]*eventRule{}} }

func (e *Emulator) eventsService() *service {
	return &service{
		name:        "events",
		contentType: "application/x-amz-json-1.1",
		ops: map[string]handlerFunc{
			"PutRule":           e.putRule,
			"DescribeRule":      e.describeRule,
			"ListRules":         e.listRules,
			"DeleteRule":        e.deleteRule,
			"PutTargets":        e.putTargets,
			"ListTargetsByRule": e.listTargetsByRule,
			"RemoveTargets":     e.removeTargets,
		},
	}
}

func eventsError(code, format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, code, format, args...)
}

func eventsValidation(format string, args ...any) *apiError {
	return eventsError("ValidationException", format, args...)
}

func (e *Emulator) ruleARN(name string) string {
	return e.arnPrefix("events", false) + "rule/" + name
}

// checkBus accepts the default bus by name or ARN (or no name).
func (e *Emulator) checkBus(name string) *apiError {
	switch name {
	case "", defaultBus, e.arnPrefix("events", false) + "event-bus/default":
		return nil
	}
	return eventsError("ResourceNotFoundException", "Event bus %s does not exist.", name)
}

func checkRuleName(name, member string) *apiError {
	if !ruleNamePattern.MatchString(name) {
		return eventsValidation("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and have length between 1 and 64", name, member)
	}
	return nil
}

func ruleNotFound(name string) *apiError {
	return eventsError("ResourceNotFoundException", "Rule %s does not exist on EventBus default.", name)
}

type ruleInput struct {
	Name, EventPattern, ScheduleExpression, State, Description, RoleArn, EventBusName string
	Tags                                                                              []struct{ Key, Value string }
}

func (e *Emulator) putRule(_ *http.Request, body []byte) (any, *apiError) {
	var in ruleInput
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Name, "name"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	if in.ScheduleExpression != "" {
		return nil, eventsValidation("ScheduleExpression is not supported by this emulator; give an EventPattern.")
	}
	if in.EventPattern == "" {
		return nil, eventsValidation("Parameter(s) EventPattern or ScheduleExpression must be specified.")
	}
	pat, err := parseEventPattern(in.EventPattern)
	if err != nil {
		return nil, err
	}
	switch in.State {
	case "":
		in.State = "ENABLED"
	case "ENABLED", "DISABLED", "ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS":
	default:
		return nil, eventsValidation("1 validation error detected: Value '%s' at 'state' failed to satisfy constraint: Member must satisfy enum value set: [ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]", in.State)
	}
	if len(in.Description) > 512 {
		return nil, eventsValidation("1 validation error detected: Value at 'description' failed to satisfy constraint: Member must have length less than or equal to 512")
	}
	b := e.bus
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := b.rules[in.Name]
	if !ok {
		if len(b.rules) >= maxRulesPerBus {
			return nil, eventsError("LimitExceededException", "The requested resource exceeds the maximum number allowed.")
		}
		r = &eventRule{name: in.Name, arn: e.ruleARN(in.Name), targets: map[string]*eventTarget{}, created: time.Now()}
		b.rules[in.Name] = r
	}
	// PutRule replaces the rule with what it is given; targets stay.
	r.patternSrc, r.pattern, r.state, r.description, r.roleArn = in.EventPattern, pat, in.State, in.Description, in.RoleArn
	return struct{ RuleArn string }{r.arn}, nil
}

// ruleOutput is a rule in DescribeRule and ListRules.
type ruleOutput struct {
	Name         string
	Arn          string
	EventPattern string `json:",omitempty"`
	State        string
	Description  string `json:",omitempty"`
	RoleArn      string `json:",omitempty"`
	EventBusName string
	CreatedBy    string `json:",omitempty"`
}

func (e *Emulator) ruleOut(r *eventRule) ruleOutput {
	return ruleOutput{Name: r.name, Arn: r.arn, EventPattern: r.patternSrc, State: r.state, Description: r.description,
		RoleArn: r.roleArn, EventBusName: defaultBus}
}

func (e *Emulator) describeRule(_ *http.Request, body []byte) (any, *apiError) {
	var in struct{ Name, EventBusName string }
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Name, "name"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	r, ok := e.bus.rules[in.Name]
	if !ok {
		return nil, ruleNotFound(in.Name)
	}
	out := e.ruleOut(r)
	out.CreatedBy = e.cfg.AccountID
	return out, nil
}

// listPage returns the names after the NextToken (an opaque encoding of
// the last name returned), at most limit of them, and the next token.
func namePage(names []string, token string, limit *int) ([]string, string, *apiError) {
	slices.Sort(names)
	if limit != nil && (*limit < 1 || *limit > 100) {
		return nil, "", eventsValidation("1 validation error detected: Value '%d' at 'limit' failed to satisfy constraint: Member must have value between 1 and 100", *limit)
	}
	start := 0
	if token != "" {
		last, err := base64.RawURLEncoding.DecodeString(token)
		if err != nil || !strings.HasPrefix(string(last), "n:") {
			return nil, "", eventsValidation("The NextToken provided is invalid.")
		}
		after := strings.TrimPrefix(string(last), "n:")
		start, _ = slices.BinarySearch(names, after)
		if start < len(names) && names[start] == after {
			start++
		}
	}
	n := 100
	if limit != nil {
		n = *limit
	}
	end := min(start+n, len(names))
	page := names[start:end]
	next := ""
	if end < len(names) {
		next = base64.RawURLEncoding.EncodeToString([]byte("n:" + page[len(page)-1]))
	}
	return page, next, nil
}

func (e *Emulator) listRules(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		NamePrefix, EventBusName, NextToken string
		Limit                               *int
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := e.checkBus(in.EventBusName); err != nil {
		return nil, err
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	var names []string
	for name := range e.bus.rules {
		if strings.HasPrefix(name, in.NamePrefix) {
			names = append(names, name)
		}
	}
	page, next, err := namePage(names, in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Rules     []ruleOutput
		NextToken string `json:",omitempty"`
	}{Rules: []ruleOutput{}, NextToken: next}
	for _, name := range page {
		out.Rules = append(out.Rules, e.ruleOut(e.bus.rules[name]))
	}
	return out, nil
}

func (e *Emulator) deleteRule(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		Name, EventBusName string
		Force              bool
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Name, "name"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	r, ok := e.bus.rules[in.Name]
	if !ok {
		return struct{}{}, nil // deleting a rule that does not exist succeeds
	}
	if len(r.targets) > 0 {
		return nil, eventsValidation("Rule can't be deleted since it has targets.")
	}
	delete(e.bus.rules, in.Name)
	return struct{}{}, nil
}

type failedEntry struct {
	TargetID     string `json:"TargetId"`
	ErrorCode    string
	ErrorMessage string
}

type entriesOutput struct {
	FailedEntryCount int
	FailedEntries    []failedEntry
}

func (e *Emulator) putTargets(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		Rule, EventBusName string
		Targets            []*eventTarget
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Rule, "rule"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	if len(in.Targets) < 1 || len(in.Targets) > maxTargetsPerCall {
		return nil, eventsValidation("1 validation error detected: Value at 'targets' failed to satisfy constraint: Member must have length between 1 and %d", maxTargetsPerCall)
	}
	for _, t := range in.Targets {
		if t == nil || !targetIDPattern.MatchString(t.ID) {
			return nil, eventsValidation("1 validation error detected: Value at 'targets.member.id' failed to satisfy constraint: Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+ and have length between 1 and 64")
		}
		if t.Arn == "" || len(t.Arn) > 1600 {
			return nil, eventsValidation("1 validation error detected: Value at 'targets.member.arn' failed to satisfy constraint: Member must have length between 1 and 1600")
		}
		if t.InputTransformer != nil {
			return nil, eventsValidation("InputTransformer is not supported by this emulator.")
		}
		if t.Input != "" && t.InputPath != "" {
			return nil, eventsValidation("Only one of Input, InputPath, or InputTransformer can be provided.")
		}
		if t.InputPath != "" && !inputPathPattern.MatchString(t.InputPath) {
			return nil, eventsValidation("InputPath %q is not supported by this emulator: use $ or $.field.field...", t.InputPath)
		}
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	r, ok := e.bus.rules[in.Rule]
	if !ok {
		return nil, ruleNotFound(in.Rule)
	}
	n := len(r.targets)
	for _, t := range in.Targets {
		if _, exists := r.targets[t.ID]; !exists {
			n++
		}
	}
	if n > maxTargetsPerRule {
		return nil, eventsError("LimitExceededException", "The requested resource exceeds the maximum number allowed.")
	}
	out := entriesOutput{FailedEntries: []failedEntry{}}
	for _, t := range in.Targets {
		cp := *t
		r.targets[t.ID] = &cp
	}
	return out, nil
}

var inputPathPattern = regexp.MustCompile(`^\$(\.[A-Za-z0-9_\-]+)*$`)

func (e *Emulator) listTargetsByRule(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		Rule, EventBusName, NextToken string
		Limit                         *int
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Rule, "rule"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	r, ok := e.bus.rules[in.Rule]
	if !ok {
		return nil, ruleNotFound(in.Rule)
	}
	page, next, err := namePage(sortedKeys(r.targets), in.NextToken, in.Limit)
	if err != nil {
		return nil, err
	}
	out := struct {
		Targets   []eventTarget
		NextToken string `json:",omitempty"`
	}{Targets: []eventTarget{}, NextToken: next}
	for _, id := range page {
		out.Targets = append(out.Targets, *r.targets[id])
	}
	return out, nil
}

func (e *Emulator) removeTargets(_ *http.Request, body []byte) (any, *apiError) {
	var in struct {
		Rule, EventBusName string
		IDs                []string `json:"Ids"`
		Force              bool
	}
	if err := decodeInput(body, &in); err != nil {
		return nil, err
	}
	if err := firstError(checkRuleName(in.Rule, "rule"), e.checkBus(in.EventBusName)); err != nil {
		return nil, err
	}
	if len(in.IDs) < 1 || len(in.IDs) > maxRemoveIDsPerCall {
		return nil, eventsValidation("1 validation error detected: Value at 'ids' failed to satisfy constraint: Member must have length between 1 and %d", maxRemoveIDsPerCall)
	}
	e.bus.mu.Lock()
	defer e.bus.mu.Unlock()
	r, ok := e.bus.rules[in.Rule]
	if !ok {
		return nil, ruleNotFound(in.Rule)
	}
	for _, id := range in.IDs {
		delete(r.targets, id) // an unknown Id is not an error
	}
	return entriesOutput{FailedEntries: []failedEntry{}}, nil
}
