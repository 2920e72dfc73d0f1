package guest

import (
	"fmt"
	"math"
	"unsafe"

	"github.com/styx-tee/styx/internal/ml"
)

func fptr(x []float64) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(x)) }

// Dot returns x·y, computed by the host.
func Dot(x, y []float64) float64 {
	mustLen("dot", len(x), len(y))
	return hostDot(uint32(len(x)), fptr(x), fptr(y))
}

// Axpy computes y += alpha*x on the host.
func Axpy(alpha float64, x, y []float64) {
	mustLen("axpy", len(x), len(y))
	hostAxpy(uint32(len(x)), alpha, fptr(x), fptr(y))
}

// Scal computes x *= alpha on the host.
func Scal(alpha float64, x []float64) { hostScal(uint32(len(x)), alpha, fptr(x)) }

// Gemv computes y = alpha*op(A)*x + beta*y on the host, for a row-major m×n matrix A
// (op(A) = Aᵀ if trans).
func Gemv(trans bool, m, n int, alpha float64, a, x []float64, beta float64, y []float64) {
	xn, yn := n, m
	if trans {
		xn, yn = m, n
	}
	if m < 0 || n < 0 || len(a) != m*n || len(x) != xn || len(y) != yn {
		panic(fmt.Sprintf("guest: gemv %d×%d with a %d, x %d, y %d", m, n, len(a), len(x), len(y)))
	}
	t := uint32(0)
	if trans {
		t = 1
	}
	hostGemv(t, uint32(m), uint32(n), alpha, fptr(a), fptr(x), beta, fptr(y))
}

// ColVar computes out[j] = Σᵢ (A[i][j] − mean[j])² on the host for a row-major m×n A.
func ColVar(m, n int, a, mean, out []float64) {
	if m < 0 || n < 0 || len(a) != m*n || len(mean) != n || len(out) != n {
		panic(fmt.Sprintf("guest: colvar %d×%d with a %d", m, n, len(a)))
	}
	hostColVar(uint32(m), uint32(n), fptr(a), fptr(mean), fptr(out))
}

// HingeStep does one fused SVM training step on the host (see ml.HingeStep): xb is a
// b×n row-major batch, lb its 0/1 labels, w the weights (updated), scratch 2n+b values.
// It returns the new bias.
func HingeStep(eta, lambda, bias float64, xb, lb, w, mean, std, scratch []float64) float64 {
	b, n := len(lb), len(w)
	if len(xb) != b*n || len(mean) != n || len(std) != n || len(scratch) != 2*n+b {
		panic(fmt.Sprintf("guest: hinge step with %d rows, %d features, x %d, scratch %d", b, n, len(xb), len(scratch)))
	}
	return hostHingeStep(eta, lambda, bias, uint32(b), uint32(n), fptr(xb), fptr(lb), fptr(w), fptr(mean), fptr(std), fptr(scratch))
}

// HingeEpoch does one training epoch on the host in one host call (see ml.HingeEpoch): it
// draws the order of the mini-batches from rng into order (one entry per block of batch rows)
// and does one fused step on each. x is the rows×n row-major training matrix, labels its 0/1
// labels, w the weights (updated), scratch 2n+min(batch, rows) values. It returns the new bias.
func HingeEpoch(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, rng *ml.RNG, order []uint32, scratch []float64) float64 {
	rows, n := len(labels), len(w)
	if batch <= 0 || steps < 0 || rows > math.MaxUint32 || n > math.MaxUint32 || batch > math.MaxUint32 || len(x) != rows*n ||
		len(mean) != n || len(std) != n || len(order) != (rows+batch-1)/batch || len(scratch) != 2*n+min(batch, rows) {
		panic(fmt.Sprintf("guest: hinge epoch with %d rows, %d features, batch %d, x %d, order %d, scratch %d", rows, n, batch, len(x), len(order), len(scratch)))
	}
	return hostHingeEpoch(rate, lambda, bias, int64(steps), uint32(batch), uint32(rows), uint32(n), fptr(x), fptr(labels),
		fptr(w), fptr(mean), fptr(std), unsafe.Pointer(rng), unsafe.Pointer(unsafe.SliceData(order)), fptr(scratch))
}

func mustLen(op string, a, b int) {
	if a != b {
		panic(fmt.Sprintf("guest: %s of vectors of length %d and %d", op, a, b))
	}
}

// Kernels runs the ml kernels on the host (it satisfies ml.Kernels).
type Kernels struct{}

// Dot implements ml.Kernels.
func (Kernels) Dot(x, y []float64) float64 { return Dot(x, y) }

// Axpy implements ml.Kernels.
func (Kernels) Axpy(alpha float64, x, y []float64) { Axpy(alpha, x, y) }

// Scal implements ml.Kernels.
func (Kernels) Scal(alpha float64, x []float64) { Scal(alpha, x) }

// Gemv implements ml.Kernels.
func (Kernels) Gemv(trans bool, m, n int, alpha float64, a, x []float64, beta float64, y []float64) {
	Gemv(trans, m, n, alpha, a, x, beta, y)
}

// HingeStep implements ml.Kernels.
func (Kernels) HingeStep(eta, lambda, bias float64, xb, lb, w, mean, std, scratch []float64) float64 {
	return HingeStep(eta, lambda, bias, xb, lb, w, mean, std, scratch)
}

// HingeEpoch implements ml.Kernels.
func (Kernels) HingeEpoch(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, rng *ml.RNG, order []uint32, scratch []float64) float64 {
	return HingeEpoch(rate, lambda, bias, steps, batch, x, labels, w, mean, std, rng, order, scratch)
}

// ColVar implements ml.Kernels.
func (Kernels) ColVar(m, n int, a, mean, out []float64) { ColVar(m, n, a, mean, out) }
