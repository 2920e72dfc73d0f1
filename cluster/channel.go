package cluster

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"fmt"
	"math"
	"math/big"
	"net/http"
	"strconv"
	"time"
)

// AttestationPath is where a node serves its attestation bundle:
//
//	GET /v1/attestation?nonce=<64 hex digits>  →  200, application/json, the canonical bundle
const AttestationPath = "/v1/attestation"

// TLSCertificate returns a self-signed certificate for the node's TLS key. Clients do not trust
// it through a CA: they pin its public key after verifying the attestation that binds it.
func (n *Node) TLSCertificate() (tls.Certificate, error) {
	now := time.Now()
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "styx node " + n.Identity().ID().String()[:24]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.AddDate(1, 0, 0),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &n.tlsKey.PublicKey, n.tlsKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("cluster: tls certificate: %w", err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: n.tlsKey}, nil
}

// TLSConfig returns a server TLS configuration (TLS 1.3 only) presenting TLSCertificate.
func (n *Node) TLSConfig() (*tls.Config, error) {
	cert, err := n.TLSCertificate()
	if err != nil {
		return nil, err
	}
	return &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}, nil
}

// Handler serves GET AttestationPath: a fresh bundle for the client's nonce. It authenticates
// nobody: attestation is public, and the nonce is the only input. Each bundle is fresh evidence
// from the TEE, so the handler answers at most Config.AttestationRate per second (bursts of
// AttestationBurst) and 429 Too Many Requests, with Retry-After, beyond that.
func (n *Node) Handler() http.Handler {
	return n.handler(newTokenBucket(n.cfg.AttestationRate, n.cfg.AttestationBurst, nil))
}

func (n *Node) handler(limit *tokenBucket) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		q := r.URL.Query()["nonce"]
		if len(q) != 1 || len(q[0]) != 2*NonceSize {
			http.Error(w, fmt.Sprintf("want one nonce of %d hex digits", 2*NonceSize), http.StatusBadRequest)
			return
		}
		nonce, err := hex.DecodeString(q[0])
		if err != nil {
			http.Error(w, "nonce is not hex", http.StatusBadRequest)
			return
		}
		if ok, wait := limit.take(); !ok {
			w.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
			http.Error(w, "too many attestation requests: retry later", http.StatusTooManyRequests)
			return
		}
		b, err := n.Bundle(nonce)
		if err != nil {
			n.log().Error("attestation failed", "err", err)
			http.Error(w, "attestation failed", http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		w.Write(b.Marshal())
	})
}

// PinnedTLSConfig returns a client TLS configuration that accepts exactly one server key: the
// one whose DER SubjectPublicKeyInfo hashes to pin (SHA-256). There is no CA and no host name
// check: the attestation that produced the pin is the trust anchor. Any other key fails the
// handshake with an error saying so.
func PinnedTLSConfig(pin [32]byte) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by VerifyConnection's pin check, which always runs
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return fmt.Errorf("server presented no certificate: %w", ErrKeyMismatch)
			}
			got := sha256.Sum256(cs.PeerCertificates[0].RawSubjectPublicKeyInfo)
			if got != pin {
				return &PinError{Pinned: pin, Got: got}
			}
			return nil
		},
	}
}

// PinError reports a server whose TLS key is not the attested one.
type PinError struct {
	Pinned, Got [32]byte // SHA-256 of the DER SubjectPublicKeyInfo
}

func (e *PinError) Error() string {
	return fmt.Sprintf("server TLS key does not match the attested key (attested sha256:%x, server sha256:%x): "+
		"the server may be an impostor; if the node was legitimately replaced, attest it again with styx attest",
		e.Pinned[:8], e.Got[:8])
}

func (e *PinError) Unwrap() error { return ErrKeyMismatch }

// KeyPin returns the pin of a DER SubjectPublicKeyInfo.
func KeyPin(spki []byte) [32]byte { return sha256.Sum256(spki) }
