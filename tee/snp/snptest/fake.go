// Package snptest builds SEV-SNP reports signed by go-sev-guest's test-only AMD chain (ARK → ASK
// → VCEK), a faked configfs-tsm tree that serves them, and a fake SEV guest device answering
// derived-key requests, so the whole SNP path runs without hardware. Start with NewSigner; pin
// Signer.Roots in snp.Verifier. For tests only: nothing here is secure.
package snptest

import (
	"encoding/binary"
	"errors"
	"sync"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	labi "github.com/google/go-sev-guest/client/linuxabi"
	sevtest "github.com/google/go-sev-guest/testing"
	"github.com/google/go-sev-guest/verify/trust"
)

// Signer signs reports for a guest with Measurement and, if Debug, the debug policy bit.
type Signer struct {
	mu          sync.Mutex
	Measurement [48]byte
	Debug       bool
	amd         *sevtest.AmdSigner
}

// NewSigner returns a signer for a Milan chip whose certificates are valid from notBefore.
func NewSigner(notBefore time.Time) (*Signer, error) {
	s, err := sevtest.DefaultTestOnlyCertChain("Milan-B0", notBefore)
	if err != nil {
		return nil, err
	}
	return &Signer{amd: s}, nil
}

// VCEK returns the DER certificate of the fake VCEK.
func (s *Signer) VCEK() []byte { return s.amd.Vcek.Raw }

// Report returns a raw report binding reportData, signed by the fake VCEK.
func (s *Signer) Report(reportData []byte) ([]byte, error) {
	if len(reportData) != 64 {
		return nil, errors.New("snptest: report data is not 64 bytes")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	raw := sevtest.CreateRawReport(&sevtest.TestReportOptions{ReportData: reportData})
	r := raw[:abi.ReportSize]
	binary.LittleEndian.PutUint64(r[0x08:0x10], abi.SnpPolicyToBytes(abi.SnpPolicy{Debug: s.Debug}))
	copy(r[0x90:0xC0], s.Measurement[:])
	sr, ss, err := s.amd.Sign(abi.SignedComponent(r))
	if err != nil {
		return nil, err
	}
	if err := abi.SetSignature(sr, ss, r); err != nil {
		return nil, err
	}
	return r, nil
}

// Roots returns the fake ARK and ASK as trusted roots for the Milan product line.
func (s *Signer) Roots() map[string][]*trust.AMDRootCerts {
	r := trust.AMDRootCertsProduct("Milan")
	r.ProductCerts = &trust.ProductCerts{Ark: s.amd.Ark, Ask: s.amd.Ask}
	return map[string][]*trust.AMDRootCerts{"Milan": {r}}
}

// Configfs returns a faked configfs-tsm tree whose provider is "sev_guest", whose outblob is a
// report from s binding the inblob, and whose auxblob is the certificate table.
func (s *Signer) Configfs() configfsi.Client {
	rs := faketsm.ReportV7(0)
	base := rs.ReadAttr
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("sev_guest\n"), nil
		case "outblob":
			return s.Report(e.InAttrs["inblob"].Value)
		case "auxblob":
			return s.amd.CertTableBytes()
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

// DerivedKeyDevice returns an open fake SEV guest device that answers exactly req (MSG_KEY_REQ)
// with key, like the firmware for one guest on one chip.
func DerivedKeyDevice(req *client.SnpDerivedKeyReq, key []byte) (*sevtest.Device, error) {
	abiReq := &labi.SnpDerivedKeyReqABI{GuestFieldSelect: req.GuestFieldSelect.ABI(), Vmpl: req.Vmpl,
		GuestSVN: req.GuestSVN, TCBVersion: req.TCBVersion}
	if !req.UseVCEK {
		abiReq.RootKeySelect = 1
	}
	d := &sevtest.Device{Keys: map[string][]byte{sevtest.DerivedKeyRequestToString(abiReq): key}}
	if err := d.Open(""); err != nil {
		return nil, err
	}
	return d, nil
}
