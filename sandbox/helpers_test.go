package sandbox

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Programs are built once per test process with the local toolchain.
var (
	buildDir  string
	buildMu   sync.Mutex
	buildRuns = map[string]*buildResult{}
)

type buildResult struct {
	once sync.Once
	wasm []byte
	err  error
}

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "styx-sandbox-wasm-")
	if err != nil {
		panic(err)
	}
	buildDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// build compiles the Go package pkg (relative to the module root) for wasip1; reactor
// selects -buildmode=c-shared.
func build(t testing.TB, pkg string, reactor bool) []byte {
	t.Helper()
	key := fmt.Sprintf("%s|%v", pkg, reactor)
	buildMu.Lock()
	b := buildRuns[key]
	if b == nil {
		b = &buildResult{}
		buildRuns[key] = b
	}
	buildMu.Unlock()
	b.once.Do(func() {
		out := filepath.Join(buildDir, strings.ReplaceAll(key, "/", "_")+".wasm")
		args := []string{"build", "-trimpath", "-o", out}
		if reactor {
			args = append(args, "-buildmode=c-shared")
		}
		cmd := exec.Command(goTool(), append(args, "./"+pkg)...)
		cmd.Dir = ".."
		cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
		if msg, err := cmd.CombinedOutput(); err != nil {
			b.err = fmt.Errorf("building %s: %v\n%s", pkg, err, msg)
			return
		}
		b.wasm, b.err = os.ReadFile(out)
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.wasm
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(os.Getenv("GOROOT"), "bin", "go")
}

// memHost stands in for the engine's pipelines: inputs from memory, outputs to buffers,
// only declared outputs may be created.
type memHost struct {
	inputs   map[string][]byte
	kinds    map[string]string
	params   []byte
	declared map[string]Kind

	mu      sync.Mutex
	outputs map[string]*bytes.Buffer
	closed  map[string]bool
	logs    bytes.Buffer
}

func newHost(inputs map[string][]byte, declared map[string]Kind) *memHost {
	return &memHost{inputs: inputs, declared: declared, kinds: map[string]string{},
		outputs: map[string]*bytes.Buffer{}, closed: map[string]bool{}}
}

func (h *memHost) Inputs() []Input {
	var ins []Input
	for _, name := range sortedKeys(h.inputs) {
		kind := h.kinds[name]
		if kind == "" {
			kind = "text/csv"
		}
		ins = append(ins, Input{Name: name, Kind: kind, Size: int64(len(h.inputs[name]))})
	}
	return ins
}

func (h *memHost) Params() []byte { return h.params }

func (h *memHost) Open(name string) (io.Reader, error) {
	b, ok := h.inputs[name]
	if !ok {
		return nil, errors.New("no such input")
	}
	return bytes.NewReader(b), nil
}

func (h *memHost) Create(name string, kind Kind) (io.WriteCloser, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.declared[name] != kind || h.outputs[name] != nil {
		return nil, fmt.Errorf("output %q of kind %q not declared", name, kind)
	}
	h.outputs[name] = &bytes.Buffer{}
	return &memOut{h: h, name: name}, nil
}

func (h *memHost) Log(p []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.logs.Write(p)
}

func (h *memHost) output(name string) []byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	if b := h.outputs[name]; b != nil {
		return b.Bytes()
	}
	return nil
}

func (h *memHost) log() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.String()
}

type memOut struct {
	h    *memHost
	name string
}

func (o *memOut) Write(p []byte) (int, error) {
	o.h.mu.Lock()
	defer o.h.mu.Unlock()
	return o.h.outputs[o.name].Write(p)
}

func (o *memOut) Close() error {
	o.h.mu.Lock()
	defer o.h.mu.Unlock()
	o.h.closed[o.name] = true
	return nil
}

func sortedKeys[V any](m map[string]V) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	for i := range ks {
		for j := i + 1; j < len(ks); j++ {
			if ks[j] < ks[i] {
				ks[i], ks[j] = ks[j], ks[i]
			}
		}
	}
	return ks
}

// testCache shares compiled code between the tests' runtimes (compiling a Go program
// takes seconds, and tens of seconds under the race detector).
var testCache = NewCache()

func newRuntime(t testing.TB, cfg Config) *Runtime {
	t.Helper()
	cfg.Cache = testCache
	r, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(context.Background()) })
	return r
}

const smallCSV = "a,b,diagnosis\n1,2,0\n3,4,1\n5,6,1\n"

// mustStillServe runs rowcount on r to show a runtime survives what came before.
func mustStillServe(t *testing.T, r *Runtime) {
	t.Helper()
	h := newHost(map[string][]byte{"x": []byte(smallCSV)}, map[string]Kind{"count": KindAggregate})
	if _, err := r.Run(context.Background(), build(t, "examples/programs/rowcount", false), h); err != nil {
		t.Fatalf("runtime unusable afterwards: %v", err)
	}
	if got := string(h.output("count")); !strings.Contains(got, `"total":3`) {
		t.Fatalf("rowcount afterwards = %q", got)
	}
}
