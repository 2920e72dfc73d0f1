package snp

import (
	"bytes"
	"errors"
	"testing"

	sevtest "github.com/google/go-sev-guest/testing"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/snp/snptest"
)

// fakeDevice answers MSG_KEY_REQ like the firmware: one key per exact request.
func fakeDevice(t *testing.T, key []byte) *sevtest.Device {
	d, err := snptest.DerivedKeyDevice(DerivedKeyRequest(0), key)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDerivedKeySealer(t *testing.T) {
	s, err := NewDerivedKeySealer(fakeDevice(t, bytes.Repeat([]byte{0x42}, 32)), 0)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := s.Seal([]byte("cluster secret"), "cluster")
	if err != nil {
		t.Fatal(err)
	}
	again, err := NewDerivedKeySealer(fakeDevice(t, bytes.Repeat([]byte{0x42}, 32)), 0)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := again.Unseal(sealed, "cluster"); err != nil || string(pt) != "cluster secret" {
		t.Fatalf("same guest: %q %v", pt, err)
	}
	// Another image (another derived key) cannot unseal.
	other, _ := NewDerivedKeySealer(fakeDevice(t, bytes.Repeat([]byte{0x43}, 32)), 0)
	if _, err := other.Unseal(sealed, "cluster"); !errors.Is(err, tee.ErrUnseal) {
		t.Fatalf("other guest: %v", err)
	}
	// A request the firmware does not serve (another VMPL here) is an error.
	if _, err := NewDerivedKeySealer(fakeDevice(t, bytes.Repeat([]byte{0x42}, 32)), 1); err == nil {
		t.Fatal("unserved key request accepted")
	}
	if _, err := OpenDerivedKeySealer(t.TempDir()+"/no-sev-guest", 0); err == nil {
		t.Fatal("missing device accepted")
	}
}
