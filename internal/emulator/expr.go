package emulator

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Expressions in a pipeline definition: any JSON value in which
//
//	{"Get": "Parameters.<name>"}
//	{"Get": "Execution.<variable>"}
//	{"Get": "Steps.<step>.OutputParameters['<output>']"}
//	{"Get": "Steps.<step>.<property path>"}
//	{"Std:Join": {"On": "<separator>", "Values": [<expression>, ...]}}
//
// are replaced by their values when the step that holds them starts.

// decodeJSON decodes raw keeping numbers as json.Number.
func decodeJSON(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

func parseNumber(s string) (float64, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	return f, err == nil && s == strings.TrimSpace(s)
}

func checkFinite(f float64) error {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return fmt.Errorf("value %v is not a finite number", f)
	}
	return nil
}

// exprKind tells which expression object v is: "Get", "Std:Join",
// "Std:JsonGet" or "" for a plain value.
func exprKind(v any) string {
	obj, ok := v.(map[string]any)
	if !ok || len(obj) != 1 {
		return ""
	}
	for k := range obj {
		switch k {
		case "Get", "Std:Join", "Std:JsonGet":
			return k
		}
	}
	return ""
}

// refs returns every Get path in v.
func refs(v any) []string {
	var out []string
	var walk func(any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if g, ok := x["Get"].(string); ok && exprKind(x) == "Get" {
				out = append(out, g)
				return
			}
			for _, y := range x {
				walk(y)
			}
		case []any:
			for _, y := range x {
				walk(y)
			}
		}
	}
	walk(v)
	return out
}

// checkExpr checks every expression in v. from is the step that holds v,
// nil outside steps (where step properties cannot be read).
func (d *definition) checkExpr(v any, from *stepDef, where string) error {
	switch x := v.(type) {
	case map[string]any:
		switch exprKind(x) {
		case "Get":
			path, ok := x["Get"].(string)
			if !ok {
				return fmt.Errorf("%s: Get takes a string path", where)
			}
			return d.checkRef(path, from, where)
		case "Std:JsonGet":
			return fmt.Errorf("%s: Std:JsonGet reads a property file from Amazon S3, which the emulator does not support", where)
		case "Std:Join":
			j, ok := x["Std:Join"].(map[string]any)
			if !ok {
				return fmt.Errorf("%s: Std:Join takes an object with On and Values", where)
			}
			if _, ok := j["On"].(string); !ok {
				return fmt.Errorf("%s: Std:Join needs a string On", where)
			}
			vals, ok := j["Values"].([]any)
			if !ok {
				return fmt.Errorf("%s: Std:Join needs a list of Values", where)
			}
			for _, y := range vals {
				if err := d.checkExpr(y, from, where); err != nil {
					return err
				}
			}
			return nil
		}
		for _, y := range x {
			if err := d.checkExpr(y, from, where); err != nil {
				return err
			}
		}
	case []any:
		for _, y := range x {
			if err := d.checkExpr(y, from, where); err != nil {
				return err
			}
		}
	}
	return nil
}

func (d *definition) checkRef(path string, from *stepDef, where string) error {
	head, rest, _ := strings.Cut(path, ".")
	switch head {
	case "Parameters":
		if _, ok := d.paramsByID[rest]; !ok {
			return fmt.Errorf("%s: reference %q to undeclared pipeline parameter %q", where, path, rest)
		}
		return nil
	case "Execution":
		if !slices.Contains(executionVariables, rest) {
			return fmt.Errorf("%s: unknown execution variable %q; want one of %s", where, path, strings.Join(executionVariables, ", "))
		}
		return nil
	case "Steps":
		if from == nil {
			return fmt.Errorf("%s: step properties cannot be read here (%q)", where, path)
		}
		name, prop, _ := strings.Cut(rest, ".")
		target, ok := d.byName[name]
		switch {
		case !ok:
			return fmt.Errorf("%s: reference %q to unknown step %q", where, path, name)
		case name == from.Name:
			return fmt.Errorf("%s: step %q reads its own property %q", where, name, path)
		case prop == "":
			return fmt.Errorf("%s: reference %q names no property of step %q", where, path, name)
		}
		switch target.Type {
		case StepTypeCallback, StepTypeLambda:
			m := outputRefPattern.FindStringSubmatch(prop)
			if m == nil {
				return fmt.Errorf("%s: %s step %q has only OutputParameters['<name>'] properties, not %q", where, target.Type, name, prop)
			}
			if target.outputType(m[1]+m[2]) == "" {
				return fmt.Errorf("%s: reference %q to output %q that step %q does not declare", where, path, m[1]+m[2], name)
			}
		case StepTypeFail:
			return fmt.Errorf("%s: fail step %q has no properties", where, name)
		case StepTypeCondition:
			if prop != "Outcome" {
				return fmt.Errorf("%s: condition step %q has only the property Outcome, not %q", where, name, prop)
			}
		}
		return nil
	}
	return fmt.Errorf("%s: unknown property reference %q; want Parameters.*, Execution.* or Steps.*", where, path)
}

// resolve returns v with every expression replaced by its value; lookup
// gives the value of a Get path.
func resolve(v any, lookup func(path string) (any, error)) (any, error) {
	switch x := v.(type) {
	case map[string]any:
		switch exprKind(x) {
		case "Get":
			return lookup(x["Get"].(string))
		case "Std:Join":
			j := x["Std:Join"].(map[string]any)
			var parts []string
			for _, y := range j["Values"].([]any) {
				r, err := resolve(y, lookup)
				if err != nil {
					return nil, err
				}
				parts = append(parts, stringValue(r))
			}
			return strings.Join(parts, j["On"].(string)), nil
		}
		out := make(map[string]any, len(x))
		for k, y := range x {
			r, err := resolve(y, lookup)
			if err != nil {
				return nil, err
			}
			out[k] = r
		}
		return out, nil
	case []any:
		out := make([]any, len(x))
		for i, y := range x {
			r, err := resolve(y, lookup)
			if err != nil {
				return nil, err
			}
			out[i] = r
		}
		return out, nil
	}
	return v, nil
}

// stringValue writes a resolved value as Std:Join and messages do.
func stringValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case json.Number:
		return x.String()
	case bool:
		return strconv.FormatBool(x)
	case nil:
		return ""
	}
	buf, _ := json.Marshal(v)
	return string(buf)
}

// typedOutput converts a step output's string value to its declared type.
func typedOutput(value, outputType string) (any, error) {
	switch outputType {
	case "Integer", "Float", "Boolean":
		p := paramDecl{Type: outputType}
		return p.typed(value)
	}
	return value, nil
}

// Condition types.
var comparisons = []string{"Equals", "GreaterThan", "GreaterThanOrEqualTo", "LessThan", "LessThanOrEqualTo"}

// checkCondition checks the shape of one condition object.
func checkCondition(c any) error {
	obj, ok := c.(map[string]any)
	if !ok {
		return fmt.Errorf("a condition must be an object with a Type")
	}
	typ, _ := obj["Type"].(string)
	switch {
	case slices.Contains(comparisons, typ):
		_, l := obj["LeftValue"]
		_, r := obj["RightValue"]
		if !l || !r {
			return fmt.Errorf("%s needs LeftValue and RightValue", typ)
		}
	case typ == "In":
		if _, ok := obj["QueryValue"]; !ok {
			return fmt.Errorf("condition In needs a QueryValue")
		}
		if _, ok := obj["Values"].([]any); !ok {
			return fmt.Errorf("condition In needs a list of Values")
		}
	case typ == "Not":
		return checkCondition(obj["Condition"])
	case typ == "Or":
		list, ok := obj["Conditions"].([]any)
		if !ok || len(list) == 0 {
			return fmt.Errorf("condition Or needs a list of Conditions")
		}
		for _, sub := range list {
			if err := checkCondition(sub); err != nil {
				return err
			}
		}
	default:
		return fmt.Errorf("unknown condition Type %q; want %s, In, Not or Or", typ, strings.Join(comparisons, ", "))
	}
	return nil
}

// evalCondition evaluates a resolved condition object.
func evalCondition(c any) (bool, error) {
	obj := c.(map[string]any)
	typ := obj["Type"].(string)
	switch typ {
	case "Equals":
		return equalValues(obj["LeftValue"], obj["RightValue"]), nil
	case "In":
		for _, v := range obj["Values"].([]any) {
			if equalValues(obj["QueryValue"], v) {
				return true, nil
			}
		}
		return false, nil
	case "Not":
		v, err := evalCondition(obj["Condition"])
		return !v, err
	case "Or":
		for _, sub := range obj["Conditions"].([]any) {
			v, err := evalCondition(sub)
			if err != nil || v {
				return v, err
			}
		}
		return false, nil
	}
	cmp, err := compareValues(obj["LeftValue"], obj["RightValue"])
	if err != nil {
		return false, fmt.Errorf("%s: %w", typ, err)
	}
	switch typ {
	case "GreaterThan":
		return cmp > 0, nil
	case "GreaterThanOrEqualTo":
		return cmp >= 0, nil
	case "LessThan":
		return cmp < 0, nil
	default: // LessThanOrEqualTo
		return cmp <= 0, nil
	}
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		return f, err == nil
	case float64:
		return x, true
	}
	return 0, false
}

// equalValues compares numbers as numbers and other values exactly.
func equalValues(a, b any) bool {
	if x, ok := number(a); ok {
		y, ok := number(b)
		return ok && x == y
	}
	switch x := a.(type) {
	case string:
		y, ok := b.(string)
		return ok && x == y
	case bool:
		y, ok := b.(bool)
		return ok && x == y
	}
	return false
}

// compareValues orders two numbers or two strings.
func compareValues(a, b any) (int, error) {
	if x, ok := number(a); ok {
		if y, ok := number(b); ok {
			switch {
			case x < y:
				return -1, nil
			case x > y:
				return 1, nil
			}
			return 0, nil
		}
	}
	x, okA := a.(string)
	y, okB := b.(string)
	if okA && okB {
		return strings.Compare(x, y), nil
	}
	return 0, fmt.Errorf("cannot order %s and %s: both must be numbers or both strings", stringValue(a), stringValue(b))
}
