package tdx

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-tdx-guest/testing/testdata"

	"github.com/styx-tee/styx/tee"
)

// golden is a real quote shipped by go-tdx-guest with a time at which its PCK chain is valid.
type golden struct {
	name  string
	quote []byte
	at    time.Time
}

func goldens() []golden {
	return []golden{
		{"v4", trimmed(testdata.RawQuote), time.Date(2023, time.July, 1, 1, 0, 0, 0, time.UTC)},
		{"v5", testdata.RawQuoteV5, time.Date(2026, time.February, 3, 1, 0, 0, 0, time.UTC)},
	}
}

func trimmed(q []byte) []byte {
	t, err := TrimQuote(q)
	if err != nil {
		panic(err)
	}
	return t
}

func TestUntrimmedSampleRefused(t *testing.T) {
	ref, rd := refFor(t, trimmed(testdata.RawQuote))
	v := goldens()[0].verifier()
	_, err := v.Verify(tee.Evidence{Type: tee.TDX, Data: testdata.RawQuote}, ref, rd)
	wantErr(t, err, tee.ErrMalformed, "39 unauthenticated bytes after the quote")
}

func (g golden) verifier() Verifier { return Verifier{Now: func() time.Time { return g.at }} }

// refFor accepts exactly the quote's own MRTD, the way an owner would pin it.
func refFor(t testing.TB, quote []byte) (*tee.ReferenceValues, [64]byte) {
	t.Helper()
	_, b, err := parse(tee.Evidence{Type: tee.TDX, Data: quote})
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	copy(rd[:], b.GetReportData())
	ref := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.TDX: {Measurements: []tee.Measurement{{"mrtd": hex.EncodeToString(b.GetMrTd())}}},
	}}
	return ref, rd
}

func TestGoldenQuotesVerify(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			ref, rd := refFor(t, g.quote)
			c, err := g.verifier().Verify(tee.Evidence{Type: tee.TDX, Data: g.quote}, ref, rd)
			if err != nil {
				t.Fatalf("real %s quote refused: %v", g.name, err)
			}
			if c.Type != tee.TDX || c.Simulated || len(c.Measurement) != 96 || len(c.TCB) != 32 {
				t.Errorf("claims %+v", c)
			}
			if !strings.Contains(c.String(), "tdx measurement "+c.Measurement) {
				t.Errorf("summary %q", c.String())
			}
		})
	}
}

func TestGoldenQuoteRefusals(t *testing.T) {
	for _, g := range goldens() {
		ev := tee.Evidence{Type: tee.TDX, Data: g.quote}
		ref, rd := refFor(t, g.quote)
		t.Run(g.name+"/wrong measurement", func(t *testing.T) {
			other := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
				tee.TDX: {Measurements: []tee.Measurement{{"mrtd": strings.Repeat("ab", 48)}}},
			}}
			_, err := g.verifier().Verify(ev, other, rd)
			wantErr(t, err, tee.ErrMeasurement, "is not listed")
		})
		t.Run(g.name+"/rtmr mismatch", func(t *testing.T) {
			m := tee.Measurement{"mrtd": ref.TEE[tee.TDX].Measurements[0]["mrtd"], "rtmr2": strings.Repeat("00", 47) + "01"}
			other := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{tee.TDX: {Measurements: []tee.Measurement{m}}}}
			_, err := g.verifier().Verify(ev, other, rd)
			wantErr(t, err, tee.ErrMeasurement, "")
		})
		t.Run(g.name+"/stale report data", func(t *testing.T) {
			stale := rd
			stale[0] ^= 1
			_, err := g.verifier().Verify(ev, ref, stale)
			wantErr(t, err, tee.ErrReportData, "evidence binds")
		})
		t.Run(g.name+"/tcb below minimum", func(t *testing.T) {
			high := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{tee.TDX: {
				Measurements: ref.TEE[tee.TDX].Measurements, MinTCB: strings.Repeat("ff", 16)}}}
			_, err := g.verifier().Verify(ev, high, rd)
			wantErr(t, err, tee.ErrTCB, "")
		})
		t.Run(g.name+"/expired chain", func(t *testing.T) {
			v := Verifier{Now: func() time.Time { return g.at.AddDate(40, 0, 0) }}
			_, err := v.Verify(ev, ref, rd)
			wantErr(t, err, tee.ErrSignature, "")
		})
		t.Run(g.name+"/sgx type not accepted", func(t *testing.T) {
			sgxOnly := &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{tee.SGX: {}}}
			_, err := g.verifier().Verify(ev, sgxOnly, rd)
			wantErr(t, err, tee.ErrType, "")
		})
		t.Run(g.name+"/trailing bytes", func(t *testing.T) {
			long := append(append([]byte{}, g.quote...), 0, 1, 2)
			_, err := g.verifier().Verify(tee.Evidence{Type: tee.TDX, Data: long}, ref, rd)
			if err == nil {
				t.Fatal("quote with trailing bytes accepted")
			}
		})
	}
}

// TestGoldenQuoteFlippedBytes flips one bit in every byte of the quote (every 17th with -short)
// and expects each variant refused.
func TestGoldenQuoteFlippedBytes(t *testing.T) {
	for _, g := range goldens() {
		t.Run(g.name, func(t *testing.T) {
			ref, rd := refFor(t, g.quote)
			stride := 1
			if testing.Short() {
				stride = 17
			}
			n := 0
			for i := 0; i < len(g.quote); i += stride {
				q := append([]byte{}, g.quote...)
				q[i] ^= 0x01
				if _, err := g.verifier().Verify(tee.Evidence{Type: tee.TDX, Data: q}, ref, rd); err == nil {
					t.Errorf("quote with byte %d flipped was accepted", i)
				}
				n++
			}
			t.Logf("%d of %d positions flipped, all refused", n, len(g.quote))
		})
	}
}

func wantErr(t *testing.T, err, sentinel error, msg string) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("got %v, want %v", err, sentinel)
	}
	var ve *tee.VerifyError
	if !errors.As(err, &ve) || ve.Type != tee.TDX {
		t.Fatalf("error %v is not a *tee.VerifyError for tdx", err)
	}
	if msg != "" && !strings.Contains(err.Error(), msg) {
		t.Fatalf("error %q does not say %q", err, msg)
	}
}
