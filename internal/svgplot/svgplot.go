// Package svgplot draws line charts as SVG for the benchmarks' plots.
//
// It is deliberately small: one chart type (lines with point markers),
// linear or logarithmic axes, a legend, and deterministic output (the same
// chart gives the same bytes), so regenerated plots diff cleanly in git. It
// has no dependencies beyond the standard library.
//
//	c := svgplot.Chart{
//		Title:  "Detection lag against stop duration",
//		XLabel: "stop duration (s)", YLabel: "median lag / stop",
//		LogX:   true,
//		Series: []svgplot.Series{{Name: "Wait", Points: pts}},
//	}
//	err := c.WriteFile("bench/plots/wait-lag.svg")
package svgplot

import (
	"bytes"
	"errors"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Point is one (X, Y) value of a series.
type Point struct {
	X, Y float64
}

// Series is one line of a chart.
type Series struct {
	// Name is shown in the legend.
	Name string
	// Points are drawn in the order given, joined by lines.
	Points []Point
	// Dashed draws the line dashed (for baselines and bounds).
	Dashed bool
}

// Chart is a line chart. The zero value is not drawable: it needs at least
// one series with one point.
type Chart struct {
	// Title is drawn above the plot.
	Title string
	// XLabel and YLabel name the axes.
	XLabel, YLabel string
	// LogX and LogY make an axis logarithmic (base 10); every value on
	// it must then be positive.
	LogX, LogY bool
	// YMin and YMax fix the Y range when YMax > YMin; otherwise it is
	// taken from the data (and starts at 0 on a linear axis whose values
	// are all positive).
	YMin, YMax float64
	// Series are the lines, drawn in order with a fixed palette.
	Series []Series
}

// ErrInvalidChart is returned for a chart that cannot be drawn: no points,
// a non-finite value, or a non-positive value on a logarithmic axis.
var ErrInvalidChart = errors.New("svgplot: invalid chart")

const (
	width, height              = 760, 440
	left, right, top, bottom   = 70, 210, 40, 55
	plotW, plotH               = width - left - right, height - top - bottom
	fontFamily                 = "sans-serif"
	legendLine, legendRowSpace = 22, 18
)

var palette = []string{"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#17becf", "#bcbd22"}

// axis maps data values to pixels.
type axis struct {
	log      bool
	min, max float64 // in data units (log10 applied when log)
}

func (a axis) frac(v float64) float64 {
	if a.log {
		v = math.Log10(v)
	}
	if a.max == a.min {
		return 0.5
	}
	return (v - a.min) / (a.max - a.min)
}

func (c *Chart) check() error {
	n := 0
	for _, s := range c.Series {
		for _, p := range s.Points {
			if math.IsNaN(p.X) || math.IsInf(p.X, 0) || math.IsNaN(p.Y) || math.IsInf(p.Y, 0) {
				return fmt.Errorf("%w: series %q has a non-finite point (%v, %v)", ErrInvalidChart, s.Name, p.X, p.Y)
			}
			if c.LogX && p.X <= 0 {
				return fmt.Errorf("%w: series %q has X = %v on a logarithmic axis", ErrInvalidChart, s.Name, p.X)
			}
			if c.LogY && p.Y <= 0 {
				return fmt.Errorf("%w: series %q has Y = %v on a logarithmic axis", ErrInvalidChart, s.Name, p.Y)
			}
			n++
		}
	}
	if n == 0 {
		return fmt.Errorf("%w: no points", ErrInvalidChart)
	}
	if math.IsNaN(c.YMin) || math.IsInf(c.YMin, 0) || math.IsNaN(c.YMax) || math.IsInf(c.YMax, 0) {
		return fmt.Errorf("%w: non-finite Y range [%v, %v]", ErrInvalidChart, c.YMin, c.YMax)
	}
	if c.LogY && c.YMax > c.YMin && c.YMin <= 0 {
		return fmt.Errorf("%w: Y range [%v, %v] on a logarithmic axis", ErrInvalidChart, c.YMin, c.YMax)
	}
	return nil
}

func (c *Chart) axes() (x, y axis) {
	x.log, y.log = c.LogX, c.LogY
	first := true
	for _, s := range c.Series {
		for _, p := range s.Points {
			px, py := p.X, p.Y
			if c.LogX {
				px = math.Log10(px)
			}
			if c.LogY {
				py = math.Log10(py)
			}
			if first {
				x.min, x.max, y.min, y.max = px, px, py, py
				first = false
				continue
			}
			x.min, x.max = math.Min(x.min, px), math.Max(x.max, px)
			y.min, y.max = math.Min(y.min, py), math.Max(y.max, py)
		}
	}
	if c.YMax > c.YMin {
		y.min, y.max = c.YMin, c.YMax
		if c.LogY {
			y.min, y.max = math.Log10(c.YMin), math.Log10(c.YMax)
		}
	} else if !c.LogY {
		if y.min > 0 {
			y.min = 0
		}
		y.max += (y.max - y.min) * 0.05
	}
	if x.log {
		x.min, x.max = math.Floor(x.min), math.Ceil(x.max)
	}
	if y.log {
		y.min, y.max = math.Floor(y.min), math.Ceil(y.max)
	}
	if x.min == x.max {
		x.min, x.max = x.min-1, x.max+1
	}
	if y.min == y.max {
		y.min, y.max = y.min-1, y.max+1
	}
	return x, y
}

// ticks returns tick values in data units (not log10) for an axis.
func ticks(a axis) []float64 {
	if a.log {
		var out []float64
		for e := a.min; e <= a.max+1e-9; e++ {
			out = append(out, math.Pow(10, e))
		}
		return out
	}
	span := a.max - a.min
	step := math.Pow(10, math.Floor(math.Log10(span/5)))
	for _, m := range []float64{1, 2, 5, 10} {
		if span/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var out []float64
	for v := math.Ceil(a.min/step) * step; v <= a.max+step*1e-9 && len(out) < 20; v += step {
		out = append(out, v)
	}
	return out
}

func label(v float64) string {
	if v != 0 && (math.Abs(v) >= 1e6 || math.Abs(v) < 1e-3) {
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	if s == "-0" {
		s = "0"
	}
	return s
}

func px(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }

// Write draws the chart as SVG to w.
func (c *Chart) Write(w io.Writer) error {
	if err := c.check(); err != nil {
		return err
	}
	xa, ya := c.axes()
	X := func(v float64) float64 { return left + xa.frac(v)*plotW }
	Y := func(v float64) float64 { return top + (1-ya.frac(v))*plotH }
	var b bytes.Buffer
	esc := html.EscapeString
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="%s" font-size="12">`+"\n", width, height, width, height, fontFamily)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="white"/>`+"\n", width, height)
	fmt.Fprintf(&b, `<text x="%d" y="22" font-size="15" font-weight="bold">%s</text>`+"\n", left, esc(c.Title))
	// Grid and ticks.
	for _, t := range ticks(xa) {
		x := X(t)
		fmt.Fprintf(&b, `<line x1="%s" y1="%d" x2="%s" y2="%d" stroke="#e0e0e0"/>`+"\n", px(x), top, px(x), top+plotH)
		fmt.Fprintf(&b, `<text x="%s" y="%d" text-anchor="middle">%s</text>`+"\n", px(x), top+plotH+16, esc(label(t)))
	}
	for _, t := range ticks(ya) {
		y := Y(t)
		fmt.Fprintf(&b, `<line x1="%d" y1="%s" x2="%d" y2="%s" stroke="#e0e0e0"/>`+"\n", left, px(y), left+plotW, px(y))
		fmt.Fprintf(&b, `<text x="%d" y="%s" text-anchor="end">%s</text>`+"\n", left-6, px(y+4), esc(label(t)))
	}
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="black"/>`+"\n", left, top, plotW, plotH)
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle">%s</text>`+"\n", left+plotW/2, height-12, esc(c.XLabel))
	fmt.Fprintf(&b, `<text x="16" y="%d" text-anchor="middle" transform="rotate(-90 16 %d)">%s</text>`+"\n", top+plotH/2, top+plotH/2, esc(c.YLabel))
	// Series, clipped to the plot area (with room for a marker on its edge).
	fmt.Fprintf(&b, `<clipPath id="plot"><rect x="%d" y="%d" width="%d" height="%d"/></clipPath>`+"\n", left-4, top-4, plotW+8, plotH+8)
	for i, s := range c.Series {
		color := palette[i%len(palette)]
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		if len(s.Points) > 1 {
			var pts []string
			for _, p := range s.Points {
				pts = append(pts, px(X(p.X))+","+px(Y(p.Y)))
			}
			fmt.Fprintf(&b, `<polyline clip-path="url(#plot)" fill="none" stroke="%s" stroke-width="2"%s points="%s"/>`+"\n", color, dash, strings.Join(pts, " "))
		}
		for _, p := range s.Points {
			fmt.Fprintf(&b, `<circle clip-path="url(#plot)" cx="%s" cy="%s" r="3" fill="%s"/>`+"\n", px(X(p.X)), px(Y(p.Y)), color)
		}
		ly := top + 10 + i*legendRowSpace
		lx := left + plotW + 14
		fmt.Fprintf(&b, `<line x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+legendLine, ly, color, dash)
		fmt.Fprintf(&b, `<text x="%d" y="%d">%s</text>`+"\n", lx+legendLine+6, ly+4, esc(s.Name))
	}
	b.WriteString("</svg>\n")
	_, err := w.Write(b.Bytes())
	return err
}

// WriteFile draws the chart to path, creating its directory.
func (c *Chart) WriteFile(path string) error {
	var b bytes.Buffer
	if err := c.Write(&b); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("svgplot: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("svgplot: %w", err)
	}
	return nil
}
