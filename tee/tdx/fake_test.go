package tdx

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/tdx/tdxtest"
)

var fakeEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

var fakeNow = func() time.Time { return fakeEpoch.AddDate(1, 0, 0) }

func newFakeSigner(t *testing.T) *tdxtest.Signer {
	t.Helper()
	s, err := tdxtest.NewSigner(fakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	s.MRTD[0] = 0xfa
	return s
}

func fakeRef() *tee.ReferenceValues {
	return &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.TDX: {Measurements: []tee.Measurement{{"mrtd": "fa" + strings.Repeat("00", 47)}}},
	}}
}

// TestFakeRootFullPath runs the whole path without hardware: a faked configfs-tsm tree hands out
// a quote binding the report data, signed by a fake Intel chain; it verifies with the fake root
// pinned and is refused with the real Intel root.
func TestFakeRootFullPath(t *testing.T) {
	f := newFakeSigner(t)
	a := NewAttesterClient(f.Configfs())
	rd := tee.ReportData("test", []byte("fresh nonce"))
	ev, err := a.Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Roots: f.Roots(), Now: fakeNow}.Verify(ev, fakeRef(), rd)
	if err != nil {
		t.Fatalf("fake-root quote refused with the fake root: %v", err)
	}
	if c.Measurement != "fa"+strings.Repeat("00", 47) || c.Debug || c.Simulated {
		t.Errorf("claims %+v", c)
	}
	_, err = Verifier{Now: fakeNow}.Verify(ev, fakeRef(), rd)
	wantErr(t, err, tee.ErrSignature, "")
	// Before the chain is valid, or after it expired: refused.
	_, err = Verifier{Roots: f.Roots(), Now: func() time.Time { return fakeEpoch.AddDate(-1, 0, 0) }}.Verify(ev, fakeRef(), rd)
	wantErr(t, err, tee.ErrSignature, "")
}

func TestFakeRootDebugTD(t *testing.T) {
	f := newFakeSigner(t)
	f.Debug = true
	rd := tee.ReportData("test")
	q, err := f.Quote(rd[:])
	if err != nil {
		t.Fatal(err)
	}
	ev := tee.Evidence{Type: tee.TDX, Data: q}
	v := Verifier{Roots: f.Roots(), Now: fakeNow}
	_, err = v.Verify(ev, fakeRef(), rd)
	wantErr(t, err, tee.ErrDebug, "debug mode")
	ref := fakeRef()
	ref.AllowDebug = true
	if c, err := v.Verify(ev, ref, rd); err != nil || !c.Debug {
		t.Fatalf("debug TD with allow_debug: %v, %+v", err, c)
	}
	// With a minimum TCB set, go-tdx-guest's own debug check runs too and agrees.
	ref.AllowDebug = false
	ref.TEE[tee.TDX].MinTCB = strings.Repeat("00", 16)
	_, err = v.Verify(ev, ref, rd)
	wantErr(t, err, tee.ErrDebug, "")
}

// TestConfigfsRoot exercises the on-disk root mapping: without a provider tree the attester
// fails with an error, never a panic.
func TestConfigfsRoot(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "report"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, err := NewAttester(root).Evidence([64]byte{})
	if err == nil {
		t.Fatal("empty configfs tree produced evidence")
	}
	t.Log(err)
}
