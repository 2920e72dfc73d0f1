package sandbox

import (
	"context"
	"fmt"
	"sync"

	"github.com/tetratelabs/wazero/api"
)

// queryExport is the function a reactor module exports to answer one query:
// styx_query() -> i32 (0 on success). During the call the guest reads the request with
// query_request and answers with query_respond.
const queryExport = "styx_query"

// Instance is a warm reactor instance: instantiated and initialised once, then called
// once per query. Calls are serialised (the guest is single-threaded); use a [Pool] to
// serve queries in parallel. An instance that faults or times out is closed for good.
type Instance struct {
	mu     sync.Mutex
	r      *Runtime
	cfg    Config
	st     *run
	mod    api.Module
	mem    *memory // nil if wazero's default
	query  api.Function
	call   *callCtx    // the context of every query (see callCtx)
	unhook func() bool // stops watching the runtime's Close
	err    error       // set once the instance is dead
}

// Warm instantiates a reactor program (exports styx_query; a Go program built with
// -buildmode=c-shared) and runs its _initialize, during which it may open its inputs
// (e.g. the model) through host.
func (r *Runtime) Warm(ctx context.Context, p *Program, host Host) (*Instance, error) {
	if !p.reactor {
		return nil, &RunError{Err: ErrBadModule, Op: "init", Detail: "not a reactor module (no " + queryExport + ")"}
	}
	ctx, end, ok := r.begin(ctx)
	defer end()
	if !ok {
		return nil, &RunError{Err: ErrClosed, Op: "init"}
	}
	st := newRun(r.cfg, host)
	callCtx, cancel := context.WithTimeout(context.WithValue(ctx, runKey{}, st), r.cfg.Timeout)
	defer cancel()
	mem := newMemory(r.cfg.Logger)
	mod, err := r.rt.InstantiateModule(mem.attach(callCtx), p.cm, r.moduleConfig(st).WithStartFunctions("_initialize"))
	mem.leave()
	if err != nil {
		if mod != nil {
			_ = mod.Close(ctx)
		}
		mem.end()
		_ = st.closeAll()
		return nil, classify("init", ctx, err, st)
	}
	in := &Instance{r: r, cfg: r.cfg, st: st, mod: mod, mem: mem, query: mod.ExportedFunction(queryExport),
		call: newCallCtx(st, r.cfg.Timeout)}
	in.unhook = context.AfterFunc(r.done, in.call.closed)
	return in, nil
}

// Query sends req to the instance and returns its response.
func (in *Instance) Query(ctx context.Context, req []byte) ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err != nil {
		return nil, in.err
	}
	if !in.r.enter() {
		in.kill(ctx, &RunError{Err: ErrClosed, Op: "query"})
		return nil, in.err
	}
	defer in.r.inflight.Done()
	if !in.mem.enter() { // the memory was released: the runtime is closing
		in.kill(ctx, &RunError{Err: ErrClosed, Op: "query"})
		return nil, in.err
	}
	defer in.mem.leave()
	if len(req) > in.cfg.MaxMessage {
		return nil, &RunError{Err: ErrLimit, Op: "query", Detail: fmt.Sprintf("request of %d bytes, at most %d", len(req), in.cfg.MaxMessage)}
	}
	st := in.st
	st.reqBuf = append(st.reqBuf[:0], req...)
	st.req, st.resp, st.responded = st.reqBuf[:len(req):len(req)], st.resp[:0], false
	defer st.endQuery()
	end := in.call.start(ctx, in.r.done)
	res, err := in.query.Call(in.call)
	stopped := end()
	switch {
	case err != nil && stopped && ctxExit(err):
		in.kill(ctx, in.call.stopError("query"))
		return nil, in.err
	case err != nil:
		in.kill(ctx, classify("query", ctx, err, st))
		return nil, in.err
	case stopped:
		// The guest answered just before the deadline, the caller or the runtime stopped it:
		// the answer stands, but Done stays closed, so the instance cannot serve another call.
		in.kill(ctx, in.call.stopError("query"))
	}
	if status := int32(res[0]); status != 0 {
		return nil, &RunError{Err: ErrExit, Op: "query", ExitCode: uint32(status), Detail: "the program refused the query"}
	}
	if !st.responded {
		return nil, &RunError{Err: ErrExit, Op: "query", Detail: "the program returned no response"}
	}
	return append([]byte(nil), st.resp...), nil
}

func (in *Instance) kill(ctx context.Context, err error) {
	in.err = err
	in.unhook()
	_ = in.mod.Close(ctx)
	in.mem.end()
	_ = in.st.closeAll()
}

// Err returns why the instance is dead, or nil.
func (in *Instance) Err() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.err
}

// Close closes the instance and every handle it holds.
func (in *Instance) Close(ctx context.Context) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.err == nil {
		in.kill(ctx, &RunError{Err: ErrClosed, Op: "query"})
	}
	return nil
}
