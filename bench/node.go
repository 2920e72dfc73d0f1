package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/examples/hospitals"
	"github.com/styx-tee/styx/internal/ml"
	"github.com/styx-tee/styx/internal/wasmbuild"
	"github.com/styx-tee/styx/node"
	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
)

// benchPolicy is the sticky policy of every benchmark Pad: the members may use and derive
// from it for the purpose "bench" with the approved programs, each at most a million times
// (so that admission reserves a real per-party counter); derived models answer the queriers
// through the serving program, at most a hundred million times each (a per-querier counter
// that never runs out during a benchmark), and may be released to the members (so the bare
// server can serve the very same model).
const benchPolicy = `version: 1
owner: ${owner}
groups:
  members: [${members}]
  queriers: [${queriers}]
rules: |
  @id("bench")
  permit (principal in Styx::Group::"members", action in [Styx::Action::"use", Styx::Action::"derive"], resource)
  when { context.purpose == "bench" && ["${train}", "${count}"].contains(context.program) };
lifecycle:
  max_uses_per_party: {use: 1000000}
output:
  kinds: [model, aggregate, log]
derive:
  model:
    rules: |
      @id("query")
      permit (principal in Styx::Group::"queriers", action == Styx::Action::"query", resource)
      when { context.program == "${predict}" };
      @id("members-release")
      permit (principal in Styx::Group::"members", action == Styx::Action::"release", resource);
    output:
      kinds: [model, prediction, log]
    lifecycle:
      max_uses_per_party: {query: 100000000}
  aggregate:
    rules: |
      @id("members-see-aggregates")
      permit (principal in Styx::Group::"members", action == Styx::Action::"release", resource);
tee: {allow_simulated: true}
`

// benchNode is a whole Styx node (simulated TEE, embedded NATS store, sandbox, audit log,
// attested TLS API) on a loopback port, in a temporary directory, with three data owners,
// the approved programs and a set of queriers.
type benchNode struct {
	*node.Node
	dir      string
	cancel   context.CancelFunc
	done     chan error
	owners   []*party.Key
	clients  []*api.Client // one per owner; clients[0] also submits the jobs
	queriers []*party.Key
	programs map[string]string // "train", "count", "predict" → sha256
}

// compiled is the machine code of the programs every sandbox of this process compiled, shared
// as a long-running node shares it between its runtimes: the node a section starts and the
// plain runner it compares with run the same compiled code, and a section that starts a second
// node (or the test that runs every section) does not compile the modules again.
var compiled = sandbox.NewCache()

// startNode opens a node with nQueriers queriers allowed to query derived models.
func startNode(ctx context.Context, nQueriers int) (*benchNode, error) {
	dir, err := os.MkdirTemp("", "styx-bench-")
	if err != nil {
		return nil, err
	}
	n, err := node.Open(ctx, node.Config{DataDir: dir, Sandbox: sandbox.Config{Timeout: 10 * time.Minute, MemoryLimit: 2 << 30, Cache: compiled}})
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if blockProfiling {
		runtime.SetBlockProfileRate(blockRate)
	}
	ln, err := n.Listen("127.0.0.1:0")
	if err != nil {
		n.Close()
		os.RemoveAll(dir)
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	b := &benchNode{Node: n, dir: dir, cancel: cancel, done: make(chan error, 1), programs: map[string]string{}}
	go func() { b.done <- n.ServeListener(sctx, ln) }()
	if err := b.setup(ctx, nQueriers); err != nil {
		b.stop()
		return nil, err
	}
	return b, nil
}

func (b *benchNode) setup(ctx context.Context, nQueriers int) error {
	for range 3 {
		k, c, err := b.newParty(ctx)
		if err != nil {
			return err
		}
		b.owners, b.clients = append(b.owners, k), append(b.clients, c)
	}
	for range max(1, nQueriers) { // the policy needs at least one querier
		k, err := party.Generate()
		if err != nil {
			return err
		}
		b.queriers = append(b.queriers, k)
	}
	for name, prog := range map[string]struct {
		pkg     string
		reactor bool
	}{"train": {"examples/programs/svmtrain", false}, "count": {"examples/programs/rowcount", false}, "predict": {"examples/programs/svmpredict", true}} {
		wasm, err := wasmbuild.Build(ctx, prog.pkg, prog.reactor)
		if err != nil {
			return err
		}
		info, err := b.clients[0].AddProgram(ctx, bytes.NewReader(wasm))
		if err != nil {
			return fmt.Errorf("add program %s: %w", name, err)
		}
		b.programs[name] = info.SHA256
	}
	return nil
}

func (b *benchNode) stop() {
	b.cancel()
	<-b.done
	b.Close()
	os.RemoveAll(b.dir)
}

// newParty generates a key and a client that attested the node and pinned its TLS key.
func (b *benchNode) newParty(ctx context.Context) (*party.Key, *api.Client, error) {
	k, err := party.Generate()
	if err != nil {
		return nil, nil, err
	}
	c, err := b.client(ctx, k)
	return k, c, err
}

func (b *benchNode) client(ctx context.Context, k *party.Key) (*api.Client, error) {
	cc := &cluster.Client{Reference: b.SelfReference()}
	att, err := cc.Attest(ctx, b.URL())
	if err != nil {
		return nil, fmt.Errorf("attest: %w", err)
	}
	return api.NewClient(api.ClientConfig{BaseURL: b.URL(), Key: k, TLS: att.TLSConfig()})
}

// policy renders benchPolicy for the owner i.
func (b *benchNode) policy(i int) []byte {
	ids := func(keys []*party.Key) string {
		var s []string
		for _, k := range keys {
			s = append(s, k.Identity().ID().String())
		}
		return strings.Join(s, ", ")
	}
	r := strings.NewReplacer("${owner}", b.owners[i].Identity().ID().String(), "${members}", ids(b.owners),
		"${queriers}", ids(b.queriers), "${train}", b.programs["train"], "${count}", b.programs["count"],
		"${predict}", b.programs["predict"])
	return []byte(r.Replace(benchPolicy))
}

// seal seals owner i's CSV share for the cluster and the owner.
func (b *benchNode) seal(i int, data []byte) ([]byte, error) {
	var buf bytes.Buffer
	buf.Grow(len(data) + len(data)/64 + 64<<10)
	_, err := pad.Seal(&buf, bytes.NewReader(data), pad.SealOptions{
		Signer: b.owners[i], Recipients: []*party.Identity{b.owners[i].Identity(), b.Cluster.Identity()},
		Policy: b.policy(i), PolicyType: "application/styx-policy+yaml", ContentType: "text/csv", Size: int64(len(data)),
	})
	return buf.Bytes(), err
}

// upload seals and uploads one share per owner and returns the job inputs naming them.
func (b *benchNode) upload(ctx context.Context, shares [][]byte) (map[string]string, error) {
	inputs := map[string]string{}
	for i, s := range shares {
		sealed, err := b.seal(i, s)
		if err != nil {
			return nil, err
		}
		info, err := b.clients[i].UploadPad(ctx, bytes.NewReader(sealed))
		if err != nil {
			return nil, fmt.Errorf("upload: %w", err)
		}
		inputs[fmt.Sprintf("h%d", i+1)] = info.ID
	}
	return inputs, nil
}

// runJob submits a job as the first owner and waits for it to end; it fails unless it is done.
func (b *benchNode) runJob(ctx context.Context, spec *api.JobSpec) (*api.JobStatus, error) {
	spec.Wait = true
	st, err := b.clients[0].SubmitJob(ctx, spec)
	if err != nil {
		return nil, err
	}
	if !st.State.Final() {
		if st, err = b.clients[0].WaitJob(ctx, st.ID); err != nil {
			return nil, err
		}
	}
	if st.State != api.JobDone {
		return st, fmt.Errorf("job %s is %s: %v", st.ID, st.State, st.Error)
	}
	return st, nil
}

// finish waits, untimed, for the end of job id and until the node is idle again (engine.Settle:
// the spare guest its worker starts once done with a job has started), so that the next figure
// runs on an idle node.
func (b *benchNode) finish(ctx context.Context, id string) error {
	if _, err := b.clients[0].WaitJob(ctx, id); err != nil {
		return err
	}
	return b.Engine.Settle(ctx)
}

// release returns the plaintext of a derived Pad released to the first owner.
func (b *benchNode) release(ctx context.Context, id string) ([]byte, error) {
	rc, err := b.clients[0].Release(ctx, id)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	_, pt, err := pad.Open(rc, b.owners[0])
	if err != nil {
		return nil, err
	}
	return io.ReadAll(pt)
}

// wdbcShares returns the WDBC training split repeated rep times, as three stratified CSV
// shares, the training set itself and the held-out test set.
func wdbcShares(rep int) (shares [][]byte, train, test *ml.Dataset, err error) {
	all, err := ml.ReadWDBC(bytes.NewReader(hospitals.WDBC))
	if err != nil {
		return nil, nil, nil, err
	}
	train, test = ml.Split(all, 0.2, 2026)
	if rep > 1 {
		train = train.Repeat(rep)
	}
	for _, s := range ml.Shares(train, 3, 7) {
		var buf bytes.Buffer
		if err := s.WriteCSV(&buf, ml.LabelColumn); err != nil {
			return nil, nil, nil, err
		}
		shares = append(shares, buf.Bytes())
	}
	return shares, train, test, nil
}

// plainHost is a sandbox host over plaintext bytes in memory: the program runs exactly as
// in a job, without a Pad, a policy, a key or the store.
type plainHost struct {
	inputs  map[string][]byte
	params  []byte
	outputs map[string]*bytes.Buffer
}

func newPlainHost(shares [][]byte, params []byte) *plainHost {
	h := &plainHost{inputs: map[string][]byte{}, params: params, outputs: map[string]*bytes.Buffer{}}
	for i, s := range shares {
		h.inputs[fmt.Sprintf("h%d", i+1)] = s
	}
	return h
}

func (h *plainHost) Inputs() []sandbox.Input {
	var in []sandbox.Input
	for i := 1; i <= len(h.inputs); i++ {
		name := fmt.Sprintf("h%d", i)
		in = append(in, sandbox.Input{Name: name, Kind: "text/csv", Size: int64(len(h.inputs[name]))})
	}
	return in
}

func (h *plainHost) Params() []byte { return h.params }
func (h *plainHost) Log([]byte)     {}

func (h *plainHost) Open(name string) (io.Reader, error) {
	b, ok := h.inputs[name]
	if !ok {
		return nil, errors.New("no such input")
	}
	return bytes.NewReader(b), nil
}

func (h *plainHost) Create(name string, kind sandbox.Kind) (io.WriteCloser, error) {
	buf := &bytes.Buffer{}
	h.outputs[name] = buf
	return nopCloser{buf}, nil
}

type nopCloser struct{ io.Writer }

func (nopCloser) Close() error { return nil }
