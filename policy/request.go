package policy

import (
	"time"

	"github.com/styx-tee/styx/party"
)

// MaxAncestors caps the number of policy-bearing ancestors one decision walks.
const MaxAncestors = 256

// A Request asks to perform an action on a Pad.
type Request struct {
	Principal party.ID // the requesting party
	Action    Action
	Now       time.Time // the trusted time of the decision
	Purpose   string    // declared purpose of the job
	Program   string    // lowercase hex sha256 of the WASM module ("" for a query or release)
	Job       string    // job id
	TEE       TEEClaims
	Output    *OutputClaim // the output to be created or released, if any
	Uses      Uses         // counters so far; absent keys count as zero
}

// TEEClaims are the verified claims of the TEE the middleware runs in.
type TEEClaims struct {
	Type        string // "tdx", "snp", "sgx" or "sim"
	Measurement string // lowercase hex
	Debug       bool
	Simulated   bool
	TCB         uint64
}

// An OutputClaim describes an output a job declares (action use or derive) or a release.
type OutputClaim struct {
	Kind        Kind
	Bytes       int64      // size, or 0 when not yet known
	Aggregation int64      // input rows behind each aggregate value, or 0 when not an aggregate
	Recipients  []party.ID // for a release: who receives the plaintext
	// Pending says the output does not exist yet (a job's admission declares it): its size and
	// aggregation are unknown, and the limits on them are checked when the output pipeline
	// has it. A claim that is not pending is held to every limit, with what it says.
	Pending bool
}

// A PadRef describes a Pad for a decision.
type PadRef struct {
	ID    string
	Kind  Kind     // for a derived Pad, the kind of the output it was sealed from; "" for a sealed Pad
	Owner party.ID // the owner (for a derived Pad: the party the job ran for)
	Depth int      // derivation depth: 0 for a sealed Pad, 1 + the deepest parent for a derived one
}

// A Source is one policy-bearing Pad behind the request: the requested Pad itself if it was sealed
// by an owner, or one of the sealed ancestors of a derived Pad. Derived Pads carry no policy of
// their own: their effective policy is that of their sources, refined by the sources' derive rules.
type Source struct {
	Pad    PadRef
	Policy *Policy // the source's current policy
	// Distance is the number of derivation steps from the source to the requested Pad (the longest
	// path when there are several); 0 when the source is the requested Pad.
	Distance int
	// FirstKinds and LaterKinds describe the derivation paths from the source to the requested Pad,
	// whose derive rules all govern the request (docs/policy.md §Derivation): FirstKinds holds the
	// kinds of the source's children on those paths, LaterKinds the kinds of the Pads two or more
	// steps from the source on them (the requested Pad's own kind is in one of the two). Both are
	// empty when Distance is 0. When Distance is 1 the only path is the direct one, and an empty
	// FirstKinds means the requested Pad's kind; a source further away must give both, or every
	// request is denied. DerivedChain computes them.
	FirstKinds []Kind
	LaterKinds []Kind
	// RevokedAt is when the source's owner revoked it (zero: not revoked). A revoked source denies
	// every request on itself and on everything derived from it.
	RevokedAt time.Time
}

// A Chain is the requested Pad and every source whose policy governs it.
type Chain struct {
	Pad     PadRef
	Sources []Source
}

// A CounterKey names one use counter: uses of Action on Pad, by one Party when Party is non-zero,
// by everyone otherwise. Every source's limits are checked against the same counters of the
// requested Pad (every allowed request increments them for all sources alike), so one counter per
// key suffices however many sources impose a limit.
type CounterKey struct {
	Pad    string   `json:"pad"`
	Action Action   `json:"action"`
	Party  party.ID `json:"party,omitzero"`
}

// Uses are counters so far.
type Uses map[CounterKey]uint64

// NeedsUses reports whether a decision of action a on c can depend on the use counters: some
// source limits a's uses (in its base policy or any derive rule) or has rules that read
// context.uses or context.party_uses. When it reports false, a caller may leave Request.Uses
// empty and read no counter: the decision is the same.
func (c *Chain) NeedsUses(a Action) bool {
	for _, s := range c.Sources {
		if s.Policy == nil || s.Policy.readsUses(a) {
			return true
		}
	}
	return false
}
