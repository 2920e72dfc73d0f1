package sandbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
)

// HostModule is the name of the import module programs use for the host API.
const HostModule = "styx"

const (
	i32 = api.ValueTypeI32
	i64 = api.ValueTypeI64
	f64 = api.ValueTypeF64
)

type hostFunc struct {
	name           string
	fn             api.GoModuleFunc
	params, result []api.ValueType
}

func hostFuncs() []hostFunc {
	return append([]hostFunc{
		{"inputs", hInputs, []api.ValueType{i32, i32}, []api.ValueType{i32}},
		{"params", hParams, []api.ValueType{i32, i32}, []api.ValueType{i32}},
		{"open", hOpen, []api.ValueType{i32, i32}, []api.ValueType{i32}},
		{"create", hCreate, []api.ValueType{i32, i32, i32, i32}, []api.ValueType{i32}},
		{"read", hRead, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
		{"write", hWrite, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
		{"close", hClose, []api.ValueType{i32}, []api.ValueType{i32}},
		{"log", hLog, []api.ValueType{i32, i32}, nil},
		{"query_request", hQueryRequest, []api.ValueType{i32, i32}, []api.ValueType{i32}},
		{"query_respond", hQueryRespond, []api.ValueType{i32, i32}, []api.ValueType{i32}},
		{"query_open", hQueryOpen, nil, []api.ValueType{i32}},
	}, append(kernelFuncs(), tableFuncs()...)...)
}

var hostNames = func() map[string]bool {
	m := map[string]bool{}
	for _, f := range hostFuncs() {
		m[f.name] = true
	}
	return m
}()

func instantiateHostModule(ctx context.Context, rt wazero.Runtime) error {
	b := rt.NewHostModuleBuilder(HostModule)
	for _, f := range hostFuncs() {
		b.NewFunctionBuilder().WithGoModuleFunction(f.fn, f.params, f.result).Export(f.name)
	}
	_, err := b.Instantiate(ctx)
	return err
}

// guestBytes returns a view of n bytes at ptr in the guest's memory, or ends the run.
func guestBytes(m api.Module, ptr, n uint32) []byte {
	b, ok := m.Memory().Read(ptr, n)
	if !ok {
		panic(faultf(ErrGuestFault, "host call with pointer %#x and length %d outside guest memory of %d bytes",
			ptr, n, m.Memory().Size()))
	}
	return b
}

// copyOut implements the "returns the needed length, writes only if it fits" convention.
func copyOut(m api.Module, stack []uint64, data []byte) {
	ptr, capacity := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	if uint64(len(data)) <= uint64(capacity) {
		copy(guestBytes(m, ptr, uint32(len(data))), data)
	}
	stack[0] = api.EncodeI32(int32(len(data)))
}

func hInputs(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	ins := st.host.Inputs()
	if ins == nil {
		ins = []Input{}
	}
	b, err := json.Marshal(ins)
	if err != nil {
		panic(faultf(ErrGuestFault, "encoding the input list: %v", err))
	}
	copyOut(m, stack, b)
}

func hParams(ctx context.Context, m api.Module, stack []uint64) {
	copyOut(m, stack, stateOf(ctx).host.Params())
}

const maxName = 256

func guestString(m api.Module, ptr, n uint32) (string, bool) {
	if n > maxName {
		return "", false
	}
	return string(guestBytes(m, ptr, n)), true
}

func hOpen(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	name, ok := guestString(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	if !ok {
		stack[0] = api.EncodeI32(-errnoNotFound)
		return
	}
	r, err := st.host.Open(name)
	if err != nil {
		// Neither the name nor the error reaches the node's log: the program chose the name,
		// and it may have computed it from the data (a channel to the operator).
		st.cfg.Logger.Debug("sandbox: a program asked for an input it may not open")
		stack[0] = api.EncodeI32(-errnoNotFound)
		return
	}
	stack[0] = api.EncodeI32(st.add(&handle{name: name, r: r}))
}

func hCreate(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	name, ok1 := guestString(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1]))
	kind, ok2 := guestString(m, api.DecodeU32(stack[2]), api.DecodeU32(stack[3]))
	if !ok1 || !ok2 || !Kind(kind).Valid() {
		stack[0] = api.EncodeI32(-errnoDenied)
		return
	}
	w, err := st.host.Create(name, Kind(kind))
	if err != nil {
		st.cfg.Logger.Debug("sandbox: a program asked for an output it may not create")
		stack[0] = api.EncodeI32(-errnoDenied)
		return
	}
	id := st.add(&handle{name: name, w: w})
	if id < 0 {
		_ = w.Close()
	}
	stack[0] = api.EncodeI32(id)
}

func hRead(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	h := st.handles[api.DecodeI32(stack[0])]
	buf := guestBytes(m, api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	if h == nil || h.r == nil || h.table != nil {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	h.raw = true
	stack[0] = api.EncodeI32(h.read(buf))
}

// read fills buf (a view of guest memory) from the input; 0 means end of input.
func (h *handle) read(buf []byte) int32 {
	buf = buf[:min(len(buf), 1<<30)]
	for h.err == nil && len(buf) > 0 {
		n, err := h.r.Read(buf)
		h.err = err
		if n > 0 {
			return int32(n)
		}
	}
	if h.err == nil || errors.Is(h.err, io.EOF) {
		return 0
	}
	return -errnoIO
}

func hWrite(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	h := st.handles[api.DecodeI32(stack[0])]
	buf := guestBytes(m, api.DecodeU32(stack[1]), api.DecodeU32(stack[2]))
	if h == nil || h.w == nil {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	if st.outBytes+int64(len(buf)) > st.cfg.MaxOutputBytes {
		panic(faultf(ErrLimit, "output %q: more than %d bytes written to outputs", h.name, st.cfg.MaxOutputBytes))
	}
	st.outBytes += int64(len(buf))
	n, err := h.w.Write(buf)
	if err != nil {
		st.cfg.Logger.Debug("sandbox: output write failed", "output", h.name, "err", err)
		stack[0] = api.EncodeI32(-errnoIO)
		return
	}
	stack[0] = api.EncodeI32(int32(n))
}

func hClose(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	id := api.DecodeI32(stack[0])
	h := st.handles[id]
	if h == nil {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	delete(st.handles, id)
	if err := h.close(); err != nil {
		st.cfg.Logger.Debug("sandbox: close failed", "handle", h.name, "err", err)
		stack[0] = api.EncodeI32(-errnoIO)
		return
	}
	stack[0] = 0
}

func hLog(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	st.log(guestBytes(m, api.DecodeU32(stack[0]), api.DecodeU32(stack[1])))
}

func hQueryRequest(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	if st.req == nil {
		stack[0] = api.EncodeI32(-errnoNoQuery)
		return
	}
	copyOut(m, stack, st.req)
}

func hQueryRespond(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	ptr, n := api.DecodeU32(stack[0]), api.DecodeU32(stack[1])
	b := guestBytes(m, ptr, n)
	switch {
	case st.req == nil:
		stack[0] = api.EncodeI32(-errnoNoQuery)
		return
	case int(n) > st.cfg.MaxMessage:
		panic(faultf(ErrLimit, "query response of %d bytes, at most %d", n, st.cfg.MaxMessage))
	}
	st.resp = append(st.resp[:0], b...)
	st.responded = true
	stack[0] = 0
}

// hQueryOpen: query_open() -> handle. Opens the current query as an input (e.g. to parse
// it as a table with csv_header/csv_floats); the handle closes when the query ends.
func hQueryOpen(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	if st.req == nil {
		stack[0] = api.EncodeI32(-errnoNoQuery)
		return
	}
	id := st.add(&handle{name: "query", r: bytes.NewReader(st.req), query: true})
	if id > 0 {
		st.queryHandles = append(st.queryHandles, id)
	}
	stack[0] = api.EncodeI32(id)
}
