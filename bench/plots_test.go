package bench_test

import (
	"flag"
	"path/filepath"
	"testing"

	"github.com/pipelinestop/pipelinestop/internal/svgplot"
)

var plots = flag.Bool("plots", false, "write the scenarios' plots to bench/plots (implied by -full)")

// writePlot writes c to bench/plots/name.svg when the run asked for plots
// (-plots or -full); plots of a CI-size run would replace the committed
// full-size ones, so they are written only on request.
func writePlot(t *testing.T, name string, c svgplot.Chart) {
	t.Helper()
	if !*plots && !*full {
		return
	}
	path := filepath.Join("plots", name+".svg")
	if err := c.WriteFile(path); err != nil {
		t.Errorf("plot %s: %v", name, err)
		return
	}
	t.Logf("plot written: bench/%s", path)
}
