package emulator

import (
	"strings"
	"testing"
)

func TestEventPatternMatching(t *testing.T) {
	event := `{"version":"0","id":"x","detail-type":"SageMaker Model Building Pipeline Execution Status Change",
		"source":"aws.sagemaker","account":"123456789012","region":"us-east-1",
		"resources":["arn:aws:sagemaker:us-east-1:123456789012:pipeline/p1","arn:aws:sagemaker:us-east-1:123456789012:pipeline/p1/execution/abc"],
		"detail":{"currentPipelineExecutionStatus":"Stopped","previousPipelineExecutionStatus":"Stopping","count":3,
		"metadata":{"Condition":{"Outcome":"True"}}}}`
	tests := []struct {
		name, pattern string
		want          bool
	}{
		{"source", `{"source":["aws.sagemaker"]}`, true},
		{"source other", `{"source":["aws.ec2"]}`, false},
		{"source one of", `{"source":["aws.ec2","aws.sagemaker"]}`, true},
		{"detail-type exact", `{"detail-type":["SageMaker Model Building Pipeline Execution Status Change"]}`, true},
		{"detail-type of steps", `{"detail-type":["SageMaker Model Building Pipeline Execution Step Status Change"]}`, false},
		{"and across fields", `{"source":["aws.sagemaker"],"detail-type":["nope"]}`, false},
		{"resources any element", `{"resources":["arn:aws:sagemaker:us-east-1:123456789012:pipeline/p1"]}`, true},
		{"resources prefix", `{"resources":[{"prefix":"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p1/"}]}`, true},
		{"resources prefix other pipeline", `{"resources":[{"prefix":"arn:aws:sagemaker:us-east-1:123456789012:pipeline/p2"}]}`, false},
		{"detail status", `{"detail":{"currentPipelineExecutionStatus":["Stopped","Failed","Succeeded"]}}`, true},
		{"detail status other", `{"detail":{"currentPipelineExecutionStatus":["Executing"]}}`, false},
		{"anything-but value", `{"detail":{"currentPipelineExecutionStatus":[{"anything-but":"Executing"}]}}`, true},
		{"anything-but list", `{"detail":{"currentPipelineExecutionStatus":[{"anything-but":["Stopped","Failed"]}]}}`, false},
		{"anything-but prefix", `{"detail":{"currentPipelineExecutionStatus":[{"anything-but":{"prefix":"Stop"}}]}}`, false},
		{"anything-but on absent field", `{"detail":{"missing":[{"anything-but":"x"}]}}`, false},
		{"exists true", `{"detail":{"previousPipelineExecutionStatus":[{"exists":true}]}}`, true},
		{"exists false", `{"detail":{"executionEndTime":[{"exists":false}]}}`, true},
		{"exists false present", `{"detail":{"currentPipelineExecutionStatus":[{"exists":false}]}}`, false},
		{"exists false nested absent object", `{"detail":{"nope":{"deeper":[{"exists":false}]}}}`, true},
		{"nested detail", `{"detail":{"metadata":{"Condition":{"Outcome":["True"]}}}}`, true},
		{"nested detail other", `{"detail":{"metadata":{"Condition":{"Outcome":["False"]}}}}`, false},
		{"number", `{"detail":{"count":[3]}}`, true},
		{"number as float", `{"detail":{"count":[3.0]}}`, true},
		{"number vs string", `{"detail":{"count":["3"]}}`, false},
		{"numeric range", `{"detail":{"count":[{"numeric":[">",1,"<=",3]}]}}`, true},
		{"numeric range out", `{"detail":{"count":[{"numeric":[">",3]}]}}`, false},
		{"suffix", `{"source":[{"suffix":".sagemaker"}]}`, true},
		{"equals-ignore-case", `{"detail":{"currentPipelineExecutionStatus":[{"equals-ignore-case":"STOPPED"}]}}`, true},
		{"absent field", `{"detail":{"stepName":["Train"]}}`, false},
	}
	ev, err := decodeEvent([]byte(event))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := parseEventPattern(tt.pattern)
			if err != nil {
				t.Fatalf("parse %s: %v", tt.pattern, err)
			}
			if got := p.matches(ev); got != tt.want {
				t.Errorf("matches = %v; want %v", got, tt.want)
			}
		})
	}
}

func TestEventPatternInvalid(t *testing.T) {
	tests := []struct{ pattern, msg string }{
		{`not json`, "not valid JSON"},
		{`["source"]`, "JSON object"},
		{`{}`, "must not be empty"},
		{`{"source":"aws.sagemaker"}`, "Match value"},
		{`{"source":[]}`, "Empty arrays"},
		{`{"source":[{"wildcard":"aws.*"}]}`, "Unrecognized match type"},
		{`{"source":[{"prefix":1}]}`, "must be a string"},
		{`{"source":[{"exists":"yes"}]}`, "true or false"},
		{`{"detail":{"n":[{"numeric":[">"]}]}}`, "numeric"},
		{`{"$or":[{"source":["a"]}]}`, "not supported"},
		{`{"source":["a"]} {}`, "trailing"},
		{`{"source":["` + strings.Repeat("a", maxPatternLength) + `"]}`, "longer than"},
	}
	for _, tt := range tests {
		_, err := parseEventPattern(tt.pattern)
		if err == nil || !strings.Contains(err.Error(), tt.msg) {
			t.Errorf("parseEventPattern(%.40s) = %v; want an error containing %q", tt.pattern, err, tt.msg)
		}
	}
}
