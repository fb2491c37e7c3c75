package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Step types with their own behaviour; every other known type is a
// generic step.
const (
	StepTypeCallback  = "Callback"
	StepTypeLambda    = "Lambda"
	StepTypeCondition = "Condition"
	StepTypeFail      = "Fail"
)

// DefinitionVersion is the only pipeline definition Version SageMaker
// accepts.
const DefinitionVersion = "2020-12-01"

// knownStepTypes are the step types of the pipeline definition schema.
var knownStepTypes = []string{
	"Training", "Processing", "Transform", "Tuning", "CreateModel", "RegisterModel",
	"Model", "ClarifyCheck", "QualityCheck", "EMR", "EMRServerless", "AutoML",
	StepTypeCondition, StepTypeFail, StepTypeCallback, StepTypeLambda,
}

var (
	stepNamePattern    = regexp.MustCompile(`^[A-Za-z0-9\-_]{1,64}$`)
	paramNamePattern   = regexp.MustCompile(`^[A-Za-z0-9\-_]{1,256}$`)
	lambdaARNPattern   = regexp.MustCompile(`^arn:aws[a-z\-]*:lambda:[a-z0-9\-]+:[0-9]{12}:function:[a-zA-Z0-9\-_]{1,64}(:(\$LATEST|[a-zA-Z0-9\-_]{1,128}))?$`)
	queuePathPattern   = regexp.MustCompile(`^(/queue/[a-z0-9\-]+)?/[0-9]{12}/[A-Za-z0-9\-_]{1,80}(\.fifo)?$`)
	outputRefPattern   = regexp.MustCompile(`^OutputParameters\[(?:'([^']*)'|"([^"]*)")\]$`)
	executionVariables = []string{"PipelineExecutionId", "PipelineExecutionArn", "PipelineName", "PipelineArn", "StartDateTime", "CurrentDateTime"}
	parameterTypes     = []string{"String", "Integer", "Boolean", "Float"}
)

// definition is a parsed pipeline definition.
type definition struct {
	params     []*paramDecl // in definition order
	paramsByID map[string]*paramDecl
	steps      []*stepDef // every step, nested branch steps included, in definition order
	byName     map[string]*stepDef
	// experiment is the PipelineExperimentConfig object, unresolved; nil
	// when the definition has none.
	experiment map[string]any
}

type paramDecl struct {
	Name         string   `json:"Name"`
	Type         string   `json:"Type"`
	DefaultValue any      `json:"DefaultValue"`
	EnumValues   []string `json:"EnumValues"`
}

type stepDef struct {
	Name             string            `json:"Name"`
	Type             string            `json:"Type"`
	Arguments        json.RawMessage   `json:"Arguments"`
	DependsOn        []string          `json:"DependsOn"`
	SqsQueueURL      string            `json:"SqsQueueUrl"`
	FunctionArn      string            `json:"FunctionArn"`
	OutputParameters []outputParamDecl `json:"OutputParameters"`

	// args are the decoded Arguments (numbers as json.Number), without a
	// Condition step's IfSteps and ElseSteps.
	args any
	// deps are the steps this one waits for: DependsOn, the steps its
	// property references read and the Condition step that guards it.
	deps []string
	// guard is the Condition step whose IfSteps (branch true) or ElseSteps
	// (branch false) hold this step; "" at the top level.
	guard  string
	branch bool
	// conditions are a Condition step's Conditions.
	conditions []any
}

type outputParamDecl struct {
	OutputName string `json:"OutputName"`
	OutputType string `json:"OutputType"`
}

// outputType returns the declared type of a named output, "" when the step
// declares no such output.
func (s *stepDef) outputType(name string) string {
	for _, o := range s.OutputParameters {
		if o.OutputName == name {
			if o.OutputType == "" {
				return "String"
			}
			return o.OutputType
		}
	}
	return ""
}

// parseDefinition parses and checks a pipeline definition. Its error says
// what is wrong in a sentence.
func parseDefinition(src string) (*definition, error) {
	var raw struct {
		Version                  *string           `json:"Version"`
		Parameters               []json.RawMessage `json:"Parameters"`
		Steps                    []json.RawMessage `json:"Steps"`
		PipelineExperimentConfig json.RawMessage   `json:"PipelineExperimentConfig"`
	}
	dec := json.NewDecoder(strings.NewReader(src))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("PipelineDefinition is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("PipelineDefinition has data after its JSON object")
	}
	switch {
	case raw.Version == nil:
		return nil, fmt.Errorf("PipelineDefinition has no Version; want %q", DefinitionVersion)
	case *raw.Version != DefinitionVersion:
		return nil, fmt.Errorf("PipelineDefinition Version %q is not supported; want %q", *raw.Version, DefinitionVersion)
	case len(raw.Steps) == 0:
		return nil, fmt.Errorf("PipelineDefinition has no Steps")
	}
	d := &definition{paramsByID: map[string]*paramDecl{}, byName: map[string]*stepDef{}}
	for i, rp := range raw.Parameters {
		p, err := parseParam(i, rp)
		if err != nil {
			return nil, err
		}
		if _, dup := d.paramsByID[p.Name]; dup {
			return nil, fmt.Errorf("parameter name %q is used more than once", p.Name)
		}
		d.paramsByID[p.Name] = p
		d.params = append(d.params, p)
	}
	if err := d.addSteps(raw.Steps, "", false, "step"); err != nil {
		return nil, err
	}
	for _, s := range d.steps {
		if err := d.link(s); err != nil {
			return nil, err
		}
	}
	if cycle := findCycle(d.steps, d.byName); cycle != "" {
		return nil, fmt.Errorf("steps form a dependency cycle: %s", cycle)
	}
	if len(bytes.TrimSpace(raw.PipelineExperimentConfig)) > 0 && string(bytes.TrimSpace(raw.PipelineExperimentConfig)) != "null" {
		v, err := decodeJSON(raw.PipelineExperimentConfig)
		obj, isObj := v.(map[string]any)
		if err != nil || !isObj {
			return nil, fmt.Errorf("PipelineExperimentConfig is not an object")
		}
		for k, x := range obj {
			if k != "ExperimentName" && k != "TrialName" {
				return nil, fmt.Errorf("PipelineExperimentConfig has unknown field %q; want ExperimentName and TrialName", k)
			}
			if err := d.checkExpr(x, nil, "PipelineExperimentConfig."+k); err != nil {
				return nil, err
			}
		}
		d.experiment = obj
	}
	return d, nil
}

func parseParam(i int, rp json.RawMessage) (*paramDecl, error) {
	var p paramDecl
	dec := json.NewDecoder(bytes.NewReader(rp))
	dec.UseNumber()
	if err := dec.Decode(&p); err != nil {
		return nil, fmt.Errorf("parameter %d is not a valid parameter object: %v", i, err)
	}
	switch {
	case p.Name == "":
		return nil, fmt.Errorf("parameter %d has no Name", i)
	case !paramNamePattern.MatchString(p.Name):
		return nil, fmt.Errorf("parameter name %q must match %s", p.Name, paramNamePattern)
	case !slices.Contains(parameterTypes, p.Type):
		return nil, fmt.Errorf("parameter %q has Type %q; want String, Integer, Boolean or Float", p.Name, p.Type)
	case len(p.EnumValues) > 0 && p.Type != "String":
		return nil, fmt.Errorf("parameter %q has EnumValues but Type %s; only String parameters take EnumValues", p.Name, p.Type)
	}
	if p.DefaultValue != nil {
		v, err := p.typed(p.DefaultValue)
		if err != nil {
			return nil, fmt.Errorf("parameter %q DefaultValue: %v", p.Name, err)
		}
		p.DefaultValue = v
	}
	return &p, nil
}

// typed checks v (a JSON value or a string from StartPipelineExecution)
// against the parameter's type and returns it as a JSON value of that
// type: a string, a json.Number or a bool.
func (p *paramDecl) typed(v any) (any, error) {
	s, isString := v.(string)
	switch p.Type {
	case "String":
		if !isString {
			return nil, fmt.Errorf("value %v is not a String", v)
		}
		if len(p.EnumValues) > 0 && !slices.Contains(p.EnumValues, s) {
			return nil, fmt.Errorf("value %q is not one of %v", s, p.EnumValues)
		}
		return s, nil
	case "Integer", "Float":
		if n, ok := v.(json.Number); ok {
			s = n.String()
		} else if !isString {
			return nil, fmt.Errorf("value %v is not a %s", v, p.Type)
		}
		n, ok := parseNumber(s)
		if !ok || (p.Type == "Integer" && strings.ContainsAny(s, ".eE")) {
			return nil, fmt.Errorf("value %q is not a%s %s", s, map[bool]string{true: "n", false: ""}[p.Type == "Integer"], p.Type)
		}
		return json.Number(s), checkFinite(n)
	default: // Boolean
		if b, ok := v.(bool); ok {
			return b, nil
		}
		switch strings.ToLower(s) {
		case "true":
			return true, nil
		case "false":
			return false, nil
		}
		return nil, fmt.Errorf("value %v is not a Boolean (true or false)", v)
	}
}

// addSteps parses a list of step objects: the top-level Steps or a
// Condition step's IfSteps or ElseSteps.
func (d *definition) addSteps(list []json.RawMessage, guard string, branch bool, what string) error {
	for i, rs := range list {
		var s stepDef
		if err := json.Unmarshal(rs, &s); err != nil {
			return fmt.Errorf("%s %d is not a valid step object: %v", what, i, err)
		}
		if err := s.check(); err != nil {
			return fmt.Errorf("%s %d: %w", what, i, err)
		}
		if _, dup := d.byName[s.Name]; dup {
			return fmt.Errorf("step name %q is used more than once", s.Name)
		}
		s.guard, s.branch = guard, branch
		if len(bytes.TrimSpace(s.Arguments)) == 0 || bytes.Equal(bytes.TrimSpace(s.Arguments), []byte("null")) {
			s.Arguments = json.RawMessage("{}")
		}
		args, err := decodeJSON(s.Arguments)
		if err != nil {
			return fmt.Errorf("step %q Arguments: %v", s.Name, err)
		}
		d.byName[s.Name] = &s
		d.steps = append(d.steps, &s)
		switch s.Type {
		case StepTypeCondition:
			obj, _ := args.(map[string]any)
			if obj == nil {
				return fmt.Errorf("condition step %q Arguments must be an object with Conditions, IfSteps and ElseSteps", s.Name)
			}
			var nested struct{ IfSteps, ElseSteps []json.RawMessage }
			if err := json.Unmarshal(s.Arguments, &nested); err != nil {
				return fmt.Errorf("condition step %q IfSteps and ElseSteps must be lists of steps: %v", s.Name, err)
			}
			conds, ok := obj["Conditions"].([]any)
			if !ok || len(conds) == 0 {
				return fmt.Errorf("condition step %q has no Conditions", s.Name)
			}
			s.conditions = conds
			delete(obj, "IfSteps")
			delete(obj, "ElseSteps")
			s.args = obj
			if err := d.addSteps(nested.IfSteps, s.Name, true, fmt.Sprintf("step %q IfSteps", s.Name)); err != nil {
				return err
			}
			if err := d.addSteps(nested.ElseSteps, s.Name, false, fmt.Sprintf("step %q ElseSteps", s.Name)); err != nil {
				return err
			}
		case StepTypeFail:
			obj, _ := args.(map[string]any)
			if obj == nil {
				return fmt.Errorf("fail step %q Arguments must be an object", s.Name)
			}
			s.args = obj
		default:
			s.args = args
		}
	}
	return nil
}

func (s *stepDef) check() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("step has no Name")
	case len(s.Name) > 64:
		return fmt.Errorf("step name %q is longer than 64 characters", s.Name)
	case !stepNamePattern.MatchString(s.Name):
		return fmt.Errorf("step name %q must match %s", s.Name, stepNamePattern)
	case s.Type == "":
		return fmt.Errorf("step %q has no Type", s.Name)
	case !slices.Contains(knownStepTypes, s.Type):
		return fmt.Errorf("step %q has unknown Type %q; want one of %s", s.Name, s.Type, strings.Join(knownStepTypes, ", "))
	case s.Type == StepTypeCallback && s.SqsQueueURL == "":
		return fmt.Errorf("callback step %q has no SqsQueueUrl", s.Name)
	case s.Type == StepTypeLambda && s.FunctionArn == "":
		return fmt.Errorf("lambda step %q has no FunctionArn", s.Name)
	case s.Type == StepTypeLambda && !lambdaARNPattern.MatchString(s.FunctionArn):
		return fmt.Errorf("lambda step %q FunctionArn %q is not a Lambda function ARN (arn:aws:lambda:<region>:<account>:function:<name>)", s.Name, s.FunctionArn)
	}
	if s.Type == StepTypeCallback {
		u, err := url.Parse(s.SqsQueueURL)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || !queuePathPattern.MatchString(u.Path) || u.RawQuery != "" {
			return fmt.Errorf("callback step %q SqsQueueUrl %q is not an SQS queue URL (https://sqs.<region>.amazonaws.com/<account>/<queue>)", s.Name, s.SqsQueueURL)
		}
	}
	if len(s.OutputParameters) > 0 && s.Type != StepTypeCallback && s.Type != StepTypeLambda {
		return fmt.Errorf("step %q of Type %s cannot declare OutputParameters", s.Name, s.Type)
	}
	seen := map[string]bool{}
	for _, o := range s.OutputParameters {
		switch {
		case o.OutputName == "":
			return fmt.Errorf("step %q has an output without OutputName", s.Name)
		case seen[o.OutputName]:
			return fmt.Errorf("step %q declares output %q more than once", s.Name, o.OutputName)
		}
		seen[o.OutputName] = true
		switch o.OutputType {
		case "", "String", "Integer", "Boolean", "Float":
		default:
			return fmt.Errorf("step %q output %q has OutputType %q; want String, Integer, Boolean or Float", s.Name, o.OutputName, o.OutputType)
		}
	}
	return nil
}

// link checks a step's dependencies and property references and records
// the steps it waits for.
func (d *definition) link(s *stepDef) error {
	for _, dep := range s.DependsOn {
		if _, ok := d.byName[dep]; !ok {
			return fmt.Errorf("step %q depends on unknown step %q", s.Name, dep)
		}
		if dep == s.Name {
			return fmt.Errorf("step %q depends on itself", s.Name)
		}
		if d.byName[dep].Type == StepTypeFail {
			return fmt.Errorf("step %s can not depend on fail step %s", s.Name, dep)
		}
	}
	deps := slices.Clone(s.DependsOn)
	add := func(name string) {
		if !slices.Contains(deps, name) {
			deps = append(deps, name)
		}
	}
	if s.guard != "" {
		add(s.guard)
	}
	if err := d.checkExpr(s.args, s, "step "+quote(s.Name)+" Arguments"); err != nil {
		return err
	}
	for _, ref := range refs(s.args) {
		if name, _, ok := strings.Cut(strings.TrimPrefix(ref, "Steps."), "."); ok && strings.HasPrefix(ref, "Steps.") {
			add(name)
		}
	}
	switch s.Type {
	case StepTypeCondition:
		for i, c := range s.conditions {
			if err := checkCondition(c); err != nil {
				return fmt.Errorf("condition step %q condition %d: %w", s.Name, i, err)
			}
		}
	case StepTypeFail:
		if msg, ok := s.args.(map[string]any)["ErrorMessage"]; ok {
			if _, isObj := msg.(map[string]any); !isObj {
				if _, isStr := msg.(string); !isStr {
					return fmt.Errorf("fail step %q ErrorMessage must be a string or an expression", s.Name)
				}
			}
		}
	}
	s.deps = deps
	return nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }

// findCycle returns a cycle as "a -> b -> a", or "" when there is none.
func findCycle(steps []*stepDef, byName map[string]*stepDef) string {
	const (
		unseen = iota
		active
		finished
	)
	mark := map[string]int{}
	var path []string
	var visit func(name string) string
	visit = func(name string) string {
		switch mark[name] {
		case active:
			i := 0
			for path[i] != name {
				i++
			}
			return strings.Join(append(path[i:], name), " -> ")
		case finished:
			return ""
		}
		mark[name] = active
		path = append(path, name)
		for _, dep := range byName[name].deps {
			if c := visit(dep); c != "" {
				return c
			}
		}
		path = path[:len(path)-1]
		mark[name] = finished
		return ""
	}
	for _, s := range steps {
		if c := visit(s.Name); c != "" {
			return c
		}
	}
	return ""
}
