package audit

import (
	"context"
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestWriteFuzzCorpus regenerates the committed seed corpus under testdata/fuzz when
// STYX_AUDIT_WRITE_CORPUS=1: a valid receipt, record and head, and truncations of each.
func TestWriteFuzzCorpus(t *testing.T) {
	if os.Getenv("STYX_AUDIT_WRITE_CORPUS") != "1" {
		t.Skip("set STYX_AUDIT_WRITE_CORPUS=1 to regenerate testdata/fuzz seeds")
	}
	l, err := Open(t.TempDir(), testOptions(testKey("cluster")))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	appendN(t, l, 0, 6)
	r, err := l.IssueReceipt(context.Background(), testClaims(), "styxid1c", map[string]string{"k": "v"})
	if err != nil {
		t.Fatal(err)
	}
	receipt, _ := r.Marshal()
	head := r.Head
	for target, b := range map[string][]byte{"FuzzParseReceipt": receipt, "FuzzParseRecord": r.Record, "FuzzVerifyHead": head} {
		for _, n := range []int{len(b), len(b) - 1, len(b) / 2, 1} {
			writeSeed(t, target, b[:n])
		}
	}
}

func writeSeed(t *testing.T, target string, b []byte) {
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("seed-%x", sha256.Sum256(b))[:21]
	if err := os.WriteFile(filepath.Join(dir, name), fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", b), 0o644); err != nil {
		t.Fatal(err)
	}
}
