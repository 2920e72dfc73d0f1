package audit

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"regexp"
	"sync"
	"testing"
	"time"
)

// testKey derives a deterministic Ed25519 key from name.
func testKey(name string) ed25519.PrivateKey {
	seed := sha256.Sum256([]byte("audit test key " + name))
	return ed25519.NewKeyFromSeed(seed[:])
}

// testClock returns a clock that advances one millisecond per call from a fixed instant.
func testClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2026, 11, 24, 12, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Millisecond)
		return t
	}
}

func testOptions(key ed25519.PrivateKey) Options {
	return Options{Origin: "test.styx/audit", Signer: Ed25519Signer(key), Now: testClock()}
}

func openTestLog(t testing.TB, dir string) *Log {
	t.Helper()
	l, err := Open(dir, testOptions(testKey("cluster")))
	if err != nil {
		t.Fatalf("Open(%s): %v", dir, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// testEvent returns a varied, valid event numbered i.
func testEvent(i int) Event {
	kinds := []Kind{KindAdmit, KindDeny, KindUse, KindQueryBatch, KindPolicyUpdate, KindRevoke, KindDelete, KindJobAbort}
	ev := Event{
		Kind:  kinds[i%len(kinds)],
		Actor: fmt.Sprintf("styxid1party%d", i%3),
		Job:   fmt.Sprintf("job-%d", i),
		Pads:  []string{fmt.Sprintf("pad-%d", i%5), fmt.Sprintf("pad-%d", 100+i%7)},
	}
	if ev.Kind == KindDeny {
		ev.Reasons = []string{"policy forbids purpose \"marketing\"", "expired <2026-01-01>"}
	}
	if ev.Kind == KindQueryBatch {
		ev.Details = map[string]string{"queries": fmt.Sprint(i * 10), "querier": "styxid1q"}
	}
	return ev
}

func appendN(t testing.TB, l *Log, from, n int) []Entry {
	t.Helper()
	var out []Entry
	for i := from; i < from+n; i++ {
		e, err := l.Append(context.Background(), testEvent(i))
		if err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
		out = append(out, e)
	}
	return out
}

func testClaims() Claims {
	return Claims{
		Kind:    ReceiptJob,
		Job:     "job-train-42",
		Program: "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
		Inputs: []PadRef{
			{Pad: "pad1hospitalA", Policy: "sha256:aaaa"},
			{Pad: "pad1hospitalB", Policy: "sha256:bbbb"},
		},
		Outputs: []PadRef{{Pad: "pad1model", Policy: "sha256:derived"}},
		TEE:     TEEClaims{Type: "sim", Measurement: "00ff", Simulated: true},
	}
}

func regexpReplace(b []byte, expr, repl string) []byte {
	return regexp.MustCompile(expr).ReplaceAll(b, []byte(repl))
}
