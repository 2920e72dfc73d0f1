package api

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/styx-tee/styx/party"
)

// Request signature headers (see docs/api.md, "Signed requests").
const (
	HeaderIdentity      = "Styx-Identity"       // the caller's full identity string (styx1…)
	HeaderDate          = "Styx-Date"           // RFC 3339 UTC, whole seconds
	HeaderNonce         = "Styx-Nonce"          // 16 random bytes, base64url without padding
	HeaderContentSHA256 = "Styx-Content-Sha256" // lowercase hex SHA-256 of the body ("" hashes too)
	HeaderAudience      = "Styx-Audience"       // which server the request is for (see Audience)
	HeaderSignature     = "Styx-Signature"      // base64url Ed25519 signature, no padding
)

// SignatureDomain is the party-key signature domain of API requests.
const SignatureDomain = "api-request"

// canonicalVersion is the first line of the canonical request string.
const canonicalVersion = "styx-api-request-v1"

// Limits on signature header values, checked before any other work.
const (
	maxURILen      = 4096
	maxAudienceLen = 256
	nonceLen       = 22 // 16 bytes in base64url without padding
	dateLayout     = "2006-01-02T15:04:05Z"
)

// EmptySHA256 is the hex SHA-256 of an empty body, the content hash of a request with none.
var EmptySHA256 = hex.EncodeToString(sha256.New().Sum(nil))

// A SignedRequest holds the signed fields of one API request: everything the canonical string
// covers, plus the signature.
type SignedRequest struct {
	Method        string
	RequestURI    string // path and query exactly as sent, e.g. "/v1/audit?pad=x"
	Audience      string
	Date          time.Time
	Nonce         string
	ContentSHA256 string // lowercase hex
	Identity      *party.Identity
	Signature     []byte
}

// Canonical returns the byte string the caller signs: one field per line, in this order,
// each line ending in "\n". No field may contain a newline (parseSignedRequest checks).
//
//	styx-api-request-v1
//	METHOD
//	REQUEST-URI
//	AUDIENCE
//	DATE
//	NONCE
//	CONTENT-SHA256
//	CALLER-ID          (styxid1…, the short id of Styx-Identity)
func (s *SignedRequest) Canonical() []byte {
	var b strings.Builder
	for _, f := range []string{
		canonicalVersion, s.Method, s.RequestURI, s.Audience, s.Date.UTC().Format(dateLayout),
		s.Nonce, s.ContentSHA256, s.Identity.ID().String(),
	} {
		b.WriteString(f)
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// SignRequest signs req for audience with key, setting the Styx-* headers. bodySHA256 is the
// lowercase hex SHA-256 of the body that will be sent (EmptySHA256 for none). It uses a fresh
// random nonce and now as the date.
func SignRequest(req *http.Request, key *party.Key, audience, bodySHA256 string, now time.Time) {
	var n [16]byte
	rand.Read(n[:])
	s := &SignedRequest{
		Method:        req.Method,
		RequestURI:    req.URL.RequestURI(),
		Audience:      audience,
		Date:          now.UTC().Truncate(time.Second),
		Nonce:         base64.RawURLEncoding.EncodeToString(n[:]),
		ContentSHA256: bodySHA256,
		Identity:      key.Identity(),
	}
	s.Signature = key.Sign(SignatureDomain, s.Canonical())
	h := req.Header
	h.Set(HeaderIdentity, s.Identity.String())
	h.Set(HeaderDate, s.Date.Format(dateLayout))
	h.Set(HeaderNonce, s.Nonce)
	h.Set(HeaderContentSHA256, s.ContentSHA256)
	h.Set(HeaderAudience, s.Audience)
	h.Set(HeaderSignature, base64.RawURLEncoding.EncodeToString(s.Signature))
}

// parseSignedRequest reads the signature headers of r strictly: each present exactly once,
// each within its size and alphabet. It does not verify the signature.
func parseSignedRequest(method, requestURI string, h http.Header) (*SignedRequest, error) {
	return parseSignedRequestWith(method, requestURI, h, party.ParseIdentity)
}

func parseSignedRequestWith(method, requestURI string, h http.Header, parseIdentity func(string) (*party.Identity, error)) (*SignedRequest, error) {
	get := func(name string, max int) (string, error) {
		v := h.Values(name)
		if len(v) != 1 {
			return "", fmt.Errorf("header %s: want exactly one, got %d", name, len(v))
		}
		if len(v[0]) > max || !printableASCII(v[0]) {
			return "", fmt.Errorf("header %s: malformed", name)
		}
		return v[0], nil
	}
	if len(requestURI) > maxURILen || !printableASCII(requestURI) || !strings.HasPrefix(requestURI, "/") {
		return nil, fmt.Errorf("request uri: malformed")
	}
	s := &SignedRequest{Method: method, RequestURI: requestURI}
	idStr, err := get(HeaderIdentity, party.MaxIdentityStringLen)
	if err != nil {
		return nil, err
	}
	if s.Identity, err = parseIdentity(idStr); err != nil {
		return nil, fmt.Errorf("header %s: %w", HeaderIdentity, err)
	}
	date, err := get(HeaderDate, len(dateLayout))
	if err != nil {
		return nil, err
	}
	if s.Date, err = parseDate(date); err != nil {
		return nil, err
	}
	if s.Nonce, err = get(HeaderNonce, nonceLen); err != nil {
		return nil, err
	}
	if !validNonce(s.Nonce) {
		return nil, fmt.Errorf("header %s: want %d base64url characters", HeaderNonce, nonceLen)
	}
	if s.ContentSHA256, err = get(HeaderContentSHA256, 64); err != nil {
		return nil, err
	}
	if !validHexSHA256(s.ContentSHA256) {
		return nil, fmt.Errorf("header %s: want 64 lowercase hex digits", HeaderContentSHA256)
	}
	if s.Audience, err = get(HeaderAudience, maxAudienceLen); err != nil {
		return nil, err
	}
	sig, err := get(HeaderSignature, 86)
	if err != nil {
		return nil, err
	}
	if s.Signature, err = base64.RawURLEncoding.Strict().DecodeString(sig); err != nil || len(s.Signature) != 64 {
		return nil, fmt.Errorf("header %s: want a base64url Ed25519 signature", HeaderSignature)
	}
	return s, nil
}

// parseDate accepts only the canonical form, so one instant has one spelling.
func parseDate(v string) (time.Time, error) {
	t, err := time.Parse(dateLayout, v)
	if err != nil || t.Format(dateLayout) != v {
		return time.Time{}, fmt.Errorf("header %s: want %s", HeaderDate, dateLayout)
	}
	return t, nil
}

func validNonce(s string) bool {
	if len(s) != nonceLen {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == 16
}

func validHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

// printableASCII reports whether s is non-empty visible ASCII (no spaces, no controls).
func printableASCII(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return false
		}
	}
	return true
}
