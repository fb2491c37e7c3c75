package pipelinestop_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/aws/smithy-go"

	"github.com/pipelinestop/pipelinestop"
)

func TestCallbackTokenRedactedPrefixAndSuffix(t *testing.T) {
	const tok = pipelinestop.CallbackToken("lOq7Zr2Xw9")
	x := func(n int) string { return strings.Repeat("x", n) }
	tests := []struct {
		name   string
		suffix bool // RedactedSuffix, else RedactedPrefix
		s      string
		n      int
		want   string
	}{
		// A cut through the token shows only its redacted form.
		{"suffix cut through the token", true, string(tok) + x(194), 200, "******" + x(194)},
		{"prefix cut through the token", false, x(34) + string(tok) + "y", 40, x(34) + "lO****"},
		{"suffix keeps a whole token", true, "a " + string(tok) + " b", 100, "a lO******** b"},
		{"prefix keeps a whole token", false, string(tok) + string(tok), 10, "lO********"},
		// Text cut before it got here: a piece of the token at an end.
		{"suffix starts with the end of the token", true, "7Zr2Xw9 failed", 100, "******* failed"},
		{"prefix ends with the start of the token", false, "token lOq7Z", 100, "token *****"},
		{"three bytes are masked", true, "Xw9 z", 100, "*** z"},
		{"two bytes are ordinary text", true, "w9 z lO", 100, "w9 z lO"},
		{"pieces in the middle are left", false, "a 7Zr2 b", 100, "a 7Zr2 b"},
		{"no token", true, "abc", 2, "bc"},
		{"zero length", true, "abc", 0, ""},
		{"negative length", false, "abc", -5, ""},
		{"UTF-8 boundary, suffix", true, "é" + "abc", 4, "abc"},
		{"UTF-8 boundary, prefix", false, "ab" + "é", 3, "ab"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tok.RedactedPrefix(tt.s, tt.n)
			if tt.suffix {
				got = tok.RedactedSuffix(tt.s, tt.n)
			}
			if got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
	if got := pipelinestop.CallbackToken("").RedactedSuffix("abcdef", 3); got != "def" {
		t.Errorf("empty token: got %q", got)
	}
}

// FuzzCallbackTokenRedactedPrefixSuffix checks, for any text, token of letters
// and digits and length, that the result is within the length, is a cut
// of the redacted text with only '*' added, holds no full token and no
// piece of it of three or more bytes at an end, and stays valid UTF-8.
func FuzzCallbackTokenRedactedPrefixSuffix(f *testing.F) {
	f.Add("lOq7Zr2Xw9", "lOq7Zr2Xw9"+strings.Repeat("x", 194), 200, true)
	f.Add("lOq7Zr2Xw9", strings.Repeat("x", 34)+"lOq7Zr2Xw9", 40, false)
	f.Add("aaaaaaaaaa", strings.Repeat("a", 25), 13, true)
	f.Add("abababab12", "b12 ababab", 9, false)
	f.Fuzz(func(t *testing.T, rawTok, s string, n int, suffix bool) {
		// A token as SageMaker issues them: letters and digits.
		var b strings.Builder
		for _, c := range []byte(rawTok) {
			b.WriteByte("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"[int(c)%62])
		}
		tok := pipelinestop.CallbackToken(b.String())
		if len(tok) < 4 || len(tok) > 64 {
			return
		}
		got := tok.RedactedPrefix(s, n)
		if suffix {
			got = tok.RedactedSuffix(s, n)
		}
		if len(got) > max(n, 0) {
			t.Fatalf("len %d > %d", len(got), n)
		}
		if strings.Contains(got, string(tok)) {
			t.Fatalf("%q holds the token %q", got, tok)
		}
		for k := 3; k < len(tok); k++ {
			if strings.HasPrefix(got, string(tok[len(tok)-k:])) || strings.HasSuffix(got, string(tok[:k])) {
				t.Fatalf("%q has a piece of the token %q at an end", got, tok)
			}
		}
		red := tok.Redact(s)
		off := 0
		if suffix {
			off = len(red) - len(got)
		}
		if off < 0 || off+len(got) > len(red) {
			t.Fatalf("%q is not a cut of %q", got, red)
		}
		for i := 0; i < len(got); i++ {
			if got[i] != red[off+i] && got[i] != '*' {
				t.Fatalf("%q is not a cut of %q with '*' masks", got, red)
			}
		}
		if utf8.ValidString(s) && !utf8.ValidString(got) {
			t.Fatalf("%q is not valid UTF-8", got)
		}
	})
}

func TestRedactCredentials(t *testing.T) {
	const key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	const session = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQ+a=="
	tests := []struct{ in, want string }{
		{`parse failed of process output: {"Version": 1, "AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "` + key + `", "SessionToken":"` + session + `" oops`,
			`parse failed of process output: {"Version": 1, "AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "[redacted]", "SessionToken":"[redacted]" oops`},
		{`{"Token": "` + session + `", "Expiration": "2026-12-01T00:00:00Z"}`, `{"Token": "[redacted]", "Expiration": "2026-12-01T00:00:00Z"}`},
		{`{\"SecretAccessKey\":\"` + key + `\"}`, `{\"SecretAccessKey\":\"[redacted]\"}`},
		{"[default]\naws_secret_access_key = " + key + "\naws_session_token=" + session + "\n",
			"[default]\naws_secret_access_key = [redacted]\naws_session_token=[redacted]\n"},
		{"AWS_SECRET_ACCESS_KEY=" + key + " AWS_SESSION_TOKEN='" + session + "'", "AWS_SECRET_ACCESS_KEY=[redacted] AWS_SESSION_TOKEN='[redacted]'"},
		{"x-amz-security-token:" + session + "\nhost:sagemaker", "x-amz-security-token:[redacted]\nhost:sagemaker"},
		{"{AccessKeyID:AKIAEXAMPLE SecretAccessKey:" + key + " SessionToken: Source:x}", "{AccessKeyID:AKIAEXAMPLE SecretAccessKey:[redacted] SessionToken: [redacted]}"}, // an empty value takes the next field
		{`{"SecretAccessKey": "` + key, `{"SecretAccessKey": "[redacted]`},
		// Ordinary messages are left alone.
		{"The security token included in the request is invalid.", "The security token included in the request is invalid."},
		{"invalid client request token: it is 5 characters long", "invalid client request token: it is 5 characters long"},
		{"callback token Ab******** not found", "callback token Ab******** not found"},
	}
	for _, tt := range tests {
		if got := pipelinestop.RedactCredentials(tt.in); got != tt.want {
			t.Errorf("RedactCredentials(%q)\n got %q\nwant %q", tt.in, got, tt.want)
		}
	}
}

// credentialProcessError is the error the SDK returns when a
// credential_process prints malformed JSON (its text, as
// processcreds.ProviderError writes it, around a smithy.OperationError).
func credentialProcessError(secret string) error {
	out := `{"Version": 1, "AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": "` + secret + `", `
	return &smithy.OperationError{ServiceID: "SageMaker", OperationName: "StopPipelineExecution",
		Err: fmt.Errorf("failed to refresh cached credentials, %w",
			fmt.Errorf("parse failed of process output: %s, error: %w", out, errors.New("unexpected end of JSON input")))}
}

func TestClassifyRedactsCredentials(t *testing.T) {
	const secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	sdkErr := credentialProcessError(secret)
	if !strings.Contains(sdkErr.Error(), secret) {
		t.Fatal("the SDK's error does not quote the secret: the test proves nothing")
	}
	err := pipelinestop.Classify(sdkErr)
	for _, text := range []string{err.Error(), fmt.Sprintf("%v", err), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err),
		fmt.Errorf("stop: %w", err).Error()} {
		if strings.Contains(text, secret) {
			t.Errorf("the secret is printed: %s", text)
		}
	}
	if !strings.Contains(err.Error(), `"SecretAccessKey": "[redacted]"`) || !strings.Contains(err.Error(), "parse failed of process output") {
		t.Errorf("the error no longer says what failed: %v", err)
	}
	var opErr *smithy.OperationError
	if !errors.As(err, &opErr) || opErr != sdkErr {
		t.Errorf("errors.As does not reach the SDK's error")
	}

	// A service message that quotes a credential (SignatureDoesNotMatch
	// quotes the canonical request, security token header included).
	apiErr := &smithy.OperationError{ServiceID: "SageMaker", OperationName: "DescribePipelineExecution",
		Err: &smithy.GenericAPIError{Code: "SignatureDoesNotMatch", Message: "The canonical string should have been 'x-amz-security-token:" + secret + "'"}}
	var e *pipelinestop.Error
	if !errors.As(pipelinestop.Classify(apiErr), &e) || strings.Contains(e.Message, secret) || strings.Contains(e.Error(), secret) ||
		strings.Contains(fmt.Sprintf("%#v", e), secret) {
		t.Errorf("the service's message keeps the secret: %#v", e)
	}
}

// A handler keeps the end of a command's error output for a failure
// reason. Cut first, the text holds a piece of the token that Redact
// cannot find; RedactedSuffix redacts before it cuts.
func ExampleCallbackToken_RedactedSuffix() {
	token := pipelinestop.CallbackToken("lOq7Zr2Xw9")
	stderr := "job lOq7Zr2Xw9: out of memory"
	naive := stderr[len(stderr)-20:]
	fmt.Printf("%q\n%q\n", token.Redact(naive), token.RedactedSuffix(stderr, 20))
	// Output:
	// "r2Xw9: out of memory"
	// "*****: out of memory"
}

func ExampleRedactCredentials() {
	out := `{"Version": 1, "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",`
	fmt.Println(pipelinestop.RedactCredentials("parse failed of process output: " + out))
	// Output: parse failed of process output: {"Version": 1, "AccessKeyId": "AKIAIOSFODNN7EXAMPLE", "SecretAccessKey": "[redacted]",
}
