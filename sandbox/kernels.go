package sandbox

import (
	"context"
	"encoding/binary"
	"math"
	"unsafe"

	"github.com/styx-tee/styx/internal/ml"
	"github.com/tetratelabs/wazero/api"
)

// The kernels read float64 vectors in place: a guest vector is a view of the guest's
// linear memory reinterpreted as []float64. That is sound because wasm memory is
// little-endian like the hosts we accept (New refuses big-endian hosts), the view is
// bounds-checked by Memory.Read, and we require 8-byte alignment (Go guests always
// have it); the memory cannot grow during a host call, so the view stays valid.
func kernelFuncs() []hostFunc {
	return []hostFunc{
		{"dot", kDot, []api.ValueType{i32, i32, i32}, []api.ValueType{f64}},
		{"axpy", kAxpy, []api.ValueType{i32, f64, i32, i32}, nil},
		{"scal", kScal, []api.ValueType{i32, f64, i32}, nil},
		{"gemv", kGemv, []api.ValueType{i32, i32, i32, f64, i32, i32, f64, i32}, nil},
		{"colvar", kColVar, []api.ValueType{i32, i32, i32, i32, i32}, nil},
		{"hinge_step", kHingeStep, []api.ValueType{f64, f64, f64, i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{f64}},
		{"hinge_epoch", kHingeEpoch, []api.ValueType{f64, f64, f64, i64, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32, i32}, []api.ValueType{f64}},
	}
}

var littleEndian = binary.NativeEndian.Uint16([]byte{1, 0}) == 1

// maxFloats is the most float64 values a guest vector can hold: their byte length must fit the
// 32-bit length guest memory is read with. (A bound of 2³²/8 let n = 2²⁹ through, whose byte
// length wrapped to 0 and passed the bounds check with a zero-length view.)
const maxFloats = math.MaxUint32 / 8

// floats returns a view of n float64 values at ptr in guest memory, or ends the run.
func floats(m api.Module, ptr uint32, n uint64) []float64 {
	if n == 0 {
		return nil
	}
	if n > maxFloats {
		panic(faultf(ErrGuestFault, "kernel call with %d elements", n))
	}
	b := guestBytes(m, ptr, uint32(n*8))
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%8 != 0 {
		panic(faultf(ErrGuestFault, "kernel call with a float64 vector at %#x not 8-byte aligned", ptr))
	}
	return unsafe.Slice((*float64)(p), n)
}

func kDot(_ context.Context, m api.Module, stack []uint64) {
	n := uint64(api.DecodeU32(stack[0]))
	x, y := floats(m, api.DecodeU32(stack[1]), n), floats(m, api.DecodeU32(stack[2]), n)
	stack[0] = api.EncodeF64(ml.Dot(x, y))
}

func kAxpy(_ context.Context, m api.Module, stack []uint64) {
	n := uint64(api.DecodeU32(stack[0]))
	alpha := api.DecodeF64(stack[1])
	ml.Axpy(alpha, floats(m, api.DecodeU32(stack[2]), n), floats(m, api.DecodeU32(stack[3]), n))
}

func kScal(_ context.Context, m api.Module, stack []uint64) {
	n := uint64(api.DecodeU32(stack[0]))
	ml.Scal(api.DecodeF64(stack[1]), floats(m, api.DecodeU32(stack[2]), n))
}

// kGemv: gemv(trans, m, n, alpha, a, x, beta, y) with a row-major m×n matrix a.
func kGemv(_ context.Context, mod api.Module, stack []uint64) {
	trans := api.DecodeU32(stack[0]) != 0
	m, n := uint64(api.DecodeU32(stack[1])), uint64(api.DecodeU32(stack[2]))
	alpha, beta := api.DecodeF64(stack[3]), api.DecodeF64(stack[6])
	xn, yn := n, m
	if trans {
		xn, yn = m, n
	}
	if m*n > maxFloats { // m, n < 2³² so m*n cannot overflow 64 bits
		panic(faultf(ErrGuestFault, "gemv of a %d×%d matrix", m, n))
	}
	a := floats(mod, api.DecodeU32(stack[4]), m*n)
	x, y := floats(mod, api.DecodeU32(stack[5]), xn), floats(mod, api.DecodeU32(stack[7]), yn)
	ml.Gemv(trans, int(m), int(n), alpha, a, x, beta, y)
}

// kHingeStep: hinge_step(eta, lambda, bias, b, n, xb, lb, w, mean, std, scratch) -> bias,
// one fused SVM step (ml.HingeStep) on a b×n mini-batch; scratch holds 2n+b values.
func kHingeStep(_ context.Context, mod api.Module, stack []uint64) {
	eta, lambda, bias := api.DecodeF64(stack[0]), api.DecodeF64(stack[1]), api.DecodeF64(stack[2])
	b, n := uint64(api.DecodeU32(stack[3])), uint64(api.DecodeU32(stack[4]))
	if b*n > maxFloats || 2*n+b > maxFloats {
		panic(faultf(ErrGuestFault, "hinge_step on a %d×%d batch", b, n))
	}
	ptr := func(i int) uint32 { return api.DecodeU32(stack[i]) }
	xb, lb := floats(mod, ptr(5), b*n), floats(mod, ptr(6), b)
	w, mean, std := floats(mod, ptr(7), n), floats(mod, ptr(8), n), floats(mod, ptr(9), n)
	scratch := floats(mod, ptr(10), 2*n+b)
	stack[0] = api.EncodeF64(ml.HingeStep(eta, lambda, bias, xb, lb, w, mean, std, scratch))
}

// kHingeEpoch: hinge_epoch(rate, lambda, bias, steps, batch, rows, n, x, labels, w, mean, std,
// rng, order, scratch) -> bias: one training epoch (ml.HingeEpoch) in one call, on the rows×n
// matrix x cut into blocks of batch rows. rng is the generator's state (two little-endian
// uint64, updated), order receives the epoch's permutation of the blocks, scratch holds
// 2n+min(batch, rows) values. The host draws the order itself, so one call does no more work
// than two passes over x, as gemv may. It returns early when the run's context ends, so that
// the run stops (and is classified: deadline, cancellation) as soon as control is back in the
// guest.
func kHingeEpoch(ctx context.Context, mod api.Module, stack []uint64) {
	rate, lambda, bias := api.DecodeF64(stack[0]), api.DecodeF64(stack[1]), api.DecodeF64(stack[2])
	steps := int64(stack[3])
	batch, rows, n := uint64(api.DecodeU32(stack[4])), uint64(api.DecodeU32(stack[5])), uint64(api.DecodeU32(stack[6]))
	// rows, n < 2³², so neither rows*n nor 2n+rows overflows 64 bits.
	if batch == 0 || steps < 0 || rows*n > maxFloats || 2*n+min(batch, rows) > maxFloats {
		panic(faultf(ErrGuestFault, "hinge_epoch on %d×%d rows in batches of %d from step %d", rows, n, batch, steps))
	}
	ptr := func(i int) uint32 { return api.DecodeU32(stack[i]) }
	x, labels := floats(mod, ptr(7), rows*n), floats(mod, ptr(8), rows)
	w, mean, std := floats(mod, ptr(9), n), floats(mod, ptr(10), n), floats(mod, ptr(11), n)
	state := guestBytes(mod, ptr(12), 16)
	order := uint32s(mod, ptr(13), (rows+batch-1)/batch)
	scratch := floats(mod, ptr(14), 2*n+min(batch, rows))

	// The steps write w and scratch: were order to overlap them, the steps would rewrite it
	// under their feet.
	if overlaps(ptr(13), uint64(len(order))*4, ptr(9), n*8) || overlaps(ptr(13), uint64(len(order))*4, ptr(14), uint64(len(scratch))*8) {
		panic(faultf(ErrGuestFault, "hinge_epoch with an order at %#x overlapping its weights or scratch", ptr(13)))
	}
	rng := ml.RNG{Hi: binary.LittleEndian.Uint64(state), Lo: binary.LittleEndian.Uint64(state[8:])}
	rng.Perm(order)
	binary.LittleEndian.PutUint64(state, rng.Hi)
	binary.LittleEndian.PutUint64(state[8:], rng.Lo)
	const chunk = 256
	for i := 0; i < len(order) && ctx.Err() == nil; i += chunk {
		part := order[i:min(i+chunk, len(order))]
		bias = ml.HingeSteps(rate, lambda, bias, int(steps)+i, int(batch), x, labels, w, mean, std, part, scratch)
	}
	stack[0] = api.EncodeF64(bias)
}

// overlaps reports whether the non-empty ranges of guest memory [a, a+an) and [b, b+bn) meet.
func overlaps(a uint32, an uint64, b uint32, bn uint64) bool {
	return an > 0 && bn > 0 && uint64(a) < uint64(b)+bn && uint64(b) < uint64(a)+an
}

// uint32s returns a view of n uint32 values at ptr in guest memory, or ends the run.
func uint32s(m api.Module, ptr uint32, n uint64) []uint32 {
	if n == 0 {
		return nil
	}
	if n > math.MaxUint32/4 {
		panic(faultf(ErrGuestFault, "kernel call with %d elements", n))
	}
	b := guestBytes(m, ptr, uint32(n*4))
	p := unsafe.Pointer(unsafe.SliceData(b))
	if uintptr(p)%4 != 0 {
		panic(faultf(ErrGuestFault, "kernel call with a uint32 vector at %#x not 4-byte aligned", ptr))
	}
	return unsafe.Slice((*uint32)(p), n)
}

// kColVar: colvar(m, n, a, mean, out): out[j] = Σᵢ (a[i][j] − mean[j])².
func kColVar(_ context.Context, mod api.Module, stack []uint64) {
	m, n := uint64(api.DecodeU32(stack[0])), uint64(api.DecodeU32(stack[1]))
	if m*n > maxFloats {
		panic(faultf(ErrGuestFault, "colvar of a %d×%d matrix", m, n))
	}
	a := floats(mod, api.DecodeU32(stack[2]), m*n)
	mean, out := floats(mod, api.DecodeU32(stack[3]), n), floats(mod, api.DecodeU32(stack[4]), n)
	ml.ColVar(int(m), int(n), a, mean, out)
}
