package api

import (
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// sessionTable holds the open query sessions of a server, in memory only: a restart drops
// them and clients open new ones. It is bounded in total and per caller.
type sessionTable struct {
	mu        sync.Mutex
	m         map[string]*querySession
	max       int
	perCaller int
}

func newSessionTable(max, perCaller int) *sessionTable {
	return &sessionTable{m: map[string]*querySession{}, max: max, perCaller: perCaller}
}

// get returns the live session id, or nil (unknown or expired at now; an expired one is dropped).
func (t *sessionTable) get(id string, now time.Time) *querySession {
	t.mu.Lock()
	defer t.mu.Unlock()
	ss := t.m[id]
	if ss != nil && !now.Before(ss.expires) {
		delete(t.m, id)
		return nil
	}
	return ss
}

// add stores ss, first dropping expired sessions and, if its caller already holds perCaller
// sessions, the caller's oldest one (a client that lost its sessions must be able to open new
// ones). A table full of other callers' sessions refuses with a retryable error.
func (t *sessionTable) add(ss *querySession, now time.Time) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest *querySession
	mine := 0
	for id, o := range t.m {
		if !now.Before(o.expires) {
			delete(t.m, id)
			continue
		}
		if o.caller.ID() == ss.caller.ID() {
			mine++
			if oldest == nil || o.created.Before(oldest.created) {
				oldest = o
			}
		}
	}
	if mine >= t.perCaller {
		delete(t.m, oldest.id)
	}
	if len(t.m) >= t.max {
		return Errorf(ErrUnavailable, "too many open query sessions on this node; retry later")
	}
	t.m[ss.id] = ss
	return nil
}

func (t *sessionTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

func (s *Server) sessionService() (QuerySessionService, error) {
	svc, ok := s.cfg.Service.(QuerySessionService)
	if !ok {
		return nil, Errorf(ErrNotFound, "this node serves no query sessions")
	}
	return svc, nil
}

// openSession decides the query policy once (no use taken) and returns a new session whose
// secret is HPKE-sealed to the caller.
func (s *Server) openSession(c *call) (any, error) {
	id, err := c.idNoQuery()
	if err != nil {
		return nil, err
	}
	var req SessionRequest
	if err := decodeJSON(c.json, &req); err != nil {
		return nil, err
	}
	if err := req.validate(); err != nil {
		return nil, err
	}
	svc, err := s.sessionService()
	if err != nil {
		return nil, err
	}
	if err := svc.CheckQuery(c.ctx, c.caller, id, req.Program); err != nil {
		return nil, err
	}
	pk, err := c.caller.HPKEPublicKey(party.KEMXWing)
	if err != nil {
		return nil, Errorf(ErrBadRequest, "query session: %v", err)
	}
	now := s.cfg.Now()
	ss := &querySession{id: newSessionID(), caller: c.caller, pad: id, program: req.Program,
		created: now, expires: now.Add(s.cfg.SessionTTL).UTC().Truncate(time.Second)}
	secret := make([]byte, sessionSecretLen)
	rand.Read(secret)
	defer clear(secret)
	if ss.keys, err = deriveSessionKeys(secret, ss.id); err != nil {
		return nil, fmt.Errorf("api: session keys: %w", err)
	}
	sealed, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), sessionSealInfo(id, req.Program, ss.id, ss.expires, req.Nonce), secret)
	if err != nil {
		return nil, fmt.Errorf("api: seal session secret: %w", err)
	}
	if err := s.sessions.add(ss, now); err != nil {
		return nil, err
	}
	c.status = http.StatusCreated
	return &SessionInfo{ID: ss.id, Pad: id, Program: req.Program, Expires: ss.expires, KEM: party.KEMXWing, Sealed: sealed}, nil
}

// sessionQuery answers one query of the session that authenticated the request.
func (s *Server) sessionQuery(c *call) (any, error) {
	if _, err := c.query(); err != nil {
		return nil, err
	}
	var q SessionQuery
	if err := decodeJSON(c.json, &q); err != nil {
		return nil, err
	}
	if len(q.Input) > MaxQueryInput {
		return nil, Errorf(ErrTooLarge, "query input is %d bytes, at most %d", len(q.Input), MaxQueryInput)
	}
	svc, err := s.sessionService()
	if err != nil {
		return nil, err
	}
	ss := c.session
	answer, err := svc.Answer(c.ctx, ss.caller, ss.pad, ss.program, q.Input)
	if err != nil {
		return nil, err
	}
	return &SessionAnswer{Sealed: ss.keys.seal(answer, sessionAnswerAD(ss.id, ss.pad, ss.program, c.nonce, c.bodySHA256))}, nil
}

// errUnknownSession is what a client gets for a session that expired, was dropped (restart,
// eviction) or never existed: open a new one. The Go client does so by itself.
func errUnknownSession(id string) error {
	return Errorf(ErrUnauthenticated, "unknown or expired query session %s: open a new one", id)
}

// verifySession authenticates a session request from its headers alone, in the order of
// verify: strict parse, the session, the date within the skew, the MAC (compared in constant
// time), and last the nonce (recorded only for a request whose MAC holds). It returns the
// session, the nonce and the signed body hash.
func (s *Server) verifySession(r *http.Request) (ss *querySession, nonce, sum string, err error) {
	id := r.PathValue("id")
	date, nonce, sum, mac, err := parseSessionHeaders(r, id)
	if err != nil {
		return nil, "", "", Errorf(ErrUnauthenticated, "unauthenticated or malformed session request: %v", err)
	}
	now := s.cfg.Now()
	if ss = s.sessions.get(id, now); ss == nil {
		return nil, "", "", errUnknownSession(id)
	}
	if d := now.Sub(date); d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew {
		return nil, "", "", Errorf(ErrUnauthenticated, "request date %s is more than %s from the server's clock %s; check the client clock",
			date.Format(dateLayout), s.cfg.MaxSkew, now.UTC().Format(dateLayout))
	}
	want := ss.keys.sign(SessionCanonical(r.Method, r.RequestURI, id, date.Format(dateLayout), nonce, sum))
	if !hmac.Equal(want, mac) {
		return nil, "", "", Errorf(ErrUnauthenticated, "bad session MAC")
	}
	switch s.verify.nonces.add(ss.caller.ID(), nonce, date, date.Add(s.cfg.MaxSkew), now) {
	case nonceReplayed:
		return nil, "", "", Errorf(ErrUnauthenticated, "replayed request (nonce already used)")
	case nonceTooOld:
		return nil, "", "", errTooOld
	}
	return ss, nonce, sum, nil
}

// parseSessionHeaders reads a session request's headers strictly: each exactly once, each
// within its size and alphabet.
func parseSessionHeaders(r *http.Request, id string) (date time.Time, nonce, sum string, mac []byte, err error) {
	if !validSessionID(id) {
		return date, "", "", nil, fmt.Errorf("session id: want %d base64url characters", sessionIDLen)
	}
	if len(r.RequestURI) > maxURILen || !printableASCII(r.RequestURI) || !strings.HasPrefix(r.RequestURI, "/") {
		return date, "", "", nil, fmt.Errorf("request uri: malformed")
	}
	get := func(name string, max int) (string, error) {
		v := r.Header.Values(name)
		if len(v) != 1 || len(v[0]) > max || !printableASCII(v[0]) {
			return "", fmt.Errorf("header %s: want exactly one well-formed value", name)
		}
		return v[0], nil
	}
	ds, err := get(HeaderDate, len(dateLayout))
	if err == nil {
		date, err = parseDate(ds)
	}
	if err != nil {
		return date, "", "", nil, err
	}
	if nonce, err = get(HeaderNonce, nonceLen); err != nil || !validNonce(nonce) {
		return date, "", "", nil, fmt.Errorf("header %s: want %d base64url characters", HeaderNonce, nonceLen)
	}
	if sum, err = get(HeaderContentSHA256, 64); err != nil || !validHexSHA256(sum) {
		return date, "", "", nil, fmt.Errorf("header %s: want 64 lowercase hex digits", HeaderContentSHA256)
	}
	m, err := get(HeaderSessionMAC, macLen)
	if err == nil {
		mac, err = base64.RawURLEncoding.Strict().DecodeString(m)
	}
	if err != nil || len(mac) != 32 {
		return date, "", "", nil, fmt.Errorf("header %s: want a base64url HMAC-SHA256", HeaderSessionMAC)
	}
	return date, nonce, sum, mac, nil
}
