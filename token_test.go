package pipelinestop_test

import (
	"errors"
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

func FuzzValidateToken(f *testing.F) {
	f.Add(strings.Repeat("a", 32))
	f.Add("short")
	f.Add(strings.Repeat("\x00", 40))
	f.Fuzz(func(t *testing.T, s string) {
		err := pipelinestop.ValidateToken(s)
		if err != nil && !errors.Is(err, pipelinestop.ErrInvalidToken) {
			t.Fatalf("error %v does not match ErrInvalidToken", err)
		}
		if err == nil && (len(s) < 32 || len(s) > 128) {
			t.Fatalf("accepted %d characters", len(s))
		}
		if d := pipelinestop.DeriveToken(s); pipelinestop.ValidateToken(d) != nil {
			t.Fatalf("DeriveToken(%q) = %q is not a valid token", s, d)
		}
	})
}
