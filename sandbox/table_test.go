package sandbox

import (
	"bytes"
	"testing"

	"github.com/styx-tee/styx/internal/ml"
)

// FuzzTable checks that the host's table parser never panics, returns whole rows, and
// agrees with ml.ReadCSV on the values whenever both accept the input.
func FuzzTable(f *testing.F) {
	f.Add([]byte("a,diagnosis\n1,0\n2.5,1\n"), uint8(2))
	f.Add([]byte("a,b,diagnosis\n1,2,0\n3,4\n"), uint8(3))
	f.Add([]byte("a,diagnosis\n\"1\",0\n 7 ,1\n"), uint8(5))
	f.Add([]byte("a,diagnosis\nNaN,0\n"), uint8(2))
	f.Add([]byte(""), uint8(1))
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		tb := newTable(bytes.NewReader(in))
		buf := make([]float64, int(size)+1)
		var got []float64
		for range 10000 {
			n := tb.fill(buf)
			if n < 0 {
				return // refused (bad row or buffer smaller than a row)
			}
			if n == 0 {
				break
			}
			if int(n)%tb.width != 0 || int(n) > len(buf) {
				t.Fatalf("fill returned %d for width %d and buffer %d", n, tb.width, len(buf))
			}
			got = append(got, buf[:n]...)
		}
		if tb.err != 0 || tb.pending != nil {
			return
		}
		d, err := ml.ReadCSV(bytes.NewReader(in), ml.LabelColumn)
		if err != nil {
			return
		}
		want, err := ml.FromTable(tb.header, got, ml.LabelColumn)
		if err != nil {
			t.Fatalf("ml accepts what FromTable refuses: %v", err)
		}
		if len(want.X) != len(d.X) || len(want.Labels) != len(d.Labels) {
			t.Fatalf("host parsed %d values, ml %d", len(want.X), len(d.X))
		}
		for i := range d.X {
			if want.X[i] != d.X[i] {
				t.Fatalf("value %d: host %v, ml %v", i, want.X[i], d.X[i])
			}
		}
	})
}

func TestTableSplit(t *testing.T) {
	tb := newTable(bytes.NewReader([]byte("a,diagnosis,b\n1,0,2\n3,1,4\n5,0,6\n")))
	x, y := make([]float64, 4), make([]float64, 2)
	if n := tb.split(1, x, y); n != 2 || x[0] != 1 || x[1] != 2 || x[2] != 3 || x[3] != 4 || y[1] != 1 {
		t.Fatalf("split = %d, x %v, y %v", n, x, y)
	}
	if n := tb.split(1, x, y); n != 1 || x[0] != 5 || x[1] != 6 || y[0] != 0 {
		t.Fatalf("second split = %d, x %v, y %v", n, x, y)
	}
	if n := tb.split(1, x, y); n != 0 {
		t.Fatalf("split at the end = %d", n)
	}
	bad := newTable(bytes.NewReader([]byte("a,diagnosis\n1,0\nx,1\n")))
	if n := bad.split(1, x[:2], y); n != 1 {
		t.Fatalf("rows before a bad one = %d", n)
	}
	if n := bad.split(1, x[:2], y); n != -errnoFormat {
		t.Fatalf("bad row = %d", n)
	}
}
