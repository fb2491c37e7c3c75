package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// Step types with their own behaviour; any other type is a generic step.
const (
	StepTypeCallback = "Callback"
	StepTypeLambda   = "Lambda"
)

// definition is a parsed pipeline definition.
type definition struct {
	steps []*stepDef // in definition order
}

type stepDef struct {
	Name             string            `json:"Name"`
	Type             string            `json:"Type"`
	Arguments        json.RawMessage   `json:"Arguments"`
	DependsOn        []string          `json:"DependsOn"`
	SqsQueueURL      string            `json:"SqsQueueUrl"`
	FunctionArn      string            `json:"FunctionArn"`
	OutputParameters []outputParamDecl `json:"OutputParameters"`
}

type outputParamDecl struct {
	OutputName string `json:"OutputName"`
	OutputType string `json:"OutputType"`
}

// parseDefinition parses and checks a pipeline definition. Its error says
// what is wrong in a sentence.
func parseDefinition(src string) (*definition, error) {
	var raw struct {
		Version string            `json:"Version"`
		Steps   []json.RawMessage `json:"Steps"`
	}
	dec := json.NewDecoder(strings.NewReader(src))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("PipelineDefinition is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("PipelineDefinition has data after its JSON object")
	}
	if len(raw.Steps) == 0 {
		return nil, fmt.Errorf("PipelineDefinition has no Steps")
	}
	d := &definition{}
	byName := map[string]*stepDef{}
	for i, rs := range raw.Steps {
		var s stepDef
		if err := json.Unmarshal(rs, &s); err != nil {
			return nil, fmt.Errorf("step %d is not a valid step object: %v", i, err)
		}
		if err := s.check(); err != nil {
			return nil, fmt.Errorf("step %d: %w", i, err)
		}
		if _, dup := byName[s.Name]; dup {
			return nil, fmt.Errorf("step name %q is used more than once", s.Name)
		}
		if len(bytes.TrimSpace(s.Arguments)) == 0 || bytes.Equal(bytes.TrimSpace(s.Arguments), []byte("null")) {
			s.Arguments = json.RawMessage("{}")
		}
		byName[s.Name] = &s
		d.steps = append(d.steps, &s)
	}
	for _, s := range d.steps {
		for _, dep := range s.DependsOn {
			if _, ok := byName[dep]; !ok {
				return nil, fmt.Errorf("step %q depends on unknown step %q", s.Name, dep)
			}
			if dep == s.Name {
				return nil, fmt.Errorf("step %q depends on itself", s.Name)
			}
		}
	}
	if cycle := findCycle(d.steps, byName); cycle != "" {
		return nil, fmt.Errorf("steps form a dependency cycle: %s", cycle)
	}
	return d, nil
}

func (s *stepDef) check() error {
	switch {
	case s.Name == "":
		return fmt.Errorf("step has no Name")
	case len(s.Name) > 64:
		return fmt.Errorf("step name %q is longer than 64 characters", s.Name)
	case s.Type == "":
		return fmt.Errorf("step %q has no Type", s.Name)
	case s.Type == StepTypeCallback && s.SqsQueueURL == "":
		return fmt.Errorf("callback step %q has no SqsQueueUrl", s.Name)
	case s.Type == StepTypeLambda && s.FunctionArn == "":
		return fmt.Errorf("lambda step %q has no FunctionArn", s.Name)
	}
	for _, o := range s.OutputParameters {
		switch o.OutputType {
		case "", "String", "Integer", "Boolean", "Float":
		default:
			return fmt.Errorf("step %q output %q has OutputType %q; want String, Integer, Boolean or Float", s.Name, o.OutputName, o.OutputType)
		}
	}
	return nil
}

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
		for _, dep := range byName[name].DependsOn {
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
