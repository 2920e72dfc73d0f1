package policy

import (
	"fmt"
	"slices"
	"time"

	"github.com/styx-tee/styx/party"
)

// An Action is what a request asks to do with a Pad.
type Action string

// The actions a policy governs.
const (
	ActionUse     Action = "use"     // read the Pad as the input of a job
	ActionQuery   Action = "query"   // ask a model Pad one question
	ActionRelease Action = "release" // let plaintext leave the TEE to recipients
	ActionDerive  Action = "derive"  // create an output (a derived Pad) from the Pad
)

// Actions lists every action, in a fixed order.
var Actions = []Action{ActionUse, ActionQuery, ActionRelease, ActionDerive}

func (a Action) valid() bool { return slices.Contains(Actions, a) }

// A Kind is the kind of an output, and so of a derived Pad.
type Kind string

// The output kinds.
const (
	KindModel      Kind = "model"
	KindAggregate  Kind = "aggregate"
	KindTable      Kind = "table"
	KindPrediction Kind = "prediction"
	KindLog        Kind = "log"
)

// Kinds lists every output kind, in a fixed order.
var Kinds = []Kind{KindModel, KindAggregate, KindTable, KindPrediction, KindLog}

func (k Kind) valid() bool { return slices.Contains(Kinds, k) }

// Lifecycle bounds when and how often a Pad may be used. Zero fields impose nothing.
type Lifecycle struct {
	NotBefore       time.Time         // requests before this instant are denied
	Expires         time.Time         // requests at or after this instant are denied
	MaxUses         map[Action]uint64 // per action, over all parties (absent: unlimited)
	MaxUsesPerParty map[Action]uint64 // per action and requesting party (absent: unlimited)
	Retention       time.Duration     // delete the Pad this long after it was sealed (0: keep)
}

// An InputRule transforms a tabular (CSV) payload before a program sees it. It applies to a request
// whose purpose is one of Purposes (or any, if empty) and whose program is one of Programs (or any).
type InputRule struct {
	Purposes []string    `json:"purposes,omitempty"`
	Programs []string    `json:"programs,omitempty"`
	Keep     []string    `json:"keep,omitempty"` // if non-empty, only these columns reach the program
	Drop     []string    `json:"drop,omitempty"` // these columns never reach the program
	Rows     []RowFilter `json:"rows,omitempty"` // a row reaches the program only if every filter holds
}

func (r *InputRule) matches(purpose, program string) bool {
	return (len(r.Purposes) == 0 || slices.Contains(r.Purposes, purpose)) &&
		(len(r.Programs) == 0 || slices.Contains(r.Programs, program))
}

// OutputRules bound what an output made from a Pad may be.
type OutputRules struct {
	Kinds          []Kind     `json:"kinds"`                     // allowed output kinds; nil allows every kind
	MaxBytes       int64      `json:"max_bytes,omitempty"`       // 0: no limit
	MinAggregation int64      `json:"min_aggregation,omitempty"` // minimum input rows behind each aggregate value; 0: none
	Recipients     []party.ID `json:"recipients,omitempty"`      // extra recipients every release must include
}

// TEERequirements state which TEEs may process a Pad.
type TEERequirements struct {
	Types          []string `json:"types"`                  // acceptable TEE types ("tdx", "snp", "sgx", "sim"); nil: any
	AllowSimulated bool     `json:"allow_simulated"`        // accept simulated evidence (development only)
	AllowDebug     bool     `json:"allow_debug"`            // accept a TEE in debug mode
	Measurements   []string `json:"measurements,omitempty"` // acceptable measurements (hex); nil: any
	MinTCB         uint64   `json:"min_tcb,omitempty"`      // minimum TCB/SVN level
}

// Pos is a position in a policy document, "line:column", or "" when unknown.
type Pos string

func mkPos(line, col int) Pos {
	if line <= 0 {
		return ""
	}
	return Pos(fmt.Sprintf("%d:%d", line, col))
}
