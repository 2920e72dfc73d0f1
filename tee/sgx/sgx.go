// Package sgx is the Intel SGX backend for Styx running under Gramine. Start with NewAttester.
//
// The attester uses Gramine's pseudo-files: it writes the report data to
// <root>/user_report_data and reads the DCAP quote from <root>/quote (root is /dev/attestation
// inside a Gramine enclave). Verifying SGX quotes is not supported yet: Verifier refuses every
// quote with tee.ErrUnsupported, so an SGX node cannot be admitted until it is (see
// docs/attestation.md).
package sgx

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/styx-tee/styx/tee"
)

// DefaultRoot is where Gramine exposes its attestation pseudo-files.
const DefaultRoot = "/dev/attestation"

// Attester produces SGX DCAP quotes through Gramine.
type Attester struct{ root string }

var _ tee.Attester = (*Attester)(nil)

// NewAttester returns an attester over the pseudo-files under root ("" for DefaultRoot).
func NewAttester(root string) *Attester {
	if root == "" {
		root = DefaultRoot
	}
	return &Attester{root: root}
}

// Type implements tee.Attester.
func (a *Attester) Type() tee.Type { return tee.SGX }

// Evidence implements tee.Attester.
func (a *Attester) Evidence(reportData [64]byte) (tee.Evidence, error) {
	if t, err := os.ReadFile(filepath.Join(a.root, "attestation_type")); err == nil {
		if s := strings.TrimSpace(string(t)); s != "dcap" {
			return tee.Evidence{}, fmt.Errorf("sgx: gramine attestation type is %q, want dcap", s)
		}
	}
	if err := os.WriteFile(filepath.Join(a.root, "user_report_data"), reportData[:], 0o600); err != nil {
		return tee.Evidence{}, fmt.Errorf("sgx: write report data: %w", err)
	}
	f, err := os.Open(filepath.Join(a.root, "quote"))
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("sgx: read quote: %w", err)
	}
	defer f.Close()
	q, err := io.ReadAll(io.LimitReader(f, tee.MaxEvidenceSize+1))
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("sgx: read quote: %w", err)
	}
	if len(q) == 0 || len(q) > tee.MaxEvidenceSize {
		return tee.Evidence{}, fmt.Errorf("sgx: quote is %d bytes", len(q))
	}
	return tee.Evidence{Type: tee.SGX, Data: q}, nil
}

// Verifier refuses SGX evidence: quote verification is not implemented.
type Verifier struct{}

var _ tee.Verifier = Verifier{}

// Verify implements tee.Verifier; it always fails with tee.ErrUnsupported.
func (Verifier) Verify(ev tee.Evidence, ref *tee.ReferenceValues, want [64]byte) (*tee.Claims, error) {
	return nil, tee.Refuse(tee.SGX, tee.ErrUnsupported, "sgx quote verification is not implemented yet; run nodes on tdx or snp")
}
