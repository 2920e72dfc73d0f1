package api

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// Query sessions (docs/api.md, "Query sessions"). A querier opens a session on a model Pad with
// one signed request; the node decides the query policy once without taking a use, and sends a
// fresh 32-byte session secret HPKE-sealed to the caller. Each query of the session is then
// authenticated with HMAC-SHA256 under a key derived from the secret, instead of an Ed25519
// signature, and its answer sealed with AES-256-GCM under another derived key, instead of a
// fresh HPKE encapsulation. Every query is still decided on the model's current chain and takes
// a use: a session saves the cryptography, never a check.

// Session protocol constants.
const (
	sessionCanonicalVersion = "styx-session-request-v2"
	sessionIDLen            = 22 // 16 random bytes in base64url without padding
	sessionSecretLen        = 32

	labelSessionSeal   = "styx query session v1"
	labelSessionMAC    = "styx query session v1 request mac"
	labelSessionAnswer = "styx query session v1 answer key"
	labelAnswerAD      = "styx query session answer v2"
)

// Session defaults (Config.SessionTTL, MaxSessions, MaxSessionsPerCaller).
const (
	DefaultSessionTTL           = 10 * time.Minute
	DefaultMaxSessions          = 4096
	DefaultMaxSessionsPerCaller = 8
)

// QuerySessionService is what a Service implements to serve query sessions; the engine does.
// The server calls it only for callers whose signature (open) or session MAC (query) verified.
type QuerySessionService interface {
	// CheckQuery decides whether caller may query model id through program now, without
	// taking a use: the check behind opening a session.
	CheckQuery(ctx context.Context, caller *party.Identity, id, program string) error
	// Answer answers one query in a session with every check Query makes (the policy decision
	// on the current chain, a use of each query counter, the audit) and returns the answer in
	// plaintext; the server seals it to the session.
	Answer(ctx context.Context, caller *party.Identity, id, program string, input []byte) ([]byte, error)
}

// A SessionRequest opens a query session (POST /v1/pads/{id}/sessions). Nonce (16 random
// bytes) binds the sealed session secret to this request.
type SessionRequest struct {
	Program string `json:"program"` // sha256 of the serving program every query of the session uses
	Nonce   []byte `json:"nonce"`
}

func (r *SessionRequest) validate() error {
	if !validHexSHA256(r.Program) {
		return Errorf(ErrBadRequest, "session program %q: want a lowercase hex sha256", abbrev(r.Program))
	}
	if len(r.Nonce) != 16 {
		return Errorf(ErrBadRequest, "session nonce: want 16 bytes, got %d", len(r.Nonce))
	}
	return nil
}

// A SessionInfo is an open session: its id, what it queries, when it ends, and its secret
// HPKE-sealed to the caller (base mode, X-Wing, HKDF-SHA256, AES-256-GCM; Sealed is
// enc || ciphertext; the info string is sessionSealInfo).
type SessionInfo struct {
	ID      string    `json:"id"`
	Pad     string    `json:"pad"`
	Program string    `json:"program"`
	Expires time.Time `json:"expires"`
	KEM     uint16    `json:"kem"`
	Sealed  []byte    `json:"sealed"`
}

// SessionQueryContentType is the media type of a session query's body (a session frame) and
// of its answer (nonce || AES-256-GCM ciphertext).
const SessionQueryContentType = "application/octet-stream"

// sessionSealInfo is the HPKE info string of a session secret.
func sessionSealInfo(pad, program, id string, expires time.Time, nonce []byte) []byte {
	s := labelSessionSeal + "\x00" + pad + "\x00" + program + "\x00" + id + "\x00" + expires.UTC().Format(dateLayout) + "\x00"
	return append([]byte(s), nonce...)
}

// The lengths of a nonce in base64url without padding and of a SHA-256 in hex.
const (
	nonceTextLen  = 22
	sha256TextLen = 64
)

// A sessionBinding is what a session query's answer is bound to besides the session: the
// request's nonce and its input's SHA-256, as the frame carries them.
type sessionBinding struct {
	nonce [16]byte
	sum   [32]byte
}

// sessionAnswerAD binds an answer to its session, model, serving program and request: the
// fields joined by NUL, the nonce in base64url without padding and the input's hash in
// lowercase hex. It appends to dst.
func sessionAnswerAD(dst []byte, id, pad, program string, b *sessionBinding) []byte {
	dst = slices.Grow(dst, len(labelAnswerAD)+len(id)+len(pad)+len(program)+nonceTextLen+sha256TextLen+5)
	for _, f := range []string{labelAnswerAD, id, pad, program} {
		dst = append(append(dst, f...), 0)
	}
	dst = append(base64.RawURLEncoding.AppendEncode(dst, b.nonce[:]), 0)
	return hex.AppendEncode(dst, b.sum[:])
}

// SessionCanonical returns the string a session request's MAC covers: one field per line, each
// ending in "\n" (no field may hold a newline; the server builds it from the request line and
// the frame, never from text the client sent).
//
//	styx-session-request-v2
//	METHOD
//	REQUEST-URI
//	SESSION-ID
//	DATE       the frame's date, as 2006-01-02T15:04:05Z
//	NONCE      the frame's nonce, base64url without padding
//	INPUT-SHA256  lowercase hex SHA-256 of the frame's input
func SessionCanonical(method, requestURI, session, date, nonce, contentSHA256 string) []byte {
	var b []byte
	for _, f := range []string{sessionCanonicalVersion, method, requestURI, session, date, nonce, contentSHA256} {
		b = append(append(b, f...), '\n')
	}
	return b
}

// appendSessionCanonical appends to dst what SessionCanonical returns for a frame dated date
// (whole seconds, UTC) with nonce and input hash b, encoding them on the way.
func appendSessionCanonical(dst []byte, method, requestURI, session string, date time.Time, b *sessionBinding) []byte {
	dst = slices.Grow(dst, len(sessionCanonicalVersion)+len(method)+len(requestURI)+len(session)+len(dateLayout)+nonceTextLen+sha256TextLen+7)
	for _, f := range []string{sessionCanonicalVersion, method, requestURI, session} {
		dst = append(append(dst, f...), '\n')
	}
	dst = append(date.UTC().AppendFormat(dst, dateLayout), '\n')
	dst = append(base64.RawURLEncoding.AppendEncode(dst, b.nonce[:]), '\n')
	return append(hex.AppendEncode(dst, b.sum[:]), '\n')
}

// sessionKeys are the keys derived from one session secret.
type sessionKeys struct {
	mac    []byte // HMAC-SHA256 key of requests
	answer cipher.AEAD
	// macs holds HMACs keyed with mac, reset after use: keying one (hashing the padded key
	// twice) and its allocations cost as much as the MAC of a query's canonical string.
	macs sync.Pool
}

// deriveSessionKeys derives the request MAC key and the answer key from secret with HKDF-SHA256,
// salted with the session id, one label each.
func deriveSessionKeys(secret []byte, id string) (*sessionKeys, error) {
	mac, err := hkdf.Key(sha256.New, secret, []byte(id), labelSessionMAC, 32)
	if err != nil {
		return nil, err
	}
	ak, err := hkdf.Key(sha256.New, secret, []byte(id), labelSessionAnswer, 32)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(ak)
	if err != nil {
		return nil, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, err
	}
	return &sessionKeys{mac: mac, answer: aead}, nil
}

// sign returns the HMAC-SHA256 of canonical under the request key.
func (k *sessionKeys) sign(canonical []byte) (sum [32]byte) {
	m, _ := k.macs.Get().(hash.Hash)
	if m == nil {
		m = hmac.New(sha256.New, k.mac)
	}
	m.Write(canonical)
	m.Sum(sum[:0])
	m.Reset()
	k.macs.Put(m)
	return sum
}

func (k *sessionKeys) seal(answer, ad []byte) []byte {
	out := make([]byte, k.answer.NonceSize(), k.answer.NonceSize()+len(answer)+k.answer.Overhead())
	rand.Read(out)
	return k.answer.Seal(out, out, answer, ad)
}

func (k *sessionKeys) open(sealed, ad []byte) ([]byte, error) {
	n := k.answer.NonceSize()
	if len(sealed) < n+k.answer.Overhead() {
		return nil, fmt.Errorf("api: session answer too short")
	}
	pt, err := k.answer.Open(sealed[n:n], sealed[:n], sealed[n:], ad) // in place: sealed is the caller's
	if err != nil {
		return nil, fmt.Errorf("api: session answer does not open for this request: %w", err)
	}
	return pt, nil
}

// newSessionID returns 16 random bytes in base64url without padding.
func newSessionID() string {
	var b [16]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// validSessionID reports whether s has the shape of a session id (the nonce's).
func validSessionID(s string) bool { return validNonce(s) }

// A querySession is one open session on the server. Its keys never reach a log.
type querySession struct {
	id       string
	caller   *party.Identity
	callerID string // caller.ID() in text, for the access log of every query
	pad      string
	program  string
	expires  time.Time
	created  time.Time
	keys     *sessionKeys
}

// LogValue redacts the keys.
func (s *querySession) LogValue() slog.Value {
	return slog.GroupValue(slog.String("id", s.id), slog.String("caller", s.caller.ID().String()),
		slog.String("pad", s.pad), slog.Time("expires", s.expires), slog.String("keys", "REDACTED"))
}

func (s *querySession) String() string { return "query session " + s.id + " (keys REDACTED)" }
