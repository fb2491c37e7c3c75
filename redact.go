package pipelinestop

import (
	"regexp"
	"unicode/utf8"
)

// minTokenFragment is the shortest piece of a callback token that
// RedactedPrefix and RedactedSuffix mask at an end of their result. The
// first two characters are public (the redacted form shows them), and
// pieces of one or two characters cannot be told from ordinary text.
const minTokenFragment = 3

// RedactedPrefix returns at most the first n bytes of s with the token
// redacted, for text that must be cut short (a log field, a failure
// reason). Every occurrence of the token is redacted before the cut, as
// Redact does, so a token that straddles the cut shows only in its
// redacted form; the cut is at a UTF-8 character boundary. A piece of the
// token of three or more bytes left at either end of the result (from text
// that was already cut before it got here, such as a buffer that kept only
// the end of a stream) is masked with '*' as well. A negative n counts as
// zero. No "..." is added: the caller marks the cut as it sees fit.
func (t CallbackToken) RedactedPrefix(s string, n int) string {
	s = t.Redact(s)
	n = max(n, 0)
	if len(s) > n {
		cut := n
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut]
	}
	return t.maskEdges(s)
}

// RedactedSuffix returns at most the last n bytes of s with the token
// redacted, for the end of a long text (a command's standard error, where
// errors usually are). It redacts and cuts as RedactedPrefix does, keeping
// the end of s instead of its start.
func (t CallbackToken) RedactedSuffix(s string, n int) string {
	s = t.Redact(s)
	n = max(n, 0)
	if len(s) > n {
		cut := len(s) - n
		for cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut++
		}
		s = s[cut:]
	}
	return t.maskEdges(s)
}

// maskEdges masks the longest end of the token (at least minTokenFragment
// bytes) that s starts with and the longest start of the token that s ends
// with: the pieces a cut through the token leaves.
func (t CallbackToken) maskEdges(s string) string {
	tok := string(t)
	if len(tok) <= minTokenFragment {
		return s
	}
	head, tail := 0, 0
	for k := min(len(tok)-1, len(s)); k >= minTokenFragment; k-- {
		if head == 0 && s[:k] == tok[len(tok)-k:] {
			head = k
		}
		if tail == 0 && s[len(s)-k:] == tok[:k] {
			tail = k
		}
	}
	if head == 0 && tail == 0 {
		return s
	}
	b := []byte(s)
	for i := range head {
		b[i] = '*'
	}
	for i := len(b) - tail; i < len(b); i++ {
		b[i] = '*'
	}
	return string(b)
}

// credentialPattern matches credential material in text: the value after
// a secret access key, session token or security token name, in the forms
// the SDK, the shared config files, the environment and credential_process
// write them (SecretAccessKey, "SessionToken", aws_secret_access_key,
// AWS_SESSION_TOKEN, x-amz-security-token, ...), followed by ':' or '='
// and the value, quoted or not. A JSON "Token" field (credential_process
// and container credentials write the session token so) is matched too.
var credentialPattern = regexp.MustCompile(
	`(?i)((?:secret[-_]?access[-_]?key|session[-_]?token|security[-_]?token)\\?["']?|\\?"token\\?")` +
		`(\s*[:=]\s*)` +
		`(\\?["']?)[^\s"'\\,;{}\[\]()<>]*`)

// redactedCredential replaces a credential's value.
const redactedCredential = "[redacted]"

// RedactCredentials returns s with the values of AWS credentials in it
// replaced by "[redacted]": secret access keys and session tokens, as
// written by the SDK's errors, credential_process output (JSON
// "SecretAccessKey", "SessionToken" and "Token" fields), the shared config
// and credentials files (aws_secret_access_key = ...,
// aws_session_token = ...), the environment and HTTP headers
// (X-Amz-Security-Token). Access key IDs are left: they name a key and are
// not secret. Every error this package returns and every message it logs
// is scrubbed so; RedactCredentials lets handlers do the same with text
// of their own. A value is taken to end at white space, a quote or
// punctuation that no key or token contains.
func RedactCredentials(s string) string {
	if !credentialPattern.MatchString(s) {
		return s
	}
	return credentialPattern.ReplaceAllString(s, "${1}${2}${3}"+redactedCredential)
}

// redactSecrets redacts the token and any credentials in s: the text of a
// handler's error before it is logged or sent as a failure reason.
func (t CallbackToken) redactSecrets(s string) string { return RedactCredentials(t.Redact(s)) }
