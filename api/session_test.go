package api

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"reflect"
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

func newSessionWorld(t testing.TB, cfg Config) *sessionWorld {
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

func (w *sessionWorld) client(t testing.TB, i int) *Client {
	c := w.n.client(t, i)
	c.now = w.clock.now
	return c
}

// raw sends a session query built by hand with s's keys: mutate may change the frame after
// the MAC is computed. It returns the response and the frame sent.
func (w *sessionWorld) raw(t *testing.T, s *QuerySession, id string, input []byte, mutate func([]byte) []byte) (*http.Response, []byte) {
	t.Helper()
	path := "/v1/sessions/" + id + "/query"
	body, _ := sealSessionQuery(s.keys, path, id, input, w.clock.now())
	if mutate != nil {
		body = mutate(body)
	}
	return w.post(t, path, body), body
}

// post sends body to path as a session query.
func (w *sessionWorld) post(t *testing.T, path string, body []byte) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, w.n.ts.URL+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", SessionQueryContentType)
	resp, err := w.n.ts.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// flip returns a mutation that flips one bit of the frame's byte at i (from the end if negative).
func flip(i int) func([]byte) []byte {
	return func(b []byte) []byte {
		if i < 0 {
			i += len(b)
		}
		b[i] ^= 1
		return b
	}
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
	// The log must name the keys as redacted and carry neither key field nor the MAC key's bytes in
	// any encoding (identities are random base32, so a bare substring like "mac" is no evidence).
	out := log.String()
	if !strings.Contains(out, "keys=REDACTED") || strings.Contains(out, ".mac=") || strings.Contains(out, ".answer=") {
		t.Fatalf("session log: %s", out)
	}
	for _, enc := range []string{hex.EncodeToString(s.keys.mac), base64.StdEncoding.EncodeToString(s.keys.mac), base64.RawURLEncoding.EncodeToString(s.keys.mac), string(s.keys.mac)} {
		if strings.Contains(out, enc) {
			t.Fatalf("session log carries the MAC key: %s", out)
		}
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
	for _, c := range []struct {
		name   string
		mutate func([]byte) []byte
	}{
		{"tampered MAC", flip(frameMACAt + 3)},
		{"tampered input", flip(-1)},
		{"tampered nonce", flip(frameNonceAt)},
		{"tampered date", flip(frameNonceAt - 1)},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, _ := w.raw(t, s, s.ID(), []byte("x"), c.mutate)
			wantStatus(t, resp, http.StatusUnauthorized, "bad session MAC")
		})
	}
	t.Run("frame moved to another session's path", func(t *testing.T) {
		other, err := alice.OpenQuerySession(ctx, w.pad, w.prog)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := sealSessionQuery(s.keys, "/v1/sessions/"+s.ID()+"/query", s.ID(), []byte("x"), w.clock.now())
		wantStatus(t, w.post(t, "/v1/sessions/"+other.ID()+"/query", body), http.StatusUnauthorized, "bad session MAC")
	})
	t.Run("date out of skew", func(t *testing.T) {
		body, _ := sealSessionQuery(s.keys, "/v1/sessions/"+s.ID()+"/query", s.ID(), []byte("x"), w.clock.now().Add(-time.Hour))
		wantStatus(t, w.post(t, "/v1/sessions/"+s.ID()+"/query", body), http.StatusUnauthorized, "from the server's clock")
	})
	t.Run("replayed request", func(t *testing.T) {
		resp, body := w.raw(t, s, s.ID(), []byte("once"), nil)
		wantStatus(t, resp, http.StatusOK, "")
		wantStatus(t, w.post(t, "/v1/sessions/"+s.ID()+"/query", body), http.StatusUnauthorized, "replayed")
	})
	t.Run("malformed frames", func(t *testing.T) {
		good, _ := sealSessionQuery(s.keys, "/v1/sessions/"+s.ID()+"/query", s.ID(), []byte("x"), w.clock.now())
		for name, body := range map[string][]byte{
			"empty":            nil,
			"short header":     good[:sessionFrameHeader-1],
			"wrong version":    append([]byte{2}, good[1:]...),
			"zero date":        append(append([]byte{1}, make([]byte, 8)...), good[frameNonceAt:]...),
			"date past 9999":   append(append([]byte{1}, 0, 0, 0, 0x3b, 0, 0, 0, 0), good[frameNonceAt:]...),
			"the old JSON one": []byte(`{"input":"eA=="}`),
		} {
			t.Run(name, func(t *testing.T) {
				wantStatus(t, w.post(t, "/v1/sessions/"+s.ID()+"/query", body), http.StatusBadRequest, "malformed session query")
			})
		}
		big := make([]byte, sessionFrameHeader+MaxQueryInput+1)
		copy(big, good)
		wantStatus(t, w.post(t, "/v1/sessions/"+s.ID()+"/query", big), http.StatusRequestEntityTooLarge, "limit")
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

// headerRecorder records the headers of the requests it passes on.
type headerRecorder struct {
	base http.RoundTripper
	mu   sync.Mutex
	seen []http.Header
}

func (h *headerRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	h.mu.Lock()
	h.seen = append(h.seen, r.Header.Clone())
	h.mu.Unlock()
	return h.base.RoundTrip(r)
}

// TestSessionQueryHeadersConstant: everything that changes between the queries of a session
// travels in the body, so HPACK finds the headers of every query after the first in its table.
func TestSessionQueryHeadersConstant(t *testing.T) {
	ctx := context.Background()
	w := newSessionWorld(t, Config{})
	alice := w.client(t, 0)
	s, err := alice.OpenQuerySession(ctx, w.pad, w.prog)
	if err != nil {
		t.Fatal(err)
	}
	rec := &headerRecorder{base: alice.hc.Transport}
	hc := *alice.hc
	hc.Transport = rec
	alice.hc = &hc
	for _, in := range []string{"one", "two", "a longer third question"} {
		if got, err := s.Query(ctx, []byte(in)); err != nil || string(got) != "abab:"+strings.ToUpper(in) {
			t.Fatalf("answer %q (%v)", got, err)
		}
	}
	if len(rec.seen) != 3 {
		t.Fatalf("%d requests, want 3", len(rec.seen))
	}
	for i, h := range rec.seen {
		if !reflect.DeepEqual(h, rec.seen[0]) {
			t.Fatalf("query %d has headers %v, query 0 %v", i, h, rec.seen[0])
		}
		for k := range h {
			if strings.HasPrefix(k, "Styx-") {
				t.Fatalf("session query carries header %s", k)
			}
		}
	}
}

// TestSessionEncodingsMatchTheirSpec: the canonical string and the answer's associated data
// that the hot path encodes in one allocation each are byte for byte what SessionCanonical
// and the documented join (docs/api.md, "Query sessions") give for the same request, and the pooled
// HMAC of a session's keys gives every message its own HMAC, however often it is reused.
func TestSessionEncodingsMatchTheirSpec(t *testing.T) {
	keys, err := deriveSessionKeys(bytes.Repeat([]byte{7}, sessionSecretLen), "AAAAAAAAAAAAAAAAAAAAAA")
	if err != nil {
		t.Fatal(err)
	}
	date := time.Date(2026, 12, 3, 4, 5, 6, 0, time.UTC)
	for i, input := range [][]byte{nil, []byte("a,b\n1,2\n"), bytes.Repeat([]byte("x"), 5000)} {
		var b sessionBinding
		for j := range b.nonce {
			b.nonce[j] = byte(i*16 + j)
		}
		b.sum = sha256.Sum256(input)
		nonce, sum := base64.RawURLEncoding.EncodeToString(b.nonce[:]), hex.EncodeToString(b.sum[:])
		uri := "/v1/sessions/AAAAAAAAAAAAAAAAAAAAAA/query" + strings.Repeat("?q", i*300)
		want := SessionCanonical(http.MethodPost, uri, "AAAAAAAAAAAAAAAAAAAAAA", date.Format(dateLayout), nonce, sum)
		got := appendSessionCanonical(nil, http.MethodPost, uri, "AAAAAAAAAAAAAAAAAAAAAA", date, &b)
		if !bytes.Equal(got, want) {
			t.Errorf("canonical %d:\n%q\nwant\n%q", i, got, want)
		}
		if n := testing.AllocsPerRun(10, func() {
			appendSessionCanonical(nil, http.MethodPost, uri, "AAAAAAAAAAAAAAAAAAAAAA", date, &b)
			sessionAnswerAD(nil, "sid", "pad", "prog", &b)
		}); n != 2 && !raceEnabled {
			t.Errorf("canonical and answer AD %d: %v allocations, want one each", i, n)
		}
		wantAD := strings.Join([]string{labelAnswerAD, "sid", "pad", "prog", nonce, sum}, "\x00")
		if got := sessionAnswerAD([]byte("junk")[:0], "sid", "pad", "prog", &b); string(got) != wantAD {
			t.Errorf("answer AD %d: %q, want %q", i, got, wantAD)
		}
		m := hmac.New(sha256.New, keys.mac)
		m.Write(want)
		for range 3 { // the pool hands the same HMAC back: each use must start afresh
			if got := keys.sign(want); !hmac.Equal(got[:], m.Sum(nil)) {
				t.Fatalf("pooled HMAC of message %d differs from a fresh one", i)
			}
		}
	}
}
