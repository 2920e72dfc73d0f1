package snp

import "testing"

func BenchmarkVerifyGolden(b *testing.B) {
	ev := goldenEvidence(b)
	ref, rd := refFor(b, ev)
	for b.Loop() {
		if _, err := golden.Verify(ev, ref, rd); err != nil {
			b.Fatal(err)
		}
	}
}
