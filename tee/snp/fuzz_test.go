package snp

import (
	"testing"

	"github.com/styx-tee/styx/tee"
)

// FuzzVerify feeds arbitrary bytes as SNP evidence: no panic, and nothing verifies.
func FuzzVerify(f *testing.F) {
	f.Add(goldenEvidence(f).Data)
	f.Add(make([]byte, 1200))
	ref := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{tee.SNP: {}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := golden.Verify(tee.Evidence{Type: tee.SNP, Data: data}, ref, [64]byte{}); err == nil {
			t.Fatal("evidence accepted by a reference listing no measurement")
		}
	})
}
