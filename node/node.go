// Package node assembles a complete Styx node from its parts: the cluster keys (sealed by the TEE
// backend), the embedded store encrypted at rest, the blob store, the WebAssembly sandbox, the
// transparency log, the engine and the attested HTTP API. `styx serve` and `styx demo` are thin
// wrappers around Open and Serve.
//
// A node needs no other setup: Open on an empty directory initialises a new cluster.
package node

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/audit"
	"github.com/styx-tee/styx/cluster"
	"github.com/styx-tee/styx/engine"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
	"github.com/styx-tee/styx/store"
	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sim"
	"golang.org/x/crypto/chacha20poly1305"
)

// Config configures a node. Only DataDir is required; the zero values give a single
// simulated-TEE node listening on 127.0.0.1:7443.
type Config struct {
	DataDir string
	// TEE is the backend: "sim" (default), "tdx" or "snp".
	TEE string
	// Platform says how a tdx or snp node reaches its TEE: the configfs-tsm root, the SEV guest
	// device (for SNP's derived sealing key), or fakes of both in tests. The zero value means
	// the kernel's.
	Platform cluster.Platform
	// EscrowTo is the owner-held recovery identity a new tdx cluster's key is escrowed to
	// (required for tdx, which has no sealing key; see docs/attestation.md).
	EscrowTo *party.Identity
	// Recovery re-admits a restarted tdx node from its escrow (cluster.Recover). Nil: a
	// restarted tdx node fails to open, saying so.
	Recovery cluster.Holder
	// Verifier checks evidence: the node's own and joining nodes'. Nil means
	// cluster.DefaultVerifier() (tests pin fake roots).
	Verifier tee.Verifier
	// Reference are the reference values joining nodes must meet; nil accepts nodes like this
	// one (for sim: simulated evidence).
	Reference *tee.ReferenceValues
	// Listen is the API address; empty means 127.0.0.1:7443.
	Listen string
	// Workers is the number of jobs run at once (default 1).
	Workers int
	// NoSpares turns off the spare guest a worker starts for the next job of the program it
	// just ran (engine.Config.NoSpares).
	NoSpares bool
	// Sandbox overrides the sandbox limits.
	Sandbox sandbox.Config
	Logger  *slog.Logger
	// Now is the trusted clock (tests); nil means time.Now.
	Now func() time.Time
	// Recheck is how often a running job re-checks its inputs' policies (default one second).
	Recheck time.Duration
	// JobAckWait is how long the job queue waits for a worker's sign of life before it hands
	// the job out again, e.g. after a crash (default one minute).
	JobAckWait time.Duration
}

// DefaultListen is the address a node listens on by default and the CLI's default server.
const DefaultListen = "127.0.0.1:7443"

// Node is a running Styx node.
type Node struct {
	cfg     Config
	Cluster *cluster.Node
	Store   *store.Store
	Blobs   *store.Disk
	Sandbox *sandbox.Runtime
	Audit   *audit.Log
	Engine  *engine.Engine
	API     *api.Server
	Claims  *tee.Claims
	ln      net.Listener
	closers []func() error
}

// Open opens the node in cfg.DataDir, creating a new cluster there if it holds none.
func Open(ctx context.Context, cfg Config) (_ *Node, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("node: no data directory")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: cfg}
	defer func() {
		if err != nil {
			n.Close()
		}
	}()
	if err := n.openCluster(ctx); err != nil {
		return nil, err
	}
	if err := n.openState(ctx); err != nil {
		return nil, err
	}
	return n, n.openAPI()
}

func (n *Node) openCluster(ctx context.Context) error {
	ccfg, err := n.clusterConfig()
	if err != nil {
		return err
	}
	if n.Cluster, err = openKeys(ctx, ccfg, n.cfg); err != nil {
		return fmt.Errorf("node: cluster keys: %w", err)
	}
	// The node's own claims, read from its own evidence.
	b, err := n.Cluster.Bundle(cluster.NewNonce())
	if err != nil {
		return fmt.Errorf("node: attest: %w", err)
	}
	_, n.Claims, err = b.Verify(ccfg.Reference, ccfg.Verifier, b.Nonce)
	if err != nil {
		return fmt.Errorf("node: own evidence does not verify: %w", err)
	}
	return nil
}

// ErrRecoveryNeeded reports a tdx node that restarted: its cluster key was sealed under the
// previous process's key and must come back from its escrow (Config.Recovery).
var ErrRecoveryNeeded = errors.New("cluster key needs recovery")

// openKeys opens the cluster keys in ccfg.Dir, creating a cluster if there is none. A tdx node
// (no sealing key) creates its cluster escrowed to cfg.EscrowTo and, once it has one, always
// recovers it from the escrow.
func openKeys(ctx context.Context, ccfg cluster.Config, cfg Config) (*cluster.Node, error) {
	exists := func(name string) bool {
		_, err := os.Stat(filepath.Join(ccfg.Dir, name))
		return err == nil
	}
	escrowed := ccfg.Attester.Type() == tee.TDX
	switch {
	case escrowed && exists(cluster.EscrowFile):
		if cfg.Recovery == nil {
			return nil, fmt.Errorf("%s: tdx has no sealing key, so the cluster key sealed by the previous run is gone with it; recover it from %s with the escrow holder's key (styx serve --recovery-key FILE): %w",
				ccfg.Dir, cluster.EscrowFile, ErrRecoveryNeeded)
		}
		return cluster.Recover(ctx, ccfg, cfg.Recovery)
	case exists(cluster.ClusterKeyFile) && escrowed:
		return nil, fmt.Errorf("%s holds a tdx cluster key without an escrow: it cannot be opened after a restart", ccfg.Dir)
	case exists(cluster.ClusterKeyFile):
		return cluster.Open(ccfg)
	}
	// A new cluster: make sure the TEE attests before any key is created and sealed.
	if _, err := ccfg.Attester.Evidence(tee.ReportData("styx node startup check v1")); err != nil {
		return nil, fmt.Errorf("%s attestation does not work: %w", ccfg.Attester.Type(), err)
	}
	if escrowed {
		if cfg.EscrowTo == nil {
			return nil, errors.New("tdx has no sealing key: a new cluster needs an owner-held recovery identity to escrow its key to (styx serve --escrow-to FILE; see docs/attestation.md)")
		}
		return cluster.InitEscrowed(ccfg, cfg.EscrowTo)
	}
	return cluster.Init(ccfg)
}

func (n *Node) clusterConfig() (cluster.Config, error) {
	cfg := cluster.Config{Dir: filepath.Join(n.cfg.DataDir, "cluster"), Reference: n.cfg.Reference,
		Verifier: n.cfg.Verifier, Logger: n.cfg.Logger}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return cfg, err
	}
	var err error
	switch n.cfg.TEE {
	case "", "sim":
		m := selfMeasurement()
		cfg.Attester = sim.New(m, false)
		cfg.Sealer, err = sim.NewSealer(filepath.Join(cfg.Dir, "sim-sealing.key"))
		if cfg.Reference == nil {
			cfg.Reference = SimReference(m)
		}
	case "tdx", "snp":
		if cfg.Reference == nil {
			return cfg, fmt.Errorf("node: --tee %s needs reference values for joining nodes", n.cfg.TEE)
		}
		cfg.Attester, cfg.Sealer, err = n.cfg.Platform.TEE(tee.Type(n.cfg.TEE), cfg.Dir)
	default:
		return cfg, fmt.Errorf("node: unknown TEE backend %q (want sim, tdx or snp)", n.cfg.TEE)
	}
	return cfg, err
}

// SimReference returns reference values that accept the simulated TEE with measurement m, and
// nothing else. Use them only for development: simulated evidence protects nothing.
func SimReference(m [32]byte) *tee.ReferenceValues {
	return &tee.ReferenceValues{AllowSimulated: true, TEE: map[tee.Type]*tee.TypeReference{
		tee.Sim: {Measurements: []tee.Measurement{{tee.PrimaryRegister(tee.Sim): hex.EncodeToString(m[:])}}},
	}}
}

// SelfReference returns reference values accepting this node's own TEE and measurement: what a
// client of a development node passes to styx attest (written to reference.json by styx serve).
func (n *Node) SelfReference() *tee.ReferenceValues {
	m, _ := hex.DecodeString(n.Claims.Measurement)
	if n.Claims.Simulated && len(m) == 32 {
		return SimReference([32]byte(m))
	}
	return n.cfg.Reference
}

// selfMeasurement is what the simulated TEE reports as its measurement: the SHA-256 of the
// running binary, so that a simulated node at least names the code it runs.
func selfMeasurement() [32]byte {
	exe, err := os.Executable()
	if err != nil {
		return sha256.Sum256([]byte("styx: unknown executable"))
	}
	f, err := os.Open(exe)
	if err != nil {
		return sha256.Sum256([]byte(exe))
	}
	defer f.Close()
	h := sha256.New()
	io.Copy(h, f)
	return [32]byte(h.Sum(nil))
}

func (n *Node) openState(ctx context.Context) error {
	sk := n.Cluster.StoreKey()
	key, err := store.NewKey(sk[:])
	if err != nil {
		return err
	}
	n.Store, err = store.Open(ctx, store.Config{Dir: filepath.Join(n.cfg.DataDir, "store"), Key: key, Logger: n.cfg.Logger, JobAckWait: n.cfg.JobAckWait})
	if err != nil {
		return fmt.Errorf("node: store: %w", err)
	}
	n.closers = append(n.closers, n.Store.Close)
	if n.Blobs, err = store.OpenDisk(filepath.Join(n.cfg.DataDir, "blobs"), 0); err != nil {
		return fmt.Errorf("node: blobs: %w", err)
	}
	sbc := n.cfg.Sandbox
	sbc.Logger = n.cfg.Logger
	if n.Sandbox, err = sandbox.New(ctx, sbc); err != nil {
		return fmt.Errorf("node: sandbox: %w", err)
	}
	n.closers = append(n.closers, func() error { return n.Sandbox.Close(context.Background()) })
	ck := n.Cluster.Key()
	logKey := n.Cluster.DeriveKey("styx audit log at rest v1")
	seal, err := chacha20poly1305.NewX(logKey[:])
	if err != nil {
		return err
	}
	// The transparency log's records live in the store's audit stream, sealed under a key of
	// their own; its tree heads are signed here, with the cluster key.
	records, err := n.Store.OpenAuditLog(ctx, seal)
	if err != nil {
		return fmt.Errorf("node: audit log: %w", err)
	}
	n.Audit, err = audit.New(records, audit.Options{
		Origin: "styx.cluster." + ck.Identity().ID().String()[len("styxid1"):][:16], Signer: rawSigner{ck},
		PublicKey: ck.Identity().SigningKey(), Now: n.cfg.Now, Logger: n.cfg.Logger,
	})
	if err != nil {
		records.Close()
		return fmt.Errorf("node: audit log: %w", err)
	}
	n.closers = append(n.closers, n.Audit.Close)
	state := n.Cluster.DeriveKey("styx engine state v1")
	n.Engine, err = engine.New(engine.Config{
		Cluster: ck, StateKey: state[:], Claims: *n.Claims, Store: n.Store, Blobs: n.Blobs,
		Sandbox: n.Sandbox, Audit: n.Audit, Logger: n.cfg.Logger, Now: n.cfg.Now, Workers: n.cfg.Workers, NoSpares: n.cfg.NoSpares,
		Recheck: n.cfg.Recheck, AckWait: n.cfg.JobAckWait,
	})
	return err
}

func (n *Node) openAPI() error {
	tlsCfg, err := n.Cluster.TLSConfig()
	if err != nil {
		return err
	}
	n.API, err = api.NewServer(api.Config{Service: n.Engine, Attestation: n.Cluster.Handler(), TLS: tlsCfg,
		Logger: n.cfg.Logger, Now: n.cfg.Now, Simulated: n.Claims.Simulated})
	return err
}

// Serve starts the engine's workers and serves the API until ctx ends, then stops both.
func (n *Node) Serve(ctx context.Context) error {
	addr := n.cfg.Listen
	if addr == "" {
		addr = DefaultListen
	}
	ln, err := n.Listen(addr)
	if err != nil {
		return err
	}
	return n.ServeListener(ctx, ln)
}

// Listen opens the API listener on addr ("127.0.0.1:0" picks a free port); URL names it.
func (n *Node) Listen(addr string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("node: listen: %w", err)
	}
	n.ln = ln
	return ln, nil
}

// ServeListener is Serve on a listener from Listen.
func (n *Node) ServeListener(ctx context.Context, ln net.Listener) error {
	n.Engine.Start(ctx)
	defer n.Engine.Close()
	return n.API.Serve(ctx, ln)
}

// URL returns the node's API base URL once it serves.
func (n *Node) URL() string {
	if n.ln == nil {
		return "https://" + DefaultListen
	}
	return "https://" + n.ln.Addr().String()
}

// Close releases everything Open acquired, in reverse order.
func (n *Node) Close() error {
	var errs []error
	for i := len(n.closers) - 1; i >= 0; i-- {
		errs = append(errs, n.closers[i]())
	}
	n.closers = nil
	return errors.Join(errs...)
}

// rawSigner signs tree-head notes with the cluster key (see party.Key.SignRaw).
type rawSigner struct {
	k interface{ SignRaw([]byte) ([]byte, error) }
}

func (s rawSigner) Sign(msg []byte) ([]byte, error) { return s.k.SignRaw(msg) }
