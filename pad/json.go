package pad

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
	"unicode/utf8"

	"github.com/styx-tee/styx/party"
)

// KEMName returns the human name of a key wrap KEM.
func KEMName(kem uint16) string {
	switch kem {
	case party.KEMX25519:
		return "X25519"
	case party.KEMXWing:
		return "ML-KEM-768+X25519"
	}
	return fmt.Sprintf("0x%04x", kem)
}

// headerJSON is the JSON view of a Header (styx pad inspect --json).
type headerJSON struct {
	Version           int          `json:"version"`
	ID                ID           `json:"id"`
	Derived           bool         `json:"derived"`
	Signer            party.ID     `json:"signer"`
	SignerIdentity    string       `json:"signer_identity"`
	SignatureVerified bool         `json:"signature_verified"`
	MACVerified       bool         `json:"mac_verified"`
	CreatedAt         time.Time    `json:"created_at"`
	ContentType       string       `json:"content_type"`
	Size              int64        `json:"size"`
	ChunkSize         int          `json:"chunk_size"`
	HeaderSize        int          `json:"header_size"`
	PolicyType        string       `json:"policy_type"`
	PolicyDigest      string       `json:"policy_digest"`
	Policy            string       `json:"policy,omitempty"`
	PolicyBase64      []byte       `json:"policy_base64,omitempty"`
	Parents           []parentJSON `json:"parents"`
	Recipients        []wrapJSON   `json:"recipients"`
}

type parentJSON struct {
	ID           ID     `json:"id"`
	PolicyDigest string `json:"policy_digest"`
}

type wrapJSON struct {
	ID  party.ID `json:"id"`
	KEM string   `json:"kem"`
}

// MarshalJSON renders the header for people and scripts: ids as strings, digests in hex, the
// policy as text when it is UTF-8 (policy_base64 otherwise). A Header only exists once its
// signature verified, so signature_verified is always true.
func (h *Header) MarshalJSON() ([]byte, error) {
	d := h.PolicyDigest()
	j := headerJSON{
		Version: Version, ID: h.ID, Derived: h.Derived(),
		Signer: h.Signer.ID(), SignerIdentity: h.Signer.String(),
		SignatureVerified: true, MACVerified: h.MACVerified,
		CreatedAt: h.CreatedAt, ContentType: h.ContentType, Size: h.Size,
		ChunkSize: ChunkSize, HeaderSize: len(h.raw),
		PolicyType: h.PolicyType, PolicyDigest: hex.EncodeToString(d[:]),
		Parents: []parentJSON{}, Recipients: []wrapJSON{},
	}
	if utf8.Valid(h.Policy) {
		j.Policy = string(h.Policy)
	} else {
		j.PolicyBase64 = h.Policy
	}
	for _, p := range h.Parents {
		j.Parents = append(j.Parents, parentJSON{ID: p.ID, PolicyDigest: hex.EncodeToString(p.PolicyDigest[:])})
	}
	for _, w := range h.Wraps {
		j.Recipients = append(j.Recipients, wrapJSON{ID: w.Recipient, KEM: KEMName(w.KEM)})
	}
	return json.Marshal(j)
}
