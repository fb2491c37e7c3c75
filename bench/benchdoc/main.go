// Command benchdoc puts the tables of one benchmark run into BENCHMARKS.md.
//
//	go run ./bench/benchdoc -log bench-run.log -doc BENCHMARKS.md
//
// It replaces every block marked with "<!-- bench: TITLE -->" by the table of
// the log whose title starts with TITLE (see internal/benchdoc), lists the
// markers it updated, and fails when a marker has no table in the log, unless
// -allow-missing is given. bench/regenerate runs the benchmarks and then this.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/pipelinestop/pipelinestop/internal/benchdoc"
)

func main() {
	logPath := flag.String("log", "", "the benchmark run's output (go test -v)")
	docPath := flag.String("doc", "BENCHMARKS.md", "the document to update in place")
	allowMissing := flag.Bool("allow-missing", false, "leave blocks with no table in the log as they are instead of failing")
	flag.Parse()
	if err := run(*logPath, *docPath, *allowMissing); err != nil {
		fmt.Fprintln(os.Stderr, "benchdoc:", err)
		os.Exit(1)
	}
}

func run(logPath, docPath string, allowMissing bool) error {
	if logPath == "" {
		return fmt.Errorf("-log is required")
	}
	log, err := os.ReadFile(logPath)
	if err != nil {
		return err
	}
	doc, err := os.ReadFile(docPath)
	if err != nil {
		return err
	}
	out, rep, err := benchdoc.Update(string(doc), string(log))
	if err != nil {
		return err
	}
	for _, t := range rep.Updated {
		fmt.Println("updated:", t)
	}
	for _, t := range rep.Missing {
		fmt.Println("no table in the log:", t)
	}
	if len(rep.Missing) > 0 && !allowMissing {
		return fmt.Errorf("%d marked tables were not in the log (run every scenario, or pass -allow-missing)", len(rep.Missing))
	}
	return os.WriteFile(docPath, []byte(out), 0o644)
}
