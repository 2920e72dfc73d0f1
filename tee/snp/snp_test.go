package snp

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/testdata"
	"github.com/google/go-sev-guest/verify/trust"

	"github.com/styx-tee/styx/tee"
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

// fake is go-sev-guest's test-only AMD signer (ARK → ASK → VCEK) with reports built around it.
type fake struct {
	signer      *sevtest.AmdSigner
	measurement [48]byte
	debug       bool
}

var fakeEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func newFake(t testing.TB) *fake {
	s, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", fakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	f := &fake{signer: s}
	f.measurement[0] = 0x5e
	return f
}

func (f *fake) report(t testing.TB, reportData []byte) []byte {
	raw := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: reportData})
	r := raw[:abi.ReportSize]
	binary.LittleEndian.PutUint64(r[0x08:0x10], abi.SnpPolicyToBytes(abi.SnpPolicy{Debug: f.debug}))
	copy(r[0x90:0xC0], f.measurement[:])
	sr, ss, err := f.signer.Sign(abi.SignedComponent(r))
	if err != nil {
		t.Fatal(err)
	}
	if err := abi.SetSignature(sr, ss, r); err != nil {
		t.Fatal(err)
	}
	return r
}

func (f *fake) roots() map[string][]*trust.AMDRootCerts {
	r := trust.AMDRootCertsProduct("Milan")
	r.ProductCerts = &trust.ProductCerts{Ark: f.signer.Ark, Ask: f.signer.Ask}
	return map[string][]*trust.AMDRootCerts{"Milan": {r}}
}

func (f *fake) ref() *tee.ReferenceValues {
	return &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.SNP: {Measurements: []tee.Measurement{{"measurement": "5e" + strings.Repeat("00", 47)}}},
	}}
}

// configfs fakes the kernel's configfs-tsm tree with an SNP provider signing with the fake chain.
func (f *fake) configfs(t testing.TB) configfsi.Client {
	rs := faketsm.ReportV7(0)
	base := rs.ReadAttr
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(Provider + "\n"), nil
		case "outblob":
			in := e.InAttrs["inblob"].Value
			if len(in) != 64 {
				return nil, errors.New("inblob is not 64 bytes")
			}
			return f.report(t, in), nil
		case "auxblob":
			return f.signer.CertTableBytes()
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

var fakeNow = func() time.Time { return fakeEpoch.AddDate(1, 0, 0) }

func TestFakeRootFullPath(t *testing.T) {
	f := newFake(t)
	rd := tee.ReportData("test", []byte("nonce"))
	ev, err := NewAttesterClient(f.configfs(t)).Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Roots: f.roots(), Now: fakeNow}.Verify(ev, f.ref(), rd)
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
	f.debug = true
	rd := tee.ReportData("test")
	table := abi.CertTable{Entries: []abi.CertTableEntry{{GUID: vcekGUID, RawCert: f.signer.Vcek.Raw}}}
	d, err := Compose(f.report(t, rd[:]), table.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	_, err = Verifier{Roots: f.roots(), Now: fakeNow}.Verify(tee.Evidence{Type: tee.SNP, Data: d}, f.ref(), rd)
	wantErr(t, err, tee.ErrDebug)
}

func wantErr(t *testing.T, err, sentinel error) {
	t.Helper()
	var ve *tee.VerifyError
	if !errors.Is(err, sentinel) || !errors.As(err, &ve) || ve.Type != tee.SNP {
		t.Fatalf("got %v, want a tee.VerifyError for snp wrapping %v", err, sentinel)
	}
}
