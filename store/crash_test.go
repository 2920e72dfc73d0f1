package store

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The kill -9 test re-executes the test binary as a child that writes in a
// loop and reports each write on stdout only after the store acknowledged
// it. The parent SIGKILLs the child at a random moment, reopens the store
// and checks that every acknowledged write is there and nothing is half
// written. It repeats the cycle so a counter is also checked never to move
// backwards across crashes.
const (
	crashChildEnv = "STYX_STORE_CRASH_CHILD"
	crashKeyEnv   = "STYX_STORE_CRASH_KEY"
	crashCounter  = "crash.counter"
	crashBlobSize = 300_000
)

func TestKill9LosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir, os.Getenv(crashKeyEnv))
		return
	}
	if testing.Short() {
		t.Skip("spawns child processes")
	}
	dir := t.TempDir()
	key := GenerateKey()
	var lastCounter uint64
	for round := range 3 {
		acked := runAndKill(t, dir, key, round)
		lastCounter = checkAfterCrash(t, dir, key, acked, lastCounter)
	}
}

// acked is what a child reported as acknowledged before it died.
type acked struct {
	counter uint64
	blobs   []int
	keys    []int
	audit   uint64
}

func runAndKill(t *testing.T, dir string, key *Key, round int) acked {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKill9LosesNothingAcknowledged$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, crashKeyEnv+"="+hex.EncodeToString(key.b[:]),
		fmt.Sprintf("STYX_STORE_CRASH_ROUND=%d", round))
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	var a acked
	killAfter := 20 + rand.IntN(40)
	deadline := time.After(60 * time.Second)
	for n := 0; n < killAfter; n++ {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child exited early: %v", cmd.Wait())
			}
			a.record(t, l)
		case <-deadline:
			cmd.Process.Kill()
			t.Fatal("child too slow")
		}
	}
	time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond) // land mid-write
	if err := cmd.Process.Kill(); err != nil {                    // SIGKILL
		t.Fatal(err)
	}
	for l := range lines { // whatever the child reported before dying
		a.record(t, l)
	}
	cmd.Wait()
	t.Logf("round %d: killed child after counter=%d, %d blobs, %d keys, audit seq %d",
		round, a.counter, len(a.blobs), len(a.keys), a.audit)
	return a
}

func (a *acked) record(t *testing.T, line string) {
	kind, num, ok := strings.Cut(line, " ")
	n, err := strconv.ParseUint(num, 10, 64)
	if !ok || err != nil {
		return // test framework chatter
	}
	switch kind {
	case "c":
		a.counter = n
	case "b":
		a.blobs = append(a.blobs, int(n))
	case "k":
		a.keys = append(a.keys, int(n))
	case "a":
		a.audit = n
	}
}

func checkAfterCrash(t *testing.T, dir string, key *Key, a acked, prevCounter uint64) uint64 {
	t.Helper()
	ctx := testCtx(t)
	s := openAt(t, filepath.Join(dir, "store"), key)
	defer s.Close()
	d, err := OpenDisk(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		t.Fatal(err)
	}
	n, err := s.Counter(ctx, crashCounter)
	if err != nil {
		t.Fatal(err)
	}
	if n < a.counter || n < prevCounter {
		t.Fatalf("counter rolled back: %d after restart, child acknowledged %d, previous round %d", n, a.counter, prevCounter)
	}
	for _, i := range a.keys {
		if v, _, err := s.Get(ctx, Pads, fmt.Sprintf("crash.%d", i)); err != nil || string(v) != fmt.Sprint(i) {
			t.Fatalf("acknowledged key %d: %q, %v", i, v, err)
		}
	}
	// Opening authenticates every record; every acknowledged one must be there.
	l, err := s.OpenAuditLog(ctx, sealWith(1))
	if err != nil {
		t.Fatalf("audit log after the crash: %v", err)
	}
	if uint64(l.Size()) < a.audit {
		t.Fatalf("audit log has %d records; child acknowledged %d", l.Size(), a.audit)
	}
	for _, i := range a.blobs {
		if _, err := d.Stat(ctx, blobName(i)); err != nil {
			t.Fatalf("acknowledged blob %d lost: %v", i, err)
		}
	}
	checkEveryBlobWhole(t, d, filepath.Join(dir, "blobs"))
	return n
}

// checkEveryBlobWhole reads every blob on disk, acknowledged or not, and
// checks it is complete: a crash may lose an unacknowledged blob, never
// leave a torn one.
func checkEveryBlobWhole(t *testing.T, d *Disk, dir string) {
	t.Helper()
	walkFiles(t, dir, func(path string, data []byte) {
		name := filepath.Base(path)
		if strings.HasPrefix(name, blobTempPrefix) {
			t.Errorf("temp file %s survived OpenDisk", path)
			return
		}
		i, err := strconv.Atoi(strings.TrimPrefix(name, "crash-"))
		if err != nil {
			t.Errorf("unexpected file %s", path)
			return
		}
		if !bytes.Equal(data, blobContent(i)) {
			t.Errorf("blob %s is torn: %d bytes", name, len(data))
		}
	})
}

func blobName(i int) string { return fmt.Sprintf("crash-%d", i) }

// blobContent is deterministic so the parent can check any blob it finds.
func blobContent(i int) []byte {
	seed := sha256.Sum256([]byte(blobName(i)))
	return bytes.Repeat(seed[:], crashBlobSize/len(seed))
}

// crashChild writes until killed. Each line on stdout reports one write the
// store has acknowledged.
func crashChild(dir, hexKey string) {
	raw, _ := hex.DecodeString(hexKey)
	key, err := NewKey(raw)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx := context.Background()
	s, err := Open(ctx, Config{Dir: filepath.Join(dir, "store"), Key: key})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	d, err := OpenDisk(filepath.Join(dir, "blobs"), 0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	l, err := s.OpenAuditLog(ctx, sealWith(1))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	round, _ := strconv.Atoi(os.Getenv("STYX_STORE_CRASH_ROUND"))
	for i := round * 1_000_000; ; i++ {
		crashStep(ctx, s, d, l, i)
	}
}

func crashStep(ctx context.Context, s *Store, d *Disk, l *AuditLog, i int) {
	must := func(err error) {
		if err != nil {
			fmt.Fprintln(os.Stderr, "child:", err)
			os.Exit(2)
		}
	}
	v, err := s.Reserve(ctx, crashCounter, 1, math.MaxUint64)
	must(err)
	report("c %d\n", v)
	_, err = d.Put(ctx, blobName(i), bytes.NewReader(blobContent(i)))
	must(err)
	report("b %d\n", i)
	_, err = s.Create(ctx, Pads, fmt.Sprintf("crash.%d", i), []byte(fmt.Sprint(i)))
	must(err)
	report("k %d\n", i)
	must(appendWithHashes(l, []byte(fmt.Sprint(i))))
	report("a %d\n", l.Size())
}

// report writes one line with a single write(2), unbuffered.
func report(format string, args ...any) {
	io.WriteString(os.Stdout, fmt.Sprintf(format, args...))
}
