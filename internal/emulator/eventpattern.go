package emulator

import (
	"bytes"
	"encoding/json"
	"strings"
)

// eventPattern is a parsed EventBridge event pattern: a tree of objects
// whose leaves are lists of values and matchers. An event matches when
// every field the pattern names matches (AND across fields, OR within a
// list).
type eventPattern struct {
	fields map[string]*patternNode
}

// patternNode is one field of a pattern: either a nested pattern (an
// object) or a leaf list.
type patternNode struct {
	nested *eventPattern
	leaf   []patternValue
}

// patternValue is one element of a leaf list: an exact value or a matcher.
type patternValue struct {
	kind   string // "exact", "prefix", "suffix", "equals-ignore-case", "anything-but", "exists", "numeric"
	value  any    // exact: string, float64, bool or nil; prefix/suffix/equals-ignore-case: string; exists: bool
	but    []any  // anything-but: values (strings or numbers)
	butPfx string // anything-but {"prefix": ...}
	ranges []numericCond
}

type numericCond struct {
	op string
	v  float64
}

// patternError is an InvalidEventPatternException.
func patternError(format string, args ...any) *apiError {
	return eventsError("InvalidEventPatternException", format, args...)
}

// maxPatternLength is EventPattern's length limit in the service model.
const maxPatternLength = 4096

// parseEventPattern checks and parses an EventPattern document.
func parseEventPattern(src string) (*eventPattern, *apiError) {
	if len(src) > maxPatternLength {
		return nil, patternError("Event pattern is longer than %d characters.", maxPatternLength)
	}
	dec := json.NewDecoder(strings.NewReader(src))
	dec.UseNumber()
	var root any
	if err := dec.Decode(&root); err != nil {
		return nil, patternError("Event pattern is not valid JSON: %v", err)
	}
	if dec.More() {
		return nil, patternError("Event pattern is not valid JSON: trailing data")
	}
	obj, ok := root.(map[string]any)
	if !ok {
		return nil, patternError("Event pattern must be a JSON object.")
	}
	if len(obj) == 0 {
		return nil, patternError("Event pattern must not be empty.")
	}
	return parsePatternObject(obj, "")
}

func parsePatternObject(obj map[string]any, path string) (*eventPattern, *apiError) {
	p := &eventPattern{fields: map[string]*patternNode{}}
	for k, v := range obj {
		at := strings.TrimPrefix(path+"."+k, ".")
		if strings.HasPrefix(k, "$") {
			return nil, patternError("%s: the %s operator is not supported by this emulator.", at, k)
		}
		switch v := v.(type) {
		case map[string]any:
			if len(v) == 0 {
				return nil, patternError("%s: an empty object matches nothing.", at)
			}
			sub, err := parsePatternObject(v, at)
			if err != nil {
				return nil, err
			}
			p.fields[k] = &patternNode{nested: sub}
		case []any:
			if len(v) == 0 {
				return nil, patternError("%s: Empty arrays are not allowed.", at)
			}
			leaf := make([]patternValue, 0, len(v))
			for _, el := range v {
				pv, err := parsePatternValue(el, at)
				if err != nil {
					return nil, err
				}
				leaf = append(leaf, pv)
			}
			p.fields[k] = &patternNode{leaf: leaf}
		default:
			return nil, patternError("%s: Match value must be String, number, true, false, or null.", at)
		}
	}
	return p, nil
}

func parsePatternValue(el any, at string) (patternValue, *apiError) {
	switch el := el.(type) {
	case nil, bool, string:
		return patternValue{kind: "exact", value: el}, nil
	case json.Number:
		f, err := el.Float64()
		if err != nil {
			return patternValue{}, patternError("%s: number %s is out of range.", at, el)
		}
		return patternValue{kind: "exact", value: f}, nil
	case map[string]any:
		if len(el) != 1 {
			return patternValue{}, patternError("%s: a matcher object must have exactly one key.", at)
		}
		for op, arg := range el {
			return parseMatcher(op, arg, at)
		}
	}
	return patternValue{}, patternError("%s: Match value must be String, number, true, false, or null.", at)
}

func parseMatcher(op string, arg any, at string) (patternValue, *apiError) {
	switch op {
	case "prefix", "suffix", "equals-ignore-case":
		s, ok := arg.(string)
		if !ok {
			return patternValue{}, patternError("%s: %s match pattern must be a string.", at, op)
		}
		return patternValue{kind: op, value: s}, nil
	case "exists":
		b, ok := arg.(bool)
		if !ok {
			return patternValue{}, patternError("%s: exists match pattern must be either true or false.", at)
		}
		return patternValue{kind: op, value: b}, nil
	case "anything-but":
		pv := patternValue{kind: op}
		switch a := arg.(type) {
		case string:
			pv.but = []any{a}
		case json.Number:
			f, _ := a.Float64()
			pv.but = []any{f}
		case []any:
			if len(a) == 0 {
				return patternValue{}, patternError("%s: Empty arrays are not allowed.", at)
			}
			for _, x := range a {
				switch x := x.(type) {
				case string:
					pv.but = append(pv.but, x)
				case json.Number:
					f, _ := x.Float64()
					pv.but = append(pv.but, f)
				default:
					return patternValue{}, patternError("%s: Inside anything but list, start|null|boolean is not supported.", at)
				}
			}
		case map[string]any:
			pfx, ok := a["prefix"].(string)
			if len(a) != 1 || !ok {
				return patternValue{}, patternError("%s: anything-but supports a value, a list of values or {\"prefix\": string} in this emulator.", at)
			}
			pv.butPfx = pfx
			pv.but = nil
			pv.value = "prefix"
		default:
			return patternValue{}, patternError("%s: Value of anything-but must be an array or single string/number value.", at)
		}
		return pv, nil
	case "numeric":
		a, ok := arg.([]any)
		if !ok || len(a) == 0 || len(a)%2 != 0 || len(a) > 4 {
			return patternValue{}, patternError("%s: numeric match pattern must be a list of one or two operator and number pairs.", at)
		}
		pv := patternValue{kind: op}
		for i := 0; i < len(a); i += 2 {
			o, _ := a[i].(string)
			n, isNum := a[i+1].(json.Number)
			switch o {
			case "=", "<", "<=", ">", ">=":
			default:
				return patternValue{}, patternError("%s: Unrecognized numeric range operator: %v", at, a[i])
			}
			if !isNum {
				return patternValue{}, patternError("%s: Value of %s must be numeric.", at, o)
			}
			f, err := n.Float64()
			if err != nil {
				return patternValue{}, patternError("%s: number %s is out of range.", at, n)
			}
			pv.ranges = append(pv.ranges, numericCond{o, f})
		}
		return pv, nil
	}
	return patternValue{}, patternError("%s: Unrecognized match type %s (this emulator supports prefix, suffix, equals-ignore-case, anything-but, exists and numeric).", at, op)
}

// matches reports whether event (a decoded JSON object, numbers as
// float64) matches the pattern.
func (p *eventPattern) matches(event map[string]any) bool {
	for k, n := range p.fields {
		v, present := event[k]
		if n.nested != nil {
			obj, _ := v.(map[string]any)
			if !n.nested.matches(obj) { // a nil map: every field absent
				return false
			}
			continue
		}
		if !leafMatches(n.leaf, v, present) {
			return false
		}
	}
	return true
}

// leafMatches matches one field against a leaf list: any element of the
// list matching any of the field's values (an array field is a set of
// values).
func leafMatches(leaf []patternValue, v any, present bool) bool {
	values := []any{v}
	if arr, ok := v.([]any); ok {
		values = arr
	}
	for _, pv := range leaf {
		if pv.kind == "exists" {
			if pv.value.(bool) == present {
				return true
			}
			continue
		}
		if !present {
			continue
		}
		for _, x := range values {
			if pv.matchValue(x) {
				return true
			}
		}
	}
	return false
}

func (pv patternValue) matchValue(x any) bool {
	switch pv.kind {
	case "exact":
		return x == pv.value // string, float64, bool or nil compare by value
	case "prefix":
		s, ok := x.(string)
		return ok && strings.HasPrefix(s, pv.value.(string))
	case "suffix":
		s, ok := x.(string)
		return ok && strings.HasSuffix(s, pv.value.(string))
	case "equals-ignore-case":
		s, ok := x.(string)
		return ok && strings.EqualFold(s, pv.value.(string))
	case "anything-but":
		if pv.value == "prefix" {
			s, ok := x.(string)
			return ok && !strings.HasPrefix(s, pv.butPfx)
		}
		switch x.(type) {
		case string, float64:
		default:
			return false
		}
		for _, b := range pv.but {
			if x == b {
				return false
			}
		}
		return true
	case "numeric":
		f, ok := x.(float64)
		if !ok {
			return false
		}
		for _, c := range pv.ranges {
			var hold bool
			switch c.op {
			case "=":
				hold = f == c.v
			case "<":
				hold = f < c.v
			case "<=":
				hold = f <= c.v
			case ">":
				hold = f > c.v
			default:
				hold = f >= c.v
			}
			if !hold {
				return false
			}
		}
		return true
	}
	return false
}

// decodeEvent decodes an event's JSON for matching.
func decodeEvent(buf []byte) (map[string]any, error) {
	var m map[string]any
	dec := json.NewDecoder(bytes.NewReader(buf))
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}
