package store

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

func TestValuesSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	key := GenerateKey()
	ctx := testCtx(t)

	s := openAt(t, dir, key)
	if _, err := s.Create(ctx, Pads, "pad.a", []byte("meta")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Reserve(ctx, "pad.a.use", 4, 10); err != nil {
		t.Fatal(err)
	}
	if err := s.AdvanceVersion(ctx, "policy.a", 2, []byte("p2")); err != nil {
		t.Fatal(err)
	}
	if err := appendRecords(t, openLog(t, s, testSeal(t, 1)), []byte("event-1")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Jobs().Publish(ctx, "job-1", []byte("spec")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, _, err := s.Get(ctx, Pads, "pad.a"); !errors.Is(err, ErrClosed) {
		t.Fatalf("Get after Close: %v", err)
	}

	s = openAt(t, dir, key)
	if v, _, err := s.Get(ctx, Pads, "pad.a"); err != nil || string(v) != "meta" {
		t.Fatalf("Pad metadata after restart = %q, %v", v, err)
	}
	if n, err := s.Counter(ctx, "pad.a.use"); err != nil || n != 4 {
		t.Fatalf("counter after restart = %d, %v", n, err)
	}
	if err := s.AdvanceVersion(ctx, "policy.a", 1, nil); !errors.Is(err, ErrStale) {
		t.Fatalf("rollback after restart: %v", err)
	}
	if ev, err := openLog(t, s, testSeal(t, 1)).ReadRecord(0); err != nil || string(ev) != "event-1" {
		t.Fatalf("audit after restart = %q, %v", ev, err)
	}
	jobs, err := s.Jobs().Fetch(ctx, 1, time.Second)
	if err != nil || len(jobs) != 1 || jobs[0].ID != "job-1" {
		t.Fatalf("jobs after restart = %v, %v", jobs, err)
	}
}

func TestWrongKeyFailsClearly(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	right := GenerateKey()
	s := openAt(t, dir, right)
	if _, err := s.Create(testCtx(t), Pads, "pad.a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	defer func() {
		// The failed attempts changed nothing: the right key still opens
		// the data.
		s := openAt(t, dir, right)
		if v, _, err := s.Get(testCtx(t), Pads, "pad.a"); err != nil || string(v) != "x" {
			t.Fatalf("after wrong-key attempts: %q, %v", v, err)
		}
	}()

	_, err := Open(testCtx(t), Config{Dir: dir, Key: GenerateKey()})
	if !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open with another key: %v, want ErrWrongKey", err)
	}
	if !strings.Contains(err.Error(), "does not match") {
		t.Errorf("error does not say what is wrong: %v", err)
	}

	// Without the check file, a directory holding data is refused rather
	// than handed to JetStream, which would skip what it cannot decrypt.
	check := filepath.Join(dir, keyCheckFile)
	saved, err := os.ReadFile(check)
	if err != nil {
		t.Fatal(err)
	}
	os.Remove(check)
	if _, err := Open(testCtx(t), Config{Dir: dir, Key: GenerateKey()}); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("Open without key check: %v, want ErrWrongKey", err)
	}
	if err := os.WriteFile(check, saved, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestBucketLayout(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	ctx := testCtx(t)
	for b, spec := range buckets {
		info, err := s.streams[b].Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		c := info.Config
		if c.MaxMsgsPerSubject != 1 || c.Storage != jetstream.FileStorage || c.MaxAge != spec.ttl ||
			c.DenyDelete != spec.monotonic || c.DenyPurge != spec.monotonic || c.AllowRollup == spec.monotonic {
			t.Errorf("%s: unexpected stream config %+v", b, c)
		}
	}
	if info, _ := s.streams[Nonces].Info(ctx); info.Config.MaxAge != NonceTTL {
		t.Errorf("nonces expire after %v", info.Config.MaxAge)
	}
}

func TestNoPlaintextOnDisk(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	s := openAt(t, dir, GenerateKey())
	ctx := testCtx(t)
	marker := []byte("STYX-PLAINTEXT-MARKER-7d1f")
	for i := range 20 {
		if _, err := s.Put(ctx, Pads, fmt.Sprintf("pad.%d", i), marker); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Reserve(ctx, "use."+string(marker), 1, 1); err != nil { // key names too
		t.Fatal(err)
	}
	if err := s.AdvanceVersion(ctx, "policy.x", 1, marker); err != nil {
		t.Fatal(err)
	}
	al := openLog(t, s, testSeal(t, 1))
	if err := appendRecords(t, al, marker); err != nil {
		t.Fatal(err)
	}
	if err := al.SaveHead(marker); err != nil { // stored as it is: the store's encryption covers it
		t.Fatal(err)
	}
	if _, err := s.Jobs().Publish(ctx, "job-m", marker); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	files := 0
	walkFiles(t, dir, func(path string, data []byte) {
		files++
		if bytes.Contains(data, marker) {
			t.Errorf("%s contains the plaintext marker", path)
		}
	})
	if files < 5 {
		t.Fatalf("only %d files under %s: did the store write anything?", files, dir)
	}
}

func TestSecondOpenIsRefused(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "store")
	key := GenerateKey()
	openAt(t, dir, key)
	if _, err := Open(testCtx(t), Config{Dir: dir, Key: key}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second Open: %v, want ErrLocked", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	ctx := testCtx(t)
	for name, cfg := range map[string]Config{
		"no dir":     {Key: GenerateKey()},
		"no key":     {Dir: t.TempDir()},
		"bad listen": {Dir: t.TempDir(), Key: GenerateKey(), Listen: "nope"},
		"neg limit":  {Dir: t.TempDir(), Key: GenerateKey(), MaxStoreBytes: -1},
		"public":     {Dir: t.TempDir(), Key: GenerateKey(), Listen: "0.0.0.0:4222"},
		"empty host": {Dir: t.TempDir(), Key: GenerateKey(), Listen: ":4222"},
	} {
		if _, err := Open(ctx, cfg); !errors.Is(err, ErrInvalid) {
			t.Errorf("%s: %v, want ErrInvalid", name, err)
		}
	}
	if _, err := NewKey(make([]byte, 31)); !errors.Is(err, ErrInvalid) {
		t.Errorf("short key: %v", err)
	}
}

func TestListenIsOptIn(t *testing.T) {
	t.Parallel()
	s := openTemp(t)
	if u := s.ClientURL(); u != "" {
		t.Fatalf("default store listens on %s", u)
	}
	l, err := Open(testCtx(t), Config{Dir: t.TempDir(), Key: GenerateKey(), Listen: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.HasPrefix(l.ClientURL(), "nats://127.0.0.1:") {
		t.Fatalf("ClientURL = %q", l.ClientURL())
	}
}

// TestKeyNeverLogged captures every log line (NATS's own included, at the
// most verbose level) and checks neither the key nor the subkey handed to
// NATS appears.
func TestKeyNeverLogged(t *testing.T) {
	t.Parallel()
	raw := bytes.Repeat([]byte{0xAB}, KeySize)
	key, err := NewKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	var buf syncBuffer
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug - 8}))
	log.Info("explicit", "key", key)
	t.Logf("%v %s %#v", key, key, key)
	s, err := Open(testCtx(t), Config{Dir: t.TempDir(), Key: key, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	out := buf.String()
	if !strings.Contains(out, "component=nats") {
		t.Fatalf("NATS logs not routed to slog:\n%s", out)
	}
	for _, secret := range []string{"abababab", "ABABABAB", key.natsKey(), string(raw)} {
		if strings.Contains(out, secret) {
			t.Fatalf("log contains key material %q:\n%s", secret, out)
		}
	}
	if !strings.Contains(out, "key=REDACTED") {
		t.Fatalf("LogValue not used:\n%s", out)
	}
	if got := fmt.Sprintf("%v|%s|%#v", key, key, key); strings.Contains(got, "ab") {
		t.Fatalf("fmt prints key: %s", got)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
