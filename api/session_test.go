package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/styx-tee/styx/party"
)

// sessionService adds query sessions to memService: only a Pad's uploader may query it, and a
// Pad in revoked refuses every query, as the engine's per-query decision does.
type sessionService struct {
	*memService
	answers atomic.Int64
}

var _ QuerySessionService = (*sessionService)(nil)

func (s *sessionService) CheckQuery(ctx context.Context, caller *party.Identity, id, program string) error {
	_, err := s.ownedPad(caller, id, "query")
	return err
}

func (s *sessionService) Answer(ctx context.Context, caller *party.Identity, id, program string, input []byte) ([]byte, error) {
	if _, err := s.ownedPad(caller, id, "query"); err != nil {
		return nil, err
	}
	s.mu.Lock()
	reason, revoked := s.revoked[id]
	s.mu.Unlock()
	if revoked {
		return nil, Denied("query refused", "pad "+id+": revoked: "+reason)
	}
	s.answers.Add(1)
	return append([]byte(program[:4]+":"), bytes.ToUpper(input)...), nil
}

// offsetClock is a clock the test moves forward.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *offsetClock) advance(d time.Duration) { c.off.Add(int64(d)) }

type sessionWorld struct {
	n     *testNode
	svc   *sessionService
	clock *offsetClock
	pad   string
	prog  string
}

func newSessionWorld(t *testing.T, cfg Config) *sessionWorld {
	t.Helper()
	w := &sessionWorld{svc: &sessionService{memService: newMemService()}, clock: &offsetClock{},
		prog: strings.Repeat("ab", 32)}
	cfg.Service, cfg.Now = w.svc, w.clock.now
	w.n = newTestNode(t, cfg)
	info, err := w.client(t, 0).UploadPad(context.Background(), bytes.NewReader([]byte("model bytes")))
	if err != nil {
		t.Fatal(err)
	}
	w.pad = info.ID
	return w
}

func (w *sessionWorld) client(t *testing.T, i int) *Client {
	c := w.n.client(t, i)
	c.now = w.clock.now
	return c
}

// raw sends a session query built by hand with s's keys: mutate may change the request after
// the MAC is computed.
func (w *sessionWorld) raw(t *testing.T, s *QuerySession, id string, input []byte, mutate func(*http.Request)) (*http.Response, string) {
	t.Helper()
	body, _ := json.Marshal(&SessionQuery{Input: input})
	req, err := http.NewRequest(http.MethodPost, w.n.ts.URL+"/v1/sessions/"+id+"/query", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	nonce := signSession(req, s.keys, id, hex.EncodeToString(sum[:]), w.clock.now())
	if mutate != nil {
		mutate(req)
	}
	resp, err := w.n.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp, nonce
}

func wantStatus(t *testing.T, resp *http.Response, status int, text string) {
	t.Helper()
	err := checkStatus(resp)
	if resp.StatusCode != status || (text != "" && (err == nil || !strings.Contains(err.Error(), text))) {
		t.Fatalf("status %d (%v), want %d with %q", resp.StatusCode, err, status, text)
	}
	if err == nil {
		resp.Body.Close()
	}
}

func TestSessionRoundTrip(t *testing.T) {
	ctx := context.Background()
	w := newSessionWorld(t, Config{})
	alice := w.client(t, 0)
	s, err := alice.OpenQuerySession(ctx, w.pad, w.prog)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			in := fmt.Sprintf("question %d", i)
			got, err := s.Query(ctx, []byte(in))
			if err != nil || string(got) != "abab:"+strings.ToUpper(in) {
				t.Errorf("answer %q (%v)", got, err)
			}
		})
	}
	wg.Wait()
	if n := w.svc.answers.Load(); n != 8 {
		t.Fatalf("service answered %d queries, want 8", n)
	}
	if d := s.Expires().Sub(w.clock.now()); d <= 9*time.Minute || d > DefaultSessionTTL {
		t.Fatalf("session expires in %s, want about %s", d, DefaultSessionTTL)
	}
	var log strings.Builder
	slog.New(slog.NewTextHandler(&log, nil)).Info("session", "s", s, "server", w.n.srv.sessions.get(s.ID(), w.clock.now()))
	if !strings.Contains(log.String(), "REDACTED") || strings.Contains(log.String(), "mac") {
		t.Fatalf("session log: %s", log.String())
	}
}

func TestSessionRefusals(t *testing.T) {
	ctx := context.Background()
	w := newSessionWorld(t, Config{})
	alice, bob := w.client(t, 0), w.client(t, 1)
	s, err := alice.OpenQuerySession(ctx, w.pad, w.prog)
	if err != nil {
		t.Fatal(err)
	}
	t.Run("open denied by policy", func(t *testing.T) {
		if _, err := bob.OpenQuerySession(ctx, w.pad, w.prog); !errors.Is(err, ErrDenied) {
			t.Fatalf("bob opened a session on alice's Pad: %v", err)
		}
	})
	t.Run("tampered MAC", func(t *testing.T) {
		resp, _ := w.raw(t, s, s.ID(), []byte("x"), func(r *http.Request) {
			mac := []byte(r.Header.Get(HeaderSessionMAC))
			mac[3] ^= 1
			r.Header.Set(HeaderSessionMAC, string(mac))
		})
		wantStatus(t, resp, http.StatusUnauthorized, "bad session MAC")
	})
	t.Run("tampered body", func(t *testing.T) {
		resp, _ := w.raw(t, s, s.ID(), []byte("x"), func(r *http.Request) {
			r.Body = ioNop(`{"input":"eQ=="}`)
		})
		wantStatus(t, resp, http.StatusBadRequest, "does not match its signed SHA-256")
	})
	t.Run("replayed request", func(t *testing.T) {
		var saved *http.Request
		resp, _ := w.raw(t, s, s.ID(), []byte("once"), func(r *http.Request) { saved = r.Clone(ctx) })
		wantStatus(t, resp, http.StatusOK, "")
		body, _ := json.Marshal(&SessionQuery{Input: []byte("once")})
		saved.Body = ioNop(string(body))
		resp, err := w.n.ts.Client().Do(saved)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, resp, http.StatusUnauthorized, "replayed")
	})
	t.Run("another caller's session", func(t *testing.T) {
		// Bob has a session of his own on a Pad of his, and uses its keys on alice's session id.
		info, err := bob.UploadPad(ctx, bytes.NewReader([]byte("bob's model")))
		if err != nil {
			t.Fatal(err)
		}
		bs, err := bob.OpenQuerySession(ctx, info.ID, w.prog)
		if err != nil {
			t.Fatal(err)
		}
		resp, _ := w.raw(t, bs, s.ID(), []byte("steal"), nil)
		wantStatus(t, resp, http.StatusUnauthorized, "bad session MAC")
		if _, err := bs.Query(ctx, []byte("mine")); err != nil {
			t.Fatalf("bob's own session: %v", err)
		}
	})
	t.Run("revoked between queries", func(t *testing.T) {
		w.svc.mu.Lock()
		w.svc.revoked[w.pad] = "consent withdrawn"
		w.svc.mu.Unlock()
		defer func() {
			w.svc.mu.Lock()
			delete(w.svc.revoked, w.pad)
			w.svc.mu.Unlock()
		}()
		if _, err := s.Query(ctx, []byte("after")); !errors.Is(err, ErrDenied) || !strings.Contains(err.Error(), "consent withdrawn") {
			t.Fatalf("query after revocation: %v", err)
		}
	})
	t.Run("expired session", func(t *testing.T) {
		old := s.ID()
		w.clock.advance(DefaultSessionTTL + time.Second)
		resp, _ := w.raw(t, s, old, []byte("late"), nil)
		wantStatus(t, resp, http.StatusUnauthorized, "unknown or expired query session")
		got, err := s.Query(ctx, []byte("late")) // the client opens a new session by itself
		if err != nil || string(got) != "abab:LATE" {
			t.Fatalf("query after expiry: %q (%v)", got, err)
		}
		if s.ID() == old {
			t.Fatal("the client kept the expired session")
		}
	})
	t.Run("unknown session", func(t *testing.T) {
		resp, _ := w.raw(t, s, newSessionID(), []byte("x"), nil)
		wantStatus(t, resp, http.StatusUnauthorized, "unknown or expired query session")
	})
}

func TestSessionLimits(t *testing.T) {
	ctx := context.Background()
	w := newSessionWorld(t, Config{MaxSessions: 3, MaxSessionsPerCaller: 2})
	alice := w.client(t, 0)
	first, err := alice.OpenQuerySession(ctx, w.pad, w.prog)
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := alice.OpenQuerySession(ctx, w.pad, w.prog); err != nil {
			t.Fatal(err)
		}
	}
	if n := w.n.srv.sessions.len(); n != 2 {
		t.Fatalf("%d sessions open, want alice's 2 newest", n)
	}
	resp, _ := w.raw(t, first, first.ID(), []byte("x"), nil)
	wantStatus(t, resp, http.StatusUnauthorized, "unknown or expired query session")
	bob := w.client(t, 1)
	info, err := bob.UploadPad(ctx, bytes.NewReader([]byte("bob's model")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bob.OpenQuerySession(ctx, info.ID, w.prog); err != nil {
		t.Fatal(err)
	}
	carol := w.client(t, 2)
	info, err = carol.UploadPad(ctx, bytes.NewReader([]byte("carol's model")))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.OpenQuerySession(ctx, info.ID, w.prog); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("a fourth session on a node that holds 3: %v", err)
	}
}

func ioNop(s string) *nopBody { return &nopBody{strings.NewReader(s)} }

type nopBody struct{ *strings.Reader }

func (nopBody) Close() error { return nil }
