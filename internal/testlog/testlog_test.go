package testlog_test

import (
	"fmt"
	"sync"
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/testlog"
)

func TestBuffer(t *testing.T) {
	var b testlog.Buffer
	log := b.Logger()
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() { log.Debug("hello", "n", fmt.Sprint(i)) })
	}
	wg.Wait()
	log.Info("bye", "n", "x")
	if n := b.Count(t, "hello"); n != 8 {
		t.Fatalf("%d hello records, want 8:\n%s", n, &b)
	}
	if n := len(b.Records(t, "")); n != 9 {
		t.Fatalf("%d records, want 9", n)
	}
	if rec := b.One(t, "hello", "n", "3"); rec["level"] != "DEBUG" {
		t.Fatalf("record %v", rec)
	}
}
