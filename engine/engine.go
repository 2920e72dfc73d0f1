// Package engine is the Styx middleware: the trusted code inside the TEE that admits jobs
// against every input's sticky policy, feeds programs through the input pipeline, runs them in
// the sandbox, passes every output through the output pipeline, seals outputs as derived Pads,
// and releases plaintext or query answers only where every ancestor's policy allows.
//
// Create one Engine per node with New; it implements api.Service, so the HTTP server serves it
// directly. Start its job workers with Start and stop everything with Close.
//
// The store is outside the trust boundary: every record the engine writes is sealed (AES-GCM
// under a key derived from the cluster secret, bound to its bucket and key) and authenticated
// when read back; Pads authenticate themselves.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/policy"
	"github.com/styx-tee/styx/sandbox"
	"github.com/styx-tee/styx/store"
	"github.com/styx-tee/styx/tee"
)

// Config holds what an Engine runs on. Cluster, StateKey, Claims, Store, Blobs, Sandbox and Audit
// are required.
type Config struct {
	// Cluster is the cluster key: it unwraps data keys sealed to the cluster and signs derived
	// Pads and released Pads.
	Cluster *party.Key
	// StateKey (32 bytes, derived from the cluster secret) seals the engine's records and the
	// data keys of derived Pads in the store.
	StateKey []byte
	// Claims are the verified claims of the TEE this node runs in; policies are checked against
	// them and receipts carry them. Claims.Simulated marks everything the node produces.
	Claims  tee.Claims
	Store   *store.Store
	Blobs   store.Blobs
	Sandbox *sandbox.Runtime
	Audit   *audit.Log
	// Policy decides requests; nil uses policy.NewEngine().
	Policy policy.Engine
	Logger *slog.Logger
	// Now is the trusted clock; nil uses time.Now.
	Now func() time.Time
	// Workers is the number of jobs run at once; 0 means 1.
	Workers int
	// NoSpares turns off spare guests: a job's guest is then always started for it (spare.go).
	NoSpares bool
	// Recheck is how often a running job re-checks its inputs' policies; 0 means one second.
	Recheck time.Duration
	// MaxWait bounds how long SubmitJob and Job wait for a job to end; 0 means two minutes.
	MaxWait time.Duration
	// AckWait is the job queue's acknowledgement deadline (store.Config.JobAckWait); a worker
	// tells the queue it is still on a job every third of it, so that a long job is not
	// delivered to a second worker while it runs. 0 means one minute, the store's default.
	AckWait time.Duration
}

// Engine is the middleware of one node. It is safe for concurrent use.
type Engine struct {
	cfg     Config
	log     *slog.Logger
	now     func() time.Time
	pol     policy.Engine
	box     *box
	claims  policy.TEEClaims
	st      *store.Store
	blobs   store.Blobs
	sb      *sandbox.Runtime
	audit   *audit.Log
	queries *queryServer

	policies sync.Map // policy digest ([32]byte) → *policy.Policy
	// usesHint remembers, per Pad and action, whether its last decision needed its counters
	// (usesHintKey → bool), so that the next reads them alongside the chain. A hint only moves
	// reads: a wrong one costs a wasted read or a round trip. usesHints counts its entries
	// (about: a Clear races with new ones), at most maxUsesHints.
	usesHint  sync.Map
	usesHints atomic.Int64
	parties   sync.Map // party.ID → struct{}: identities this engine stored or found stored
	// recording holds, for each job SubmitJob is recording right now, a channel closed once
	// the record is written (or failed): its queue message may reach a worker first.
	recording sync.Map // job id → chan struct{}
	// claimed holds the record of each job this engine's workers claimed and have not
	// finished, as the claim wrote it, so that finish need not read it back.
	claimed sync.Map // job id → claimedRecord
	// pending holds the claim of each job whose run a worker of this engine began before the
	// claim was durable, until the run takes it (claim.go).
	pending sync.Map // job id → *pendingClaim
	// spareAfter holds, for each job a worker of this engine ran, its program: the worker
	// starts a spare guest of it once done with the job (spare.go).
	spareAfter sync.Map // job id → program sha256

	// epoch counts the revocations, policy updates and retention deletions this engine stored,
	// and, once started, the revocations and policy updates any node stored (Start watches the
	// store). A running job's every read compares it with the epoch its last decision saw and
	// decides again when it moved, so such a change stops the job at its next read, and the
	// query chain cache drops what it loaded before. A retention deletion made on another node
	// is caught by the once-a-Recheck watchdog (jobs) and the cache's short TTL (queries).
	epoch atomic.Uint64
	// hook, set only by tests, is called at named points of a job's output path.
	hook func(stage string)
	// noReadAhead, set only by tests, makes every read of a decision one request (readAhead).
	noReadAhead bool
	// failShred, set only by tests, makes destroying a data key fail.
	failShred func(id string) error

	// idle counts the workers waiting for a job; bootSlots (one per worker) bounds the guests
	// booted ahead of their job's claim (boot.go), held in boots until a worker takes them.
	idle      atomic.Int32
	bootSlots chan struct{}
	bootWait  time.Duration // tests shorten it

	mu      sync.Mutex
	waiters map[string][]*jobWaiter // job id → those waiting for its end
	boots   map[string]*boot        // job id → its guest booted ahead
	spares  map[string]*spare       // program sha256 → a guest started for its next job
	runCtx  context.Context         // the workers' context, once started

	wg     sync.WaitGroup
	stop   context.CancelFunc
	closed chan struct{}
}

var _ api.Service = (*Engine)(nil)

// New checks cfg and returns an Engine. Call Start to run queued jobs.
func New(cfg Config) (*Engine, error) {
	switch {
	case cfg.Cluster == nil:
		return nil, errors.New("engine: no cluster key")
	case cfg.Store == nil || cfg.Blobs == nil:
		return nil, errors.New("engine: no store")
	case cfg.Sandbox == nil:
		return nil, errors.New("engine: no sandbox runtime")
	case cfg.Audit == nil:
		return nil, errors.New("engine: no audit log")
	}
	b, err := newBox(cfg.StateKey)
	if err != nil {
		return nil, err
	}
	e := &Engine{
		cfg: cfg, log: cfg.Logger, now: cfg.Now, pol: cfg.Policy, box: b,
		st: cfg.Store, blobs: cfg.Blobs, sb: cfg.Sandbox, audit: cfg.Audit,
		waiters: map[string][]*jobWaiter{}, boots: map[string]*boot{}, spares: map[string]*spare{}, bootWait: defaultBootWait,
		closed: make(chan struct{}),
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.pol == nil {
		e.pol = policy.NewEngine()
	}
	if e.cfg.Workers <= 0 {
		e.cfg.Workers = 1
	}
	e.bootSlots = make(chan struct{}, e.cfg.Workers)
	if e.cfg.Recheck <= 0 {
		e.cfg.Recheck = time.Second
	}
	if e.cfg.MaxWait <= 0 {
		e.cfg.MaxWait = 2 * time.Minute
	}
	if e.cfg.AckWait <= 0 {
		e.cfg.AckWait = time.Minute
	}
	e.claims = policy.TEEClaims{
		Type: string(cfg.Claims.Type), Measurement: cfg.Claims.Measurement,
		Debug: cfg.Claims.Debug, Simulated: cfg.Claims.Simulated, TCB: parseTCB(cfg.Claims.TCB),
	}
	e.queries = newQueryServer(e)
	return e, nil
}

// Start queues again the jobs a crash left recorded but not queued, then runs the job workers
// and the retention sweeper until Close.
func (e *Engine) Start(ctx context.Context) {
	ctx, e.stop = context.WithCancel(ctx)
	e.mu.Lock()
	e.runCtx = ctx
	e.mu.Unlock()
	// A revocation or policy update stored by another node of the cluster moves this node's
	// epoch as soon as the store tells of it, as one stored here does: running jobs decide
	// again at their next read, and queries drop the chains they cached. Should the watch
	// fail, the watchdog's re-checks (jobs) and the chain cache's TTL (queries) still bound
	// how long such a change takes to reach them.
	if err := e.st.WatchChanges(ctx, func(store.Bucket) { e.epoch.Add(1) }, store.Revocations, store.Versions); err != nil {
		e.log.Warn("watching other nodes' revocations and policy updates", "err", err)
	}
	e.requeue(ctx)
	for range e.cfg.Workers {
		e.wg.Go(func() { e.work(ctx) })
	}
	e.wg.Go(func() { e.sweep(ctx) })
	e.wg.Go(func() { e.queries.flushLoop(ctx) })
}

// Close stops the workers (a running job is aborted and, being admitted, still counts), closes
// the warm query instances and flushes pending audit batches. It does not close the store, the
// sandbox or the audit log, which the caller owns.
func (e *Engine) Close() error {
	e.mu.Lock() // bootAhead starts no guest once the workers' context is done
	if e.stop != nil {
		e.stop()
	}
	var boots []*boot
	for _, b := range e.boots {
		boots = append(boots, b)
	}
	var spares []*spare
	for _, s := range e.spares {
		spares = append(spares, s)
	}
	e.mu.Unlock()
	for _, b := range boots {
		e.dropBoot(b, context.Canceled)
	}
	for _, s := range spares {
		e.dropSpare(s, context.Canceled)
	}
	e.wg.Wait()
	e.queries.close()
	return nil
}

// at calls the test hook, if any, at a named point.
func (e *Engine) at(stage string) {
	if e.hook != nil {
		e.hook(stage)
	}
}

// Simulated reports whether this node runs on the simulated TEE: everything it produces says so.
func (e *Engine) Simulated() bool { return e.cfg.Claims.Simulated }

// ClusterIdentity returns the identity owners seal Pads to.
func (e *Engine) ClusterIdentity() *party.Identity { return e.cfg.Cluster.Identity() }

func parseTCB(s string) uint64 {
	var v uint64
	if _, err := fmt.Sscanf(s, "%x", &v); err != nil {
		return 0
	}
	return v
}
