// Package tdx is the Intel TDX backend: quotes through the Linux configfs-tsm report interface,
// verified with github.com/google/go-tdx-guest.
//
// Start with NewAttester (inside a TD) and Verifier (anywhere). Verification checks the quote's
// signature, the QE report and the PCK certificate chain up to Intel's SGX root (or the roots
// you pin), then the reference values: debug bit, MRTD and RTMRs, minimum TEE_TCB_SVN, and the
// report data. Collateral (TCB info, QE identity, CRLs) is not fetched: there is no network in
// the verification path; see docs/attestation.md for what that leaves out.
package tdx

import (
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/validate"
	"github.com/google/go-tdx-guest/verify"
	"github.com/google/go-tdx-guest/verify/trust"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/internal/tsm"
)

// Provider is the configfs-tsm provider name of TDX guests.
const Provider = "tdx_guest"

// Attester fetches TDX quotes through configfs-tsm.
type Attester struct{ client configfsi.Client }

var _ tee.Attester = (*Attester)(nil)

// NewAttester returns an attester using the configfs-tsm tree at root ("" for the kernel's,
// /sys/kernel/config/tsm).
func NewAttester(root string) *Attester {
	if root == "" {
		root = tsm.DefaultRoot
	}
	return &Attester{client: tsm.Client(root)}
}

// NewAttesterClient returns an attester over any configfs client (a fake one in tests).
func NewAttesterClient(c configfsi.Client) *Attester { return &Attester{client: c} }

// Type implements tee.Attester.
func (a *Attester) Type() tee.Type { return tee.TDX }

// Evidence implements tee.Attester: the evidence is the raw quote.
func (a *Attester) Evidence(reportData [64]byte) (tee.Evidence, error) {
	out, _, err := tsm.Get(a.client, reportData[:], Provider, false)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("tdx: %w", err)
	}
	q, err := TrimQuote(out)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("tdx: %w", err)
	}
	return tee.Evidence{Type: tee.TDX, Data: q}, nil
}

// TrimQuote drops whatever follows the signed data of a raw quote (padding from the quote
// provider, or the 39 bytes go-tdx-guest's v4 sample carries "only for testing purpose"). Nothing
// signs those bytes, so the verifier refuses quotes that still carry them.
func TrimQuote(raw []byte) ([]byte, error) {
	var q any
	err := tee.Guard(tee.TDX, "quote", func() (err error) {
		q, err = abi.QuoteToProto(raw)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("quote: %w", err)
	}
	var extra []byte
	switch q := q.(type) {
	case *pb.QuoteV4:
		extra = q.GetExtraBytes()
	case *pb.QuoteV5:
		extra = q.GetExtraBytes()
	}
	return raw[:len(raw)-len(extra)], nil
}

//go:embed intel_sgx_root.pem
var intelRootPEM []byte

// intelRoots holds Intel's SGX root CA, the same certificate go-tdx-guest embeds; passing it
// explicitly keeps that library from logging a warning on every verification.
var intelRoots = func() *x509.CertPool {
	p := x509.NewCertPool()
	if !p.AppendCertsFromPEM(intelRootPEM) {
		panic("tdx: embedded Intel root does not parse")
	}
	return p
}()

// Verifier verifies TDX quotes. Its zero value trusts Intel's SGX root CA (embedded in
// go-tdx-guest) and checks certificates at the current time.
type Verifier struct {
	// Roots replaces Intel's root CA (tests pin a fake one).
	Roots *x509.CertPool
	// Now gives the verification time; nil means time.Now.
	Now func() time.Time
	// Collateral, if set, serves Intel PCS collateral (TCB info, QE identity, CRLs) by URL, for
	// example from a local PCCS cache. Then the PCK chain is checked against the CRLs and the
	// platform's TCB level must not be OutOfDate. Nil means no collateral: see the package doc.
	Collateral trust.HTTPSGetter
}

var _ tee.Verifier = Verifier{}

// Verify implements tee.Verifier.
func (v Verifier) Verify(ev tee.Evidence, ref *tee.ReferenceValues, want [64]byte) (*tee.Claims, error) {
	quote, body, err := parse(ev)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	roots := v.Roots
	if roots == nil {
		roots = intelRoots
	}
	opts := &verify.Options{
		GetCollateral:    v.Collateral != nil,
		CheckRevocations: v.Collateral != nil,
		Getter:           v.Collateral,
		TrustedRoots:     roots,
		Now:              &verify.TimeSet{PckCertChain: now, TcbInfo: now, QeIdentity: now, PckCrl: now, RootCaCrl: now},
	}
	if err := tee.Guard(tee.TDX, "quote verification", func() error { return verify.TdxQuote(quote, opts) }); err != nil {
		if errors.Is(err, tee.ErrMalformed) {
			return nil, err
		}
		// go-tdx-guest reports an unsupported TCB level as a formatted error, not a sentinel.
		if errors.Is(err, verify.ErrTdxTcbStatus) || errors.Is(err, verify.ErrEnclaveTcbStatus) ||
			strings.Contains(err.Error(), "TCB status check") {
			return nil, tee.Refuse(tee.TDX, tee.ErrTCB, "%v", err)
		}
		return nil, tee.Refuse(tee.TDX, tee.ErrSignature, "%v", err)
	}
	c, err := guardedClaims(body)
	if err != nil {
		return nil, err
	}
	if err := ref.Check(c); err != nil {
		return nil, err
	}
	if err := tee.CheckReportData(tee.TDX, body.GetReportData(), want); err != nil {
		return nil, err
	}
	if err := checkTCB(quote, ref); err != nil {
		return nil, err
	}
	return c, nil
}

// body is what v4 and v5 TD quote bodies have in common.
type body interface {
	GetTeeTcbSvn() []byte
	GetMrSeam() []byte
	GetTdAttributes() []byte
	GetMrTd() []byte
	GetMrConfigId() []byte
	GetMrOwner() []byte
	GetMrOwnerConfig() []byte
	GetRtmrs() [][]byte
	GetReportData() []byte
}

func parse(ev tee.Evidence) (any, body, error) {
	if ev.Type != tee.TDX || len(ev.Data) > tee.MaxEvidenceSize {
		return nil, nil, tee.Refuse(tee.TDX, tee.ErrMalformed, "%d bytes of %s evidence", len(ev.Data), ev.Type)
	}
	var q any
	err := tee.Guard(tee.TDX, "quote", func() (err error) {
		q, err = abi.QuoteToProto(ev.Data)
		return err
	})
	if err != nil {
		if errors.Is(err, tee.ErrMalformed) {
			return nil, nil, err
		}
		return nil, nil, tee.Refuse(tee.TDX, tee.ErrMalformed, "quote: %v", err)
	}
	var b body
	var extra []byte
	switch q := q.(type) {
	case *pb.QuoteV4:
		b, extra = q.GetTdQuoteBody(), q.GetExtraBytes()
	case *pb.QuoteV5:
		b, extra = q.GetTdQuoteBodyDescriptor().GetTdQuoteBodyV5(), q.GetExtraBytes()
	}
	if b == nil || isNil(b) {
		return nil, nil, tee.Refuse(tee.TDX, tee.ErrMalformed, "quote without a TD quote body")
	}
	if len(extra) != 0 {
		// Bytes after the signed data are covered by nothing: refuse rather than carry them.
		return nil, nil, tee.Refuse(tee.TDX, tee.ErrMalformed, "%d unauthenticated bytes after the quote", len(extra))
	}
	err = tee.Guard(tee.TDX, "quote check", func() error { return abi.CheckQuote(q) })
	if errors.Is(err, tee.ErrMalformed) {
		return nil, nil, err
	}
	if err != nil {
		return nil, nil, tee.Refuse(tee.TDX, tee.ErrMalformed, "quote: %v", err)
	}
	return q, b, nil
}

// guardedClaims reads the claims of a parsed body under tee.Guard: the body's getters index
// byte slices that came from the network.
func guardedClaims(b body) (c *tee.Claims, err error) {
	err = tee.Guard(tee.TDX, "quote body", func() error {
		c = claims(b)
		return nil
	})
	return c, err
}

func isNil(b body) bool {
	switch b := b.(type) {
	case *pb.TDQuoteBody:
		return b == nil
	case *pb.TDQuoteBodyV5:
		return b == nil
	}
	return true
}

// tdDebug is bit 0 of TD_ATTRIBUTES.
const tdDebug = 1

func claims(b body) *tee.Claims {
	regs := map[string]string{
		"mrtd":          hex.EncodeToString(b.GetMrTd()),
		"mrconfigid":    hex.EncodeToString(b.GetMrConfigId()),
		"mrowner":       hex.EncodeToString(b.GetMrOwner()),
		"mrownerconfig": hex.EncodeToString(b.GetMrOwnerConfig()),
		"mrseam":        hex.EncodeToString(b.GetMrSeam()),
	}
	for i, r := range b.GetRtmrs() {
		regs[fmt.Sprintf("rtmr%d", i)] = hex.EncodeToString(r)
	}
	attrs := b.GetTdAttributes()
	return &tee.Claims{
		Type:        tee.TDX,
		Measurement: regs["mrtd"],
		Registers:   regs,
		Debug:       len(attrs) > 0 && attrs[0]&tdDebug != 0,
		TCB:         hex.EncodeToString(b.GetTeeTcbSvn()),
		ReportData:  hex.EncodeToString(b.GetReportData()),
	}
}

// checkTCB runs go-tdx-guest's validation with the minimum TEE_TCB_SVN of the reference values.
func checkTCB(quote any, ref *tee.ReferenceValues) error {
	min := ref.MinTCB(tee.TDX)
	if min == nil {
		return nil
	}
	opts := &validate.Options{TdQuoteBodyOptions: validate.TdQuoteBodyOptions{
		MinimumTeeTcbSvn:   min,
		EnableTdDebugCheck: !ref.AllowDebug,
	}}
	if err := tee.Guard(tee.TDX, "quote validation", func() error { return validate.TdxQuote(quote, opts) }); err != nil {
		return tee.Refuse(tee.TDX, tee.ErrTCB, "%v", err)
	}
	return nil
}

// ReadClaims returns the claims of a quote without authenticating it. Only for evidence the
// caller produced itself (a node describing its own quote); verify everything else.
func ReadClaims(ev tee.Evidence) (*tee.Claims, error) {
	_, b, err := parse(ev)
	if err != nil {
		return nil, err
	}
	return guardedClaims(b)
}
