// Package benchdoc puts the tables printed by one benchmark run into
// BENCHMARKS.md, so that every table in the document comes from the same run
// and none is edited by hand.
//
// A table in the document is a fenced code block preceded by a marker line
// naming the start of the table's title as the benchmark prints it:
//
//	<!-- bench: (2) Conflict races -->
//	```
//	...replaced...
//	```
//
// In the run's log (go test -v output), a table starts at a line that begins
// with the marker's title and ends before the first blank line or line of the
// test framework ("=== RUN", "--- PASS", "PASS", "ok  ", ...). Update replaces
// each marked block with the table of the log whose title starts with the
// marker's text (the first one if several do; a marker ending in " #N"
// takes the Nth, counting from 1) and reports the markers it found no table
// for, so a stale table cannot stay silently.
package benchdoc

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MarkerPrefix starts a marker line; the marker ends with MarkerSuffix.
const (
	MarkerPrefix = "<!-- bench: "
	MarkerSuffix = " -->"
)

// ErrMalformed is returned when a marker is not followed by a fenced code
// block, or a block is not closed.
var ErrMalformed = errors.New("benchdoc: malformed document")

// Report says what Update did.
type Report struct {
	// Updated are the markers whose blocks were replaced.
	Updated []string
	// Missing are the markers with no table in the log; their blocks are
	// left as they were.
	Missing []string
}

// Tables returns the tables of a log, in order: each is its lines, the
// title first.
func Tables(log string) [][]string {
	lines := strings.Split(strings.ReplaceAll(log, "\r\n", "\n"), "\n")
	var out [][]string
	for i := 0; i < len(lines); i++ {
		if !isTitle(lines[i]) {
			continue
		}
		j := i + 1
		for j < len(lines) && !endsTable(lines[j]) {
			j++
		}
		out = append(out, lines[i:j])
		i = j - 1
	}
	return out
}

// isTitle reports whether a log line starts a table: "(N) ..." or "(Nx) ...".
func isTitle(line string) bool {
	if !strings.HasPrefix(line, "(") {
		return false
	}
	end := strings.Index(line, ") ")
	if end < 2 || end > 4 {
		return false
	}
	return line[1] >= '0' && line[1] <= '9'
}

// isTestLog reports whether line is a t.Log line of go test -v
// ("    file_test.go:12: text").
func isTestLog(line string) bool {
	t := strings.TrimLeft(line, " ")
	if len(t) == len(line) {
		return false
	}
	colon := strings.Index(t, ": ")
	if colon < 0 {
		return false
	}
	file, lineNo, ok := strings.Cut(t[:colon], ".go:")
	if !ok || file == "" || lineNo == "" {
		return false
	}
	_, err := strconv.Atoi(lineNo)
	return err == nil
}

func endsTable(line string) bool {
	if strings.TrimSpace(line) == "" || isTitle(line) || isTestLog(line) {
		return true
	}
	for _, p := range []string{"=== ", "--- ", "PASS", "FAIL", "ok  ", "?   "} {
		if strings.HasPrefix(line, p) {
			return true
		}
	}
	return false
}

// Update replaces the marked blocks of doc with the tables of log.
func Update(doc, log string) (string, Report, error) {
	var rep Report
	tables := Tables(log)
	lines := strings.Split(doc, "\n")
	var out []string
	for i := 0; i < len(lines); i++ {
		line := lines[i]
		out = append(out, line)
		title, ok := marker(line)
		if !ok {
			continue
		}
		if i+1 >= len(lines) || !strings.HasPrefix(lines[i+1], "```") {
			return "", rep, fmt.Errorf("%w: line %d: marker %q is not followed by a ``` block", ErrMalformed, i+1, title)
		}
		end := -1
		for j := i + 2; j < len(lines); j++ {
			if strings.HasPrefix(lines[j], "```") {
				end = j
				break
			}
		}
		if end < 0 {
			return "", rep, fmt.Errorf("%w: line %d: the block after marker %q is not closed", ErrMalformed, i+2, title)
		}
		table := find(tables, title)
		if table == nil {
			rep.Missing = append(rep.Missing, title)
			out = append(out, lines[i+1:end+1]...)
		} else {
			rep.Updated = append(rep.Updated, title)
			out = append(out, lines[i+1])
			for _, l := range table {
				out = append(out, strings.TrimRight(l, " \t"))
			}
			out = append(out, lines[end])
		}
		i = end
	}
	return strings.Join(out, "\n"), rep, nil
}

func marker(line string) (string, bool) {
	if !strings.HasPrefix(line, MarkerPrefix) || !strings.HasSuffix(line, MarkerSuffix) {
		return "", false
	}
	t := strings.TrimSpace(line[len(MarkerPrefix) : len(line)-len(MarkerSuffix)])
	return t, t != ""
}

func find(tables [][]string, title string) []string {
	nth := 1
	if i := strings.LastIndex(title, " #"); i >= 0 {
		if n, err := strconv.Atoi(title[i+2:]); err == nil && n >= 1 {
			title, nth = title[:i], n
		}
	}
	for _, t := range tables {
		if strings.HasPrefix(t[0], title) {
			if nth--; nth == 0 {
				return t
			}
		}
	}
	return nil
}
