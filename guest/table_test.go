package guest

import (
	"bytes"
	"testing"
)

// sameBytes says what bytes.Equal says, whatever the lengths and wherever the difference.
func TestSameBytesIsBytesEqual(t *testing.T) {
	base := []byte("mean radius\x00mean texture\x00diagnosis\x00")
	for n := 0; n <= len(base); n++ {
		a := base[:n]
		if !sameBytes(a, bytes.Clone(a)) {
			t.Fatalf("%q differs from its copy", a)
		}
		for i := range n {
			b := bytes.Clone(a)
			b[i]++
			if sameBytes(a, b) {
				t.Fatalf("%q equals %q", a, b)
			}
		}
		if n > 0 && sameBytes(a, base[:n-1]) {
			t.Fatalf("%q equals its prefix", a)
		}
	}
}
