//go:build !wasip1

package guest

import (
	"unsafe"

	"github.com/styx-tee/styx/internal/ml"
)

// Outside the sandbox every host call fails and the kernels run in plain Go.

func hostInputs(unsafe.Pointer, uint32) int32                         { return -errnoNotInSandbox }
func hostParams(unsafe.Pointer, uint32) int32                         { return -errnoNotInSandbox }
func hostOpen(unsafe.Pointer, uint32) int32                           { return -errnoNotInSandbox }
func hostCreate(unsafe.Pointer, uint32, unsafe.Pointer, uint32) int32 { return -errnoNotInSandbox }
func hostRead(int32, unsafe.Pointer, uint32) int32                    { return -errnoNotInSandbox }
func hostWrite(int32, unsafe.Pointer, uint32) int32                   { return -errnoNotInSandbox }
func hostClose(int32) int32                                           { return -errnoNotInSandbox }
func hostLog(unsafe.Pointer, uint32)                                  {}
func hostQueryRequest(unsafe.Pointer, uint32) int32                   { return -errnoNotInSandbox }
func hostQueryRespond(unsafe.Pointer, uint32) int32                   { return -errnoNotInSandbox }

func f64s(p unsafe.Pointer, n uint32) []float64 {
	if n == 0 {
		return nil
	}
	return unsafe.Slice((*float64)(p), n)
}

func hostDot(n uint32, x, y unsafe.Pointer) float64 { return ml.Dot(f64s(x, n), f64s(y, n)) }

func hostAxpy(n uint32, alpha float64, x, y unsafe.Pointer) {
	ml.Axpy(alpha, f64s(x, n), f64s(y, n))
}

func hostScal(n uint32, alpha float64, x unsafe.Pointer) { ml.Scal(alpha, f64s(x, n)) }

func hostGemv(trans, m, n uint32, alpha float64, a, x unsafe.Pointer, beta float64, y unsafe.Pointer) {
	xn, yn := n, m
	if trans != 0 {
		xn, yn = m, n
	}
	ml.Gemv(trans != 0, int(m), int(n), alpha, f64s(a, m*n), f64s(x, xn), beta, f64s(y, yn))
}

func hostCSVHeader(int32, unsafe.Pointer, uint32) int32 { return -errnoNotInSandbox }
func hostCSVFloats(int32, unsafe.Pointer, uint32) int32 { return -errnoNotInSandbox }

func hostHingeStep(eta, lambda, bias float64, b, n uint32, xb, lb, w, mean, std, scratch unsafe.Pointer) float64 {
	return ml.HingeStep(eta, lambda, bias, f64s(xb, b*n), f64s(lb, b), f64s(w, n), f64s(mean, n), f64s(std, n), f64s(scratch, 2*n+b))
}

func hostHingeEpoch(rate, lambda, bias float64, steps int64, batch, rows, n uint32, x, labels, w, mean, std, rng, order, scratch unsafe.Pointer) float64 {
	var o []uint32
	if blocks := (uint64(rows) + uint64(batch) - 1) / uint64(batch); blocks > 0 {
		o = unsafe.Slice((*uint32)(order), blocks)
	}
	return ml.HingeEpoch(rate, lambda, bias, int(steps), int(batch), f64s(x, rows*n), f64s(labels, rows), f64s(w, n),
		f64s(mean, n), f64s(std, n), (*ml.RNG)(rng), o, f64s(scratch, 2*n+min(batch, rows)))
}

func hostColVar(m, n uint32, a, mean, out unsafe.Pointer) {
	ml.ColVar(int(m), int(n), f64s(a, m*n), f64s(mean, n), f64s(out, n))
}

func hostQueryOpen() int32 { return -errnoNotInSandbox }

func hostCSVSplit(int32, uint32, unsafe.Pointer, unsafe.Pointer, uint32) int32 {
	return -errnoNotInSandbox
}
