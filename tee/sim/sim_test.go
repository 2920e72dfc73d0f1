package sim

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/styx-tee/styx/tee"
)

var meas = [32]byte{1, 2, 3}

func allowRef() *tee.ReferenceValues {
	return &tee.ReferenceValues{AllowSimulated: true, TEE: map[tee.Type]*tee.TypeReference{
		tee.Sim: {Measurements: []tee.Measurement{{"measurement": "010203" + strings.Repeat("00", 29)}}},
	}}
}

func TestSimRoundTrip(t *testing.T) {
	rd := tee.ReportData("test", []byte("nonce"))
	ev, err := New(meas, false).Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{}.Verify(ev, allowRef(), rd)
	if err != nil {
		t.Fatal(err)
	}
	if !c.Simulated || c.Type != tee.Sim || !strings.Contains(c.String(), "SIMULATED") {
		t.Errorf("claims %+v / %s", c, c)
	}
}

func TestSimRefusals(t *testing.T) {
	rd := tee.ReportData("test", []byte("nonce"))
	ev, _ := New(meas, false).Evidence(rd)
	debugEv, _ := New(meas, true).Evidence(rd)
	otherEv, _ := New([32]byte{9}, false).Evidence(rd)
	flipped := tee.Evidence{Type: tee.Sim, Data: append([]byte{}, ev.Data...)}
	flipped.Data[20] ^= 1
	stale := rd
	stale[0] ^= 1
	strict := allowRef()
	strict.AllowSimulated = false
	for _, tc := range []struct {
		name string
		ev   tee.Evidence
		ref  *tee.ReferenceValues
		want [64]byte
		err  error
	}{
		{"strict mode", ev, strict, rd, tee.ErrSimulated},
		{"debug", debugEv, allowRef(), rd, tee.ErrDebug},
		{"other measurement", otherEv, allowRef(), rd, tee.ErrMeasurement},
		{"stale nonce", ev, allowRef(), stale, tee.ErrReportData},
		{"flipped byte", flipped, allowRef(), rd, tee.ErrSignature},
		{"truncated", tee.Evidence{Type: tee.Sim, Data: ev.Data[:50]}, allowRef(), rd, tee.ErrMalformed},
		{"wrong type", tee.Evidence{Type: tee.TDX, Data: ev.Data}, allowRef(), rd, tee.ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verifier{}.Verify(tc.ev, tc.ref, tc.want)
			if !errors.Is(err, tc.err) {
				t.Fatalf("got %v, want %v", err, tc.err)
			}
		})
	}
	// Every byte is covered by the signature.
	for i := range ev.Data {
		d := append([]byte{}, ev.Data...)
		d[i] ^= 0x40
		if _, err := (Verifier{}).Verify(tee.Evidence{Type: tee.Sim, Data: d}, allowRef(), rd); err == nil {
			t.Errorf("byte %d flipped accepted", i)
		}
	}
}

func TestSimSealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seal.key")
	s, err := NewSealer(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("key file: %v %v", fi, err)
	}
	sealed, _ := s.Seal([]byte("secret"), "l")
	s2, err := NewSealer(path) // reopens the same key
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s2.Unseal(sealed, "l"); err != nil || string(pt) != "secret" {
		t.Fatalf("%q %v", pt, err)
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := NewSealer(path); err == nil {
		t.Error("short key file accepted")
	}
}

func FuzzVerify(f *testing.F) {
	ev, _ := New(meas, false).Evidence([64]byte{})
	f.Add(ev.Data)
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Verifier{}.Verify(tee.Evidence{Type: tee.Sim, Data: data}, allowRef(), [64]byte{})
		if err == nil && !c.Simulated {
			t.Fatal("simulated evidence without Simulated")
		}
	})
}
