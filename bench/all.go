package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"time"
)

func init() {
	register(&section{name: "all", summary: "every section with small defaults (a few minutes on 2 cores) and one summary table", run: benchAll})
}

func benchAll(fs *flag.FlagSet, args []string) error {
	asJSON := fs.Bool("json", false, "print every section's figures and the summary as JSON (the text goes to stderr)")
	quick := fs.Bool("quick", false, "smaller still: a smoke run in about a minute, figures too noisy to quote")
	fs.Parse(args)
	out := textOut(*asJSON)
	ctx := context.Background()
	t0 := time.Now()
	m := thisMachine()
	fmt.Fprintf(out, "styx benchmarks: every section, one process\n%s\n", m)
	q := func(normal, small int) int {
		if *quick {
			return small
		}
		return normal
	}
	var reports []*report
	var goals []goal
	steps := []struct {
		name string
		run  func() (*report, error)
	}{
		// pad-rss first: peak RSS is the process's, so it must run before anything big.
		{"pad-rss", func() (*report, error) { return padRSSSection(out, []string{"64MiB", "1GiB"}[:q(2, 1)]) }},
		{"pad", func() (*report, error) {
			return padSection(out, []string{"-size", []string{"256MiB", "64MiB"}[q(0, 1)], "-runs", "3"})
		}},
		{"admission", func() (*report, error) { return runAdmission(ctx, out, q(50, 5)) }},
		{"train", func() (*report, error) {
			// Nine runs of each contender: the ratio is of the fastest runs, and with five a
			// single disturbed quarter-second on this kind of VM moved it by 0.3.
			return runTrain(ctx, out, trainOpts{repeat: q(50, 5), epochs: 50, runs: q(9, 1)})
		}},
		{"query", func() (*report, error) {
			return runQuery(ctx, out, queryOpts{conc: 4, rows: 1, rounds: 2, max: 50000, dur: time.Duration(q(5, 1)) * time.Second})
		}},
		{"scale", func() (*report, error) {
			return runScale(ctx, out, scaleOpts{sizes: []int{1, 10, 100}[:q(3, 2)], epochs: 10})
		}},
	}
	for _, s := range steps {
		fmt.Fprintf(out, "\n=== %s\n\n", s.name)
		r, err := s.run()
		if err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		reports, goals = append(reports, r), append(goals, r.Goals...)
	}
	fmt.Fprintf(out, "\n=== summary (%s in all)\n%s\n\n", time.Since(t0).Round(time.Second), m)
	for _, g := range goals {
		fmt.Fprintln(out, g)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			Machine  machine   `json:"machine"`
			Sections []*report `json:"sections"`
			Summary  []goal    `json:"summary"`
		}{m, reports, goals})
	}
	return nil
}

var (
	padRawRe = regexp.MustCompile(`pad / raw AES-GCM\s+seal ([\d.]+)x\s+open ([\d.]+)x`)
	padAgeRe = regexp.MustCompile(`pad / age\s+seal ([\d.]+)x\s+open ([\d.]+)x`)
	rssRe    = regexp.MustCompile(`after open\s+peak RSS\s+([\d.]+) MiB`)
)

// padSection runs the pad section (bench/pad.go) with args and reads its ratios from its text.
func padSection(out io.Writer, args []string) (*report, error) {
	text, err := captureStdout(out, func() error { return sections["pad"].run(flag.NewFlagSet("pad", flag.ContinueOnError), args) })
	if err != nil {
		return nil, err
	}
	r := &report{Section: "pad", Params: map[string]any{"args": args}, Figures: map[string]any{}}
	for _, x := range []struct {
		re     *regexp.Regexp
		vs     string
		goal   string
		met    func(float64) bool
		figure string
	}{{padRawRe, "raw AES-256-GCM", ">= 0.9x", func(v float64) bool { return v >= 0.9 }, "raw"},
		{padAgeRe, "age", "> 1x", func(v float64) bool { return v > 1 }, "age"}} {
		f := floats(x.re, text)
		if f == nil {
			fmt.Fprintf(out, "(could not read the pad / %s ratios from the text above)\n", x.vs)
			continue
		}
		r.Figures[x.figure] = map[string]float64{"seal": f[0], "open": f[1]}
		for i, op := range []string{"seal", "open"} {
			r.Goals = append(r.Goals, goal{Section: "pad", Figure: fmt.Sprintf("Pad %s / %s", op, x.vs), Value: f[i], Unit: "x", Goal: x.goal, Met: x.met(f[i])})
		}
	}
	return r, nil
}

// padRSSSection runs the pad-rss section (bench/padrss.go) at each size, smallest first, in
// this process: peak RSS only grows, so a flat peak shows that memory does not follow the size.
func padRSSSection(out io.Writer, sizes []string) (*report, error) {
	r := &report{Section: "pad-rss", Params: map[string]any{"sizes": sizes}, Figures: map[string]any{}}
	var peaks []float64
	for _, s := range sizes {
		text, err := captureStdout(out, func() error {
			return sections["pad-rss"].run(flag.NewFlagSet("pad-rss", flag.ContinueOnError), []string{"-size", s})
		})
		if err != nil {
			return nil, err
		}
		f := floats(rssRe, text)
		if f == nil {
			fmt.Fprintln(out, "(could not read the peak RSS from the text above)")
			return r, nil
		}
		r.Figures[s] = map[string]float64{"peak_rss_mib": f[0]}
		peaks = append(peaks, f[0])
	}
	if len(peaks) > 1 {
		g := peaks[len(peaks)-1] / peaks[0]
		r.Goals = append(r.Goals, goal{Section: "pad-rss", Figure: fmt.Sprintf("peak RSS, %s / %s Pad", sizes[len(sizes)-1], sizes[0]),
			Value: g, Unit: "x", Goal: "flat", Met: g <= 1.2})
	}
	return r, nil
}

func floats(re *regexp.Regexp, text string) []float64 {
	m := re.FindStringSubmatch(text)
	if m == nil {
		return nil
	}
	var f []float64
	for _, s := range m[1:] {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil
		}
		f = append(f, v)
	}
	return f
}

// captureStdout runs f with os.Stdout sent both to out and to the returned text: the pad
// sections print their figures rather than return them.
func captureStdout(out io.Writer, f func() error) (string, error) {
	r, w, err := os.Pipe()
	if err != nil {
		return "", err
	}
	saved := os.Stdout
	os.Stdout = w
	var buf bytes.Buffer
	done := make(chan struct{})
	go func() {
		io.Copy(io.MultiWriter(out, &buf), r)
		close(done)
	}()
	err = f()
	os.Stdout = saved
	w.Close()
	<-done
	r.Close()
	return buf.String(), err
}
