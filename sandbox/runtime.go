package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"
	"github.com/tetratelabs/wazero/sys"
)

// Runtime compiles and runs programs. Create one per node with [New]; it is safe for
// concurrent use, and each run gets its own instance, memory and limits.
type Runtime struct {
	cfg Config
	rt  wazero.Runtime

	mu    sync.Mutex
	cache map[[32]byte]*Program

	// Calls into instances in flight, so that Close ends them before wazero closes their
	// modules (see begin).
	callMu   sync.Mutex
	closed   bool
	inflight sync.WaitGroup
	done     context.Context // canceled by Close
	stop     context.CancelCauseFunc
}

// Program is a compiled module, cached by the sha256 of its bytes.
type Program struct {
	hash    [32]byte
	cm      wazero.CompiledModule
	cached  bool // owned by the runtime's cache
	command bool // exports _start
	reactor bool // exports _initialize and styx_query
}

// Hash returns the sha256 of the module's bytes.
func (p *Program) Hash() [32]byte { return p.hash }

// Close releases the compiled code of a program the cache did not keep (the cache was
// full); for cached programs it does nothing (they live as long as the runtime).
func (p *Program) Close(ctx context.Context) error {
	if p.cached {
		return nil
	}
	return p.cm.Close(ctx)
}

// MaxModuleSize caps the size of a module that [Runtime.Compile] accepts.
const MaxModuleSize = 64 << 20

// New creates a runtime from cfg.
func New(ctx context.Context, cfg Config) (*Runtime, error) {
	if !littleEndian {
		return nil, errors.New("sandbox: big-endian hosts are not supported")
	}
	cfg = cfg.withDefaults()
	rc := wazero.NewRuntimeConfig().
		WithCloseOnContextDone(true).
		WithMemoryLimitPages(cfg.memoryPages()).
		WithCoreFeatures(api.CoreFeaturesV2)
	if cfg.Cache != nil {
		rc = rc.WithCompilationCache(cfg.Cache.c)
	}
	rt := wazero.NewRuntimeWithConfig(ctx, rc)
	if _, err := wasi_snapshot_preview1.Instantiate(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: wasi: %w", err)
	}
	if err := instantiateHostModule(ctx, rt); err != nil {
		_ = rt.Close(ctx)
		return nil, fmt.Errorf("sandbox: host module: %w", err)
	}
	done, stop := context.WithCancelCause(context.Background())
	return &Runtime{cfg: cfg, rt: rt, cache: map[[32]byte]*Program{}, done: done, stop: stop}, nil
}

// Close ends the calls running in its instances (they fail with ErrClosed), waits for
// them to return, then releases every compiled module and instance. Later runs and queries
// fail with ErrClosed.
func (r *Runtime) Close(ctx context.Context) error {
	r.callMu.Lock()
	r.closed = true
	r.callMu.Unlock()
	r.stop(ErrClosed)
	r.inflight.Wait()
	return r.rt.Close(ctx)
}

// begin admits a call into an instance (a run, an initialisation, a query): it returns the
// call's context, which also ends when the runtime closes, and end, to call once the call
// has returned; ok is false once the runtime is closed. wazero closes a module's resources,
// its memory included, on the goroutine that closes it: Close must not do that under a
// guest still running on another goroutine.
func (r *Runtime) begin(ctx context.Context) (_ context.Context, end func(), ok bool) {
	r.callMu.Lock()
	defer r.callMu.Unlock()
	if r.closed {
		return ctx, func() {}, false
	}
	r.inflight.Add(1)
	ctx, cancel := context.WithCancelCause(ctx)
	stop := context.AfterFunc(r.done, func() { cancel(ErrClosed) })
	return ctx, func() { stop(); cancel(nil); r.inflight.Done() }, true
}

// enter admits a query into a warm instance, like begin without a context per call: the
// instance's callCtx watches the runtime's end. ok is false once the runtime is closed;
// otherwise call r.inflight.Done once the call has returned.
func (r *Runtime) enter() (ok bool) {
	r.callMu.Lock()
	defer r.callMu.Unlock()
	if r.closed {
		return false
	}
	r.inflight.Add(1)
	return true
}

// ctxExit reports whether err is wazero's exit for a context that ended.
func ctxExit(err error) bool {
	var exit *sys.ExitError
	return errors.As(err, &exit) && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled)
}

// Compile validates and compiles wasm, or returns the cached program with the same hash.
// A module may import only the host API of "styx" and "wasi_snapshot_preview1". Once
// MaxModules programs are cached, new ones are returned uncached: Close them after use.
func (r *Runtime) Compile(ctx context.Context, wasm []byte) (*Program, error) {
	if len(wasm) > MaxModuleSize {
		return nil, &RunError{Err: ErrBadModule, Op: "compile", Detail: fmt.Sprintf("%d bytes, at most %d", len(wasm), MaxModuleSize)}
	}
	h := sha256.Sum256(wasm)
	r.mu.Lock()
	p := r.cache[h]
	r.mu.Unlock()
	if p != nil {
		return p, nil
	}
	// The module's data segments are coalesced first (datasegs.go): same initial memory,
	// a fraction of the instantiation's cost.
	cm, err := r.rt.CompileModule(ctx, coalesceData(wasm))
	if err != nil {
		return nil, &RunError{Err: ErrBadModule, Op: "compile", Detail: firstLine(err.Error())}
	}
	p = &Program{hash: h, cm: cm}
	if err := p.check(); err != nil {
		_ = cm.Close(ctx)
		return nil, err
	}
	return r.remember(ctx, p), nil
}

// Cached returns the compiled program whose module bytes hash to hash, if this runtime's cache
// holds it, and nil otherwise. The cache lives in the runtime's memory (inside the TEE) and was
// filled by Compile from bytes it hashed itself, so a caller holding only the hash may run what
// it returns without reading and hashing the module again. Closing it does nothing.
func (r *Runtime) Cached(hash [32]byte) *Program {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.cache[hash]
}

func (r *Runtime) remember(ctx context.Context, p *Program) *Program {
	r.mu.Lock()
	defer r.mu.Unlock()
	if old := r.cache[p.hash]; old != nil {
		_ = p.cm.Close(ctx)
		return old
	}
	if len(r.cache) < r.cfg.MaxModules {
		p.cached = true
		r.cache[p.hash] = p
	}
	return p
}

func (p *Program) check() error {
	for _, f := range p.cm.ImportedFunctions() {
		mod, name, _ := f.Import()
		if (mod != HostModule || !hostNames[name]) && mod != wasi_snapshot_preview1.ModuleName {
			return &RunError{Err: ErrBadModule, Op: "compile", Detail: fmt.Sprintf("import %.64q.%.64q is not offered", mod, name)}
		}
	}
	if len(p.cm.ImportedMemories()) > 0 {
		return &RunError{Err: ErrBadModule, Op: "compile", Detail: "a module may not import memory"}
	}
	exp := p.cm.ExportedFunctions()
	_, p.command = exp["_start"]
	_, query := exp[queryExport]
	_, init := exp["_initialize"]
	p.reactor = query && init
	if !p.command && !p.reactor {
		return &RunError{Err: ErrBadModule, Op: "compile", Detail: "exports neither _start nor _initialize and " + queryExport}
	}
	return nil
}

// Result reports what a run used.
type Result struct {
	OutputBytes  int64
	LogBytes     int64
	LogTruncated bool
}

// Run compiles wasm (or takes it from the cache) and runs it to completion against host.
// Every handle still open when the program ends is closed; after an error the engine
// must discard the run's outputs.
func (r *Runtime) Run(ctx context.Context, wasm []byte, host Host) (Result, error) {
	p, err := r.Compile(ctx, wasm)
	if err != nil {
		return Result{}, err
	}
	defer p.Close(ctx)
	return r.RunProgram(ctx, p, host)
}

// RunProgram runs a compiled command program (one that exports _start).
func (r *Runtime) RunProgram(ctx context.Context, p *Program, host Host) (Result, error) {
	if !p.command {
		return Result{}, &RunError{Err: ErrBadModule, Op: "run", Detail: "not a command module (no _start)"}
	}
	ctx, end, ok := r.begin(ctx)
	defer end()
	if !ok {
		return Result{}, &RunError{Err: ErrClosed, Op: "run"}
	}
	st := newRun(r.cfg, host)
	runCtx, cancel := context.WithTimeout(context.WithValue(ctx, runKey{}, st), r.cfg.Timeout)
	defer cancel()
	mem := newMemory(r.cfg.Logger)
	mod, err := r.rt.InstantiateModule(mem.attach(runCtx), p.cm, r.moduleConfig(st).WithStartFunctions("_start"))
	if mod != nil {
		_ = mod.Close(ctx)
	}
	mem.leave()
	mem.end()
	closeErr := st.closeAll()
	res := Result{OutputBytes: st.outBytes, LogBytes: st.logBytes, LogTruncated: st.logTruncated}
	if err := classify("run", ctx, err, st); err != nil {
		return res, err
	}
	if closeErr != nil {
		return res, fmt.Errorf("sandbox: closing handles: %w", closeErr)
	}
	return res, nil
}

// moduleConfig denies everything: no args but argv[0], no env, no filesystem, fake
// clocks that do not advance with real time, a deterministic random source.
func (r *Runtime) moduleConfig(st *run) wazero.ModuleConfig {
	return wazero.NewModuleConfig().
		WithName("").
		WithArgs("program").
		WithStdout(stdoutWriter{st}).
		WithStderr(stderrWriter{st})
}

// classify turns a wazero error into a *RunError.
func classify(op string, parent context.Context, err error, st *run) error {
	if err == nil {
		return nil
	}
	var f fault
	if errors.As(err, &f) {
		e := *f.err
		e.Op = op
		return &e
	}
	var exit *sys.ExitError
	isExit := errors.As(err, &exit)
	switch {
	case isExit && (exit.ExitCode() == sys.ExitCodeDeadlineExceeded || exit.ExitCode() == sys.ExitCodeContextCanceled):
		if errors.Is(context.Cause(parent), ErrClosed) {
			return &RunError{Err: ErrClosed, Op: op, Detail: "the runtime was closed"}
		}
		if parent.Err() != nil {
			return &RunError{Err: ErrCanceled, Op: op, Detail: parent.Err().Error()}
		}
		return &RunError{Err: ErrTimeout, Op: op, Detail: fmt.Sprintf("limit %v", st.cfg.Timeout)}
	case st.outOfMemory(): // a Go guest exits (command) or traps (reactor) after reporting it
		return &RunError{Err: ErrMemory, Op: op, Detail: fmt.Sprintf("limit %d bytes", st.cfg.MemoryLimit)}
	case isExit:
		return &RunError{Err: ErrExit, Op: op, ExitCode: exit.ExitCode()}
	}
	return &RunError{Err: ErrGuestFault, Op: op, Detail: trapDetail(err)}
}

// trapDetail keeps only wazero's own description of a trap ("wasm error: ...") and drops
// the stack trace, whose function names come from the guest.
func trapDetail(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "wasm error: "); i >= 0 {
		return firstLine(msg[i:])
	}
	return "trap"
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	return string(bytes.ToValidUTF8([]byte(s[:min(len(s), 200)]), nil))
}
