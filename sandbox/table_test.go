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
