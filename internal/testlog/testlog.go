// Package testlog collects the log records of the code under test, for
// the tests of pipelinestop and its examples: one concurrency-safe buffer
// instead of one per test file.
package testlog

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
)

// Record is one JSON log record, decoded: "msg", "level" and the
// record's attributes by key.
type Record map[string]any

// Buffer collects log records written from several goroutines. It is an
// io.Writer safe for concurrent use; its zero value is ready to use.
type Buffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write appends p to the buffer.
func (b *Buffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

// String returns everything written so far.
func (b *Buffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// Logger returns a logger that writes JSON records of every level, Debug
// included, to b.
func (b *Buffer) Logger() *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Records returns the records whose message is msg, or every record when
// msg is "". A line that is not a JSON record fails the test.
func (b *Buffer) Records(t testing.TB, msg string) []Record {
	t.Helper()
	var out []Record
	for line := range strings.Lines(b.String()) {
		var rec Record
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("log line %q is not JSON: %v", line, err)
		}
		if msg == "" || rec["msg"] == msg {
			out = append(out, rec)
		}
	}
	return out
}

// Count returns the number of records whose message is msg.
func (b *Buffer) Count(t testing.TB, msg string) int {
	t.Helper()
	return len(b.Records(t, msg))
}

// One returns the one record whose message is msg and whose field key
// is value; it fails the test when there is none or more than one.
func (b *Buffer) One(t testing.TB, msg, key string, value any) Record {
	t.Helper()
	var found []Record
	for _, rec := range b.Records(t, msg) {
		if rec[key] == value {
			found = append(found, rec)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d records %q with %s=%v, want 1; log:\n%s", len(found), msg, key, value, b.String())
	}
	return found[0]
}
