package emulator

import (
	"encoding/json"
	"testing"
)

// FuzzParseDefinition: no definition makes the parser, the resolver or the
// condition evaluator panic; whatever CreatePipeline accepts can run.
func FuzzParseDefinition(f *testing.F) {
	f.Add(Definition(Step{Name: "A"}, Step{Name: "L", Type: StepTypeLambda, Outputs: []string{"o"}},
		Step{Name: "B", Arguments: map[string]any{"x": map[string]any{"Get": "Steps.L.OutputParameters['o']"}}}))
	f.Add(Definition(Step{Name: "C", Type: StepTypeCondition, Conditions: []any{
		map[string]any{"Type": "Or", "Conditions": []any{map[string]any{"Type": "In", "QueryValue": 1, "Values": []any{1, "a"}}}},
		map[string]any{"Type": "Not", "Condition": map[string]any{"Type": "LessThan", "LeftValue": "a", "RightValue": 2}},
	}, IfSteps: []Step{{Name: "F", Type: StepTypeFail, ErrorMessage: map[string]any{"Std:Join": map[string]any{"On": "-", "Values": []any{1, true}}}}}}))
	f.Add(`{"Version":"2020-12-01","Parameters":[{"Name":"N","Type":"Integer","DefaultValue":1}],"PipelineExperimentConfig":{"TrialName":{"Get":"Parameters.N"}},"Steps":[{"Name":"A","Type":"Processing","Arguments":{"n":{"Get":"Parameters.N"}}}]}`)
	f.Add(`{"Version":"2020-12-01","Steps":[{"Name":"C","Type":"Condition","Arguments":{"Conditions":[{"Type":"Equals","LeftValue":{"Get":"Execution.PipelineName"},"RightValue":null}],"IfSteps":[null],"ElseSteps":{}}}]}`)
	f.Fuzz(func(t *testing.T, src string) {
		d, err := parseDefinition(src)
		if err != nil {
			return
		}
		lookup := func(path string) (any, error) { return json.Number("1"), nil }
		for _, s := range d.steps {
			v, err := resolve(s.args, lookup)
			if err != nil {
				t.Fatalf("resolve %s: %v", s.Name, err)
			}
			if s.Type == StepTypeCondition {
				for _, c := range v.(map[string]any)["Conditions"].([]any) {
					_, _ = evalCondition(c)
				}
			}
		}
		if d.experiment != nil {
			if _, err := resolve(d.experiment, lookup); err != nil {
				t.Fatal(err)
			}
		}
	})
}
