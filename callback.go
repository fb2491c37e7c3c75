package pipelinestop

import (
	"fmt"
	"log/slog"
)

// CallbackToken is a callback step's token: the secret that answers the
// step. It prints redacted with every fmt verb and in slog records
// (String, GoString, Format and LogValue show at most its first two
// characters); convert it with string(t) where the real value is needed.
type CallbackToken string

// redacted returns the token with all but its first two characters hidden.
func (t CallbackToken) redacted() string {
	if len(t) <= 2 {
		return "**********"
	}
	return string(t[:2]) + "********"
}

// String returns the redacted token.
func (t CallbackToken) String() string { return t.redacted() }

// GoString returns the redacted token, quoted.
func (t CallbackToken) GoString() string { return fmt.Sprintf("%q", t.redacted()) }

// Format prints the redacted token for every verb.
func (t CallbackToken) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		fmt.Fprintf(f, "%q", t.redacted())
		return
	}
	_, _ = f.Write([]byte(t.redacted()))
}

// LogValue makes slog record the redacted token.
func (t CallbackToken) LogValue() slog.Value { return slog.StringValue(t.redacted()) }
