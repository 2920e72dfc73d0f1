package cluster

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"reflect"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sgx"
	"github.com/styx-tee/styx/tee/sim"
	"github.com/styx-tee/styx/tee/snp"
	"github.com/styx-tee/styx/tee/tdx"
)

// PurposeAttestation domain-separates the report data of an attestation bundle:
//
//	report_data = tee.ReportData(PurposeAttestation, cluster identity bytes, TLS SPKI DER, nonce)
const PurposeAttestation = "styx cluster attestation v1"

// NonceSize is the size of the client's fresh nonce.
const NonceSize = 32

// MaxBundleSize caps an attestation bundle.
const MaxBundleSize = 256 << 10

// BundleVersion is the bundle format this package writes and accepts.
const BundleVersion = 1

// A Bundle is a node's attestation: TEE evidence whose report data binds the cluster identity,
// the node's TLS key and a nonce, with the claims the node read from it. Its canonical encoding
// is the JSON Marshal returns; ParseBundle accepts nothing else.
type Bundle struct {
	Version  int         `json:"version"`
	Cluster  string      `json:"cluster"` // party identity string, "styx1…"
	TLSKey   []byte      `json:"tls_key"` // DER SubjectPublicKeyInfo
	Nonce    []byte      `json:"nonce"`
	Evidence Evidence    `json:"evidence"`
	Claims   *tee.Claims `json:"claims"`
}

// Evidence is the JSON form of tee.Evidence.
type Evidence struct {
	Type tee.Type `json:"type"`
	Data []byte   `json:"data"`
}

// DefaultVerifier verifies every TEE type Styx knows, with the manufacturers' roots and the
// current time. SGX evidence is refused as unsupported.
func DefaultVerifier() tee.Verifier {
	return tee.Verifiers{tee.Sim: sim.Verifier{}, tee.TDX: tdx.Verifier{}, tee.SNP: snp.Verifier{}, tee.SGX: sgx.Verifier{}}
}

// Bundle attests the node for nonce: fresh evidence binding the cluster identity, the TLS key
// and the nonce.
func (n *Node) Bundle(nonce []byte) (*Bundle, error) {
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("cluster: nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	rd := tee.ReportData(PurposeAttestation, n.Identity().Bytes(), n.tlsSPKI, nonce)
	ev, err := n.cfg.Attester.Evidence(rd)
	if err != nil {
		return nil, fmt.Errorf("cluster: attest: %w", err)
	}
	c, err := selfClaims(ev, rd)
	if err != nil {
		return nil, err
	}
	return &Bundle{
		Version:  BundleVersion,
		Cluster:  n.Identity().String(),
		TLSKey:   n.TLSPublicKey(),
		Nonce:    append([]byte(nil), nonce...),
		Evidence: Evidence{Type: ev.Type, Data: ev.Data},
		Claims:   c,
	}, nil
}

// selfClaims reads the node's own evidence with reference values that accept exactly what it
// claims, so that the bundle carries the claims a verifier will recompute.
func selfClaims(ev tee.Evidence, rd [64]byte) (*tee.Claims, error) {
	open := &tee.ReferenceValues{AllowSimulated: true, AllowDebug: true}
	if ev.Type == tee.Sim {
		return sim.Verifier{}.Verify(ev, open, rd)
	}
	// Hardware evidence is read without checking its chain here: the node cannot judge its own
	// platform, and every reader verifies the bundle anyway.
	c, err := hardwareClaims(ev)
	if err != nil {
		return nil, fmt.Errorf("cluster: read own evidence: %w", err)
	}
	return c, nil
}

// Marshal returns the canonical encoding of b.
func (b *Bundle) Marshal() []byte {
	out, err := json.Marshal(b)
	if err != nil {
		panic("cluster: marshal bundle: " + err.Error()) // plain data: cannot fail
	}
	return append(out, '\n')
}

// ParseBundle parses a bundle strictly: at most MaxBundleSize bytes, known fields only, the
// canonical encoding, and well-formed keys, nonce and evidence type. It does not verify it.
func ParseBundle(data []byte) (*Bundle, error) {
	if len(data) > MaxBundleSize {
		return nil, malformed("bundle is %d bytes, more than %d", len(data), MaxBundleSize)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var b Bundle
	if err := dec.Decode(&b); err != nil {
		return nil, malformed("bundle: %v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, malformed("bundle: trailing data")
	}
	switch {
	case b.Version != BundleVersion:
		return nil, malformed("bundle version %d, want %d", b.Version, BundleVersion)
	case len(b.Nonce) != NonceSize:
		return nil, malformed("bundle nonce is %d bytes, want %d", len(b.Nonce), NonceSize)
	case !b.Evidence.Type.Valid() || len(b.Evidence.Data) == 0 || len(b.Evidence.Data) > tee.MaxEvidenceSize:
		return nil, malformed("bundle evidence: type %q, %d bytes", b.Evidence.Type, len(b.Evidence.Data))
	case b.Claims == nil:
		return nil, malformed("bundle without claims")
	}
	if _, err := party.ParseIdentity(b.Cluster); err != nil {
		return nil, malformed("bundle cluster identity: %v", err)
	}
	if _, err := x509.ParsePKIXPublicKey(b.TLSKey); err != nil {
		return nil, malformed("bundle tls key: %v", err)
	}
	if !bytes.Equal(b.Marshal(), data) {
		return nil, malformed("bundle is not in canonical form")
	}
	return &b, nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("cluster: "+format+": %w", append(args, tee.ErrMalformed)...)
}

// Verify checks the bundle's evidence against ref with v (nil: DefaultVerifier) and that its
// report data binds the cluster identity, the TLS key and the nonce. If nonce is not nil, the
// bundle must answer exactly that nonce (ErrStaleNonce otherwise). It returns the attested
// cluster identity and the verified claims.
func (b *Bundle) Verify(ref *tee.ReferenceValues, v tee.Verifier, nonce []byte) (*party.Identity, *tee.Claims, error) {
	if nonce != nil && subtle.ConstantTimeCompare(nonce, b.Nonce) != 1 {
		return nil, nil, fmt.Errorf("cluster: bundle answers another nonce than the one sent: %w", ErrStaleNonce)
	}
	id, err := party.ParseIdentity(b.Cluster)
	if err != nil {
		return nil, nil, malformed("bundle cluster identity: %v", err)
	}
	if v == nil {
		v = DefaultVerifier()
	}
	rd := tee.ReportData(PurposeAttestation, id.Bytes(), b.TLSKey, b.Nonce)
	c, err := v.Verify(tee.Evidence{Type: b.Evidence.Type, Data: b.Evidence.Data}, ref, rd)
	if err != nil {
		return nil, nil, fmt.Errorf("cluster: attestation of %s refused: %w", id.ID(), err)
	}
	if !reflect.DeepEqual(c, b.Claims) {
		return nil, nil, malformed("claims in the bundle differ from what the evidence says")
	}
	return id, c, nil
}

// VerifyBundleFile reads a bundle file and verifies it offline against ref with the default
// verifier. Offline, freshness is unknown: the bundle proves the keys were attested for some
// nonce, not that the node is running now. `styx pad seal --to-cluster` calls this.
func VerifyBundleFile(path string, ref *tee.ReferenceValues) (*party.Identity, *tee.Claims, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBundleSize+1))
	if err != nil {
		return nil, nil, err
	}
	b, err := ParseBundle(data)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", path, err)
	}
	return b.Verify(ref, nil, nil)
}

// NewNonce returns a fresh random nonce.
func NewNonce() []byte {
	n := make([]byte, NonceSize)
	rand.Read(n)
	return n
}

func hardwareClaims(ev tee.Evidence) (*tee.Claims, error) {
	switch ev.Type {
	case tee.TDX:
		return tdx.ReadClaims(ev)
	case tee.SNP:
		return snp.ReadClaims(ev)
	}
	return nil, fmt.Errorf("no claims reader for %s evidence", ev.Type)
}
