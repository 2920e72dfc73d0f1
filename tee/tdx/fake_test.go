package tdx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-tdx-guest/abi"
	pb "github.com/google/go-tdx-guest/proto/tdx"
	"github.com/google/go-tdx-guest/testing/testdata"
	"github.com/google/go-tdx-guest/verify"
	"google.golang.org/protobuf/proto"

	"github.com/styx-tee/styx/tee"
)

// fakeSigner plays Intel's PCK chain and a quoting enclave: a root CA, a platform CA and a PCK
// leaf (carrying the SGX extensions of the real sample's PCK certificate), and an attestation key.
type fakeSigner struct {
	root, inter, pck *x509.Certificate
	pckKey, akKey    *ecdsa.PrivateKey
	chainPEM         []byte
	roots            *x509.CertPool
	mrtd             []byte
	debug            bool
}

var fakeEpoch = time.Date(2026, time.January, 1, 0, 0, 0, 0, time.UTC)

func newFakeSigner(t testing.TB) *fakeSigner {
	t.Helper()
	real, err := verify.ExtractChainFromQuote(mustProto(t, trimmed(testdata.RawQuote)))
	if err != nil {
		t.Fatal(err)
	}
	key := func() *ecdsa.PrivateKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return k
	}
	rootKey, interKey := key(), key()
	f := &fakeSigner{pckKey: key(), akKey: key(), mrtd: make([]byte, 48)}
	f.mrtd[0] = 0xfa
	issue := func(cn string, serial int64, pub *ecdsa.PublicKey, parent *x509.Certificate, signer *ecdsa.PrivateKey, ca bool, ext []pkix.Extension) *x509.Certificate {
		tmpl := &x509.Certificate{
			SerialNumber:          big.NewInt(serial),
			Subject:               pkix.Name{CommonName: cn, Organization: []string{"Intel Corporation"}},
			NotBefore:             fakeEpoch,
			NotAfter:              fakeEpoch.AddDate(5, 0, 0),
			IsCA:                  ca,
			BasicConstraintsValid: true,
			KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
			ExtraExtensions:       ext,
		}
		if parent == nil {
			parent = tmpl
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, pub, signer)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	f.root = issue("Intel SGX Root CA", 1, &rootKey.PublicKey, nil, rootKey, true, nil)
	f.inter = issue("Intel SGX PCK Platform CA", 2, &interKey.PublicKey, f.root, rootKey, true, nil)
	f.pck = issue("Intel SGX PCK Certificate", 3, &f.pckKey.PublicKey, f.inter, interKey, false, real.PCKCertificate.Extensions)
	for _, c := range []*x509.Certificate{f.pck, f.inter, f.root} {
		f.chainPEM = append(f.chainPEM, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	f.roots = x509.NewCertPool()
	f.roots.AddCert(f.root)
	return f
}

func mustProto(t testing.TB, raw []byte) any {
	t.Helper()
	q, err := abi.QuoteToProto(raw)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// quote returns a v4 quote for reportData signed by the fake chain, built on the real sample.
func (f *fakeSigner) quote(t testing.TB, reportData []byte) []byte {
	t.Helper()
	q := proto.Clone(mustProto(t, trimmed(testdata.RawQuote)).(*pb.QuoteV4)).(*pb.QuoteV4)
	body := q.TdQuoteBody
	body.ReportData = append([]byte{}, reportData...)
	body.MrTd = append([]byte{}, f.mrtd...)
	if f.debug {
		body.TdAttributes[0] |= tdDebug
	} else {
		body.TdAttributes[0] &^= tdDebug
	}
	sd := q.SignedData
	ak := append(f.akKey.PublicKey.X.FillBytes(make([]byte, 32)), f.akKey.PublicKey.Y.FillBytes(make([]byte, 32))...)
	sd.EcdsaAttestationKey = ak
	qe := sd.CertificationData.QeReportCertificationData
	h := sha256.Sum256(append(append([]byte{}, ak...), qe.QeAuthData.Data...))
	qe.QeReport.ReportData = append(h[:], make([]byte, 32)...)
	rawQE, err := abi.EnclaveReportToAbiBytes(qe.QeReport)
	if err != nil {
		t.Fatal(err)
	}
	qe.QeReportSignature = rawSign(t, f.pckKey, rawQE)
	chain := qe.PckCertificateChainData
	delta := uint32(len(f.chainPEM)) - chain.Size
	chain.PckCertChain, chain.Size = f.chainPEM, uint32(len(f.chainPEM))
	sd.CertificationData.Size += delta
	q.SignedDataSize += delta
	hdr, err := abi.HeaderToAbiBytes(q.Header)
	if err != nil {
		t.Fatal(err)
	}
	b, err := abi.TdQuoteBodyToAbiBytes(body)
	if err != nil {
		t.Fatal(err)
	}
	sd.Signature = rawSign(t, f.akKey, append(hdr, b...))
	raw, err := abi.QuoteToAbiBytes(q)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// rawSign signs SHA-256(msg) and returns r||s, the quote's signature encoding.
func rawSign(t testing.TB, k *ecdsa.PrivateKey, msg []byte) []byte {
	h := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, h[:])
	if err != nil {
		t.Fatal(err)
	}
	return append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
}

// configfs returns a faked configfs-tsm tree whose TDX provider answers with fake-signed quotes.
func (f *fakeSigner) configfs(t testing.TB) configfsi.Client {
	rs := faketsm.ReportV7(0)
	base := rs.ReadAttr
	rs.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(Provider + "\n"), nil
		case "outblob":
			in := e.InAttrs["inblob"].Value
			if len(in) != 64 {
				return nil, errors.New("inblob is not 64 bytes")
			}
			return f.quote(t, in), nil
		}
		return base(e, attr)
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": rs}}
}

func (f *fakeSigner) ref() *tee.ReferenceValues {
	return &tee.ReferenceValues{TEE: map[tee.Type]*tee.TypeReference{
		tee.TDX: {Measurements: []tee.Measurement{{"mrtd": "fa" + zeros(47)}}},
	}}
}

func zeros(n int) string {
	b := make([]byte, 2*n)
	for i := range b {
		b[i] = '0'
	}
	return string(b)
}

var fakeNow = func() time.Time { return fakeEpoch.AddDate(1, 0, 0) }

// TestFakeRootFullPath runs the whole path without hardware: a faked configfs-tsm tree hands out
// a quote binding the report data, signed by a fake Intel chain; it verifies with the fake root
// pinned and is refused with the real Intel root.
func TestFakeRootFullPath(t *testing.T) {
	f := newFakeSigner(t)
	a := NewAttesterClient(f.configfs(t))
	rd := tee.ReportData("test", []byte("fresh nonce"))
	ev, err := a.Evidence(rd)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Verifier{Roots: f.roots, Now: fakeNow}.Verify(ev, f.ref(), rd)
	if err != nil {
		t.Fatalf("fake-root quote refused with the fake root: %v", err)
	}
	if c.Measurement != "fa"+zeros(47) || c.Debug || c.Simulated {
		t.Errorf("claims %+v", c)
	}
	_, err = Verifier{Now: fakeNow}.Verify(ev, f.ref(), rd)
	wantErr(t, err, tee.ErrSignature, "")
}

func TestFakeRootDebugTD(t *testing.T) {
	f := newFakeSigner(t)
	f.debug = true
	rd := tee.ReportData("test")
	ev := tee.Evidence{Type: tee.TDX, Data: f.quote(t, rd[:])}
	v := Verifier{Roots: f.roots, Now: fakeNow}
	_, err := v.Verify(ev, f.ref(), rd)
	wantErr(t, err, tee.ErrDebug, "debug mode")
	ref := f.ref()
	ref.AllowDebug = true
	if c, err := v.Verify(ev, ref, rd); err != nil || !c.Debug {
		t.Fatalf("debug TD with allow_debug: %v, %+v", err, c)
	}
}

// TestConfigfsRoot exercises the on-disk root mapping: without a provider tree the attester
// fails with an error naming the path, never a panic.
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
