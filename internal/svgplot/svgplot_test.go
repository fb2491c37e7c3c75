package svgplot

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample() Chart {
	return Chart{
		Title: "Lag <against> duration & more", XLabel: "stop (s)", YLabel: "lag / stop", LogX: true,
		Series: []Series{
			{Name: "Wait", Points: []Point{{1, 0.1}, {10, 0.05}, {1200, 0.02}}},
			{Name: "1 s polling", Points: []Point{{1, 0.5}, {10, 0.05}, {1200, 0.0004}}, Dashed: true},
		},
	}
}

// wellFormed parses the SVG as XML and returns the elements by name.
func wellFormed(t *testing.T, svg []byte) map[string]int {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	counts := map[string]int{}
	for range 100000 {
		tok, err := d.Token()
		if err == io.EOF {
			return counts
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			counts[se.Name.Local]++
		}
	}
	t.Fatal("SVG too long")
	return nil
}

func TestWriteDrawsEverySeries(t *testing.T) {
	c := sample()
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	counts := wellFormed(t, b.Bytes())
	if counts["polyline"] != 2 || counts["circle"] != 6 {
		t.Errorf("got %d lines and %d points, want 2 and 6", counts["polyline"], counts["circle"])
	}
	s := b.String()
	for _, want := range []string{"Lag &lt;against&gt; duration &amp; more", ">Wait<", ">1 s polling<", `stroke-dasharray`, ">1000<", ">1<"} {
		if !strings.Contains(s, want) {
			t.Errorf("SVG lacks %q", want)
		}
	}
}

func TestWriteIsDeterministic(t *testing.T) {
	c := sample()
	var a, b bytes.Buffer
	if err := c.Write(&a); err != nil {
		t.Fatal(err)
	}
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("two writes of one chart differ")
	}
}

func TestPointsStayInsideThePlot(t *testing.T) {
	c := Chart{Series: []Series{{Name: "a", Points: []Point{{0, 3}, {5, 7}, {10, -2}}}}}
	xa, ya := c.axes()
	for _, p := range c.Series[0].Points {
		if f := xa.frac(p.X); f < 0 || f > 1 {
			t.Errorf("x %v maps to %v", p.X, f)
		}
		if f := ya.frac(p.Y); f < 0 || f > 1 {
			t.Errorf("y %v maps to %v", p.Y, f)
		}
	}
	if ya.min != -2 {
		t.Errorf("y axis starts at %v, want -2", ya.min)
	}
}

func TestInvalidCharts(t *testing.T) {
	cases := map[string]Chart{
		"empty":        {},
		"no points":    {Series: []Series{{Name: "a"}}},
		"NaN":          {Series: []Series{{Name: "a", Points: []Point{{1, math.NaN()}}}}},
		"Inf":          {Series: []Series{{Name: "a", Points: []Point{{math.Inf(1), 1}}}}},
		"zero on logX": {LogX: true, Series: []Series{{Name: "a", Points: []Point{{0, 1}}}}},
		"neg on logY":  {LogY: true, Series: []Series{{Name: "a", Points: []Point{{1, -1}}}}},
		"NaN range":    {YMin: math.NaN(), YMax: 1, Series: []Series{{Name: "a", Points: []Point{{1, 1}}}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var b bytes.Buffer
			if err := c.Write(&b); !errors.Is(err, ErrInvalidChart) {
				t.Fatalf("err = %v, want ErrInvalidChart", err)
			}
			if b.Len() != 0 {
				t.Error("an invalid chart wrote output")
			}
		})
	}
}

func TestSinglePointAndFixedRange(t *testing.T) {
	c := Chart{YMin: 0, YMax: 2, Series: []Series{{Name: "one", Points: []Point{{3, 1}}}}}
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		t.Fatal(err)
	}
	if counts := wellFormed(t, b.Bytes()); counts["circle"] != 1 || counts["polyline"] != 0 {
		t.Errorf("counts = %v", counts)
	}
}

func TestWriteFileCreatesTheDirectory(t *testing.T) {
	path := filepath.Join(t.TempDir(), "plots", "a.svg")
	c := sample()
	if err := c.WriteFile(path); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	wellFormed(t, got)
}
