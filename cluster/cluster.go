// Package cluster holds the keys of a Styx cluster inside its TEE nodes: the cluster key (a
// party.Key, so the cluster's identity is an ordinary "styx1…" party identity that owners seal
// Pads to), each node's TLS key, the attestation bundle that binds both to TEE evidence, node
// join, and the client side of the attested channel.
//
// Start with Platform.TEE for the attester and sealer of this machine's TEE, then Init (first
// node) or Open (restart) — or, on a TEE that cannot seal (TDX), InitEscrowed and, after a
// restart, Recover through the escrow's Holder. Then Node.Bundle attests to a client nonce,
// Node.Handler serves that over HTTP (rate-limited), and Node.StoreKey keys the store's
// encryption at rest. A new node joins with NewJoiner, an existing node admits it with
// Node.Admit, and the joiner finishes with Joiner.Complete. Programs call Client.Dial (attest,
// then an api.Client pinned to the attested key), or VerifyBundleFile offline.
//
// The protocol and its residual risks are in docs/attestation.md.
package cluster

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// Files in a node's data directory. Both hold sealed bytes only.
const (
	ClusterKeyFile = "cluster.sealed"
	TLSKeyFile     = "tls.sealed"
)

// Sealing labels.
const (
	labelCluster = "styx cluster key v1"
	labelTLS     = "styx node tls key v1"
)

var (
	// ErrNotInitialized reports a data directory without a sealed cluster key.
	ErrNotInitialized = errors.New("cluster not initialized")
	// ErrStaleNonce reports a bundle or join answer made for another nonce (a replay).
	ErrStaleNonce = errors.New("stale nonce")
	// ErrKeyMismatch reports a TLS key or cluster identity other than the attested or pinned one.
	ErrKeyMismatch = errors.New("key mismatch")
)

// Config says where and how a node keeps its keys.
type Config struct {
	// Dir is the node's data directory; it holds only sealed files.
	Dir string
	// Attester produces the node's evidence.
	Attester tee.Attester
	// Sealer seals the node's secrets at rest.
	Sealer tee.Sealer
	// Reference values that joining nodes (and, for the joiner, the admitting node) must meet.
	Reference *tee.ReferenceValues
	// Verifier checks peers' evidence; nil means DefaultVerifier().
	Verifier tee.Verifier
	// Logger receives diagnostics; nil means slog.Default().
	Logger *slog.Logger
	// AttestationRate and AttestationBurst limit the bundles Handler produces, each fresh
	// evidence from the TEE: on average AttestationRate per second, AttestationBurst at once;
	// beyond that a request gets 429 with Retry-After. Zero means DefaultAttestationRate and
	// DefaultAttestationBurst.
	AttestationRate  float64
	AttestationBurst int
}

// A Node is one cluster member's view of the cluster keys.
type Node struct {
	cfg     Config
	key     *party.Key
	tlsKey  *ecdsa.PrivateKey
	tlsSPKI []byte
}

// Init creates the cluster keys on the first node and seals them in cfg.Dir. It refuses a
// directory that already holds a cluster key.
func Init(cfg Config) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if _, err := os.Stat(filepath.Join(cfg.Dir, ClusterKeyFile)); err == nil {
		return nil, fmt.Errorf("cluster: %s already holds a cluster key; use Open", cfg.Dir)
	}
	k, err := party.Generate()
	if err != nil {
		return nil, err
	}
	return create(cfg, k)
}

// create seals k and a fresh TLS key into cfg.Dir.
func create(cfg Config, k *party.Key) (*Node, error) {
	tlsKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	n, err := newNode(cfg, k, tlsKey)
	if err != nil {
		return nil, err
	}
	tlsDER, err := x509.MarshalPKCS8PrivateKey(tlsKey)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := sealFile(cfg, TLSKeyFile, labelTLS, tlsDER); err != nil {
		return nil, err
	}
	if err := sealFile(cfg, ClusterKeyFile, labelCluster, secretOf(k)); err != nil {
		return nil, err
	}
	n.log().Info("cluster keys created", "cluster", k.Identity(), "tee", cfg.Attester.Type())
	return n, nil
}

// Open unseals the keys a node sealed in cfg.Dir.
func Open(cfg Config) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	secret, err := unsealFile(cfg, ClusterKeyFile, labelCluster)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("cluster: %s: %w", cfg.Dir, ErrNotInitialized)
	}
	if err != nil {
		return nil, err
	}
	k, err := party.ParseKey(secret)
	if err != nil {
		return nil, fmt.Errorf("cluster: sealed cluster key: %w", err)
	}
	tlsDER, err := unsealFile(cfg, TLSKeyFile, labelTLS)
	if err != nil {
		return nil, err
	}
	tk, err := x509.ParsePKCS8PrivateKey(tlsDER)
	if err != nil {
		return nil, fmt.Errorf("cluster: sealed tls key: %w", err)
	}
	ek, ok := tk.(*ecdsa.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("cluster: sealed tls key is %T, want ecdsa", tk)
	}
	return newNode(cfg, k, ek)
}

func newNode(cfg Config, k *party.Key, tlsKey *ecdsa.PrivateKey) (*Node, error) {
	spki, err := x509.MarshalPKIXPublicKey(&tlsKey.PublicKey)
	if err != nil {
		return nil, err
	}
	n := &Node{cfg: cfg, key: k, tlsKey: tlsKey, tlsSPKI: spki}
	if n.Simulated() {
		n.log().Warn("SIMULATED node: no hardware protection; never use it with real data", "cluster", k.Identity())
	}
	return n, nil
}

func (c *Config) check() error {
	if c.Dir == "" || c.Attester == nil || c.Sealer == nil {
		return errors.New("cluster: config needs Dir, Attester and Sealer")
	}
	return nil
}

func (n *Node) log() *slog.Logger {
	if n.cfg.Logger != nil {
		return n.cfg.Logger
	}
	return slog.Default()
}

func (n *Node) verifier() tee.Verifier {
	if n.cfg.Verifier != nil {
		return n.cfg.Verifier
	}
	return DefaultVerifier()
}

// Identity returns the cluster identity: what owners seal Pads to.
func (n *Node) Identity() *party.Identity { return n.key.Identity() }

// Key returns the cluster key, for the engine inside the TEE (unwrapping data keys, signing
// derived Pads, receipts and tree heads). It never leaves the node.
func (n *Node) Key() *party.Key { return n.key }

// TLSPublicKey returns the DER SubjectPublicKeyInfo of the node's TLS key.
func (n *Node) TLSPublicKey() []byte { return append([]byte(nil), n.tlsSPKI...) }

// TEE returns the node's TEE type.
func (n *Node) TEE() tee.Type { return n.cfg.Attester.Type() }

// Simulated reports whether the node runs on the simulator, which protects nothing. Everything
// such a node produces (receipts, derived Pads, API responses) should say so.
func (n *Node) Simulated() bool { return n.TEE() == tee.Sim }

// LogValue implements slog.LogValuer: a node logs as its cluster id, never its keys.
func (n *Node) LogValue() slog.Value {
	return slog.GroupValue(slog.String("cluster", n.key.Identity().ID().String()), slog.String("tee", string(n.TEE())))
}

// StoreKey returns the 32-byte key for the store's encryption at rest (JetStream), the same on
// every node of the cluster: HKDF-SHA256 of the cluster secret, labelled
// "styx store encryption v1".
func (n *Node) StoreKey() [32]byte { return n.DeriveKey("styx store encryption v1") }

// DeriveKey derives a 32-byte key for label from the cluster secret (HKDF-SHA256, no salt,
// info = label). Every node derives the same key; distinct labels give independent keys.
func (n *Node) DeriveKey(label string) [32]byte {
	b, err := hkdf.Key(sha256.New, secretOf(n.key), nil, label, 32)
	if err != nil {
		panic("cluster: hkdf: " + err.Error()) // only for lengths HKDF-SHA256 cannot produce
	}
	return [32]byte(b)
}

// secretOf is the cluster secret: the key file form of the cluster key with a fixed creation
// time, so that it is the same bytes on every node.
func secretOf(k *party.Key) []byte { return k.Marshal(time.Unix(0, 0)) }

func sealFile(cfg Config, name, label string, plaintext []byte) error {
	sealed, err := cfg.Sealer.Seal(plaintext, label)
	if err != nil {
		return fmt.Errorf("cluster: seal %s: %w", name, err)
	}
	tmp, err := os.CreateTemp(cfg.Dir, name+".tmp*")
	if err != nil {
		return fmt.Errorf("cluster: %w", err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(sealed); err != nil {
		tmp.Close()
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("cluster: write %s: %w", name, err)
	}
	return os.Rename(tmp.Name(), filepath.Join(cfg.Dir, name))
}

// maxSealedFile caps what Open reads from the data directory.
const maxSealedFile = 64 << 10

func unsealFile(cfg Config, name, label string) ([]byte, error) {
	path := filepath.Join(cfg.Dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Size() > maxSealedFile {
		return nil, fmt.Errorf("cluster: %s is %d bytes, more than %d", path, fi.Size(), maxSealedFile)
	}
	sealed, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pt, err := cfg.Sealer.Unseal(sealed, label)
	if err != nil {
		return nil, fmt.Errorf("cluster: %s: %w", path, err)
	}
	return pt, nil
}
