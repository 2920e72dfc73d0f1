package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/store"
)

// crashChildEnv names the data directory of a node run by TestCrashChild in a child process.
const crashChildEnv = "STYX_NODE_CRASH_CHILD"

// crashAckWait is the job queue's ack wait in the crash test: short, so that a job that was
// running when its node died is handed out again soon after the restart.
const crashAckWait = 2 * time.Second

// TestCrashChild is not a test: TestKill9 runs the test binary again with crashChildEnv set,
// and this serves a node on that directory until the parent kills it. It writes the node's URL
// to DIR/url once it serves.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashChildEnv)
	if dir == "" {
		t.Skip("a helper process of TestKill9")
	}
	ctx := context.Background()
	n, err := Open(ctx, Config{DataDir: dir, Sandbox: sandboxForTests(), JobAckWait: crashAckWait,
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { errc <- n.ServeListener(ctx, ln) }()
	tmp := filepath.Join(dir, "url.tmp")
	if err := os.WriteFile(tmp, []byte(n.URL()), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, "url")); err != nil {
		t.Fatal(err)
	}
	t.Fatal(<-errc)
}

// crashPolicy lets its owner use, derive from and release the Pad (each at most 100 times),
// and release aggregates derived from it.
const crashPolicy = `version: 1
owner: ${owner}
rules: |
  @id("owner")
  permit (principal == Styx::Party::"${owner}", action in [Styx::Action::"use", Styx::Action::"derive", Styx::Action::"release"], resource);
output:
  kinds: [aggregate, table, log]
lifecycle: {max_uses: {use: 100, release: 100}}
derive:
  aggregate:
    rules: |
      @id("owner-sees-aggregates")
      permit (principal == Styx::Party::"${owner}", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// childNode is a node running in a child process.
type childNode struct {
	cmd    *exec.Cmd
	url    string
	exited chan struct{}
}

func startChild(t *testing.T, dir string, logf *os.File) *childNode {
	t.Helper()
	os.Remove(filepath.Join(dir, "url"))
	cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &childNode{cmd: cmd, exited: make(chan struct{})}
	go func() { cmd.Wait(); close(c.exited) }()
	t.Cleanup(c.kill)
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "url")); err == nil {
			c.url = string(b)
			return c
		}
		select {
		case <-c.exited:
			t.Fatalf("child node exited before serving (log in %s)", logf.Name())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// kill sends SIGKILL (the node gets no chance to flush, close or clean up anything) and waits
// for the process to be gone.
func (c *childNode) kill() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.exited
}

func (c *childNode) client(t *testing.T, key *party.Key) (*api.Client, *cluster.Attested) {
	t.Helper()
	cc := &cluster.Client{Reference: SimReference(selfMeasurement())}
	att, err := cc.Attest(context.Background(), c.url)
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	cl, err := api.NewClient(api.ClientConfig{BaseURL: c.url, Key: key, TLS: att.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	return cl, att
}

// stallingReader serves a Pad to the uploading client; on the pass that sends it (the client
// rewinds, hashes, rewinds again and sends), it stops halfway and tells the test, which kills the node.
type stallingReader struct {
	*bytes.Reader
	size    int64
	seeks   int
	half    chan struct{}
	once    sync.Once
	release chan struct{}
}

func (s *stallingReader) Seek(off int64, whence int) (int64, error) {
	s.seeks++
	return s.Reader.Seek(off, whence)
}

func (s *stallingReader) Read(p []byte) (int, error) {
	pos := s.size - int64(s.Reader.Len())
	if s.seeks >= 2 && pos >= s.size/2 {
		s.once.Do(func() { close(s.half) })
		<-s.release
		return 0, errors.New("the node was killed")
	}
	if s.seeks >= 2 && pos+int64(len(p)) > s.size/2 {
		p = p[:s.size/2-pos]
	}
	return s.Reader.Read(p)
}

// TestKill9 kills a node with SIGKILL during an upload, during a job and during a release,
// restarts it on the same directory each time, and checks that every acknowledged Pad still
// opens, that nothing half-written is visible, that no counter went back, that the job cut
// short is failed with its use still counted, and that the log stays consistent throughout.
func TestKill9(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four nodes")
	}
	ctx := context.Background()
	dir := t.TempDir()
	logf, err := os.Create(filepath.Join(t.TempDir(), "child.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() || testing.Verbose() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("child log:\n%s", b)
		}
	}()
	owner := newKey(t)
	pol := expand(crashPolicy, map[string]string{"owner": owner.Identity().ID().String()})
	headFile := filepath.Join(t.TempDir(), "head")

	child := startChild(t, dir, logf)
	h, att := child.client(t, owner)
	cl := att.Cluster
	pub := cl.SigningKey()
	count := addProgram(t, h, "examples/programs/rowcount", false)
	slow := addProgram(t, h, "examples/programs/slowcount", false)
	a := upload(t, h, sealTo(t, owner, cl, pol, "text/csv", csvRows(50)))
	big := make([]byte, 4<<20)
	rand.Read(big)
	b := upload(t, h, sealTo(t, owner, cl, pol, "application/octet-stream", big))
	st := waitJob(t, h, &api.JobSpec{Program: count, Inputs: map[string]string{"in": a.ID}, Purpose: "crash test",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	agg := st.Outputs["count"]
	if got := release(t, h, owner, agg); !strings.Contains(got, `"total":50`) {
		t.Fatalf("aggregate: %s", got)
	}
	acked := []string{a.ID, b.ID, agg}
	advanceHead(t, h, headFile, pub)

	// 1. Killed halfway through an upload.
	sealed := sealTo(t, owner, cl, pol, "application/octet-stream", big)
	hdr, err := pad.Inspect(bytes.NewReader(sealed))
	if err != nil {
		t.Fatal(err)
	}
	half := hdr.ID.String()
	sr := &stallingReader{Reader: bytes.NewReader(sealed), size: int64(len(sealed)), half: make(chan struct{}), release: make(chan struct{})}
	upErr := make(chan error, 1)
	go func() {
		_, err := h.UploadPad(ctx, sr)
		upErr <- err
	}()
	<-sr.half
	child.kill()
	close(sr.release)
	if err := <-upErr; err == nil {
		t.Fatal("an upload cut in half was acknowledged")
	}

	child = startChild(t, dir, logf)
	h, _ = child.client(t, owner)
	if _, err := h.Pad(ctx, half); !errors.Is(err, api.ErrNotFound) {
		t.Fatalf("the half-uploaded Pad after restart: %v", err)
	}
	advanceHead(t, h, headFile, pub)

	// 2. Killed while a job runs.
	w := &lifecycleWorld{slow: slow}
	jobID := w.startSlow(t, h, a.ID)
	usesBefore := padUses(t, h, a.ID)
	child.kill()

	child = startChild(t, dir, logf)
	h, _ = child.client(t, owner)
	if u := padUses(t, h, a.ID); u < usesBefore {
		t.Fatalf("uses of %s went back from %d to %d", a.ID, usesBefore, u)
	}
	advanceHead(t, h, headFile, pub)

	// 3. Killed while a release streams out.
	rc, err := h.Release(ctx, b.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(rc, make([]byte, 64<<10)); err != nil {
		t.Fatal(err)
	}
	child.kill()
	if _, err := io.Copy(io.Discard, rc); err == nil {
		t.Fatal("a release cut short read to its end without an error")
	}
	rc.Close()

	// Reopen in this process to look at the node's own state.
	n := openCrashed(t, dir)
	h = n.client(t, owner)
	for _, id := range acked {
		if err := n.Engine.VerifyPad(ctx, id); err != nil {
			t.Fatalf("acknowledged Pad %s does not open after the crashes: %v", id, err)
		}
	}
	if _, err := n.Blobs.Stat(ctx, "pad-"+half); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("blob of the half-uploaded Pad: %v", err)
	}
	if err := filepath.WalkDir(filepath.Join(dir, "blobs"), func(path string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasPrefix(d.Name(), ".tmp-") {
			return fmt.Errorf("partial blob %s is visible", path)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The job cut short is failed once the queue hands it out again, and its use still counts.
	ctxWait, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	js, err := h.WaitJob(ctxWait, jobID)
	if err != nil {
		t.Fatal(err)
	}
	if js.State != api.JobFailed || !strings.Contains(fmtErr(js.Error), "still count") || len(js.Outputs) != 0 {
		t.Fatalf("job cut by the crash: %s %s outputs %v", js.State, fmtErr(js.Error), js.Outputs)
	}
	if u := padUses(t, h, a.ID); u != usesBefore {
		t.Fatalf("uses of %s: %d, want the %d counted before the crash", a.ID, u, usesBefore)
	}
	if u, err := n.Store.Counter(ctx, "c."+b.ID+".release"); err != nil || u != 1 {
		t.Fatalf("release counter of %s: %d (%v), want the one release that began", b.ID, u, err)
	}
	released := false
	for _, ev := range auditEvents(t, h, b.ID) {
		released = released || (ev.Kind == audit.KindRelease && ev.Receipt != nil)
	}
	if !released {
		t.Fatal("the release cut short is not in the log")
	}
	advanceHead(t, h, headFile, pub)
	// And the node works.
	st = waitJob(t, h, &api.JobSpec{Program: count, Inputs: map[string]string{"in": a.ID}, Purpose: "crash test",
		Outputs: []api.OutputSpec{{Name: "count", Kind: "aggregate"}}})
	mustDone(t, st)
	if u := padUses(t, h, a.ID); u != usesBefore+1 {
		t.Fatalf("uses after one more job: %d, want %d", u, usesBefore+1)
	}
}

func padUses(t *testing.T, c *api.Client, id string) uint64 {
	t.Helper()
	info, err := c.Pad(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info.Uses
}

// openCrashed opens the node left by a killed child in this process, with the crash test's
// short ack wait.
func openCrashed(t *testing.T, dir string) *testNode {
	t.Helper()
	return serveConfig(t, Config{DataDir: dir, Sandbox: sandboxForTests(), Logger: testLogger(t), JobAckWait: crashAckWait})
}
