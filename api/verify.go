package api

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"
)

// AudienceForCert returns the audience string of a server whose TLS leaf certificate is cert:
// "spki-sha256:" and the hex SHA-256 of its SubjectPublicKeyInfo. A client that pins the
// server's TLS key (bound to its attestation evidence) therefore signs for exactly that key,
// and a request captured by one server cannot be replayed to another.
func AudienceForCert(cert *x509.Certificate) string {
	sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	return "spki-sha256:" + hex.EncodeToString(sum[:])
}

// A verifier checks request signatures. All fields are set by NewServer.
type verifier struct {
	audience string
	skew     time.Duration
	nonces   *nonceCache
	ids      identityCache
	now      func() time.Time
}

// errTooOld is returned for a request dated at or before the replay cache's floor: the cache was
// full and forgot nonces that old, so the request cannot be told from a replay. Signing it again
// (with the current date and a fresh nonce) succeeds.
var errTooOld = Errorf(ErrUnavailable, "too many recent requests: requests this old are no longer accepted; sign it again and retry")

// verify authenticates r from its headers alone: the strict header parse, the audience, the
// date within the skew, the signature, and finally the nonce (recorded only for a request
// whose signature holds, so nobody can burn another party's nonces). It reads no body.
func (v *verifier) verify(r *http.Request) (*SignedRequest, error) {
	s, err := parseSignedRequestWith(r.Method, r.RequestURI, r.Header, v.ids.parse)
	if err != nil {
		return nil, Errorf(ErrUnauthenticated, "unsigned or malformed request: %v", err)
	}
	if subtle.ConstantTimeCompare([]byte(s.Audience), []byte(v.audience)) != 1 {
		return nil, Errorf(ErrUnauthenticated, "request was signed for another server (audience %q, this server is %q)", s.Audience, v.audience)
	}
	now := v.now()
	if d := now.Sub(s.Date); d > v.skew || d < -v.skew {
		return nil, Errorf(ErrUnauthenticated, "request date %s is more than %s from the server's clock %s; check the client clock",
			s.Date.Format(dateLayout), v.skew, now.UTC().Format(dateLayout))
	}
	if !s.Identity.Verify(SignatureDomain, s.Canonical(), s.Signature) {
		return nil, Errorf(ErrUnauthenticated, "bad request signature")
	}
	switch v.nonces.add(s.Identity.ID(), s.Nonce, s.Date, s.Date.Add(v.skew), now) {
	case nonceReplayed:
		return nil, Errorf(ErrUnauthenticated, "replayed request (nonce already used)")
	case nonceTooOld:
		return nil, errTooOld
	}
	return s, nil
}

// ErrBodyHash is what a streamed request body returns instead of io.EOF when the bytes
// received do not hash to the signed Styx-Content-Sha256. A Service must treat it like any
// read error: abort, commit nothing.
var ErrBodyHash = Errorf(ErrBadRequest, "request body does not match its signed SHA-256")

// hashedBody wraps a request body: it hashes what is read and, at EOF, returns ErrBodyHash
// unless the hash matches the signed one. It reports over-limit bodies as ErrTooLarge.
type hashedBody struct {
	r        io.Reader
	h        hash.Hash
	want     []byte
	n, limit int64
	done     bool  // EOF reached and the hash matched
	err      error // sticky error
}

func newHashedBody(r io.Reader, wantHex string, limit int64) *hashedBody {
	want, _ := hex.DecodeString(wantHex)
	return &hashedBody{r: r, h: sha256.New(), want: want, limit: limit}
}

func (b *hashedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	if b.done {
		return 0, io.EOF
	}
	if rem := b.limit - b.n + 1; int64(len(p)) > rem {
		p = p[:rem]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.n > b.limit {
		b.err = Errorf(ErrTooLarge, "request body is over the %d-byte limit", b.limit)
		return 0, b.err
	}
	b.h.Write(p[:n])
	switch {
	case err == io.EOF:
		if subtle.ConstantTimeCompare(b.h.Sum(nil), b.want) != 1 {
			b.err = ErrBodyHash
			return n, b.err
		}
		b.done = true
		return n, io.EOF
	case err != nil:
		b.err = fmt.Errorf("read request body: %w", err)
		if errors.Is(err, http.ErrBodyReadAfterClose) {
			b.err = Errorf(ErrBadRequest, "request body closed")
		}
		return n, b.err
	}
	return n, nil
}

// finish drains at most one more byte so a service that stopped right before EOF still gets
// its body checked, and reports whether the whole body arrived and matched.
func (b *hashedBody) finish() error {
	if b.done {
		return nil
	}
	if b.err == nil {
		var one [1]byte
		n, err := io.ReadFull(b, one[:])
		if n > 0 {
			b.err = Errorf(ErrBadRequest, "service did not read the whole request body")
		} else if err != io.EOF && err != io.ErrUnexpectedEOF {
			b.err = err
		}
	}
	if b.done {
		return nil
	}
	return b.err
}
