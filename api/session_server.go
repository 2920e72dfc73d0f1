package api

import (
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
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
	ss := &querySession{id: newSessionID(), caller: c.caller, callerID: c.caller.ID().String(), pad: id, program: req.Program,
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

// sessionQuery answers one query of the session that authenticated the request (prepareSession):
// the frame's input goes to the service as it is, and the answer back as nonce || ciphertext.
func (s *Server) sessionQuery(c *call) (any, error) {
	if _, err := c.query(); err != nil {
		return nil, err
	}
	svc, err := s.sessionService()
	if err != nil {
		return nil, err
	}
	ss := c.session
	answer, err := svc.Answer(c.ctx, ss.caller, ss.pad, ss.program, c.json)
	if err != nil {
		return nil, err
	}
	return ss.keys.seal(answer, sessionAnswerAD(nil, ss.id, ss.pad, ss.program, &c.bind)), nil
}

// errUnknownSession is what a client gets for a session that expired, was dropped (restart,
// eviction) or never existed: open a new one. The Go client does so by itself.
func errUnknownSession(id string) error {
	return Errorf(ErrUnauthenticated, "unknown or expired query session %s: open a new one", id)
}

// prepareSession authenticates a session query (its body a session frame) in the order of
// verify: the request line and the session from the path, so that only a holder of a live
// session id makes the server read a body; then the body, bounded by limit; the frame's shape
// (a malformed frame is a 400); the date within the skew; the MAC over the request line, the
// session and the frame, compared in constant time; and last the nonce (recorded only for a
// request whose MAC holds). Nothing of the input is looked at before the MAC holds. On success
// c holds the session, the nonce, the input's hash and, in c.json, the input.
func (s *Server) prepareSession(c *call, limit int64) error {
	r := c.r
	id := r.PathValue("id")
	if !validSessionID(id) {
		return Errorf(ErrUnauthenticated, "unauthenticated or malformed session request: session id: want %d base64url characters", sessionIDLen)
	}
	if len(r.RequestURI) > maxURILen || !printableASCII(r.RequestURI) || !strings.HasPrefix(r.RequestURI, "/") {
		return Errorf(ErrUnauthenticated, "unauthenticated or malformed session request: request uri: malformed")
	}
	now := s.cfg.Now()
	ss := s.sessions.get(id, now)
	if ss == nil {
		return errUnknownSession(id)
	}
	body, err := readBounded(r, limit)
	if err != nil {
		return err
	}
	f, err := parseSessionFrame(body)
	if err != nil {
		return Errorf(ErrBadRequest, "malformed session query: %v", err)
	}
	if d := now.Sub(f.date); d > s.cfg.MaxSkew || d < -s.cfg.MaxSkew {
		return Errorf(ErrUnauthenticated, "request date %s is more than %s from the server's clock %s; check the client clock",
			f.date.Format(dateLayout), s.cfg.MaxSkew, now.UTC().Format(dateLayout))
	}
	bind := sessionBinding{nonce: f.nonce, sum: sha256.Sum256(f.input)}
	want := ss.keys.sign(appendSessionCanonical(nil, r.Method, r.RequestURI, id, f.date, &bind))
	if !hmac.Equal(want[:], f.mac[:]) {
		return Errorf(ErrUnauthenticated, "bad session MAC")
	}
	nonce := base64.RawURLEncoding.EncodeToString(f.nonce[:])
	switch s.verify.nonces.add(ss.caller.ID(), nonce, f.date, f.date.Add(s.cfg.MaxSkew), now) {
	case nonceReplayed:
		return Errorf(ErrUnauthenticated, "replayed request (nonce already used)")
	case nonceTooOld:
		return errTooOld
	}
	c.caller, c.session, c.bind, c.json = ss.caller, ss, bind, f.input
	return nil
}

// readBounded reads r's whole body, refusing one over limit bytes (declared or read).
func readBounded(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, Errorf(ErrTooLarge, "request body of %d bytes is over the %d-byte limit", r.ContentLength, limit)
	}
	b := make([]byte, 0, max(r.ContentLength, 0)+1) // +1: room to see EOF without growing
	lr := io.LimitReader(r.Body, limit+1)
	for {
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
		n, err := lr.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if int64(len(b)) > limit {
			return nil, Errorf(ErrTooLarge, "request body is over the %d-byte limit", limit)
		}
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, Errorf(ErrBadRequest, "request body: %v", err)
		}
	}
}
