package api

import (
	"encoding/json"
	"time"
)

// AuditQuery filters GET /v1/audit. The server shows a caller only events touching Pads it
// owns and their descendants (the engine enforces that).
type AuditQuery struct {
	Pad   string `json:"pad,omitempty"`   // only events touching this Pad or its descendants
	From  uint64 `json:"from,omitempty"`  // first log index
	Limit int    `json:"limit,omitempty"` // zero: the server's default
}

// AuditEntry is one log record with its index. Record holds the exact bytes the Merkle tree
// commits to (the audit package's canonical encoding), so a client can hash it and check an
// inclusion proof.
type AuditEntry struct {
	Index  uint64          `json:"index"`
	Record json.RawMessage `json:"record"`
}

// AuditPage is one page of the log.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	Next    uint64       `json:"next,omitempty"` // pass as From for the next page; zero at the end
	Head    *TreeHead    `json:"head,omitempty"` // the head the entries were read under
}

// TreeHead is a signed head of the transparency log.
type TreeHead struct {
	Size   uint64 `json:"size"`
	Hash   []byte `json:"hash"`   // Merkle tree hash of the first Size records
	Signed []byte `json:"signed"` // the signed note of the head, as the audit package writes it
	// Signer is the full identity (styx1…) of the cluster key that signed the head. A client
	// checks that its id is the cluster it attested before using its key.
	Signer string `json:"signer"`
	// Proof, when the request named an older size (?old=N), proves this head extends it.
	Proof [][]byte `json:"proof,omitempty"`
}

// Lineage is the derivation graph around a Pad: its ancestors and descendants, each with its
// state. It is a DAG (a derived Pad may have several parents), given as a node list.
type Lineage struct {
	Root  string        `json:"root"`
	Nodes []LineageNode `json:"nodes"`
}

// LineageNode is one Pad of a lineage graph.
type LineageNode struct {
	Pad     string    `json:"pad"`
	Owner   string    `json:"owner,omitempty"`
	State   PadState  `json:"state"`
	Kind    string    `json:"kind,omitempty"`
	Job     string    `json:"job,omitempty"`     // the job that derived it
	Program string    `json:"program,omitempty"` // that job's program sha256
	Parents []string  `json:"parents,omitempty"`
	Created time.Time `json:"created,omitzero"`
}

// MaxReceiptSize caps a receipt on the wire.
const MaxReceiptSize = 1 << 20
