package cluster

import (
	"crypto/hpke"
	"crypto/subtle"
	"fmt"

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
	return j.finish(resp.Wrap, cluster)
}
