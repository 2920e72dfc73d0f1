package node

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
)

// testNode is a real node (embedded NATS, sandbox, audit log, attested TLS API) on a loopback
// port, stopped when the test ends.
type testNode struct {
	*Node
	dir    string
	cancel context.CancelFunc
	done   chan error
}

func startNode(t *testing.T, dir string) *testNode {
	t.Helper()
	return serveConfig(t, Config{DataDir: dir, Sandbox: sandboxForTests(), Logger: testLogger(t)})
}

// compiled is the machine code of every program the tests' nodes compiled, shared between them
// as a long-running process shares it between restarts of its runtime (sandbox.Cache). Each
// node compiling the same modules again is most of this package's run time under -race, which
// instruments the compiler too.
var compiled = sandbox.NewCache()

// serveConfig opens a node with cfg and serves it on a loopback port until the test ends.
func serveConfig(t *testing.T, cfg Config) *testNode {
	t.Helper()
	if cfg.Sandbox.Cache == nil {
		cfg.Sandbox.Cache = compiled
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := Open(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		cancel()
		n.Close()
		t.Fatal(err)
	}
	tn := &testNode{Node: n, dir: cfg.DataDir, cancel: cancel, done: make(chan error, 1)}
	go func() { tn.done <- n.ServeListener(ctx, ln) }()
	t.Cleanup(tn.stop)
	return tn
}

func (tn *testNode) stop() {
	if tn.cancel == nil {
		return
	}
	tn.cancel()
	<-tn.done
	tn.Close()
	tn.cancel = nil
}

// client attests the node and returns a client for key pinned to the attested TLS key.
func (tn *testNode) client(t *testing.T, key *party.Key) *api.Client {
	t.Helper()
	cc := &cluster.Client{Reference: tn.SelfReference()}
	att, err := cc.Attest(context.Background(), tn.URL())
	if err != nil {
		t.Fatalf("attest: %v", err)
	}
	if !att.Cluster.Equal(tn.Cluster.Identity()) {
		t.Fatal("attested cluster is not the node's")
	}
	c, err := api.NewClient(api.ClientConfig{BaseURL: tn.URL(), Key: key, TLS: att.TLSConfig()})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func newKey(t testing.TB) *party.Key {
	t.Helper()
	k, err := party.Generate()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// sealTo seals data with policy for the cluster (and the owner) and returns the Pad bytes.
func sealTo(t testing.TB, owner *party.Key, cl *party.Identity, policy string, contentType string, data []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	_, err := pad.Seal(&buf, bytes.NewReader(data), pad.SealOptions{
		Signer: owner, Recipients: []*party.Identity{owner.Identity(), cl}, Policy: []byte(policy),
		PolicyType: "application/styx-policy+yaml", ContentType: contentType, Size: int64(len(data)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func upload(t testing.TB, c *api.Client, sealed []byte) *api.PadInfo {
	t.Helper()
	info, err := c.UploadPad(context.Background(), bytes.NewReader(sealed))
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	return info
}

func addProgram(t testing.TB, c *api.Client, pkg string, reactor bool) string {
	t.Helper()
	wasm, err := wasmbuild.Build(context.Background(), pkg, reactor)
	if err != nil {
		t.Fatal(err)
	}
	info, err := c.AddProgram(context.Background(), bytes.NewReader(wasm))
	if err != nil {
		t.Fatalf("add program %s: %v", pkg, err)
	}
	return info.SHA256
}

// wdbcShares reads the Wisconsin data and returns n stratified shares as CSV with a header row,
// and a held-out test set.
func wdbcShares(t testing.TB, n int) ([][]byte, *ml.Dataset) {
	t.Helper()
	f, err := os.Open("../examples/hospitals/data/wdbc.csv")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	all, err := ml.ReadWDBC(f)
	if err != nil {
		t.Fatal(err)
	}
	train, test := ml.Split(all, 0.2, 7)
	var out [][]byte
	for _, s := range ml.Shares(train, n, 11) {
		var buf bytes.Buffer
		if err := s.WriteCSV(&buf, ml.LabelColumn); err != nil {
			t.Fatal(err)
		}
		out = append(out, buf.Bytes())
	}
	return out, test
}

// expand replaces ${name} in a policy template.
func expand(tmpl string, vars map[string]string) string {
	for k, v := range vars {
		tmpl = strings.ReplaceAll(tmpl, "${"+k+"}", v)
	}
	return tmpl
}

func waitJob(t *testing.T, c *api.Client, spec *api.JobSpec) *api.JobStatus {
	t.Helper()
	spec.Wait = true
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st, err := c.SubmitJob(ctx, spec)
	if err != nil {
		t.Fatalf("submit: %v", err)
	}
	if !st.State.Final() {
		if st, err = c.WaitJob(ctx, st.ID); err != nil {
			t.Fatalf("wait: %v", err)
		}
	}
	return st
}

func mustDone(t *testing.T, st *api.JobStatus) {
	t.Helper()
	if st.State != api.JobDone {
		t.Fatalf("job %s is %s: %v", st.ID, st.State, fmtErr(st.Error))
	}
}

func fmtErr(e *api.Error) string {
	if e == nil {
		return "<nil>"
	}
	return fmt.Sprintf("%s %v", e.Message, e.Reasons)
}

func sandboxForTests() sandbox.Config { return sandbox.Config{Timeout: 2 * time.Minute} }

// testLogger sends the node's warnings and errors to the test log.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
