package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// isTerminal reports whether w is a terminal (a character device), with
// the standard library only.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// console writes progress for people. On a terminal (live) it keeps one
// status line at the bottom, rewritten in place with \r a few times a
// second with the elapsed time; otherwise it writes plain lines only, so
// CI logs stay readable. It is safe for concurrent use.
type console struct {
	mu     sync.Mutex
	w      io.Writer
	live   bool
	color  bool // ANSI styles: live and NO_COLOR unset
	start  time.Time
	status string
	shown  bool // the status line is on screen
	quit   chan struct{}
	done   chan struct{}
	// width returns the terminal's width in columns; asked at every
	// redraw, so that a resized terminal is followed.
	width func() int
}

// defaultWidth is the width assumed when neither the terminal nor COLUMNS
// tells it.
const defaultWidth = 80

// widthOf returns a function that tells the width of the terminal w is:
// from the terminal itself, else from COLUMNS, else defaultWidth.
func widthOf(w io.Writer) func() int {
	return func() int {
		if f, ok := w.(*os.File); ok {
			if n := terminalColumns(f); n > 0 {
				return n
			}
		}
		if n, err := strconv.Atoi(os.Getenv("COLUMNS")); err == nil && n > 0 {
			return n
		}
		return defaultWidth
	}
}

// fitLine cuts line so that it fills at most width-1 columns of a terminal
// (writing in the last column makes some terminals wrap), ending a cut
// line with "…". Every rune counts as one column: the status lines hold no
// wide characters and no escape sequences.
func fitLine(line string, width int) string {
	limit := width - 1
	if limit < 2 {
		limit = 2
	}
	if utf8.RuneCountInString(line) <= limit {
		return line
	}
	return string([]rune(line)[:limit-1]) + "…"
}

// noColor reports whether the NO_COLOR convention (no-color.org) asks for
// output without colours: NO_COLOR set and not empty.
func noColor() bool { return os.Getenv("NO_COLOR") != "" }

var spinner = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// newConsole returns a console writing to w. live turns on the rewritten
// status line; Close must then be called to stop its ticker.
func newConsole(w io.Writer, live bool) *console {
	c := &console{w: w, live: live, color: live && !noColor(), start: time.Now(), quit: make(chan struct{}),
		done: make(chan struct{}), width: widthOf(w)}
	if !live {
		close(c.done)
		return c
	}
	go func() {
		defer close(c.done)
		t := time.NewTicker(120 * time.Millisecond)
		defer t.Stop()
		for i := 0; ; i++ {
			select {
			case <-c.quit:
				return
			case <-t.C:
				c.mu.Lock()
				c.draw(i)
				c.mu.Unlock()
			}
		}
	}()
	return c
}

// elapsed is the time since the console was made, as "1.23s".
func (c *console) elapsed() string {
	return fmtSeconds(time.Since(c.start))
}

func fmtSeconds(d time.Duration) string {
	return fmt.Sprintf("%.2fs", d.Seconds())
}

// Println writes a line above the status line.
func (c *console) Println(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.clear()
	fmt.Fprintln(c.w, s)
}

// Printf formats a line and writes it above the status line.
func (c *console) Printf(format string, args ...any) {
	c.Println(fmt.Sprintf(format, args...))
}

// SetStatus changes the live status line (nothing is written when the
// console is not live).
func (c *console) SetStatus(s string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.status = s
}

// draw writes the status line; c.mu is held.
func (c *console) draw(tick int) {
	if c.status == "" {
		return
	}
	line := fitLine(fmt.Sprintf("%s %s  %s", spinner[tick%len(spinner)], c.status, c.elapsed()), c.width())
	fmt.Fprint(c.w, "\r\033[K"+line)
	c.shown = true
}

// clear erases the status line; c.mu is held.
func (c *console) clear() {
	if c.shown {
		fmt.Fprint(c.w, "\r\033[K")
		c.shown = false
	}
}

// Close stops the status line and erases it.
func (c *console) Close() {
	c.mu.Lock()
	select {
	case <-c.quit:
	default:
		close(c.quit)
	}
	c.mu.Unlock()
	<-c.done
	c.mu.Lock()
	c.clear()
	c.mu.Unlock()
}

// style wraps s in an ANSI style on a live console only, unless NO_COLOR
// is set.
func (c *console) style(code, s string) string {
	if !c.color {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func (c *console) bold(s string) string  { return c.style("1", s) }
func (c *console) dim(s string) string   { return c.style("2", s) }
func (c *console) green(s string) string { return c.style("32", s) }
func (c *console) red(s string) string   { return c.style("31", s) }
func (c *console) yellow(s string) string {
	return c.style("33", s)
}
