package pipelinestop

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// MaxARNLength is the longest pipeline execution ARN SageMaker accepts, in
// characters (Unicode code points; an invalid UTF-8 byte counts as one).
const MaxARNLength = 2048

// ExecutionARN is a parsed SageMaker pipeline execution ARN:
//
//	arn:PARTITION:sagemaker:REGION:ACCOUNT:pipeline/PIPELINE/execution/ID
//
// Its String method gives back the ARN it was parsed from.
type ExecutionARN struct {
	// Partition is "aws" or another AWS partition, such as "aws-cn".
	Partition string
	// Region is the AWS Region, for example "us-east-1".
	Region string
	// AccountID is the 12-digit AWS account ID.
	AccountID string
	// PipelineName is the name of the pipeline.
	PipelineName string
	// ExecutionID is the execution's ID, the last part of the ARN.
	ExecutionID string
}

// String formats the ARN. For an ExecutionARN returned by ParseExecutionARN
// it is the string that was parsed.
func (a ExecutionARN) String() string {
	return "arn:" + a.Partition + ":sagemaker:" + a.Region + ":" + a.AccountID +
		":pipeline/" + a.PipelineName + "/execution/" + a.ExecutionID
}

// ARNError describes why a string is not a pipeline execution ARN. It
// matches ErrInvalidARN with errors.Is.
type ARNError struct {
	// ARN is the rejected input, cut to 128 bytes.
	ARN string
	// Part names the part that is wrong, for example "account ID".
	Part string
	// Pos is the byte offset in the input where the problem was found.
	Pos int
	// Reason says what is wrong with that part.
	Reason string

	// partitionMismatch is set when the ARN's Region is not of its
	// partition: the error then also matches ErrPartitionMismatch.
	partitionMismatch bool
}

// Error says what is wrong, where, and what a valid ARN looks like.
func (e *ARNError) Error() string {
	return fmt.Sprintf("invalid pipeline execution ARN %q: %s at position %d: %s "+
		"(want arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME/execution/ID)",
		e.ARN, e.Part, e.Pos, e.Reason)
}

// Is reports whether target is ErrInvalidARN, or ErrPartitionMismatch
// when the ARN's Region is not of the partition it names.
func (e *ARNError) Is(target error) bool {
	return target == ErrInvalidARN || e.partitionMismatch && target == ErrPartitionMismatch
}

// ParseExecutionARN parses and validates a pipeline execution ARN. It
// enforces SageMaker's documented pattern
//
//	^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$
//
// and length limit (MaxARNLength), and also requires a non-empty pipeline
// name and execution ID without '/' or control characters, since no
// execution can be named otherwise, and a Region of the partition the ARN
// names (see RegionPartition: "arn:aws:sagemaker:cn-north-1:..." is
// rejected, since cn-north-1 is in aws-cn; a Region of a form no partition
// has, or an empty one, is accepted as the pattern accepts it). The error
// is an *ARNError matching ErrInvalidARN that names the part and position
// that are wrong; a Region of another partition also matches
// ErrPartitionMismatch.
func ParseExecutionARN(s string) (ExecutionARN, error) {
	return parseExecutionARN(s, "")
}

// maxQuotedARN is how much of a rejected ARN an ARNError quotes.
const maxQuotedARN = 128

// parseExecutionARN is ParseExecutionARN for an ARN that may hold secret
// (a callback message with its fields mixed up): the error shows it
// redacted, also where the ARN or one of its parts is quoted cut short.
func parseExecutionARN(s string, secret CallbackToken) (ExecutionARN, error) {
	fail := func(part string, pos int, format string, args ...any) (ExecutionARN, error) {
		in := secret.RedactedPrefix(s, maxQuotedARN)
		if len(s) > maxQuotedARN {
			in += "..."
		}
		for i, a := range args {
			if str, ok := a.(string); ok {
				args[i] = secret.Redact(str) // before a %.40q cuts it
			}
		}
		return ExecutionARN{}, &ARNError{ARN: in, Part: part, Pos: pos, Reason: secret.Redact(fmt.Sprintf(format, args...))}
	}
	if s == "" {
		return fail("ARN", 0, "it is empty")
	}
	// SageMaker's length limits count characters, not bytes.
	if n := utf8.RuneCountInString(s); n > MaxARNLength {
		pos := 0
		for i := 0; i < MaxARNLength; i++ {
			_, size := utf8.DecodeRuneInString(s[pos:])
			pos += size
		}
		return fail("ARN", pos, "it is %d characters long, longer than the limit of %d", n, MaxARNLength)
	}
	var a ExecutionARN
	pos := 0
	// field reads up to the next ':' and advances pos past it.
	field := func() (string, bool) {
		i := strings.IndexByte(s[pos:], ':')
		if i < 0 {
			return "", false
		}
		f := s[pos : pos+i]
		pos += i + 1
		return f, true
	}

	if !strings.HasPrefix(s, "arn:") {
		return fail("prefix", 0, `it must start with "arn:"`)
	}
	pos = len("arn:")
	start := pos
	partition, ok := field()
	if !ok {
		return fail("partition", start, "the ARN ends before the service part")
	}
	if !strings.HasPrefix(partition, "aws") || !isCharset(partition[3:], lowerOrDash) {
		return fail("partition", start, `%.40q is not an AWS partition ("aws", "aws-cn", ...)`, partition)
	}
	a.Partition = partition

	start = pos
	service, ok := field()
	if !ok || service != "sagemaker" {
		return fail("service", start, `the service must be "sagemaker"`)
	}

	start = pos
	region, ok := field()
	if !ok {
		return fail("region", start, "the ARN ends before the account ID")
	}
	if !isCharset(region, lowerDigitOrDash) {
		return fail("region", start, "%.40q has characters other than a-z, 0-9 and '-'", region)
	}
	if p, ok := RegionPartition(region); ok && p != partition {
		a, err := fail("region", start, "%.40q is a Region of partition %s, not of %s", region, p, partition)
		err.(*ARNError).partitionMismatch = true
		return a, err
	}
	a.Region = region

	start = pos
	account, ok := field()
	if !ok {
		return fail("account ID", start, "the ARN ends before the resource part")
	}
	if len(account) != 12 || !isCharset(account, digit) {
		return fail("account ID", start, "%.40q is not 12 digits", account)
	}
	a.AccountID = account

	start = pos
	rest := s[pos:]
	if !strings.HasPrefix(rest, "pipeline/") {
		return fail("resource", start, `the resource must start with "pipeline/"`)
	}
	pos += len("pipeline/")
	start = pos
	rest = s[pos:]
	slash := strings.IndexByte(rest, '/')
	if slash < 0 {
		return fail("resource", pos, `"/execution/ID" is missing after the pipeline name`)
	}
	a.PipelineName = rest[:slash]
	if a.PipelineName == "" {
		return fail("pipeline name", start, "it is empty")
	}
	if i := controlIndex(a.PipelineName); i >= 0 {
		return fail("pipeline name", start+i, "it has a control character")
	}
	pos += slash
	if !strings.HasPrefix(s[pos:], "/execution/") {
		return fail("resource", pos, `the pipeline name must be followed by "/execution/"`)
	}
	pos += len("/execution/")
	a.ExecutionID = s[pos:]
	switch {
	case a.ExecutionID == "":
		return fail("execution ID", pos, "it is empty")
	case strings.IndexByte(a.ExecutionID, '/') >= 0:
		return fail("execution ID", pos+strings.IndexByte(a.ExecutionID, '/'), "it has a '/'")
	case controlIndex(a.ExecutionID) >= 0:
		return fail("execution ID", pos+controlIndex(a.ExecutionID), "it has a control character")
	}
	return a, nil
}

// partitions are the AWS partitions and the form of their Regions, as
// the SDK's endpoint rules state them (regionRegex in aws-sdk-go-v2's
// internal/endpoints/awsrulesfn/partitions.json). The forms do not
// overlap: "us-gov-west-1" has one part more than the aws form allows.
var partitions = []struct {
	id     string
	region *regexp.Regexp
}{
	{"aws", regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-\w+-\d+$`)},
	{"aws-cn", regexp.MustCompile(`^cn-\w+-\d+$`)},
	{"aws-us-gov", regexp.MustCompile(`^us-gov-\w+-\d+$`)},
	{"aws-iso", regexp.MustCompile(`^us-iso-\w+-\d+$`)},
	{"aws-iso-b", regexp.MustCompile(`^us-isob-\w+-\d+$`)},
	{"aws-iso-e", regexp.MustCompile(`^eu-isoe-\w+-\d+$`)},
	{"aws-iso-f", regexp.MustCompile(`^us-isof-\w+-\d+$`)},
	{"aws-eusc", regexp.MustCompile(`^eusc-de-\w+-\d+$`)},
}

// RegionPartition returns the partition a Region belongs to, by the form
// of its name as the SDK's endpoint rules know it: "aws" for us-east-1 or
// eu-west-1, "aws-cn" for cn-north-1 (cn-*), "aws-us-gov" for us-gov-*,
// "aws-iso" for us-iso-*, "aws-iso-b" for us-isob-*, "aws-iso-e" for
// eu-isoe-*, "aws-iso-f" for us-isof-* and "aws-eusc" for eusc-de-*. ok is
// false for a name of no partition's form: "", a FIPS pseudo-Region such
// as "fips-us-east-1", an emulator's "local".
func RegionPartition(region string) (partition string, ok bool) {
	for _, p := range partitions {
		if p.region.MatchString(region) {
			return p.id, true
		}
	}
	return "", false
}

func lowerOrDash(c byte) bool      { return c >= 'a' && c <= 'z' || c == '-' }
func digit(c byte) bool            { return c >= '0' && c <= '9' }
func lowerDigitOrDash(c byte) bool { return lowerOrDash(c) || digit(c) }
func isCharset(s string, ok func(byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

// controlIndex returns the index of the first ASCII control character in s
// (which SageMaker's pattern, with its '.', does not match), or -1.
func controlIndex(s string) int {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] == 0x7f {
			return i
		}
	}
	return -1
}
