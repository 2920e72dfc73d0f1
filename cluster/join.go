package cluster

import (
	"crypto/hpke"
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/tee"
)

// PurposeJoin domain-separates the report data of a join request:
//
//	report_data = tee.ReportData(PurposeJoin, joiner identity bytes, nonce)
const PurposeJoin = "styx node join v1"

// joinInfo is the HPKE info of the cluster secret wrapped to a joiner.
const joinInfo = "styx cluster join v1"

// A JoinRequest is what a new node presents: evidence binding a fresh join key to the admitting
// node's nonce.
type JoinRequest struct {
	Identity string   `json:"identity"` // the joiner's fresh party identity
	Nonce    []byte   `json:"nonce"`
	Evidence Evidence `json:"evidence"`
}

// A JoinResponse carries the cluster secret wrapped to the join key, and the admitting node's
// own attestation for the same nonce so that the joiner checks whom it is joining.
type JoinResponse struct {
	Bundle *Bundle `json:"bundle"`
	Wrap   []byte  `json:"wrap"` // HPKE(X-Wing, HKDF-SHA256, AES-256-GCM) of the cluster secret
}

// A Joiner is a new node waiting to be admitted.
type Joiner struct {
	cfg   Config
	key   *party.Key
	nonce []byte
	req   *JoinRequest
}

// NewJoiner prepares a join: a fresh join key and evidence binding it to nonce, the challenge
// the admitting node sent.
func NewJoiner(cfg Config, nonce []byte) (*Joiner, error) {
	if err := cfg.check(); err != nil {
		return nil, err
	}
	if len(nonce) != NonceSize {
		return nil, fmt.Errorf("cluster: join nonce is %d bytes, want %d", len(nonce), NonceSize)
	}
	k, err := party.Generate()
	if err != nil {
		return nil, err
	}
	ev, err := cfg.Attester.Evidence(tee.ReportData(PurposeJoin, k.Identity().Bytes(), nonce))
	if err != nil {
		return nil, fmt.Errorf("cluster: join evidence: %w", err)
	}
	return &Joiner{cfg: cfg, key: k, nonce: append([]byte(nil), nonce...), req: &JoinRequest{
		Identity: k.Identity().String(),
		Nonce:    append([]byte(nil), nonce...),
		Evidence: Evidence{Type: ev.Type, Data: ev.Data},
	}}, nil
}

// Request returns the join request to send to an existing node.
func (j *Joiner) Request() *JoinRequest { return j.req }

// Admit verifies a join request against the node's reference values and the nonce it issued,
// then wraps the cluster secret to the join key bound in the evidence.
func (n *Node) Admit(req *JoinRequest, nonce []byte) (*JoinResponse, error) {
	if len(nonce) != NonceSize || subtle.ConstantTimeCompare(req.Nonce, nonce) != 1 {
		return nil, fmt.Errorf("cluster: join request answers another nonce: %w", ErrStaleNonce)
	}
	id, err := party.ParseIdentity(req.Identity)
	if err != nil {
		return nil, malformed("join identity: %v", err)
	}
	rd := tee.ReportData(PurposeJoin, id.Bytes(), nonce)
	c, err := n.verifier().Verify(tee.Evidence{Type: req.Evidence.Type, Data: req.Evidence.Data}, n.cfg.Reference, rd)
	if err != nil {
		n.log().Warn("join refused", "joiner", id, "err", err)
		return nil, fmt.Errorf("cluster: join of %s refused: %w", id.ID(), err)
	}
	wrap, err := wrapTo(id, nonce, secretOf(n.key))
	if err != nil {
		return nil, err
	}
	b, err := n.Bundle(nonce)
	if err != nil {
		return nil, err
	}
	n.log().Info("node admitted", "joiner", id, "claims", c.String())
	return &JoinResponse{Bundle: b, Wrap: wrap}, nil
}

// Complete checks the admitting node's attestation, unwraps the cluster secret, and seals it
// (with a fresh TLS key) in the joiner's data directory.
func (j *Joiner) Complete(resp *JoinResponse) (*Node, error) {
	if resp == nil || resp.Bundle == nil {
		return nil, malformed("join response without a bundle")
	}
	v := j.cfg.Verifier
	id, _, err := resp.Bundle.Verify(j.cfg.Reference, v, j.nonce)
	if err != nil {
		return nil, fmt.Errorf("cluster: admitting node: %w", err)
	}
	return j.finish(resp.Wrap, id, false)
}

// finish unwraps the cluster secret, checks it is the key of cluster, and seals it in the
// joiner's data directory with a fresh TLS key. With replace, sealed files an earlier run left
// (which the joiner's sealer cannot open) are removed once the key checked out; without, their
// presence is an error.
func (j *Joiner) finish(wrap []byte, cluster *party.Identity, replace bool) (*Node, error) {
	sk, err := j.key.HPKEPrivateKey(party.KEMXWing)
	if err != nil {
		return nil, err
	}
	secret, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(j.key.Identity(), j.nonce), wrap)
	if err != nil {
		return nil, fmt.Errorf("cluster: unwrap cluster secret: %w", err)
	}
	k, err := party.ParseKey(secret)
	if err != nil {
		return nil, fmt.Errorf("cluster: unwrapped cluster secret: %w", err)
	}
	if !k.Identity().Equal(cluster) {
		return nil, fmt.Errorf("cluster: unwrapped key is %s, expected cluster %s: %w", k.Identity().ID(), cluster.ID(), ErrKeyMismatch)
	}
	if replace {
		for _, name := range []string{ClusterKeyFile, TLSKeyFile} {
			if err := os.Remove(filepath.Join(j.cfg.Dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("cluster: %w", err)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(j.cfg.Dir, ClusterKeyFile)); err == nil {
		return nil, fmt.Errorf("cluster: %s already holds a cluster key", j.cfg.Dir)
	}
	return create(j.cfg, k)
}

// wrapTo wraps the cluster secret to a joiner's X-Wing key.
func wrapTo(joiner *party.Identity, nonce, secret []byte) ([]byte, error) {
	pk, err := joiner.HPKEPublicKey(party.KEMXWing)
	if err != nil {
		return nil, err
	}
	wrap, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(joiner, nonce), secret)
	if err != nil {
		return nil, fmt.Errorf("cluster: wrap cluster secret: %w", err)
	}
	return wrap, nil
}

// wrapInfo binds the wrap to the join key and the nonce.
func wrapInfo(joiner *party.Identity, nonce []byte) []byte {
	info := append([]byte(joinInfo+"\x00"), joiner.Bytes()...)
	return append(info, nonce...)
}
