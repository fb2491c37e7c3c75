package emulator

import (
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxMessageAttributes is how many message attributes a message may carry.
const maxMessageAttributes = 10

// messageAttribute is a message attribute value as the AWS JSON protocol
// writes it (BinaryValue is base64 in JSON, as encoding/json writes []byte).
type messageAttribute struct {
	DataType         string
	StringValue      *string  `json:",omitempty"`
	BinaryValue      []byte   `json:",omitempty"`
	StringListValues []string `json:",omitempty"`
	BinaryListValues [][]byte `json:",omitempty"`
}

var (
	attributeNamePattern = regexp.MustCompile(`^[a-zA-Z0-9_.-]{1,256}$`)
	dataTypePattern      = regexp.MustCompile(`^(String|Number|Binary)(\.[^\s]+)?$`)
	numberPattern        = regexp.MustCompile(`^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$`)
)

// checkMessageBody refuses characters SQS does not allow: #x9, #xA, #xD,
// #x20 to #xD7FF, #xE000 to #xFFFD and #x10000 to #x10FFFF are allowed.
func checkMessageBody(body string) *apiError {
	for i, r := range body {
		ok := r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) || (r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
		if r == utf8.RuneError {
			if _, size := utf8.DecodeRuneInString(body[i:]); size == 1 {
				ok = false
			}
		}
		if !ok {
			return &apiError{status: http.StatusBadRequest, code: "InvalidMessageContents", queryCode: "InvalidMessageContents",
				message: fmt.Sprintf("Invalid binary character '#x%X' was found in the message body, the set of allowed characters is available at http://www.w3.org/TR/REC-xml/#charsets", r)}
		}
	}
	return nil
}

// checkMessageAttributes checks message attributes as SQS documents them.
func checkMessageAttributes(attrs map[string]messageAttribute) *apiError {
	if len(attrs) > maxMessageAttributes {
		return invalidParameter("Number of message attributes [%d] exceeds the allowed maximum [%d].", len(attrs), maxMessageAttributes)
	}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		lower := strings.ToLower(name)
		switch {
		case !attributeNamePattern.MatchString(name):
			return invalidParameter("Message (user) attribute name '%s' is invalid: use 1 to 256 letters, digits, '_', '-' and '.'.", name)
		case strings.HasPrefix(lower, "aws.") || strings.HasPrefix(lower, "amazon."):
			return invalidParameter("Message (user) attribute name '%s' is invalid: names starting with AWS. or Amazon. are reserved.", name)
		case strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || strings.Contains(name, ".."):
			return invalidParameter("Message (user) attribute name '%s' is invalid: it may not start or end with '.' nor contain '..'.", name)
		case a.DataType == "":
			return invalidParameter("The message attribute '%s' must contain non-empty message attribute type.", name)
		case len(a.DataType) > 256 || !dataTypePattern.MatchString(a.DataType):
			return invalidParameter("The type of message (user) attribute '%s' is invalid. You must use only the following supported type prefixes: Binary, Number, String.", name)
		case a.StringListValues != nil || a.BinaryListValues != nil:
			return invalidParameter("Message (user) attribute '%s': StringListValues and BinaryListValues are reserved for future use and not supported.", name)
		}
		if strings.HasPrefix(a.DataType, "Binary") {
			if len(a.BinaryValue) == 0 || a.StringValue != nil {
				return invalidParameter("Message (user) attribute '%s' must contain a non-empty value of message attribute type 'Binary'.", name)
			}
			continue
		}
		if a.StringValue == nil || *a.StringValue == "" || a.BinaryValue != nil {
			return invalidParameter("Message (user) attribute '%s' must contain a non-empty value of message attribute type '%s'.", name, baseType(a.DataType))
		}
		if baseType(a.DataType) == "Number" {
			if !numberPattern.MatchString(*a.StringValue) {
				return invalidParameter("Can't cast the value of message (user) attribute '%s' to a number.", name)
			}
		} else if err := checkMessageBody(*a.StringValue); err != nil {
			return invalidParameter("Message (user) attribute '%s' has a character SQS does not allow.", name)
		}
	}
	return nil
}

func baseType(dataType string) string {
	t, _, _ := strings.Cut(dataType, ".")
	return t
}

// messageSize is the size SQS counts against MaximumMessageSize: the body
// plus each attribute's name, type and value.
func messageSize(body string, attrs map[string]messageAttribute) int {
	n := len(body)
	for name, a := range attrs {
		n += len(name) + len(a.DataType) + len(a.BinaryValue)
		if a.StringValue != nil {
			n += len(*a.StringValue)
		}
	}
	return n
}

// attributesMD5 is SQS's MD5 of message attributes: for each attribute in
// name order, the length-prefixed (4 bytes, big-endian) name and data type,
// a transport byte (1 string, 2 binary) and the length-prefixed value. ""
// when there are none.
func attributesMD5(attrs map[string]messageAttribute) string {
	if len(attrs) == 0 {
		return ""
	}
	h := md5.New()
	put := func(b []byte) {
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(b)))
		h.Write(n[:])
		h.Write(b)
	}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		put([]byte(name))
		put([]byte(a.DataType))
		if a.StringValue != nil {
			h.Write([]byte{1})
			put([]byte(*a.StringValue))
		} else {
			h.Write([]byte{2})
			put(a.BinaryValue)
		}
	}
	return hex.EncodeToString(h.Sum(nil))
}

// selectAttributes returns the attributes named in names: "All" or ".*"
// for every one, "prefix.*" for those starting with "prefix.", else exact
// names. Nil when none is selected.
func selectAttributes(attrs map[string]messageAttribute, names []string) map[string]messageAttribute {
	var out map[string]messageAttribute
	for name, a := range attrs {
		for _, want := range names {
			match := want == "All" || want == ".*" || want == name ||
				(strings.HasSuffix(want, ".*") && strings.HasPrefix(name, strings.TrimSuffix(want, "*")))
			if match {
				if out == nil {
					out = map[string]messageAttribute{}
				}
				out[name] = a
				break
			}
		}
	}
	return out
}

// systemAttributes returns the message system attributes asked for ("All"
// for every one), nil when none.
func systemAttributes(g receivedMessage, names []string) map[string]string {
	all := false
	for _, n := range names {
		all = all || n == "All"
	}
	out := map[string]string{}
	add := func(name, v string) {
		if v == "" {
			return
		}
		for _, n := range names {
			if all || n == name {
				out[name] = v
				return
			}
		}
	}
	add("ApproximateReceiveCount", strconv.Itoa(g.count))
	add("SentTimestamp", strconv.FormatInt(g.m.sent.UnixMilli(), 10))
	add("ApproximateFirstReceiveTimestamp", strconv.FormatInt(g.m.firstReceive.UnixMilli(), 10))
	add("SenderId", "AIDAEMULATOR")
	for _, k := range sortedKeys(g.m.system) {
		add(k, g.m.system[k])
	}
	if len(out) == 0 {
		return nil
	}
	return out
}
