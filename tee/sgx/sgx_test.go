package sgx

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/styx-tee/styx/tee"
)

// TestAttesterGramineFiles fakes Gramine's /dev/attestation with plain files.
func TestAttesterGramineFiles(t *testing.T) {
	root := t.TempDir()
	os.WriteFile(filepath.Join(root, "attestation_type"), []byte("dcap\n"), 0o600)
	os.WriteFile(filepath.Join(root, "quote"), []byte("a quote"), 0o600)
	rd := tee.ReportData("test")
	ev, err := NewAttester(root).Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != tee.SGX || string(ev.Data) != "a quote" {
		t.Errorf("evidence %+v", ev)
	}
	got, _ := os.ReadFile(filepath.Join(root, "user_report_data"))
	if !bytes.Equal(got, rd[:]) {
		t.Error("report data not written")
	}
	os.WriteFile(filepath.Join(root, "attestation_type"), []byte("none"), 0o600)
	if _, err := NewAttester(root).Evidence(rd); err == nil {
		t.Error("attestation type none accepted")
	}
	if _, err := NewAttester(filepath.Join(root, "missing")).Evidence(rd); err == nil {
		t.Error("missing gramine files accepted")
	}
}

func TestVerifierUnsupported(t *testing.T) {
	_, err := Verifier{}.Verify(tee.Evidence{Type: tee.SGX, Data: []byte("q")}, &tee.ReferenceValues{}, [64]byte{})
	if !errors.Is(err, tee.ErrUnsupported) {
		t.Fatalf("got %v", err)
	}
}
