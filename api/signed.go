package api

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/styx-tee/styx/party"
)

// Signature domains of the owner-signed lifecycle statements. They differ from
// SignatureDomain, so a request signature can never pass as a revocation or an update.
const (
	PolicyUpdateDomain = "policy-update"
	RevocationDomain   = "pad-revocation"
)

// Limits on lifecycle statements.
const (
	MaxPolicySize   = 256 << 10
	maxReasonLen    = 1024
	statementLayout = time.RFC3339
)

// A SignedPolicyUpdate is an owner's signed statement "from Time on, Pad is governed by Policy"
// (PUT /v1/pads/{id}/policy). The policy document carries its version; the engine refuses a
// version that is not higher than the current one.
type SignedPolicyUpdate struct {
	Pad       string    `json:"pad"`
	Policy    []byte    `json:"policy"` // the policy document, as the policy package parses it
	Time      time.Time `json:"time"`
	Signer    string    `json:"signer"`    // the owner's full identity (styx1…)
	Signature []byte    `json:"signature"` // Ed25519 over SignedMessage, domain PolicyUpdateDomain
}

// SignedMessage returns the bytes the owner signs:
//
//	styx-policy-update-v1\n pad ID\n time RFC3339\n policy-sha256 HEX\n
//
// (each "field value" on its own line, no spaces other than the one after the field name).
func (u *SignedPolicyUpdate) SignedMessage() []byte {
	sum := sha256.Sum256(u.Policy)
	return statement("styx-policy-update-v1", "pad", u.Pad, "time", u.Time.UTC().Format(statementLayout),
		"policy-sha256", hex.EncodeToString(sum[:]))
}

// SignPolicyUpdate returns a policy update for pad signed by key, dated now.
func SignPolicyUpdate(key *party.Key, pad string, policy []byte, now time.Time) *SignedPolicyUpdate {
	u := &SignedPolicyUpdate{Pad: pad, Policy: policy, Time: now.UTC().Truncate(time.Second), Signer: key.Identity().String()}
	u.Signature = key.Sign(PolicyUpdateDomain, u.SignedMessage())
	return u
}

// Verify checks the update's shape and signature and returns the signer. The caller (the
// engine) must still check that the signer owns the Pad and that the version goes up.
func (u *SignedPolicyUpdate) Verify() (*party.Identity, error) {
	if err := ValidatePadID(u.Pad); err != nil {
		return nil, err
	}
	if len(u.Policy) == 0 || len(u.Policy) > MaxPolicySize {
		return nil, Errorf(ErrBadRequest, "policy update: policy is %d bytes, want 1 to %d", len(u.Policy), MaxPolicySize)
	}
	return verifyStatement(u.Signer, PolicyUpdateDomain, u.SignedMessage(), u.Signature, u.Time)
}

// A Revocation is an owner's signed statement "Pad is revoked from Time on, because Reason"
// (POST /v1/pads/{id}/revoke). It reaches every Pad derived from Pad.
type Revocation struct {
	Pad       string    `json:"pad"`
	Time      time.Time `json:"time"`
	Reason    string    `json:"reason,omitempty"`
	Signer    string    `json:"signer"`    // the owner's full identity (styx1…)
	Signature []byte    `json:"signature"` // Ed25519 over SignedMessage, domain RevocationDomain
}

// SignedMessage returns the bytes the owner signs:
//
//	styx-revocation-v1\n pad ID\n time RFC3339\n reason-sha256 HEX\n
func (rv *Revocation) SignedMessage() []byte {
	sum := sha256.Sum256([]byte(rv.Reason))
	return statement("styx-revocation-v1", "pad", rv.Pad, "time", rv.Time.UTC().Format(statementLayout),
		"reason-sha256", hex.EncodeToString(sum[:]))
}

// SignRevocation returns a revocation of pad signed by key, dated now.
func SignRevocation(key *party.Key, pad, reason string, now time.Time) *Revocation {
	rv := &Revocation{Pad: pad, Time: now.UTC().Truncate(time.Second), Reason: reason, Signer: key.Identity().String()}
	rv.Signature = key.Sign(RevocationDomain, rv.SignedMessage())
	return rv
}

// Verify checks the revocation's shape and signature and returns the signer. The engine must
// still check that the signer owns the Pad.
func (rv *Revocation) Verify() (*party.Identity, error) {
	if err := ValidatePadID(rv.Pad); err != nil {
		return nil, err
	}
	if len(rv.Reason) > maxReasonLen || !utf8.ValidString(rv.Reason) {
		return nil, Errorf(ErrBadRequest, "revocation reason: want at most %d bytes of UTF-8", maxReasonLen)
	}
	return verifyStatement(rv.Signer, RevocationDomain, rv.SignedMessage(), rv.Signature, rv.Time)
}

// RevokeResult says what a revocation reached.
type RevokeResult struct {
	Pad         string   `json:"pad"`
	Descendants []string `json:"descendants,omitempty"` // derived Pads now unusable
	Shredded    []string `json:"shredded,omitempty"`    // derived Pads whose data keys were destroyed
}

func statement(version string, kv ...string) []byte {
	var b strings.Builder
	b.WriteString(version)
	b.WriteByte('\n')
	for i := 0; i+1 < len(kv); i += 2 {
		fmt.Fprintf(&b, "%s %s\n", kv[i], kv[i+1])
	}
	return []byte(b.String())
}

func verifyStatement(signer, domain string, msg, sig []byte, t time.Time) (*party.Identity, error) {
	if t.IsZero() || t.Truncate(time.Second) != t {
		return nil, Errorf(ErrBadRequest, "%s: time must be set, in whole seconds", domain)
	}
	id, err := party.ParseIdentity(signer)
	if err != nil {
		return nil, Errorf(ErrBadRequest, "%s: signer: %v", domain, err)
	}
	if !id.Verify(domain, msg, sig) {
		return nil, Errorf(ErrDenied, "%s: bad owner signature", domain)
	}
	return id, nil
}
