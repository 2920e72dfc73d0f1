package sandbox

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

func TestRowCount(t *testing.T) {
	r := newRuntime(t, Config{})
	h := newHost(map[string][]byte{
		"a": []byte(smallCSV),
		"b": []byte("x\n1\n2\n3\n4\n5"), // no final newline
	}, map[string]Kind{"count": KindAggregate})
	res, err := r.Run(context.Background(), build(t, "examples/programs/rowcount", false), h)
	if err != nil {
		t.Fatalf("run: %v (log %q)", err, h.log())
	}
	var got struct {
		Inputs map[string]int
		Total  int
	}
	if err := json.Unmarshal(h.output("count"), &got); err != nil {
		t.Fatal(err)
	}
	if got.Total != 8 || got.Inputs["a"] != 3 || got.Inputs["b"] != 5 {
		t.Fatalf("counts = %+v", got)
	}
	if !h.closed["count"] || res.OutputBytes != int64(len(h.output("count"))) {
		t.Fatalf("output not closed or miscounted: %+v", res)
	}
}

func TestColStats(t *testing.T) {
	r := newRuntime(t, Config{})
	h := newHost(map[string][]byte{"a": []byte(smallCSV)}, map[string]Kind{"stats": KindAggregate})
	if _, err := r.Run(context.Background(), build(t, "examples/programs/colstats", false), h); err != nil {
		t.Fatalf("run: %v (log %q)", err, h.log())
	}
	var stats []struct {
		Column           string
		Count, Mean, Std float64
	}
	if err := json.Unmarshal(h.output("stats"), &stats); err != nil {
		t.Fatal(err)
	}
	if len(stats) != 3 || stats[0].Column != "a" || stats[0].Count != 3 || stats[0].Mean != 3 {
		t.Fatalf("stats = %+v", stats)
	}
}

func TestUndeclaredOutputRefused(t *testing.T) {
	r := newRuntime(t, Config{})
	h := newHost(map[string][]byte{"a": []byte(smallCSV)}, map[string]Kind{"count": KindTable}) // wrong kind
	_, err := r.Run(context.Background(), build(t, "examples/programs/rowcount", false), h)
	var re *RunError
	if !errors.As(err, &re) || re.Err != ErrExit || re.ExitCode != 1 {
		t.Fatalf("err = %v, want exit code 1", err)
	}
	if !strings.Contains(h.log(), "refused by the host") {
		t.Fatalf("log = %q", h.log())
	}
}

func TestCompileCacheAndErrors(t *testing.T) {
	r := newRuntime(t, Config{})
	wasm := build(t, "examples/programs/rowcount", false)
	p1, err := r.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	p2, _ := r.Compile(context.Background(), wasm)
	if p1 != p2 {
		t.Fatal("second compile not served from the cache")
	}
	if r.Cached(sha256.Sum256(wasm)) != p1 {
		t.Fatal("Cached does not return the compiled program by the hash of its bytes")
	}
	if r.Cached(sha256.Sum256(append(wasm, 0))) != nil {
		t.Fatal("Cached returns a program for bytes never compiled")
	}
	if _, err := r.Warm(context.Background(), p1, newHost(nil, nil)); !errors.Is(err, ErrBadModule) {
		t.Fatalf("warming a command module: %v", err)
	}
}

func TestRunErrorStrings(t *testing.T) {
	e := &RunError{Err: ErrExit, Op: "run", ExitCode: 3}
	if e.Error() != "run: sandbox: program exited with an error (exit code 3)" {
		t.Fatal(e.Error())
	}
	if !errors.Is(e, ErrExit) {
		t.Fatal("RunError does not unwrap")
	}
}

func TestCacheFull(t *testing.T) {
	r := newRuntime(t, Config{MaxModules: 1})
	ctx := context.Background()
	a, err := r.Compile(ctx, build(t, "examples/programs/rowcount", false))
	if err != nil {
		t.Fatal(err)
	}
	b, err := r.Compile(ctx, build(t, "examples/programs/colstats", false))
	if err != nil {
		t.Fatal(err)
	}
	if !a.cached || b.cached {
		t.Fatalf("cached: %v %v", a.cached, b.cached)
	}
	if r.Cached(a.Hash()) != a || r.Cached(b.Hash()) != nil {
		t.Fatal("Cached returns a program the full cache did not keep, or not the one it kept")
	}
	h := newHost(map[string][]byte{"a": []byte(smallCSV)}, map[string]Kind{"stats": KindAggregate})
	if _, err := r.Run(ctx, build(t, "examples/programs/colstats", false), h); err != nil {
		t.Fatal(err)
	}
	if err := b.Close(ctx); err != nil {
		t.Fatal(err)
	}
	mustStillServe(t, r)
}
