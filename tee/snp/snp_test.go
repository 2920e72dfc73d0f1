package snp

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/verify/testdata"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/snp/snptest"
)

// goldenAt is a time at which the sample's VCEK (and AMD's Milan roots) are valid.
var goldenAt = time.Date(2022, time.September, 24, 1, 0, 0, 0, time.UTC)

func goldenEvidence(t testing.TB) tee.Evidence {
	t.Helper()
	table := abi.CertTable{Entries: []abi.CertTableEntry{{GUID: vcekGUID, RawCert: testdata.VcekBytes}}}
	ev, err := Compose(testdata.AttestationBytes, table.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	return tee.Evidence{Type: tee.SNP, Data: ev}
}

func refFor(t testing.TB, ev tee.Evidence) (*tee.ReferenceValues, [64]byte) {
	t.Helper()
	att, err := parse(ev)
	if err != nil {
		t.Fatal(err)
	}
	c := claims(att.GetReport())
	var rd [64]byte
	copy(rd[:], att.GetReport().GetReportData())
	// The sample comes from a guest launched with the debug policy bit: accept it here, and see
	// TestGoldenReportRefusals/debug for the refusal without allow_debug.
	return &tee.ReferenceValues{AllowDebug: true, TEE: map[tee.Type]*tee.TypeReference{
		tee.SNP: {Measurements: []tee.Measurement{{"measurement": c.Measurement}}},
	}}, rd
}

var golden = Verifier{Now: func() time.Time { return goldenAt }}

func TestGoldenReportVerifies(t *testing.T) {
	ev := goldenEvidence(t)
	ref, rd := refFor(t, ev)
	c, err := golden.Verify(ev, ref, rd)
	if err != nil {
		t.Fatalf("real SNP report refused: %v", err)
	}
	if c.Type != tee.SNP || c.Simulated || len(c.Measurement) != 96 || len(c.TCB) != 16 {
		t.Errorf("claims %+v", c)
	}
	t.Log(c)
}

func TestGoldenReportRefusals(t *testing.T) {
	ev := goldenEvidence(t)
	ref, rd := refFor(t, ev)
	t.Run("debug", func(t *testing.T) {
		strict := *ref
		strict.AllowDebug = false
		_, err := golden.Verify(ev, &strict, rd)
		wantErr(t, err, tee.ErrDebug)
	})
	t.Run("wrong measurement", func(t *testing.T) {
		other := &tee.ReferenceValues{AllowDebug: true, TEE: map[tee.Type]*tee.TypeReference{
			tee.SNP: {Measurements: []tee.Measurement{{"measurement": strings.Repeat("cd", 48)}}}}}
		_, err := golden.Verify(ev, other, rd)
		wantErr(t, err, tee.ErrMeasurement)
	})
	t.Run("stale report data", func(t *testing.T) {
		stale := rd
		stale[63] ^= 0x80
		_, err := golden.Verify(ev, ref, stale)
		wantErr(t, err, tee.ErrReportData)
	})
	t.Run("tcb below minimum", func(t *testing.T) {
		high := &tee.ReferenceValues{AllowDebug: true, TEE: map[tee.Type]*tee.TypeReference{tee.SNP: {
			Measurements: ref.TEE[tee.SNP].Measurements, MinTCB: "7f7f7f7f0000007f"}}}
		_, err := golden.Verify(ev, high, rd)
		wantErr(t, err, tee.ErrTCB)
	})
	t.Run("tcb at minimum", func(t *testing.T) {
		c, err := golden.Verify(ev, ref, rd)
		if err != nil {
			t.Fatal(err)
		}
		at := &tee.ReferenceValues{AllowDebug: true, TEE: map[tee.Type]*tee.TypeReference{tee.SNP: {
			Measurements: ref.TEE[tee.SNP].Measurements, MinTCB: c.TCB}}}
		if _, err := golden.Verify(ev, at, rd); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("expired vcek", func(t *testing.T) {
		v := Verifier{Now: func() time.Time { return goldenAt.AddDate(30, 0, 0) }}
		_, err := v.Verify(ev, ref, rd)
		wantErr(t, err, tee.ErrSignature)
	})
	t.Run("report without certificates", func(t *testing.T) {
		_, err := golden.Verify(tee.Evidence{Type: tee.SNP, Data: testdata.AttestationBytes}, ref, rd)
		wantErr(t, err, tee.ErrMalformed)
	})
	t.Run("extra ark in table", func(t *testing.T) {
		table := abi.CertTable{Entries: []abi.CertTableEntry{
			{GUID: vcekGUID, RawCert: testdata.VcekBytes},
			{GUID: vlekGUID, RawCert: []byte("x")},
		}}
		d := append(append([]byte{}, testdata.AttestationBytes...), table.Marshal()...)
		_, err := golden.Verify(tee.Evidence{Type: tee.SNP, Data: d}, ref, rd)
		wantErr(t, err, tee.ErrMalformed)
	})
}

// TestGoldenReportFlippedBytes flips one bit in every byte (every 13th with -short).
func TestGoldenReportFlippedBytes(t *testing.T) {
	ev := goldenEvidence(t)
	ref, rd := refFor(t, ev)
	stride := 1
	if testing.Short() {
		stride = 13
	}
	n := 0
	for i := 0; i < len(ev.Data); i += stride {
		d := append([]byte{}, ev.Data...)
		d[i] ^= 0x01
		if _, err := golden.Verify(tee.Evidence{Type: tee.SNP, Data: d}, ref, rd); err == nil {
			t.Errorf("evidence with byte %d flipped was accepted", i)
		}
		n++
	}
	t.Logf("%d of %d positions flipped, all refused", n, len(ev.Data))
}

// fake is go-sev-guest's test-only AMD signer (ARK → ASK → VCEK) through snptest.
type fake struct{ *snptest.Signer }

var fakeEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func newFake(t testing.TB) *fake {
	s, err := snptest.NewSigner(fakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	s.Measurement[0] = 0x5e
	return &fake{s}
}

func (f *fake) report(t testing.TB, reportData []byte) []byte {
	r, err := f.Report(reportData)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fake) ref() *tee.ReferenceValues {
	return &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.SNP: {Measurements: []tee.Measurement{{"measurement": "5e" + strings.Repeat("00", 47)}}},
	}}
}

var fakeNow = func() time.Time { return fakeEpoch.AddDate(1, 0, 0) }

func TestFakeRootFullPath(t *testing.T) {
	f := newFake(t)
	rd := tee.ReportData("test", []byte("nonce"))
	ev, err := NewAttesterClient(f.Configfs()).Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Roots: f.Roots(), Now: fakeNow}.Verify(ev, f.ref(), rd)
	if err != nil {
		t.Fatalf("fake-root report refused with the fake root: %v", err)
	}
	if c.Debug || c.Simulated || !strings.HasPrefix(c.Measurement, "5e00") {
		t.Errorf("claims %+v", c)
	}
	_, err = Verifier{Now: fakeNow}.Verify(ev, f.ref(), rd)
	wantErr(t, err, tee.ErrSignature)
}

func TestFakeRootDebugGuest(t *testing.T) {
	f := newFake(t)
	f.Debug = true
	rd := tee.ReportData("test")
	table := abi.CertTable{Entries: []abi.CertTableEntry{{GUID: vcekGUID, RawCert: f.VCEK()}}}
	d, err := Compose(f.report(t, rd[:]), table.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verifier{Roots: f.Roots(), Now: fakeNow}.Verify(tee.Evidence{Type: tee.SNP, Data: d}, f.ref(), rd)
	wantErr(t, err, tee.ErrDebug)
}

func wantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	var ve *tee.VerifyError
	if !errors.Is(err, sentinel) || !errors.As(err, &ve) || ve.Type != tee.SNP {
		t.Fatalf("got %v, want a tee.VerifyError for snp wrapping %v", err, sentinel)
	}
}
