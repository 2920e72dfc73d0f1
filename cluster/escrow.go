package cluster

import (
	"context"
	"crypto/hpke"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// escrowInfo is the HPKE info of an escrowed cluster secret.
const escrowInfo = "styx cluster escrow v1"

// An Escrow is the cluster secret wrapped to an owner-held recovery identity. It lets a cluster
// whose nodes cannot seal (TDX) survive the loss of every node: the holder re-admits a restarted
// node with RecoveryAdmit. The holder can open the cluster secret; see docs/attestation.md.
type Escrow struct {
	Cluster  string `json:"cluster"`  // identity of the escrowed cluster key
	Recovery string `json:"recovery"` // identity of the holder
	Wrap     []byte `json:"wrap"`     // HPKE(X-Wing, HKDF-SHA256, AES-256-GCM) of the cluster secret
}

// Escrow wraps the cluster secret to recovery.
func (n *Node) Escrow(recovery *party.Identity) (*Escrow, error) {
	pk, err := recovery.HPKEPublicKey(party.KEMXWing)
	if err != nil {
		return nil, err
	}
	wrap, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), escrowInfoFor(n.Identity(), recovery), secretOf(n.key))
	if err != nil {
		return nil, fmt.Errorf("cluster: escrow: %w", err)
	}
	n.log().Info("cluster key escrowed", "recovery", recovery)
	return &Escrow{Cluster: n.Identity().String(), Recovery: recovery.String(), Wrap: wrap}, nil
}

func escrowInfoFor(cluster, recovery *party.Identity) []byte {
	info := append([]byte(escrowInfo+"\x00"), cluster.Bytes()...)
	return append(info, recovery.Bytes()...)
}

// RecoveryAdmit is run by the escrow holder: it verifies a restarted node's join request against
// ref (with v, nil for DefaultVerifier) and the nonce the holder issued, opens the escrow with
// the holder's key, and re-wraps the cluster secret to the node's join key. The node finishes
// with Joiner.CompleteRecovery.
func RecoveryAdmit(e *Escrow, holder *party.Key, req *JoinRequest, nonce []byte, ref *tee.ReferenceValues, v tee.Verifier) (*JoinResponse, error) {
	cluster, err := party.ParseIdentity(e.Cluster)
	if err != nil {
		return nil, malformed("escrow cluster identity: %v", err)
	}
	if e.Recovery != holder.Identity().String() {
		return nil, fmt.Errorf("cluster: escrow is held by another identity: %w", ErrKeyMismatch)
	}
	if len(nonce) != NonceSize || subtle.ConstantTimeCompare(req.Nonce, nonce) != 1 {
		return nil, fmt.Errorf("cluster: join request answers another nonce: %w", ErrStaleNonce)
	}
	id, err := party.ParseIdentity(req.Identity)
	if err != nil {
		return nil, malformed("join identity: %v", err)
	}
	if v == nil {
		v = DefaultVerifier()
	}
	rd := tee.ReportData(PurposeJoin, id.Bytes(), nonce)
	if _, err := v.Verify(tee.Evidence{Type: req.Evidence.Type, Data: req.Evidence.Data}, ref, rd); err != nil {
		return nil, fmt.Errorf("cluster: recovery of %s refused: %w", id.ID(), err)
	}
	sk, err := holder.HPKEPrivateKey(party.KEMXWing)
	if err != nil {
		return nil, err
	}
	secret, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), escrowInfoFor(cluster, holder.Identity()), e.Wrap)
	if err != nil {
		return nil, fmt.Errorf("cluster: open escrow: %w", err)
	}
	defer clear(secret)
	wrap, err := wrapTo(id, nonce, secret)
	if err != nil {
		return nil, err
	}
	return &JoinResponse{Wrap: wrap}, nil
}

// CompleteRecovery finishes a join answered by RecoveryAdmit: there is no admitting node to
// attest, so the caller names the cluster it expects (from its cluster.id file) and the unwrapped
// key must be that cluster's.
func (j *Joiner) CompleteRecovery(resp *JoinResponse, cluster *party.Identity) (*Node, error) {
	if resp == nil || cluster == nil {
		return nil, malformed("recovery response without wrap or expected cluster")
	}
	return j.finish(resp.Wrap, cluster, false)
}

// EscrowFile is where a node that cannot seal (TDX) keeps the escrow of its cluster key, in its
// data directory. It is not secret (only the holder opens it) and not trusted: the holder checks
// it is theirs, and the HPKE info binds the cluster identity it names.
const EscrowFile = "escrow.json"

// MaxEscrowSize caps an escrow file.
const MaxEscrowSize = 16 << 10

// Marshal returns the JSON encoding of e.
func (e *Escrow) Marshal() []byte { return mustJSON(e) }

// ParseEscrow parses an escrow strictly: size cap, known fields, one value, valid identities
// and a wrap.
func ParseEscrow(data []byte) (*Escrow, error) {
	var e Escrow
	if err := decodeStrict(data, &e, MaxEscrowSize); err != nil {
		return nil, malformed("escrow: %v", err)
	}
	for _, s := range []string{e.Cluster, e.Recovery} {
		if _, err := party.ParseIdentity(s); err != nil {
			return nil, malformed("escrow identity: %v", err)
		}
	}
	if len(e.Wrap) == 0 {
		return nil, malformed("escrow without a wrap")
	}
	return &e, nil
}

// LoadEscrow reads and parses an escrow file.
func LoadEscrow(path string) (*Escrow, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxEscrowSize+1))
	if err != nil {
		return nil, err
	}
	e, err := ParseEscrow(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return e, nil
}

// InitEscrowed creates the cluster keys on the first node of a TEE that cannot seal (TDX): the
// cluster key is escrowed to recovery and the escrow written to cfg.Dir/EscrowFile before any
// key is sealed, so that a node whose process ends can come back with Recover.
func InitEscrowed(cfg Config, recovery *party.Identity) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if recovery == nil {
		return nil, errors.New("cluster: no recovery identity to escrow the cluster key to")
	}
	for _, name := range []string{ClusterKeyFile, EscrowFile} {
		if _, err := os.Stat(filepath.Join(cfg.Dir, name)); err == nil {
			return nil, fmt.Errorf("cluster: %s already holds %s; use Recover", cfg.Dir, name)
		}
	}
	k, err := party.Generate()
	if err != nil {
		return nil, err
	}
	e, err := (&Node{cfg: cfg, key: k}).Escrow(recovery)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(cfg.Dir, 0o700); err != nil {
		return nil, fmt.Errorf("cluster: %w", err)
	}
	if err := writeFileAtomic(filepath.Join(cfg.Dir, EscrowFile), e.Marshal()); err != nil {
		return nil, fmt.Errorf("cluster: write escrow: %w", err)
	}
	return create(cfg, k)
}

// A Holder holds the recovery key of an escrow and re-admits restarted nodes (see Recover).
type Holder interface {
	// Recover picks a fresh nonce, gets the node's join request for it from join, and answers
	// it with RecoveryAdmit.
	Recover(ctx context.Context, e *Escrow, join func(nonce []byte) (*JoinRequest, error)) (*JoinResponse, error)
}

// LocalHolder is a Holder whose recovery key is in this process, so a node re-admits itself.
// Whoever can read that key can open the cluster key, outside any TEE: see docs/attestation.md.
type LocalHolder struct {
	Key       *party.Key
	Reference *tee.ReferenceValues // the node's evidence must meet them
	Verifier  tee.Verifier         // nil: DefaultVerifier()
}

// Recover implements Holder.
func (h *LocalHolder) Recover(ctx context.Context, e *Escrow, join func(nonce []byte) (*JoinRequest, error)) (*JoinResponse, error) {
	nonce := NewNonce()
	req, err := join(nonce)
	if err != nil {
		return nil, err
	}
	return RecoveryAdmit(e, h.Key, req, nonce, h.Reference, h.Verifier)
}

// Recover brings the cluster key back to a node whose sealer cannot open what an earlier run
// sealed (TDX after a restart): it reads cfg.Dir/EscrowFile, lets h re-admit a fresh join key
// with evidence for h's nonce, checks the recovered key is the escrowed cluster's, replaces the
// stale sealed files and seals the key again (with a fresh TLS key: clients attest anew).
func Recover(ctx context.Context, cfg Config, h Holder) (*Node, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	e, err := LoadEscrow(filepath.Join(cfg.Dir, EscrowFile))
	if err != nil {
		return nil, fmt.Errorf("cluster: recover: %w", err)
	}
	id, err := party.ParseIdentity(e.Cluster)
	if err != nil {
		return nil, malformed("escrow cluster identity: %v", err)
	}
	var j *Joiner
	resp, err := h.Recover(ctx, e, func(nonce []byte) (*JoinRequest, error) {
		var err error
		j, err = NewJoiner(cfg, nonce)
		if err != nil {
			return nil, err
		}
		return j.Request(), nil
	})
	if err != nil {
		return nil, fmt.Errorf("cluster: recover %s: %w", id.ID(), err)
	}
	if j == nil || resp == nil {
		return nil, fmt.Errorf("cluster: recover %s: the holder asked for no join request", id.ID())
	}
	n, err := j.finish(resp.Wrap, id, true)
	if err != nil {
		return nil, err
	}
	n.log().Info("cluster key recovered from escrow", "cluster", id, "recovery", e.Recovery)
	return n, nil
}
