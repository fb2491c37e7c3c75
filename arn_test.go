package pipelinestop_test

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/pipelinestop/pipelinestop"
)

// documentedARN is SageMaker's documented pattern for PipelineExecutionArn.
var documentedARN = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$`)

func TestParseExecutionARN(t *testing.T) {
	tests := []struct {
		in   string
		want pipelinestop.ExecutionARN
	}{
		{testARN, pipelinestop.ExecutionARN{Partition: "aws", Region: "us-east-1", AccountID: "123456789012",
			PipelineName: "my-pipeline", ExecutionID: "abc123def456"}},
		{"arn:aws-cn:sagemaker:cn-north-1:000000000000:pipeline/P/execution/x",
			pipelinestop.ExecutionARN{Partition: "aws-cn", Region: "cn-north-1", AccountID: "000000000000", PipelineName: "P", ExecutionID: "x"}},
		{"arn:aws-us-gov:sagemaker::111111111111:pipeline/execution/execution/id",
			pipelinestop.ExecutionARN{Partition: "aws-us-gov", AccountID: "111111111111", PipelineName: "execution", ExecutionID: "id"}},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := pipelinestop.ParseExecutionARN(tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			if got.String() != tt.in {
				t.Errorf("String() = %q, want %q", got.String(), tt.in)
			}
		})
	}
}

func TestParseExecutionARNErrors(t *testing.T) {
	tests := []struct {
		name, in, part string
		pos            int
	}{
		{"empty", "", "ARN", 0},
		{"no arn prefix", "urn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/e", "prefix", 0},
		{"bad partition", "arn:gcp:sagemaker:us-east-1:123456789012:pipeline/p/execution/e", "partition", 4},
		{"upper partition", "arn:AWS:sagemaker:us-east-1:123456789012:pipeline/p/execution/e", "partition", 4},
		{"wrong service", "arn:aws:s3:us-east-1:123456789012:pipeline/p/execution/e", "service", 8},
		{"bad region", "arn:aws:sagemaker:US_EAST:123456789012:pipeline/p/execution/e", "region", 18},
		{"short account", "arn:aws:sagemaker:us-east-1:12345:pipeline/p/execution/e", "account ID", 28},
		{"letters in account", "arn:aws:sagemaker:us-east-1:12345678901x:pipeline/p/execution/e", "account ID", 28},
		{"not a pipeline", "arn:aws:sagemaker:us-east-1:123456789012:training-job/x", "resource", 41},
		{"pipeline ARN only", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p", "resource", 50},
		{"empty name", "arn:aws:sagemaker:us-east-1:123456789012:pipeline//execution/e", "pipeline name", 50},
		{"missing execution", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/run/e", "resource", 51},
		{"empty id", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/", "execution ID", 62},
		{"slash in id", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a/b", "execution ID", 63},
		{"newline in id", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/a\n", "execution ID", 63},
		{"too long", testARN + strings.Repeat("x", 2048), "ARN", 2048},
		{"truncated", "arn:aws:sagemaker", "service", 8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := pipelinestop.ParseExecutionARN(tt.in)
			if !errors.Is(err, pipelinestop.ErrInvalidARN) {
				t.Fatalf("err = %v, want ErrInvalidARN", err)
			}
			var ae *pipelinestop.ARNError
			if !errors.As(err, &ae) {
				t.Fatalf("err is %T, want *ARNError", err)
			}
			if ae.Part != tt.part || ae.Pos != tt.pos {
				t.Errorf("part, pos = %q, %d; want %q, %d (%v)", ae.Part, ae.Pos, tt.part, tt.pos, err)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.part) || !strings.Contains(msg, "position") || len(msg) > 400 {
				t.Errorf("message does not say what is wrong, or is too long: %q", msg)
			}
		})
	}
}

// acceptedARN is a plain reading of what ParseExecutionARN accepts (besides
// the MaxARNLength limit): SageMaker's documented pattern, with a non-empty
// pipeline name and execution ID that hold no '/' and no ASCII control
// character.
var acceptedARN = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline/[^/\x00-\x1f\x7f]+/execution/[^/\x00-\x1f\x7f]+$`)

// FuzzParseExecutionARN checks that ParseExecutionARN never panics, accepts
// exactly the ARNs of a plain reading of its documented rule, round-trips
// (parse, String, parse), and rejects everything else with an *ARNError
// that matches ErrInvalidARN, points inside the input and stays short.
// Seeds: testdata/fuzz/FuzzParseExecutionARN.
func FuzzParseExecutionARN(f *testing.F) {
	for _, s := range []string{testARN, "", "arn:aws:sagemaker::123456789012:pipeline/a/execution/b",
		"arn:aws-cn:sagemaker:x:123456789012:pipeline/a/b/execution/c", "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := pipelinestop.ParseExecutionARN(s)
		want := utf8.RuneCountInString(s) <= pipelinestop.MaxARNLength && acceptedARN.MatchString(s) &&
			!regionOfAnotherPartition(s)
		if err != nil {
			if want {
				t.Fatalf("rejected %q, which the documented rule accepts: %v", s, err)
			}
			if !errors.Is(err, pipelinestop.ErrInvalidARN) {
				t.Fatalf("error %v does not match ErrInvalidARN", err)
			}
			var ae *pipelinestop.ARNError
			if !errors.As(err, &ae) {
				t.Fatalf("error %v is %T, want *ARNError", err, err)
			}
			if ae.Part == "" || ae.Reason == "" || ae.Pos < 0 || ae.Pos > len(s) {
				t.Fatalf("ARNError %+v for a %d-byte input: no part, reason or position inside the input", ae, len(s))
			}
			// The input is quoted cut to 128 bytes and the message is
			// bounded whatever the input: a 2 KiB ARN (or a secret
			// pasted by mistake) is not copied whole into logs.
			if n := len(err.Error()); n > 1536 {
				t.Fatalf("error message of %d bytes for a %d-byte input", n, len(s))
			}
			return
		}
		if !want {
			t.Fatalf("accepted %q, which the documented rule rejects", s)
		}
		if !documentedARN.MatchString(s) || utf8.RuneCountInString(s) > pipelinestop.MaxARNLength {
			t.Fatalf("accepted %q, which SageMaker's pattern or length limit rejects", s)
		}
		if a.String() != s {
			t.Fatalf("round trip: %q -> %+v -> %q", s, a, a.String())
		}
		if !strings.HasPrefix(a.Partition, "aws") || len(a.AccountID) != 12 || a.PipelineName == "" || a.ExecutionID == "" ||
			strings.Contains(a.PipelineName, "/") || strings.Contains(a.ExecutionID, "/") {
			t.Fatalf("accepted %q with fields %+v", s, a)
		}
		b, err := pipelinestop.ParseExecutionARN(a.String())
		if err != nil || b != a {
			t.Fatalf("reparse of %q: %+v, %v", s, b, err)
		}
	})
}

// partitionRegions restates, for the tests, the form of each partition's
// Region names (the SDK's partitions.json).
var partitionRegions = map[string]*regexp.Regexp{
	"aws":        regexp.MustCompile(`^(us|eu|ap|sa|ca|me|af|il|mx)-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-cn":     regexp.MustCompile(`^cn-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-us-gov": regexp.MustCompile(`^us-gov-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-iso":    regexp.MustCompile(`^us-iso-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-iso-b":  regexp.MustCompile(`^us-isob-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-iso-e":  regexp.MustCompile(`^eu-isoe-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-iso-f":  regexp.MustCompile(`^us-isof-[a-zA-Z0-9_]+-[0-9]+$`),
	"aws-eusc":   regexp.MustCompile(`^eusc-de-[a-zA-Z0-9_]+-[0-9]+$`),
}

// regionOfAnotherPartition reports whether s, an ARN, names a Region
// whose form is another partition's than the one s names.
func regionOfAnotherPartition(s string) bool {
	parts := strings.SplitN(s, ":", 5)
	if len(parts) < 5 {
		return false
	}
	for p, re := range partitionRegions {
		if re.MatchString(parts[3]) && p != parts[1] {
			return true
		}
	}
	return false
}

// TestParseExecutionARNEveryPartition: each partition's ARN form parses,
// with its Region and partition, and RegionPartition names the partition
// of the Region.
func TestParseExecutionARNEveryPartition(t *testing.T) {
	for _, tc := range []struct{ partition, region string }{
		{"aws", "us-east-1"}, {"aws", "eu-west-1"}, {"aws", "ap-southeast-2"}, {"aws", "il-central-1"}, {"aws", "mx-central-1"},
		{"aws-cn", "cn-north-1"}, {"aws-cn", "cn-northwest-1"},
		{"aws-us-gov", "us-gov-west-1"}, {"aws-us-gov", "us-gov-east-1"},
		{"aws-iso", "us-iso-east-1"}, {"aws-iso-b", "us-isob-east-1"},
		{"aws-iso-e", "eu-isoe-west-1"}, {"aws-iso-f", "us-isof-south-1"}, {"aws-eusc", "eusc-de-east-1"},
	} {
		s := fmt.Sprintf("arn:%s:sagemaker:%s:123456789012:pipeline/train/execution/k1x2y3z4w5v6", tc.partition, tc.region)
		a, err := pipelinestop.ParseExecutionARN(s)
		if err != nil {
			t.Errorf("%s: %v", s, err)
			continue
		}
		if a.Partition != tc.partition || a.Region != tc.region || a.String() != s {
			t.Errorf("%s: parsed %+v", s, a)
		}
		if p, ok := pipelinestop.RegionPartition(tc.region); !ok || p != tc.partition {
			t.Errorf("RegionPartition(%q) = %q, %v; want %q", tc.region, p, ok, tc.partition)
		}
	}
	for _, region := range []string{"", "local", "x", "fips-us-east-1", "us-east-1-fips", "us-east", "cn-north"} {
		if p, ok := pipelinestop.RegionPartition(region); ok {
			t.Errorf("RegionPartition(%q) = %q; want no partition (a form no partition has)", region, p)
		}
	}
}

// TestParseExecutionARNRegionOfAnotherPartition: an ARN whose Region is of
// another partition than the one it names is rejected, as an invalid ARN
// and a partition mismatch, pointing at the Region.
func TestParseExecutionARNRegionOfAnotherPartition(t *testing.T) {
	for _, s := range []string{
		"arn:aws:sagemaker:cn-north-1:123456789012:pipeline/p/execution/e",
		"arn:aws-cn:sagemaker:us-east-1:123456789012:pipeline/p/execution/e",
		"arn:aws:sagemaker:us-gov-west-1:123456789012:pipeline/p/execution/e",
		"arn:aws-us-gov:sagemaker:us-iso-east-1:123456789012:pipeline/p/execution/e",
		"arn:aws-iso:sagemaker:us-isob-east-1:123456789012:pipeline/p/execution/e",
		"arn:aws-iso-e:sagemaker:eu-west-1:123456789012:pipeline/p/execution/e",
		"arn:aws-future:sagemaker:us-east-1:123456789012:pipeline/p/execution/e",
	} {
		_, err := pipelinestop.ParseExecutionARN(s)
		var ae *pipelinestop.ARNError
		if !errors.Is(err, pipelinestop.ErrInvalidARN) || !errors.Is(err, pipelinestop.ErrPartitionMismatch) || !errors.As(err, &ae) {
			t.Errorf("%s: %v; want an *ARNError matching ErrInvalidARN and ErrPartitionMismatch", s, err)
			continue
		}
		if ae.Part != "region" || !strings.Contains(err.Error(), "is a Region of partition") {
			t.Errorf("%s: %v; want it to say the Region is of another partition", s, err)
		}
	}
	// Other ARN errors are not partition mismatches.
	if _, err := pipelinestop.ParseExecutionARN("arn:aws:sagemaker:us-east-1:1:pipeline/p/execution/e"); errors.Is(err, pipelinestop.ErrPartitionMismatch) {
		t.Errorf("a short account ID matches ErrPartitionMismatch: %v", err)
	}
}

// TestARNLengthCountsCharacters: the limit and the error count characters,
// as SageMaker does, not bytes.
func TestARNLengthCountsCharacters(t *testing.T) {
	prefix := "arn:aws:sagemaker:us-east-1:123456789012:pipeline/p/execution/"
	fits := prefix + strings.Repeat("é", pipelinestop.MaxARNLength-len(prefix))
	if _, err := pipelinestop.ParseExecutionARN(fits); err != nil {
		t.Fatalf("an ARN of %d characters (%d bytes) was rejected: %v", pipelinestop.MaxARNLength, len(fits), err)
	}
	long := fits + "é"
	_, err := pipelinestop.ParseExecutionARN(long)
	want := fmt.Sprintf("it is %d characters long", pipelinestop.MaxARNLength+1)
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("an ARN of %d characters: error %v, want one saying %q", pipelinestop.MaxARNLength+1, err, want)
	}
	var ae *pipelinestop.ARNError
	if errors.As(err, &ae) && (ae.Pos > len(long) || !utf8.RuneStart(long[ae.Pos])) {
		t.Fatalf("position %d is not the start of a character", ae.Pos)
	}
}
