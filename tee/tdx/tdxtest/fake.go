// Package tdxtest builds TDX quotes signed by a fake Intel certificate chain, and a faked
// configfs-tsm tree that serves them, so the whole TDX path runs without hardware. Start with
// NewSigner; pin Signer.Roots in tdx.Verifier. For tests only: nothing here is secure.
package tdxtest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/google/go-tdx-guest/verify"
	"google.golang.org/protobuf/proto"
)

// Signer plays Intel's PCK chain and a quoting enclave: a root CA, a platform CA, a PCK leaf
// carrying the SGX extensions of go-tdx-guest's real sample, and an attestation key. Quotes are
// the real v4 sample with the report data, MRTD and debug bit replaced and every signature redone.
type Signer struct {
	mu                 sync.Mutex
	MRTD               [48]byte
	Debug              bool
	root, inter, pck   *x509.Certificate
	pckKey, akKey      *ecdsa.PrivateKey
	chainPEM           []byte
	template           *pb.QuoteV4
	notBefore, expires time.Time
}

// NewSigner returns a signer whose certificates are valid from notBefore for five years.
func NewSigner(notBefore time.Time) (*Signer, error) {
	q, err := abi.QuoteToProto(testdata.RawQuote)
	if err != nil {
		return nil, err
	}
	tmpl, ok := q.(*pb.QuoteV4)
	if !ok {
		return nil, errors.New("tdxtest: sample is not a v4 quote")
	}
	tmpl.ExtraBytes = nil
	real, err := verify.ExtractChainFromQuote(tmpl)
	if err != nil {
		return nil, err
	}
	s := &Signer{template: tmpl, notBefore: notBefore, expires: notBefore.AddDate(5, 0, 0)}
	keys := make([]*ecdsa.PrivateKey, 4)
	for i := range keys {
		if keys[i], err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			return nil, err
		}
	}
	rootKey, interKey := keys[0], keys[1]
	s.pckKey, s.akKey = keys[2], keys[3]
	if s.root, err = s.issue("Intel SGX Root CA", 1, &rootKey.PublicKey, nil, rootKey, true, nil); err != nil {
		return nil, err
	}
	if s.inter, err = s.issue("Intel SGX PCK Platform CA", 2, &interKey.PublicKey, s.root, rootKey, true, nil); err != nil {
		return nil, err
	}
	if s.pck, err = s.issue("Intel SGX PCK Certificate", 3, &s.pckKey.PublicKey, s.inter, interKey, false, real.PCKCertificate.Extensions); err != nil {
		return nil, err
	}
	for _, c := range []*x509.Certificate{s.pck, s.inter, s.root} {
		s.chainPEM = append(s.chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return s, nil
}

func (s *Signer) issue(cn string, serial int64, pub *ecdsa.PublicKey, parent *x509.Certificate, key *ecdsa.PrivateKey, ca bool, ext []pkix.Extension) (*x509.Certificate, error) {
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(serial),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Intel Corporation"}},
		NotBefore:             s.notBefore,
		NotAfter:              s.expires,
		IsCA:                  ca,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		ExtraExtensions:       ext,
	}
	if parent == nil {
		parent = tmpl
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, key)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}

// Roots returns a pool holding the fake root CA.
func (s *Signer) Roots() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(s.root)
	return p
}

// Quote returns a v4 quote binding reportData, signed by the fake chain.
func (s *Signer) Quote(reportData []byte) ([]byte, error) {
	if len(reportData) != 64 {
		return nil, fmt.Errorf("tdxtest: report data is %d bytes, want 64", len(reportData))
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	q := proto.Clone(s.template).(*pb.QuoteV4)
	body := q.TdQuoteBody
	body.ReportData = append([]byte{}, reportData...)
	body.MrTd = append([]byte{}, s.MRTD[:]...)
	if s.Debug {
		body.TdAttributes[0] |= 1
	} else {
		body.TdAttributes[0] &^= 1
	}
	sd := q.SignedData
	ak := append(s.akKey.PublicKey.X.FillBytes(make([]byte, 32)), s.akKey.PublicKey.Y.FillBytes(make([]byte, 32))...)
	sd.EcdsaAttestationKey = ak
	qe := sd.CertificationData.QeReportCertificationData
	h := sha256.Sum256(append(append([]byte{}, ak...), qe.QeAuthData.Data...))
	qe.QeReport.ReportData = append(h[:], make([]byte, 32)...)
	rawQE, err := abi.EnclaveReportToAbiBytes(qe.QeReport)
	if err != nil {
		return nil, err
	}
	if qe.QeReportSignature, err = rawSign(s.pckKey, rawQE); err != nil {
		return nil, err
	}
	chain := qe.PckCertificateChainData
	delta := uint32(len(s.chainPEM)) - chain.Size
	chain.PckCertChain, chain.Size = s.chainPEM, uint32(len(s.chainPEM))
	sd.CertificationData.Size += delta
	q.SignedDataSize += delta
	hdr, err := abi.HeaderToAbiBytes(q.Header)
	if err != nil {
		return nil, err
	}
	b, err := abi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		return nil, err
	}
	if sd.Signature, err = rawSign(s.akKey, append(hdr, b...)); err != nil {
		return nil, err
	}
	return abi.QuoteToAbiBytes(q)
}

// rawSign signs SHA-256(msg) and returns r||s, the quote's signature encoding.
func rawSign(k *ecdsa.PrivateKey, msg []byte) ([]byte, error) {
	h := sha256.Sum256(msg)
	r, sig, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		return nil, err
	}
	return append(r.FillBytes(make([]byte, 32)), sig.FillBytes(make([]byte, 32))...), nil
}

// Configfs returns a faked configfs-tsm tree whose provider is "tdx_guest" and whose outblob is
// a quote from s binding the inblob.
func (s *Signer) Configfs() configfsi.Client {
	rs := faketsm.ReportV7(0)
	base := rs.ReadAttr
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte("tdx_guest\n"), nil
		case "outblob":
			return s.Quote(e.InAttrs["inblob"].Value)
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}
