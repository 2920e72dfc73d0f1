package tdx

import (
	"testing"

	"github.com/styx-tee/styx/tee"
)

func BenchmarkVerifyGoldenV4(b *testing.B) {
	g := goldens()[0]
	ref, rd := refFor(b, g.quote)
	v := g.verifier()
	ev := tee.Evidence{Type: tee.TDX, Data: g.quote}
	for b.Loop() {
		if _, err := v.Verify(ev, ref, rd); err != nil {
			b.Fatal(err)
		}
	}
}
