package sandbox

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"
)

// The escape and exhaustion catalogue: each hostile program is contained with a clear
// error, and the same runtime serves the next run.

type hostileCase struct {
	name    string
	wasm    func(t testing.TB) []byte
	attack  string  // job params of the hostile Go program
	want    []error // any of
	logHas  string
	outputs bool // whether an output may exist (never for escapes)
	short   bool // run on the runtime with a short wall-time limit
}

func hostile(t testing.TB) []byte { return build(t, "sandbox/testdata/hostile", false) }

func raw(b []byte) func(t testing.TB) []byte { return func(testing.TB) []byte { return b } }

var (
	logFn   = wasmFunc{"styx", "log", []byte{tI32, tI32}, nil}
	readFn  = wasmFunc{"styx", "read", []byte{tI32, tI32, tI32}, []byte{tI32}}
	openFn  = wasmFunc{"styx", "open", []byte{tI32, tI32}, []byte{tI32}}
	dotFn   = wasmFunc{"styx", "dot", []byte{tI32, tI32, tI32}, []byte{tF64}}
	scalFn  = wasmFunc{"styx", "scal", []byte{tI32, tF64, tI32}, nil}
	gemvFn  = wasmFunc{"styx", "gemv", []byte{tI32, tI32, tI32, tF64, tI32, tI32, tF64, tI32}, nil}
	queryFn = wasmFunc{"styx", "query_respond", []byte{tI32, tI32}, []byte{tI32}}
	qopenFn = wasmFunc{"styx", "query_open", nil, []byte{tI32}}
	colvFn  = wasmFunc{"styx", "colvar", []byte{tI32, tI32, tI32, tI32, tI32}, nil}
	hingeFn = wasmFunc{"styx", "hinge_step", []byte{tF64, tF64, tF64, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32}, []byte{tF64}}
	epochFn = wasmFunc{"styx", "hinge_epoch", []byte{tF64, tF64, tF64, tI64, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32, tI32}, []byte{tF64}}
	csvFFn  = wasmFunc{"styx", "csv_floats", []byte{tI32, tI32, tI32}, []byte{tI32}}
	csvSFn  = wasmFunc{"styx", "csv_split", []byte{tI32, tI32, tI32, tI32, tI32}, []byte{tI32}}
)

func catalogue() []hostileCase {
	return []hostileCase{
		{name: "read a file", wasm: hostile, attack: "readfile", want: []error{ErrExit}, logHas: "read /etc/passwd"},
		{name: "open a socket", wasm: hostile, attack: "socket", want: []error{ErrExit}, logHas: "dial 127.0.0.1:80"},
		{name: "read the environment", wasm: hostile, attack: "env", want: []error{ErrExit}, logHas: "environ 0"},
		{name: "infinite loop", wasm: hostile, attack: "loop", want: []error{ErrTimeout}, short: true},
		{name: "memory bomb", wasm: hostile, attack: "membomb", want: []error{ErrMemory}},
		{name: "huge output", wasm: hostile, attack: "bigoutput", want: []error{ErrLimit}, outputs: true},
		{name: "deep recursion (Go stack)", wasm: hostile, attack: "recursion", want: []error{ErrMemory, ErrExit}},
		{name: "deep recursion (wasm stack)", wasm: raw(module(nil, call(0))), want: []error{ErrGuestFault}},
		{name: "malformed module", wasm: raw([]byte("\x00asm\x01\x00\x00\x00\x01\xff")), want: []error{ErrBadModule}},
		{name: "not wasm", wasm: raw([]byte("#!/bin/sh\nrm -rf /\n")), want: []error{ErrBadModule}},
		{name: "empty module", wasm: raw(nil), want: []error{ErrBadModule}},
		{name: "import outside the host API", wasm: raw(module([]wasmFunc{{"env", "system", []byte{tI32}, nil}}, nil)), want: []error{ErrBadModule}},
		{name: "unknown host function", wasm: raw(module([]wasmFunc{{"styx", "exec", nil, nil}}, nil)), want: []error{ErrBadModule}},
		{name: "log with out-of-bounds pointer", wasm: raw(module([]wasmFunc{logFn}, cat(i32c(-65536), i32c(100), call(0)))), want: []error{ErrGuestFault}},
		{name: "log with huge length", wasm: raw(module([]wasmFunc{logFn}, cat(i32c(16), i32c(-1), call(0)))), want: []error{ErrGuestFault}},
		{name: "open with out-of-bounds name", wasm: raw(module([]wasmFunc{openFn}, cat(i32c(65530), i32c(10), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "read into out-of-bounds buffer", wasm: raw(module([]wasmFunc{readFn}, cat(i32c(1), i32c(65000), i32c(4096), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "dot past the end of memory", wasm: raw(module([]wasmFunc{dotFn}, cat(i32c(1<<20), i32c(0), i32c(8), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "dot misaligned", wasm: raw(module([]wasmFunc{dotFn}, cat(i32c(4), i32c(1), i32c(8), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "gemv with overflowing dimensions", wasm: raw(module([]wasmFunc{gemvFn},
			cat(i32c(0), i32c(-1), i32c(-1), f64c(0), i32c(0), i32c(0), f64c(0), i32c(0), call(0)))), want: []error{ErrGuestFault}},
		{name: "query call outside a query", wasm: raw(module([]wasmFunc{queryFn}, cat(i32c(0), i32c(0), call(0), drop()))), want: nil},
		{name: "query_open outside a query", wasm: raw(module([]wasmFunc{qopenFn}, cat(call(0), drop()))), want: nil},
		{name: "colvar past the end of memory", wasm: raw(module([]wasmFunc{colvFn},
			cat(i32c(4096), i32c(30), i32c(0), i32c(0), i32c(0), call(0)))), want: []error{ErrGuestFault}},
		{name: "hinge_step with a scratch past the end", wasm: raw(module([]wasmFunc{hingeFn},
			cat(f64c(0), f64c(0), f64c(0), i32c(2), i32c(2), i32c(0), i32c(64), i32c(128), i32c(160), i32c(192), i32c(65528), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "hinge_step with overflowing dimensions", wasm: raw(module([]wasmFunc{hingeFn},
			cat(f64c(0), f64c(0), f64c(0), i32c(-1), i32c(-1), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "csv_floats past the end of memory", wasm: raw(module([]wasmFunc{csvFFn},
			cat(i32c(1), i32c(65536), i32c(1), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "csv_split on a handle that is not a table", wasm: raw(module([]wasmFunc{csvSFn},
			cat(i32c(7), i32c(0), i32c(0), i32c(8), i32c(1), call(0), drop()))), want: nil},
		{name: "hinge_step on an empty batch", wasm: raw(module([]wasmFunc{hingeFn},
			cat(f64c(0), f64c(0), f64c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), i32c(0), call(0), drop()))), want: nil},
		// 2²⁹ float64 values are exactly 2³² bytes: a byte length that wraps to 0 in 32 bits.
		{name: "dot of 2^29 elements (byte length wraps)", wasm: raw(module([]wasmFunc{dotFn}, cat(i32c(1<<29), i32c(0), i32c(0), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "scal of 2^29 elements", wasm: raw(module([]wasmFunc{scalFn}, cat(i32c(1<<29), f64c(2), i32c(0), call(0)))), want: []error{ErrGuestFault}},
		{name: "gemv of a 2^15 x 2^14 matrix", wasm: raw(module([]wasmFunc{gemvFn},
			cat(i32c(0), i32c(1<<15), i32c(1<<14), f64c(0), i32c(0), i32c(0), f64c(0), i32c(0), call(0)))), want: []error{ErrGuestFault}},
		{name: "colvar of 2^29 values", wasm: raw(module([]wasmFunc{colvFn},
			cat(i32c(1<<28), i32c(2), i32c(0), i32c(0), i32c(0), call(0)))), want: []error{ErrGuestFault}},
		{name: "csv_floats of 2^29 values at the end of memory", wasm: raw(module([]wasmFunc{csvFFn},
			cat(i32c(1), i32c(65528), i32c(1<<29), call(0), drop()))), want: []error{ErrGuestFault}},
		{name: "hinge_epoch on a small table", wasm: hingeEpoch(0, 1, 2, 2, 0, 64, 128, 160, 192, 224, 256, 512), want: nil},
		{name: "hinge_epoch on no rows", wasm: hingeEpoch(0, 32, 0, 30, 0, 0, 0, 0, 0, 0, 0, 0), want: nil},
		{name: "hinge_epoch with a zero batch", wasm: hingeEpoch(0, 0, 2, 2, 0, 64, 128, 160, 192, 224, 256, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch from a negative step", wasm: hingeEpoch(-1, 1, 2, 2, 0, 64, 128, 160, 192, 224, 256, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with overflowing dimensions", wasm: hingeEpoch(0, 1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0), want: []error{ErrGuestFault}},
		// 2²⁹ rows of one value are 2³² bytes: a byte length that wraps to 0 in 32 bits.
		{name: "hinge_epoch on 2^29 rows", wasm: hingeEpoch(0, 1<<29, 1<<29, 1, 0, 0, 0, 0, 0, 0, 0, 0), want: []error{ErrGuestFault}},
		{name: "hinge_epoch on 2^15 x 2^14 values", wasm: hingeEpoch(0, 1, 1<<15, 1<<14, 0, 0, 0, 0, 0, 0, 0, 0), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with the generator past the end", wasm: hingeEpoch(0, 1, 2, 2, 0, 64, 128, 160, 192, 65528, 256, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with the order past the end", wasm: hingeEpoch(0, 1, 2, 2, 0, 64, 128, 160, 192, 224, 65532, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with the order misaligned", wasm: hingeEpoch(0, 1, 2, 2, 0, 64, 128, 160, 192, 224, 258, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with a scratch past the end", wasm: hingeEpoch(0, 1, 2, 2, 0, 64, 128, 160, 192, 224, 256, 65512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with rows past the end", wasm: hingeEpoch(0, 1, 8192, 2, 0, 64, 128, 160, 192, 224, 256, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with its order over its scratch", wasm: hingeEpoch(0, 1, 1024, 2, 0, 16384, 128, 160, 192, 224, 256, 512), want: []error{ErrGuestFault}},
		{name: "hinge_epoch with its order over its weights", wasm: hingeEpoch(0, 1, 1024, 2, 0, 16384, 264, 160, 192, 224, 256, 32768), want: []error{ErrGuestFault}},
		{name: "trap", wasm: raw(module(nil, []byte{0x00})), want: []error{ErrGuestFault}}, // unreachable
	}
}

// hingeEpoch is a module that calls hinge_epoch once with these arguments (rate, lambda and
// bias 0) on its one page of zeroed memory.
func hingeEpoch(steps int64, batch, rows, n, x, labels, w, mean, std, rng, order, scratch int32) func(testing.TB) []byte {
	return raw(module([]wasmFunc{epochFn}, cat(f64c(0), f64c(0), f64c(0), i64c(steps), i32c(batch), i32c(rows), i32c(n),
		i32c(x), i32c(labels), i32c(w), i32c(mean), i32c(std), i32c(rng), i32c(order), i32c(scratch), call(0), drop())))
}

func TestEscapeCatalogue(t *testing.T) {
	t.Setenv("STYX_SANDBOX_SECRET", "do-not-leak")
	// The wall-time limit is generous so that, even on a loaded machine or under the race
	// detector, the other limits are what stops a program; the loop gets its own runtime.
	cfg := Config{MemoryLimit: 64 << 20, Timeout: 2 * time.Minute, MaxOutputBytes: 1 << 20}
	long := newRuntime(t, cfg)
	cfg.Timeout = 2 * time.Second
	short := newRuntime(t, cfg)
	for _, c := range catalogue() {
		t.Run(c.name, func(t *testing.T) {
			r := long
			if c.short {
				r = short
			}
			h := newHost(map[string][]byte{"x": []byte(smallCSV)}, map[string]Kind{"out": KindTable})
			h.params = []byte(c.attack)
			_, err := r.Run(context.Background(), c.wasm(t), h)
			t.Logf("error: %v", err)
			if !matches(err, c.want) {
				t.Fatalf("err = %v, want one of %v", err, c.want)
			}
			if err != nil && strings.Contains(err.Error(), "\n") {
				t.Fatalf("error has more than one line (a stack trace?): %q", err)
			}
			if !c.outputs && h.output("out") != nil {
				t.Fatalf("escaped: output %q", h.output("out"))
			}
			if !strings.Contains(h.log(), c.logHas) {
				t.Fatalf("log %q lacks %q", h.log(), c.logHas)
			}
			if hn, _ := os.Hostname(); len(hn) > 4 && strings.Contains(h.log(), hn) {
				t.Fatal("the node's hostname reached the guest")
			}
			if strings.Contains(h.log(), "do-not-leak") {
				t.Fatal("the node's environment reached the guest")
			}
			mustStillServe(t, r)
		})
	}
}

func matches(err error, want []error) bool {
	if want == nil {
		return err == nil
	}
	var re *RunError
	if !errors.As(err, &re) {
		return false
	}
	for _, w := range want {
		if errors.Is(err, w) {
			return true
		}
	}
	return false
}

func TestLogCap(t *testing.T) {
	r := newRuntime(t, Config{MaxLogBytes: 10 << 10})
	h := newHost(nil, nil)
	h.params = []byte("logspam")
	res, err := r.Run(context.Background(), hostile(t), h)
	if err != nil {
		t.Fatal(err)
	}
	if !res.LogTruncated || res.LogBytes != 10<<10 || len(h.log()) > 11<<10 || !strings.Contains(h.log(), "log truncated") {
		t.Fatalf("log cap not enforced: %+v, %d bytes", res, len(h.log()))
	}
}

func TestCanceledRun(t *testing.T) {
	r := newRuntime(t, Config{})
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(200 * time.Millisecond); cancel() }()
	h := newHost(nil, nil)
	h.params = []byte("loop")
	_, err := r.Run(ctx, hostile(t), h)
	if !errors.Is(err, ErrCanceled) {
		t.Fatalf("err = %v, want ErrCanceled", err)
	}
}

func TestWarmInstanceDiesOnFault(t *testing.T) {
	short := newRuntime(t, Config{Timeout: 2 * time.Second, MemoryLimit: 32 << 20})
	long := newRuntime(t, Config{Timeout: 2 * time.Minute, MemoryLimit: 32 << 20})
	wasm := build(t, "sandbox/testdata/hostile", true)
	for _, c := range []struct {
		query string
		want  error
		r     *Runtime
	}{{"loop", ErrTimeout, short}, {"membomb", ErrMemory, long}, {"huge-response", ErrLimit, long}} {
		p, err := c.r.Compile(context.Background(), wasm)
		if err != nil {
			t.Fatal(err)
		}
		in, err := c.r.Warm(context.Background(), p, newHost(nil, nil))
		if err != nil {
			t.Fatal(err)
		}
		if got, err := in.Query(context.Background(), []byte("echo")); err != nil || string(got) != "echo" {
			t.Fatalf("echo: %q, %v", got, err)
		}
		if _, err := in.Query(context.Background(), []byte(c.query)); !errors.Is(err, c.want) {
			t.Fatalf("%s: %v, want %v", c.query, err, c.want)
		}
		if _, err := in.Query(context.Background(), []byte("echo")); !errors.Is(err, c.want) || in.Err() == nil {
			t.Fatalf("%s: dead instance answered: %v", c.query, err)
		}
		in.Close(context.Background())
		if _, err := in.Query(context.Background(), []byte("echo")); !errors.Is(err, c.want) {
			t.Fatalf("closing a dead instance changed its error: %v", err)
		}
	}
	p, err := short.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	pool, err := short.NewPool(p, 1, func() Host { return newHost(nil, nil) })
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close(context.Background())
	if _, err := pool.Query(context.Background(), []byte("loop")); !errors.Is(err, ErrTimeout) {
		t.Fatalf("pool loop: %v", err)
	}
	if got, err := pool.Query(context.Background(), []byte("echo")); err != nil || string(got) != "echo" {
		t.Fatalf("pool did not replace its dead instance: %q, %v", got, err)
	}
}

func TestClosedInstance(t *testing.T) {
	r := newRuntime(t, Config{})
	in := warmPredict(t, r, []byte("{}"))
	in.Close(context.Background())
	if _, err := in.Query(context.Background(), []byte("a\n1\n")); !errors.Is(err, ErrClosed) {
		t.Fatalf("query on a closed instance: %v", err)
	}
}

// store8 writes the byte v at addr (i32.store8).
func store8(addr, v int32) []byte { return cat(i32c(addr), i32c(v), []byte{0x3a, 0x00, 0x00}) }

// A program could compute an input or output name from the data it read and ask for it: the
// refusal must not carry the name to the operator's log, even at debug level.
func TestGuestNamesNeverReachNodeLog(t *testing.T) {
	var buf bytes.Buffer
	lg := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	r := newRuntime(t, Config{Logger: lg})
	const secret = "SECRET-ROW-42"
	var body []byte
	for i, c := range secret {
		body = append(body, store8(int32(100+i), c)...)
	}
	kind := "log"
	for i, c := range kind {
		body = append(body, store8(int32(200+i), c)...)
	}
	createFn := wasmFunc{"styx", "create", []byte{tI32, tI32, tI32, tI32}, []byte{tI32}}
	body = cat(body, i32c(100), i32c(int32(len(secret))), call(0), drop(),
		i32c(100), i32c(int32(len(secret))), i32c(200), i32c(int32(len(kind))), call(1), drop())
	if _, err := r.Run(context.Background(), module([]wasmFunc{openFn, createFn}, body), newHost(nil, nil)); err != nil {
		t.Fatalf("run: %v", err)
	}
	if !strings.Contains(buf.String(), "may not open") || !strings.Contains(buf.String(), "may not create") {
		t.Fatalf("the refusals were not logged at all:\n%s", buf.String())
	}
	if strings.Contains(buf.String(), secret) {
		t.Fatalf("a name the program chose reached the node's log:\n%s", buf.String())
	}
}

// What a submitter sees of a failed run carries nothing the program chose: no exit code, no
// pointer or size from a faulting host call. The full error stays available for the log output.
func TestPublicErrorHidesGuestChoices(t *testing.T) {
	r := newRuntime(t, Config{})
	for _, tc := range []struct {
		name   string
		wasm   []byte
		want   error
		secret string
	}{
		{"exit code", module([]wasmFunc{{"wasi_snapshot_preview1", "proc_exit", []byte{tI32}, nil}}, cat(i32c(4242), call(0))), ErrExit, "4242"},
		{"faulting pointer", module([]wasmFunc{logFn}, cat(i32c(0x7abcd), i32c(77777), call(0))), ErrGuestFault, "77777"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := r.Run(context.Background(), tc.wasm, newHost(nil, nil))
			if !errors.Is(err, tc.want) {
				t.Fatalf("run: %v, want %v", err, tc.want)
			}
			if !strings.Contains(err.Error(), tc.secret) {
				t.Fatalf("the full error lost the detail %q: %v", tc.secret, err)
			}
			if pub := PublicError(err); strings.Contains(pub, tc.secret) || !strings.Contains(pub, tc.want.Error()) {
				t.Fatalf("public error %q: want the category %q without %q", pub, tc.want, tc.secret)
			}
		})
	}
	timeout := &RunError{Err: ErrTimeout, Op: "run", Detail: "limit 10s"}
	if got := timeout.Public(); got != timeout.Error() {
		t.Fatalf("a limit's detail is the sandbox's own and stays: %q", got)
	}
}
