// Package tee is the attestation layer of Styx: the evidence a trusted execution environment
// produces, the claims a verifier extracts from it, the reference values those claims must meet,
// and the sealing of node-local secrets.
//
// Start with the three small interfaces. An Attester (tee/sim, tee/tdx, tee/snp, tee/sgx) turns
// 64 bytes of report data into Evidence; a Verifier checks Evidence against ReferenceValues and
// the report data the caller expects and returns Claims or an error that unwraps to one of the
// sentinels below; a Sealer protects node-local secrets at rest. Bind what the evidence vouches
// for with ReportData, never by hand. Parse reference values with ParseReferenceValues.
//
// Simulated evidence (tee/sim) proves nothing: Claims.Simulated says so, and every verifier
// refuses it unless the reference values set allow_simulated.
package tee

import (
	"errors"
	"fmt"
)

// A Type names a TEE technology.
type Type string

// The TEE types Styx knows.
const (
	Sim Type = "sim" // software simulation: no hardware protection at all
	TDX Type = "tdx" // Intel TDX, through configfs-tsm
	SNP Type = "snp" // AMD SEV-SNP, through configfs-tsm
	SGX Type = "sgx" // Intel SGX, through Gramine's /dev/attestation
)

// Valid reports whether t is one of the known types.
func (t Type) Valid() bool {
	switch t {
	case Sim, TDX, SNP, SGX:
		return true
	}
	return false
}

// MaxEvidenceSize caps the evidence a verifier will look at. A TDX quote with its PCK chain is
// about 5 KiB and an SNP report with its certificate table about 8 KiB.
const MaxEvidenceSize = 64 << 10

// Evidence is what an Attester produces: the raw attestation bytes of one TEE type.
type Evidence struct {
	Type Type
	Data []byte
}

// An Attester produces evidence binding 64 bytes of report data (see ReportData).
type Attester interface {
	Type() Type
	Evidence(reportData [64]byte) (Evidence, error)
}

// A Verifier checks evidence. It authenticates the evidence (signature chain to a trusted root),
// then checks the report data equals want and the claims meet ref. An error unwraps to one of the
// sentinels of this package and, for detail, to *VerifyError.
type Verifier interface {
	Verify(ev Evidence, ref *ReferenceValues, want [64]byte) (*Claims, error)
}

// A Sealer protects node-local secrets at rest. label binds the sealed bytes to their purpose:
// Unseal with a different label fails.
type Sealer interface {
	Seal(plaintext []byte, label string) ([]byte, error)
	Unseal(sealed []byte, label string) ([]byte, error)
}

// Verifiers dispatches evidence to the verifier of its type. A type missing from the map is
// refused with ErrUnsupported.
type Verifiers map[Type]Verifier

// Verify implements Verifier.
func (vs Verifiers) Verify(ev Evidence, ref *ReferenceValues, want [64]byte) (*Claims, error) {
	v, ok := vs[ev.Type]
	if !ok {
		return nil, &VerifyError{Type: ev.Type, Err: ErrUnsupported, Detail: "no verifier for this tee type"}
	}
	return v.Verify(ev, ref, want)
}

var (
	// ErrMalformed reports evidence, a bundle or reference values that do not parse.
	ErrMalformed = errors.New("malformed")
	// ErrSignature reports evidence whose signature or certificate chain does not verify.
	ErrSignature = errors.New("signature does not verify")
	// ErrMeasurement reports a measurement that the reference values do not list.
	ErrMeasurement = errors.New("measurement not accepted")
	// ErrDebug reports a TEE running in debug mode (its memory is open to the host).
	ErrDebug = errors.New("debug mode not accepted")
	// ErrReportData reports evidence that does not bind the expected report data.
	ErrReportData = errors.New("report data mismatch")
	// ErrSimulated reports simulated evidence where only hardware evidence is accepted.
	ErrSimulated = errors.New("simulated evidence not accepted")
	// ErrTCB reports a platform whose TCB is below the reference minimum.
	ErrTCB = errors.New("tcb below minimum")
	// ErrType reports a TEE type the reference values do not accept.
	ErrType = errors.New("tee type not accepted")
	// ErrUnsupported reports an operation a backend cannot perform here.
	ErrUnsupported = errors.New("unsupported")
)

// VerifyError gives the detail of a refused piece of evidence. It unwraps to its sentinel.
type VerifyError struct {
	Type   Type
	Err    error  // one of the sentinels
	Detail string // what exactly failed
}

func (e *VerifyError) Error() string {
	if e.Detail == "" {
		return fmt.Sprintf("tee %s: %v", e.Type, e.Err)
	}
	return fmt.Sprintf("tee %s: %v: %s", e.Type, e.Err, e.Detail)
}

func (e *VerifyError) Unwrap() error { return e.Err }

// Refuse returns a *VerifyError for backends.
func Refuse(t Type, sentinel error, format string, args ...any) error {
	return &VerifyError{Type: t, Err: sentinel, Detail: fmt.Sprintf(format, args...)}
}
