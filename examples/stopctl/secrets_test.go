package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/emulator"
)

// Credentials a broken credential_process prints as malformed JSON, which
// the SDK's error quotes.
const (
	processSecretAccessKey = "pStopCtlProc3ssS3cretK3y/NeverPrinted+012"
	processSessionToken    = "IQoJpStopCtlSessionT0ken/NeverPrinted+abcdefghijklmnop=="
)

// useBrokenCredentialProcess points the SDK's shared config at a profile
// "leakproc" whose credential_process prints malformed JSON holding the
// secret key and session token, with no other credentials around.
func useBrokenCredentialProcess(t *testing.T) {
	t.Helper()
	requireSh(t)
	dir := t.TempDir()
	script := filepath.Join(dir, "creds.sh")
	out := `{"Version": 1, "AccessKeyId": "AKIAPSTOPCTLPROC0001", "SecretAccessKey": "` + processSecretAccessKey +
		`", "SessionToken": "` + processSessionToken + `", "Expiration": 2026-12-31T00:00:00Z}`
	if err := os.WriteFile(script, []byte("#!/bin/sh\ncat <<'EOF'\n"+out+"\nEOF\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "config")
	if err := os.WriteFile(cfg, []byte("[profile leakproc]\ncredential_process = "+script+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("AWS_CONFIG_FILE", cfg)
	for _, k := range []string{"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"} {
		t.Setenv(k, "")
	}
}

// TestCredentialProcessSecretsNeverPrinted runs stop, wait, status, ack
// and consume, in text and JSON, with credentials from a credential_process
// that prints malformed JSON: each fails, and its output never shows the
// secret key or session token.
func TestCredentialProcessSecretsNeverPrinted(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("sh is missing")
	}
	te := newTestEnv(t, emulator.Config{})
	arn, queueURL := te.callbackPipeline(t, "leak-creds")
	tok := te.token(t, arn)
	useBrokenCredentialProcess(t)
	commands := map[string][]string{
		"stop":      {"stop", arn},
		"stop-wait": {"stop", "--wait", "--timeout", "5s", arn},
		"wait":      {"wait", "--timeout", "5s", arn},
		"status":    {"status", arn},
		"ack":       {"ack", "--token", tok, "--success"},
		"ack-fail":  {"ack", "--token", tok, "--failure", "--reason", "no"},
		"consume":   {"consume", "--queue", queueURL},
	}
	for name, args := range commands {
		for _, output := range []string{"text", "json"} {
			t.Run(name+"/"+output, func(t *testing.T) {
				r := te.stopctl(t, append([]string{"--profile", "leakproc", "--output", output}, args...)...)
				if r.code == exitOK {
					t.Fatalf("succeeded without credentials: %s", r)
				}
				if !strings.Contains(r.stdout+r.stderr, "process output") {
					t.Fatalf("the output does not show the credential_process error, so the check proves nothing: %s", r)
				}
				for _, secret := range []string{processSecretAccessKey, processSessionToken} {
					if strings.Contains(r.stdout+r.stderr, secret) {
						t.Errorf("%q printed: %s", secret, r)
					}
				}
			})
		}
	}
	if n := te.emu.Requests("StopPipelineExecution") + te.emu.Requests("SendPipelineExecutionStepSuccess"); n != 0 {
		t.Errorf("%d requests reached the emulator", n)
	}
}
