package benchdoc

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

const log = `=== RUN   TestScenarioConflict

(2) Conflict races: 10 stops per window
window  strategy   success
------  --------   -------
500ms   Stop       10/10   
a note printed after the table
    conflict_test.go:271: plot written: bench/plots/conflict.svg
--- PASS: TestScenarioConflict (3.00s)
=== RUN   TestScenarioWait

(3) Waiting, simulated time: 101 stops
stop  lag
1s    100ms

(3b) Waiting, real time
stop  lag
2s    150ms
PASS
ok  	github.com/pipelinestop/pipelinestop/bench	12.3s
`

func TestTables(t *testing.T) {
	got := Tables(log)
	want := [][]string{
		{"(2) Conflict races: 10 stops per window", "window  strategy   success", "------  --------   -------", "500ms   Stop       10/10   ", "a note printed after the table"},
		{"(3) Waiting, simulated time: 101 stops", "stop  lag", "1s    100ms"},
		{"(3b) Waiting, real time", "stop  lag", "2s    150ms"},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Tables =\n%q\nwant\n%q", got, want)
	}
}

func TestUpdateReplacesMarkedBlocksOnly(t *testing.T) {
	doc := strings.Join([]string{
		"# Benchmarks",
		"<!-- bench: (2) Conflict races -->",
		"```",
		"old conflict table",
		"```",
		"text between",
		"```",
		"an unmarked block stays",
		"```",
		"<!-- bench: (3b) Waiting, real -->",
		"```text",
		"old",
		"```",
		"<!-- bench: (9) Not in this run -->",
		"```",
		"kept",
		"```",
		"end",
	}, "\n")
	got, rep, err := Update(doc, log)
	if err != nil {
		t.Fatal(err)
	}
	want := strings.Join([]string{
		"# Benchmarks",
		"<!-- bench: (2) Conflict races -->",
		"```",
		"(2) Conflict races: 10 stops per window",
		"window  strategy   success",
		"------  --------   -------",
		"500ms   Stop       10/10",
		"a note printed after the table",
		"```",
		"text between",
		"```",
		"an unmarked block stays",
		"```",
		"<!-- bench: (3b) Waiting, real -->",
		"```text",
		"(3b) Waiting, real time",
		"stop  lag",
		"2s    150ms",
		"```",
		"<!-- bench: (9) Not in this run -->",
		"```",
		"kept",
		"```",
		"end",
	}, "\n")
	if got != want {
		t.Errorf("Update =\n%s\nwant\n%s", got, want)
	}
	if !reflect.DeepEqual(rep.Updated, []string{"(2) Conflict races", "(3b) Waiting, real"}) || !reflect.DeepEqual(rep.Missing, []string{"(9) Not in this run"}) {
		t.Errorf("report = %+v", rep)
	}
}

func TestUpdateIsIdempotent(t *testing.T) {
	doc := "<!-- bench: (3) Waiting -->\n```\nx\n```\n"
	once, _, err := Update(doc, log)
	if err != nil {
		t.Fatal(err)
	}
	twice, _, err := Update(once, log)
	if err != nil {
		t.Fatal(err)
	}
	if once != twice {
		t.Errorf("second update changed the document:\n%s\n---\n%s", once, twice)
	}
}

func TestUpdateMalformed(t *testing.T) {
	for name, doc := range map[string]string{
		"no block":   "<!-- bench: (2) Conflict -->\ntext\n",
		"at the end": "<!-- bench: (2) Conflict -->",
		"not closed": "<!-- bench: (2) Conflict -->\n```\nx\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, _, err := Update(doc, log); !errors.Is(err, ErrMalformed) {
				t.Errorf("err = %v, want ErrMalformed", err)
			}
		})
	}
}

func TestUpdateNthTable(t *testing.T) {
	doc := "<!-- bench: (3 #2 -->\n```\nx\n```\n<!-- bench: (3 #3 -->\n```\ny\n```\n"
	got, rep, err := Update(doc, log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(got, "(3b) Waiting, real time") || strings.Contains(got, "(3) Waiting, simulated") {
		t.Errorf("#2 did not take the second table starting with \"(3\":\n%s", got)
	}
	if len(rep.Missing) != 1 || rep.Missing[0] != "(3 #3" {
		t.Errorf("report = %+v, want (3 #3 missing", rep)
	}
}
