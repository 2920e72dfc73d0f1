package main

import (
	"context"
	"io"
	"testing"
	"time"
)

// TestSectionsRun runs every node section at its smallest, so that the benchmarks cannot rot
// unnoticed: each must finish, check its contenders did the same work (train checks the models
// bit for bit, query checks the answers) and report its goals. No timing is asserted.
func TestSectionsRun(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes and builds the example programs")
	}
	ctx := context.Background()
	for _, s := range []struct {
		name  string
		goals int
		run   func() (*report, error)
	}{
		{"admission", 3, func() (*report, error) { return runAdmission(ctx, io.Discard, 1) }},
		{"train", 3, func() (*report, error) {
			return runTrain(ctx, io.Discard, trainOpts{repeat: 1, epochs: 2, runs: 1})
		}},
		{"query", 1, func() (*report, error) {
			return runQuery(ctx, io.Discard, queryOpts{conc: 2, rows: 3, rounds: 1, max: 20, dur: time.Second})
		}},
		{"scale", 1, func() (*report, error) { return runScale(ctx, io.Discard, scaleOpts{sizes: []int{1, 2}, epochs: 1}) }},
	} {
		t.Run(s.name, func(t *testing.T) {
			r, err := s.run()
			if err != nil {
				t.Fatal(err)
			}
			if r.Section != s.name || len(r.Goals) != s.goals || r.Machine.Go == "" {
				t.Fatalf("report: section %q, %d goals, machine %+v", r.Section, len(r.Goals), r.Machine)
			}
		})
	}
}

func TestDurationsPercentile(t *testing.T) {
	d := durations{5, 1, 4, 2, 3}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{0, 1}, {20, 1}, {50, 3}, {90, 5}, {100, 5}} {
		if got := d.pct(c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if (durations{}).pct(50) != 0 {
		t.Error("empty sample")
	}
}

func TestFloatsFromPadText(t *testing.T) {
	text := "pad / raw AES-GCM      seal 0.65x   open 0.81x   (goal >= 0.90x)\n" +
		"pad / age              seal 1.74x   open 2.75x   (goal > 1.00x)\nafter open       peak RSS   25.7 MiB\n"
	if f := floats(padRawRe, text); len(f) != 2 || f[0] != 0.65 || f[1] != 0.81 {
		t.Errorf("raw: %v", f)
	}
	if f := floats(padAgeRe, text); len(f) != 2 || f[0] != 1.74 || f[1] != 2.75 {
		t.Errorf("age: %v", f)
	}
	if f := floats(rssRe, text); len(f) != 1 || f[0] != 25.7 {
		t.Errorf("rss: %v", f)
	}
	if floats(padRawRe, "nothing") != nil {
		t.Error("matched nothing")
	}
}
