package main

import (
	"fmt"
	"io"
	"os"
)

// progressMin is the input size above which a progress bar is drawn.
const progressMin = 4 << 20

// A progress bar on stderr, drawn only when stderr is a terminal.
type progress struct {
	w     io.Writer
	verb  string
	total int64
	shown int64 // last percentage drawn
}

// newProgress returns a progress bar, or nil if w is not a terminal or the work is small.
func newProgress(w io.Writer, verb string, total int64) *progress {
	if total <= progressMin || !isTerminal(w) {
		return nil
	}
	return &progress{w: w, verb: verb, total: total, shown: -1}
}

func (p *progress) update(done int64) {
	pct := done * 100 / p.total
	if pct == p.shown {
		return
	}
	p.shown = pct
	const width = 30
	fill := int(pct * width / 100)
	bar := make([]byte, width)
	for i := range bar {
		bar[i] = ' '
		if i < fill {
			bar[i] = '='
		}
	}
	fmt.Fprintf(p.w, "\r%s [%s] %3d%% %s / %s", p.verb, bar, pct, mib(done), mib(p.total))
}

func (p *progress) done() { fmt.Fprint(p.w, "\r\033[K") }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// countingWriter reports bytes written to a progress bar.
type countingWriter struct {
	w   io.Writer
	n   int64
	bar *progress
}

func (c *countingWriter) Write(b []byte) (int, error) {
	n, err := c.w.Write(b)
	c.n += int64(n)
	c.bar.update(c.n)
	return n, err
}

// isTerminal reports whether v (stdin, stdout or stderr) is a character device such as a
// terminal.
func isTerminal(v any) bool {
	f, ok := v.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	if err != nil || st.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	// /dev/null is a character device too, but never a terminal.
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(st, null)
}
