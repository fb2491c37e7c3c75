package emulator

import (
	"encoding/json"
	"errors"
	"regexp"
	"strings"
)

// eventsPrincipal is the service principal EventBridge sends as.
const eventsPrincipal = "events.amazonaws.com"

// errPolicyDenies is why a delivery was refused under
// Config.RequireQueuePolicy.
var errPolicyDenies = errors.New("the queue's policy does not allow events.amazonaws.com to send from this rule")

// policyAllowsEvents evaluates the subset of an SQS queue policy that
// EventBridge setups use: a statement allowing (or denying) the service
// principal events.amazonaws.com (or "*") the action sqs:SendMessage
// (sqs:*, *) on the queue's ARN (or "*", with * and ? wildcards), with an
// optional aws:SourceArn condition (ArnEquals, ArnLike, StringEquals,
// StringLike) that must match the rule's ARN. A matching Deny wins; no
// matching Allow denies, as IAM does.
func policyAllowsEvents(policy, queueARN, ruleARN string) error {
	if policy == "" {
		return errPolicyDenies
	}
	var doc struct{ Statement json.RawMessage }
	if json.Unmarshal([]byte(policy), &doc) != nil {
		return errPolicyDenies
	}
	var stmts []policyStatement
	if json.Unmarshal(doc.Statement, &stmts) != nil {
		var one policyStatement
		if json.Unmarshal(doc.Statement, &one) != nil {
			return errPolicyDenies
		}
		stmts = []policyStatement{one}
	}
	allowed := false
	for _, s := range stmts {
		if !s.applies(queueARN, ruleARN) {
			continue
		}
		switch s.Effect {
		case "Deny":
			return errPolicyDenies
		case "Allow":
			allowed = true
		}
	}
	if !allowed {
		return errPolicyDenies
	}
	return nil
}

type policyStatement struct {
	Effect    string
	Principal json.RawMessage
	Action    stringOrList
	Resource  stringOrList
	Condition map[string]map[string]stringOrList
}

// stringOrList is an IAM member that is a string or a list of strings.
type stringOrList []string

func (s *stringOrList) UnmarshalJSON(b []byte) error {
	var one string
	if json.Unmarshal(b, &one) == nil {
		*s = []string{one}
		return nil
	}
	var many []string
	err := json.Unmarshal(b, &many)
	*s = many
	return err
}

func (s policyStatement) applies(queueARN, ruleARN string) bool {
	if !s.principalMatches() || !anyGlob(s.Action, "sqs:SendMessage") || !anyGlob(s.Resource, queueARN) {
		return false
	}
	for op, keys := range s.Condition {
		for key, values := range keys {
			if key != "aws:SourceArn" {
				return false // a condition the emulator cannot evaluate: not met
			}
			switch op {
			case "ArnEquals", "StringEquals":
				if !contains(values, ruleARN) {
					return false
				}
			case "ArnLike", "StringLike":
				if !anyGlob(values, ruleARN) {
					return false
				}
			default:
				return false
			}
		}
	}
	return true
}

func (s policyStatement) principalMatches() bool {
	var star string
	if json.Unmarshal(s.Principal, &star) == nil {
		return star == "*"
	}
	var p struct {
		Service stringOrList
		AWS     stringOrList
	}
	if json.Unmarshal(s.Principal, &p) != nil {
		return false
	}
	return contains(p.Service, eventsPrincipal) || contains(p.AWS, "*")
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// anyGlob reports whether one of the patterns (IAM wildcards * and ?,
// which match across "/" and ":") matches v.
func anyGlob(patterns []string, v string) bool {
	for _, p := range patterns {
		expr := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(p)) + "$"
		if ok, _ := regexp.MatchString(expr, v); ok {
			return true
		}
	}
	return false
}
