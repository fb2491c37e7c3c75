package pipelinestop_test

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/pipelinestop/pipelinestop"
)

func TestNewToken(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		tok := pipelinestop.NewToken()
		if err := pipelinestop.ValidateToken(tok); err != nil {
			t.Fatal(err)
		}
		if seen[tok] {
			t.Fatalf("NewToken repeated %q", tok)
		}
		seen[tok] = true
	}
}

func TestDeriveToken(t *testing.T) {
	a := pipelinestop.DeriveToken("StopPipelineExecution", testARN)
	if a != pipelinestop.DeriveToken("StopPipelineExecution", testARN) {
		t.Fatal("DeriveToken is not deterministic")
	}
	if err := pipelinestop.ValidateToken(a); err != nil {
		t.Fatal(err)
	}
	distinct := [][]string{{"ab", "c"}, {"a", "bc"}, {"abc"}, {"abc", ""}, {"", "abc"}, {}, {""}, {"", ""}}
	seen := map[string][]string{}
	for _, parts := range distinct {
		tok := pipelinestop.DeriveToken(parts...)
		if prev, ok := seen[tok]; ok {
			t.Errorf("DeriveToken(%q) == DeriveToken(%q)", parts, prev)
		}
		seen[tok] = parts
		if n := len(tok); n < pipelinestop.MinTokenLength || n > pipelinestop.MaxTokenLength {
			t.Errorf("len = %d", n)
		}
	}
	// A pinned value: tokens must never change between releases, or a
	// process upgraded mid-stop would send a different request.
	if got, want := pipelinestop.DeriveToken("StopPipelineExecution", testARN)[:16], "675f4c0e4b2551e6"; got != want {
		t.Errorf("derived token changed: %s..., want %s...", got, want)
	}
}

func TestValidateToken(t *testing.T) {
	tests := []struct {
		tok string
		ok  bool
	}{
		{strings.Repeat("a", 31), false},
		{strings.Repeat("a", 32), true},
		{strings.Repeat("Z", 128), true},
		{strings.Repeat("a", 129), false},
		{"", false},
		{strings.Repeat("a", 31) + " ", false},
		{strings.Repeat("a", 31) + "\n", false},
		{strings.Repeat("a", 30) + "é", false},
		{"01234567-89ab-cdef-0123-456789abcdef", true},
	}
	for _, tt := range tests {
		err := pipelinestop.ValidateToken(tt.tok)
		if (err == nil) != tt.ok {
			t.Errorf("ValidateToken(%q) = %v, want ok=%v", tt.tok, err, tt.ok)
		}
		if err != nil && !errors.Is(err, pipelinestop.ErrInvalidToken) {
			t.Errorf("error %v does not match ErrInvalidToken", err)
		}
	}
}

// FuzzValidateToken checks ValidateToken against a plain reading of its
// rule: 32 to 128 characters, each printable ASCII other than space.
// Seeds: testdata/fuzz/FuzzValidateToken.
func FuzzValidateToken(f *testing.F) {
	f.Add(strings.Repeat("a", 32))
	f.Add("short")
	f.Add(strings.Repeat("\x00", 40))
	f.Fuzz(func(t *testing.T, s string) {
		want := len(s) >= 32 && len(s) <= 128
		for i := 0; i < len(s); i++ {
			if s[i] < '!' || s[i] > '~' {
				want = false
			}
		}
		err := pipelinestop.ValidateToken(s)
		if (err == nil) != want {
			t.Fatalf("ValidateToken(%q) = %v; the rule says valid=%v", s, err, want)
		}
		if err != nil && !errors.Is(err, pipelinestop.ErrInvalidToken) {
			t.Fatalf("error %v does not match ErrInvalidToken", err)
		}
	})
}

// FuzzDeriveToken checks that DeriveToken is deterministic, always gives a
// valid token (64 lowercase hex characters), and encodes part boundaries:
// the same bytes split differently, or a different number of parts, give
// a different token. Seeds: testdata/fuzz/FuzzDeriveToken.
func FuzzDeriveToken(f *testing.F) {
	f.Add("ab", "c", uint(1))
	f.Add("StopPipelineExecution", testARN, uint(0))
	f.Fuzz(func(t *testing.T, a, b string, k uint) {
		tok := pipelinestop.DeriveToken(a, b)
		if again := pipelinestop.DeriveToken(a, b); again != tok {
			t.Fatalf("DeriveToken(%q, %q) gave %q, then %q", a, b, tok, again)
		}
		if err := pipelinestop.ValidateToken(tok); err != nil {
			t.Fatalf("DeriveToken(%q, %q) = %q: %v", a, b, tok, err)
		}
		if len(tok) != 64 || strings.Trim(tok, "0123456789abcdef") != "" {
			t.Fatalf("DeriveToken(%q, %q) = %q, want 64 lowercase hex characters", a, b, tok)
		}
		joined := a + b
		// The same bytes cut at another place.
		if cut := int(k % uint(len(joined)+1)); cut != len(a) {
			if other := pipelinestop.DeriveToken(joined[:cut], joined[cut:]); other == tok {
				t.Fatalf("DeriveToken(%q, %q) == DeriveToken(%q, %q)", a, b, joined[:cut], joined[cut:])
			}
		}
		// Other numbers of parts, and the parts swapped.
		distinct := map[string][]string{tok: {a, b}}
		for _, parts := range [][]string{{joined}, {a, b, ""}, {"", a, b}, {a}, {a, "", b}} {
			other := pipelinestop.DeriveToken(parts...)
			if prev, ok := distinct[other]; ok && !slices.Equal(prev, parts) {
				t.Fatalf("DeriveToken(%q) == DeriveToken(%q)", parts, prev)
			}
			distinct[other] = parts
		}
		if a != b && pipelinestop.DeriveToken(b, a) == tok {
			t.Fatalf("DeriveToken(%q, %q) == DeriveToken(%q, %q)", a, b, b, a)
		}
	})
}
