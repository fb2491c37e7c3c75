package emulator

import "testing"

// TestConformanceRegions drives boto3 clients of six Regions in four
// partitions against one emulator (testdata/conformance/regions.py): each
// Region's pipelines and queues are its own, ARNs are in the Region's
// partition and match botocore's model, and another Region's execution or
// queue is the modelled not-found error.
func TestConformanceRegions(t *testing.T) {
	requireBoto3(t)
	e := StartTest(t, Config{Timing: Timing{StepDuration: Forever}})
	runConformance(t, e, "regions.py")
	if got := len(e.Regions()); got != 6 {
		t.Errorf("%d Regions after the script (%v); want 6", got, e.Regions())
	}
}
