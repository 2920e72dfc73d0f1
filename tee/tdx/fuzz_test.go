package tdx

import (
	"testing"
	"time"

	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/styx-tee/styx/tee"
)

// FuzzVerify feeds arbitrary bytes as TDX evidence: no panic, and nothing verifies.
func FuzzVerify(f *testing.F) {
	f.Add(trimmed(testdata.RawQuote))
	f.Add(testdata.RawQuoteV5)
	f.Add(testdata.RawQuote[:48])
	v := Verifier{Now: func() time.Time { return time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC) }}
	ref := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{tee.TDX: {}}}
	f.Fuzz(func(t *testing.T, data []byte) {
		if _, err := v.Verify(tee.Evidence{Type: tee.TDX, Data: data}, ref, [64]byte{}); err == nil {
			t.Fatal("evidence accepted by a reference listing no measurement")
		}
	})
}
