// Package ml is the linear support vector machine shared by the example programs, the
// hospitals demo and the benchmarks. Start with [ReadCSV] (or [ReadWDBC]) to get a
// [Dataset], then [Train] with a [Kernels] implementation: [Go] in plain Go, or the
// sandbox's native host kernels inside a WebAssembly guest (guest.Kernels). The same code
// runs on both sides, so a model trained in the sandbox is bit-for-bit the model trained
// in plain Go on the same data.
package ml

import "fmt"

// Kernels is the dense linear algebra the trainer needs, on float64 vectors and row-major
// matrices. Implementations must give the results of the reference loops in this file
// (the same order of operations), so training is reproducible across implementations.
type Kernels interface {
	// Dot returns x·y; len(x) must equal len(y).
	Dot(x, y []float64) float64
	// Axpy computes y += alpha*x.
	Axpy(alpha float64, x, y []float64)
	// Scal computes x *= alpha.
	Scal(alpha float64, x []float64)
	// Gemv computes y = alpha*A*x + beta*y (trans false: A is m×n, x has n, y has m) or
	// y = alpha*Aᵀ*x + beta*y (trans true: x has m, y has n). A is row-major with m*n
	// elements.
	Gemv(trans bool, m, n int, alpha float64, a, x []float64, beta float64, y []float64)
	// ColVar computes out[j] = Σᵢ (A[i][j] − mean[j])² for a row-major m×n matrix A.
	ColVar(m, n int, a, mean, out []float64)
	// HingeStep does one fused SVM training step; see the function [HingeStep].
	HingeStep(eta, lambda, bias float64, xb, lb, w, mean, std, scratch []float64) float64
	// HingeEpoch shuffles the mini-batches and does one training step on each; see the
	// function [HingeEpoch].
	HingeEpoch(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, rng *RNG, order []uint32, scratch []float64) float64
}

// Go is the pure-Go implementation of [Kernels]. The sandbox's host kernels call the
// same functions, so both sides compute identical bits.
type Go struct{}

var _ Kernels = Go{}

// Dot implements [Kernels].
func (Go) Dot(x, y []float64) float64 { return Dot(x, y) }

// Axpy implements [Kernels].
func (Go) Axpy(alpha float64, x, y []float64) { Axpy(alpha, x, y) }

// Scal implements [Kernels].
func (Go) Scal(alpha float64, x []float64) { Scal(alpha, x) }

// Gemv implements [Kernels].
func (Go) Gemv(trans bool, m, n int, alpha float64, a, x []float64, beta float64, y []float64) {
	Gemv(trans, m, n, alpha, a, x, beta, y)
}

// ColVar implements [Kernels].
func (Go) ColVar(m, n int, a, mean, out []float64) { ColVar(m, n, a, mean, out) }

// ColVar computes out[j] = Σᵢ (A[i][j] − mean[j])² for a row-major m×n matrix A. It
// panics if a dimension does not match.
func ColVar(m, n int, a, mean, out []float64) {
	if m < 0 || n < 0 || len(a) != m*n || len(mean) != n || len(out) != n {
		panic(fmt.Sprintf("ml: colvar of a %d×%d matrix with %d elements", m, n, len(a)))
	}
	clear(out)
	for i := range m {
		row := a[i*n : (i+1)*n : (i+1)*n]
		for j, v := range row {
			d := v - mean[j]
			out[j] += d * d
		}
	}
}

// HingeStep implements [Kernels].
func (Go) HingeStep(eta, lambda, bias float64, xb, lb, w, mean, std, scratch []float64) float64 {
	return HingeStep(eta, lambda, bias, xb, lb, w, mean, std, scratch)
}

// HingeEpoch implements [Kernels].
func (Go) HingeEpoch(rate, lambda, bias float64, steps, batch int, x, labels, w, mean, std []float64, rng *RNG, order []uint32, scratch []float64) float64 {
	return HingeEpoch(rate, lambda, bias, steps, batch, x, labels, w, mean, std, rng, order, scratch)
}

// Dot returns x·y with four partial sums. It panics if the lengths differ.
func Dot(x, y []float64) float64 {
	if len(x) != len(y) {
		panic(fmt.Sprintf("ml: dot of vectors of length %d and %d", len(x), len(y)))
	}
	var s0, s1, s2, s3 float64
	i := 0
	for ; i+4 <= len(x); i += 4 {
		xs, ys := x[i:i+4:i+4], y[i:i+4:i+4]
		s0 += xs[0] * ys[0]
		s1 += xs[1] * ys[1]
		s2 += xs[2] * ys[2]
		s3 += xs[3] * ys[3]
	}
	for ; i < len(x); i++ {
		s0 += x[i] * y[i]
	}
	return (s0 + s1) + (s2 + s3)
}

// Axpy computes y += alpha*x. It panics if the lengths differ.
func Axpy(alpha float64, x, y []float64) {
	if len(x) != len(y) {
		panic(fmt.Sprintf("ml: axpy of vectors of length %d and %d", len(x), len(y)))
	}
	y = y[:len(x)]
	for i, v := range x {
		y[i] += alpha * v
	}
}

// Scal computes x *= alpha.
func Scal(alpha float64, x []float64) {
	for i := range x {
		x[i] *= alpha
	}
}

// Gemv computes y = alpha*op(A)*x + beta*y for a row-major m×n matrix A, where op(A) is
// A or Aᵀ. It panics if a dimension does not match.
func Gemv(trans bool, m, n int, alpha float64, a, x []float64, beta float64, y []float64) {
	if m < 0 || n < 0 || len(a) != m*n {
		panic(fmt.Sprintf("ml: gemv of a %d×%d matrix with %d elements", m, n, len(a)))
	}
	if !trans {
		if len(x) != n || len(y) != m {
			panic(fmt.Sprintf("ml: gemv %d×%d with x %d and y %d", m, n, len(x), len(y)))
		}
		for i := range m {
			y[i] = alpha*Dot(a[i*n:(i+1)*n], x) + beta*y[i]
		}
		return
	}
	if len(x) != m || len(y) != n {
		panic(fmt.Sprintf("ml: gemvᵀ %d×%d with x %d and y %d", m, n, len(x), len(y)))
	}
	if beta != 1 {
		Scal(beta, y)
	}
	for i := range m {
		if c := alpha * x[i]; c != 0 {
			Axpy(c, a[i*n:(i+1)*n], y)
		}
	}
}
