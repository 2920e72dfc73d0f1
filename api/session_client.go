package api

import (
	"bytes"
	"context"
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// A QuerySession asks one model Pad questions through one serving program, each query
// authenticated with the session's MAC key and its answer sealed under the session's answer key
// (docs/api.md, "Query sessions"). Open one with Client.OpenQuerySession. It is safe for
// concurrent use; when the node no longer knows the session (expiry, restart) Query opens a new
// one and asks again. Its keys never reach a log.
type QuerySession struct {
	c       *Client
	pad     string
	program string

	mu      sync.Mutex
	id      string
	expires time.Time
	keys    *sessionKeys
}

// OpenQuerySession opens a query session on model Pad id served by program (its sha256). The
// node checks the query policy once, without taking a use; every query is checked again.
func (c *Client) OpenQuerySession(ctx context.Context, id, program string) (*QuerySession, error) {
	s := &QuerySession{c: c, pad: id, program: program}
	if err := s.open(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// open asks the node for a new session and opens its sealed secret.
func (s *QuerySession) open(ctx context.Context) error {
	path, err := idPath("/v1/pads/", s.pad, "/sessions")
	if err != nil {
		return err
	}
	req := &SessionRequest{Program: s.program, Nonce: make([]byte, 16)}
	rand.Read(req.Nonce)
	if err := req.validate(); err != nil {
		return err
	}
	var info SessionInfo
	if err := s.c.doJSON(ctx, http.MethodPost, path, nil, req, &info); err != nil {
		return err
	}
	if !validSessionID(info.ID) || info.Pad != s.pad || info.Program != s.program {
		return fmt.Errorf("api: the node answered with a session for something else")
	}
	sk, err := s.c.key.HPKEPrivateKey(info.KEM)
	if err != nil {
		return fmt.Errorf("api: query session: %w", err)
	}
	secret, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), sessionSealInfo(s.pad, s.program, info.ID, info.Expires, req.Nonce), info.Sealed)
	if err != nil {
		return fmt.Errorf("api: query session secret does not open for this request and key: %w", err)
	}
	defer clear(secret)
	if len(secret) != sessionSecretLen {
		return fmt.Errorf("api: query session secret is %d bytes, want %d", len(secret), sessionSecretLen)
	}
	keys, err := deriveSessionKeys(secret, info.ID)
	if err != nil {
		return err
	}
	s.mu.Lock()
	s.id, s.expires, s.keys = info.ID, info.Expires, keys
	s.mu.Unlock()
	return nil
}

// ID returns the current session id.
func (s *QuerySession) ID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.id
}

// Expires returns when the current session ends; Query opens a new one after that.
func (s *QuerySession) Expires() time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.expires
}

// LogValue redacts the session's keys.
func (s *QuerySession) LogValue() slog.Value {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slog.GroupValue(slog.String("id", s.id), slog.String("pad", s.pad), slog.Time("expires", s.expires),
		slog.String("keys", "REDACTED"))
}

func (s *QuerySession) String() string { return "query session " + s.ID() + " (keys REDACTED)" }

// Query asks the model one question and returns the decrypted answer. A session the node no
// longer knows (expired, or dropped by a restart) is opened again once, and the question asked
// again: it was refused before any check or use.
func (s *QuerySession) Query(ctx context.Context, input []byte) ([]byte, error) {
	s.mu.Lock()
	stale := !s.c.now().Before(s.expires.Add(-5 * time.Second))
	s.mu.Unlock()
	if stale {
		if err := s.open(ctx); err != nil {
			return nil, err
		}
	}
	ans, err := s.query(ctx, input)
	var e *Error
	if errors.As(err, &e) && e.Code == CodeUnauthenticated {
		if err := s.open(ctx); err != nil {
			return nil, err
		}
		ans, err = s.query(ctx, input)
	}
	return ans, err
}

func (s *QuerySession) query(ctx context.Context, input []byte) ([]byte, error) {
	if len(input) > MaxQueryInput {
		return nil, fmt.Errorf("api: query input is %d bytes, at most %d", len(input), MaxQueryInput)
	}
	s.mu.Lock()
	id, keys := s.id, s.keys
	s.mu.Unlock()
	path := "/v1/sessions/" + id + "/query"
	body, bind := sealSessionQuery(keys, path, id, input, s.c.now())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.c.url(path, nil), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("api: %w", err)
	}
	// The headers are the same for every query of the session (session_frame.go).
	req.Header.Set("Content-Type", SessionQueryContentType)
	resp, err := s.c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("api: session query: %w", err)
	}
	if resp.Header.Get(TEEHeader) == "simulated" {
		s.c.mu.Lock()
		s.c.simulated = true
		s.c.mu.Unlock()
	}
	if err := checkStatus(resp); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != SessionQueryContentType {
		return nil, fmt.Errorf("api: session answer is %q, want %s", ct, SessionQueryContentType)
	}
	sealed, err := io.ReadAll(io.LimitReader(resp.Body, maxJSONResponse+1))
	if err != nil {
		return nil, fmt.Errorf("api: read session answer: %w", err)
	}
	if len(sealed) > maxJSONResponse {
		return nil, fmt.Errorf("api: session answer is over %d bytes", maxJSONResponse)
	}
	return keys.open(sealed, sessionAnswerAD(nil, id, s.pad, s.program, &bind))
}

// sealSessionQuery returns the frame of a session query of input to requestURI, MAC'd with keys
// at now, with its nonce and its input's SHA-256, which the answer is bound to.
func sealSessionQuery(keys *sessionKeys, requestURI, id string, input []byte, now time.Time) (body []byte, bind sessionBinding) {
	f := sessionFrame{date: now.UTC().Truncate(time.Second), input: input}
	rand.Read(f.nonce[:])
	bind = sessionBinding{nonce: f.nonce, sum: sha256.Sum256(input)}
	f.mac = keys.sign(appendSessionCanonical(nil, http.MethodPost, requestURI, id, f.date, &bind))
	return appendSessionFrame(make([]byte, 0, sessionFrameHeader+len(input)), &f), bind
}
