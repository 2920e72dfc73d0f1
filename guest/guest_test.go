package guest

import (
	"errors"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
)

// Outside the sandbox the host calls fail cleanly and the kernels are the ml kernels.

func TestOutsideTheSandbox(t *testing.T) {
	if _, err := Inputs(); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("Inputs: %v", err)
	}
	if _, err := Open("x"); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("Open: %v", err)
	}
	if _, err := Create("x", Table); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("Create: %v", err)
	}
	if _, err := OpenTable("x"); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("OpenTable: %v", err)
	}
	if _, err := OpenQueryTable(); !errors.Is(err, ErrNotInSandbox) {
		t.Fatalf("OpenQueryTable: %v", err)
	}
	Logf("dropped %d", 1)
	if got := serveOne(); got == 0 {
		t.Fatal("serveOne without a handler succeeded")
	}
}

func TestKernelsMatchML(t *testing.T) {
	var k ml.Kernels = Kernels{}
	a := []float64{1, 2, 3, 4, 5, 6}
	y1, y2 := []float64{1, 1}, []float64{1, 1}
	k.Gemv(false, 2, 3, 2, a, []float64{1, 0, -1}, 3, y1)
	ml.Gemv(false, 2, 3, 2, a, []float64{1, 0, -1}, 3, y2)
	if y1[0] != y2[0] || y1[1] != y2[1] || k.Dot(a, a) != ml.Dot(a, a) {
		t.Fatal("guest kernels differ from ml")
	}
	out := make([]float64, 3)
	k.ColVar(2, 3, a, []float64{0, 0, 0}, out)
	if out[0] != 1+16 {
		t.Fatalf("colvar = %v", out)
	}
	// Outside the sandbox the epoch kernel runs ml.HingeEpoch on the same memory.
	x, labels := []float64{1, 2, 3, 4, 5, 6, 7, 8, 9}, []float64{1, 0, 1}
	mean, std := []float64{4, 5, 6}, []float64{2, 2, 2}
	w1, w2 := []float64{0.1, 0.2, 0.3}, []float64{0.1, 0.2, 0.3}
	r1, r2 := ml.NewRNG(1, 2), ml.NewRNG(1, 2)
	o1, o2 := make([]uint32, 2), make([]uint32, 2)
	b1 := k.HingeEpoch(0.5, 1e-3, 0.1, 3, 2, x, labels, w1, mean, std, &r1, o1, make([]float64, 8))
	b2 := ml.HingeEpoch(0.5, 1e-3, 0.1, 3, 2, x, labels, w2, mean, std, &r2, o2, make([]float64, 8))
	if b1 != b2 || w1[0] != w2[0] || w1[2] != w2[2] || r1 != r2 || o1[0] != o2[0] {
		t.Fatal("guest hinge epoch differs from ml")
	}
	defer func() {
		if recover() == nil {
			t.Fatal("mismatched lengths did not panic")
		}
	}()
	Dot(a, a[:2])
}

func TestSplitHeader(t *testing.T) {
	got := splitHeader([]byte("a\x00b c\x00\x00"))
	if len(got) != 3 || got[0] != "a" || got[1] != "b c" || got[2] != "" {
		t.Fatalf("splitHeader = %q", got)
	}
}
