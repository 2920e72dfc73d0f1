// Package snp is the AMD SEV-SNP backend: attestation reports through the Linux configfs-tsm
// report interface, verified with github.com/google/go-sev-guest.
//
// Start with NewAttester (inside an SNP guest) and Verifier (anywhere). The evidence is the
// 1184-byte report followed by the certificate table holding the VCEK (or VLEK) certificate, so
// that verification needs no network: the VCEK must chain to AMD's ARK/ASK for the report's
// product (embedded in go-sev-guest, or the roots you pin). Then the reference values apply:
// debug policy bit, launch measurement (and host data), minimum reported TCB, report data.
package snp

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/kds"
	spb "github.com/google/go-sev-guest/proto/sevsnp"
	"github.com/google/go-sev-guest/validate"
	"github.com/google/go-sev-guest/verify"
	"github.com/google/go-sev-guest/verify/trust"
	"github.com/google/uuid"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/internal/tsm"
)

// Provider is the configfs-tsm provider name of SEV-SNP guests.
const Provider = "sev_guest"

// Attester fetches SNP reports and their certificate table through configfs-tsm.
type Attester struct{ client configfsi.Client }

var _ tee.Attester = (*Attester)(nil)

// NewAttester returns an attester using the configfs-tsm tree at root ("" for the kernel's).
func NewAttester(root string) *Attester {
	if root == "" {
		root = tsm.DefaultRoot
	}
	return &Attester{client: tsm.Client(root)}
}

// NewAttesterClient returns an attester over any configfs client (a fake one in tests).
func NewAttesterClient(c configfsi.Client) *Attester { return &Attester{client: c} }

// Type implements tee.Attester.
func (a *Attester) Type() tee.Type { return tee.SNP }

// Evidence implements tee.Attester: report || certificate table reduced to the endorsement key
// certificate (the ARK and ASK come from the verifier's trusted roots, never from the evidence).
func (a *Attester) Evidence(reportData [64]byte) (tee.Evidence, error) {
	out, aux, err := tsm.Get(a.client, reportData[:], Provider, true)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("snp: %w", err)
	}
	ev, err := Compose(out, aux)
	if err != nil {
		return tee.Evidence{}, fmt.Errorf("snp: %w", err)
	}
	return tee.Evidence{Type: tee.SNP, Data: ev}, nil
}

var (
	vcekGUID = uuid.MustParse(abi.VcekGUID)
	vlekGUID = uuid.MustParse(abi.VlekGUID)
)

// Compose builds canonical evidence from a raw report and a certificate table (the configfs
// auxblob): the report, then a table holding only the certificate of the key that signed the
// report (VCEK or VLEK, as the report's signer info says).
func Compose(report, certTable []byte) ([]byte, error) {
	if len(report) != abi.ReportSize {
		return nil, fmt.Errorf("report is %d bytes, want %d", len(report), abi.ReportSize)
	}
	info, err := abi.ReportSignerInfo(report)
	if err != nil {
		return nil, fmt.Errorf("report signer info: %w", err)
	}
	si, err := abi.ParseSignerInfo(info)
	if err != nil {
		return nil, fmt.Errorf("report signer info: %w", err)
	}
	want := vcekGUID
	if si.SigningKey == abi.VlekReportSigner {
		want = vlekGUID
	}
	var t abi.CertTable
	if err := t.Unmarshal(certTable); err != nil {
		return nil, fmt.Errorf("certificate table: %w", err)
	}
	var keep abi.CertTable
	for _, e := range t.Entries {
		if e.GUID == want {
			keep.Entries = append(keep.Entries, e)
		}
	}
	if len(keep.Entries) != 1 {
		return nil, fmt.Errorf("certificate table holds %d certificates of the %v, want 1", len(keep.Entries), si.SigningKey)
	}
	return append(append([]byte{}, report...), keep.Marshal()...), nil
}

// Verifier verifies SNP evidence. Its zero value trusts AMD's roots embedded in go-sev-guest and
// checks certificates at the current time.
type Verifier struct {
	// Roots replaces AMD's ARK/ASK per product line (tests pin fake ones).
	Roots map[string][]*trust.AMDRootCerts
	// Now gives the verification time; nil means time.Now.
	Now func() time.Time
}

var _ tee.Verifier = Verifier{}

// Verify implements tee.Verifier.
func (v Verifier) Verify(ev tee.Evidence, ref *tee.ReferenceValues, want [64]byte) (*tee.Claims, error) {
	att, err := parse(ev)
	if err != nil {
		return nil, err
	}
	now := time.Now()
	if v.Now != nil {
		now = v.Now()
	}
	opts := &verify.Options{DisableCertFetching: true, Now: now, TrustedRoots: v.Roots}
	if err := tee.Guard(tee.SNP, "report verification", func() error { return verify.SnpAttestation(att, opts) }); err != nil {
		if errors.Is(err, tee.ErrMalformed) {
			return nil, err
		}
		return nil, tee.Refuse(tee.SNP, tee.ErrSignature, "%v", err)
	}
	c, err := guardedClaims(att.GetReport())
	if err != nil {
		return nil, err
	}
	if err := ref.Check(c); err != nil {
		return nil, err
	}
	if err := tee.CheckReportData(tee.SNP, att.GetReport().GetReportData(), want); err != nil {
		return nil, err
	}
	if err := checkTCB(att, ref); err != nil {
		return nil, err
	}
	return c, nil
}

func parse(ev tee.Evidence) (*spb.Attestation, error) {
	d := ev.Data
	if ev.Type != tee.SNP || len(d) > tee.MaxEvidenceSize || len(d) <= abi.ReportSize {
		return nil, tee.Refuse(tee.SNP, tee.ErrMalformed, "%d bytes of %s evidence", len(d), ev.Type)
	}
	var (
		report *spb.Report
		t      abi.CertTable
	)
	err := tee.Guard(tee.SNP, "report", func() (err error) {
		if report, err = abi.ReportToProto(d[:abi.ReportSize]); err != nil {
			return fmt.Errorf("report: %v", err)
		}
		if err := t.Unmarshal(d[abi.ReportSize:]); err != nil {
			return fmt.Errorf("certificate table: %v", err)
		}
		return nil
	})
	if err != nil {
		if errors.Is(err, tee.ErrMalformed) {
			return nil, err
		}
		return nil, tee.Refuse(tee.SNP, tee.ErrMalformed, "%v", err)
	}
	// Only the canonical form Compose produces: one endorsement key entry, nothing unreferenced.
	if len(t.Entries) != 1 || (t.Entries[0].GUID != vcekGUID && t.Entries[0].GUID != vlekGUID) ||
		!bytes.Equal(t.Marshal(), d[abi.ReportSize:]) {
		return nil, tee.Refuse(tee.SNP, tee.ErrMalformed, "certificate table is not one endorsement key certificate in canonical form")
	}
	return &spb.Attestation{Report: report, CertificateChain: t.Proto()}, nil
}

// policyDebug is bit 19 of the guest policy: the hypervisor may debug (read) the guest. Read
// directly, so a policy that does not otherwise parse can never hide it.
const policyDebug = 1 << 19

func claims(r *spb.Report) *tee.Claims {
	m := hex.EncodeToString(r.GetMeasurement())
	var tcb [8]byte
	binary.LittleEndian.PutUint64(tcb[:], r.GetReportedTcb())
	return &tee.Claims{
		Type:        tee.SNP,
		Measurement: m,
		Registers:   map[string]string{"measurement": m, "hostdata": hex.EncodeToString(r.GetHostData())},
		Debug:       r.GetPolicy()&policyDebug != 0,
		TCB:         hex.EncodeToString(tcb[:]),
		ReportData:  hex.EncodeToString(r.GetReportData()),
	}
}

// checkTCB runs go-sev-guest's validation with the minimum TCB of the reference values and a
// guest policy that only restricts debugging (the reference values already decided on it).
func checkTCB(att *spb.Attestation, ref *tee.ReferenceValues) error {
	min := ref.MinTCB(tee.SNP)
	if min == nil {
		return nil
	}
	opts := &validate.Options{
		GuestPolicy:               abi.SnpPolicy{Debug: ref.AllowDebug, SMT: true, MigrateMA: true, CXLAllowed: true},
		MinimumTCB:                kds.DecomposeTCBVersion(kds.TCBVersion(binary.LittleEndian.Uint64(min))),
		PermitProvisionalFirmware: true,
	}
	if err := tee.Guard(tee.SNP, "report validation", func() error { return validate.SnpAttestation(att, opts) }); err != nil {
		return tee.Refuse(tee.SNP, tee.ErrTCB, "%v", err)
	}
	return nil
}

// ReadClaims returns the claims of SNP evidence without authenticating it. Only for evidence
// the caller produced itself (a node describing its own report); verify everything else.
func ReadClaims(ev tee.Evidence) (*tee.Claims, error) {
	att, err := parse(ev)
	if err != nil {
		return nil, err
	}
	return guardedClaims(att.GetReport())
}

// guardedClaims reads the claims of a parsed report under tee.Guard.
func guardedClaims(r *spb.Report) (c *tee.Claims, err error) {
	err = tee.Guard(tee.SNP, "report", func() error {
		c = claims(r)
		return nil
	})
	return c, err
}
