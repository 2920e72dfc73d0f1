package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"
	"unicode/utf8"
)

// A Kind names what an Event records.
type Kind string

// The kinds of event the middleware logs. Other kinds are accepted if well formed
// (lowercase letters, digits, '.' and '-', at most 32 bytes) so that older readers keep reading
// newer logs.
const (
	KindAdmit        Kind = "admit"         // a job was admitted over its input Pads
	KindDeny         Kind = "deny"          // a job, release or query was refused; Reasons say why
	KindUse          Kind = "use"           // a Pad was read by an admitted job
	KindJobDone      Kind = "job.done"      // a job finished and sealed its outputs (carries a receipt)
	KindJobAbort     Kind = "job.abort"     // a running job was stopped (expiry, revocation, limits)
	KindRelease      Kind = "release"       // plaintext left the TEE to a recipient (carries a receipt)
	KindQueryBatch   Kind = "query.batch"   // a batch of model queries; Details carry counts
	KindPolicyUpdate Kind = "policy.update" // an owner installed a new policy version
	KindRevoke       Kind = "revoke"        // an owner revoked a Pad (and so its descendants)
	KindDelete       Kind = "delete"        // a Pad's blob and keys were destroyed (retention, revocation)
)

// Size caps on an event. A record larger than MaxRecordSize is refused whatever its content.
const (
	MaxRecordSize   = 256 << 10
	maxIDLen        = 256  // party ids, Pad ids, job ids, digests
	maxPads         = 4096 // Pads touched by one event
	maxReasons      = 64
	maxReasonLen    = 1024
	maxDetails      = 64
	maxDetailKeyLen = 64
	maxDetailValLen = 4096
	maxKindLen      = 32
)

// An Event is one record of the log. Its canonical encoding (see MarshalRecord) is what the
// Merkle tree commits to.
type Event struct {
	Kind    Kind              `json:"kind"`
	Time    time.Time         `json:"time"`              // UTC; Log.Append fills it if zero
	Actor   string            `json:"actor,omitempty"`   // party id of whoever caused the event
	Job     string            `json:"job,omitempty"`     // job id, if any
	Pads    []string          `json:"pads,omitempty"`    // Pad ids touched, in the caller's order
	Reasons []string          `json:"reasons,omitempty"` // why: policy rules, errors, explanations
	Details map[string]string `json:"details,omitempty"` // free-form facts, encoded with sorted keys
	Receipt *Claims           `json:"receipt,omitempty"` // set on job.done and release events
}

// recordVersion is the first field of every record, so that a future encoding is told apart.
const recordVersion = 1

// wireEvent is the record layout: the version first, then the Event's fields in declaration order.
type wireEvent struct {
	V int `json:"v"`
	Event
}

// Touches reports whether ev names pad among its Pads.
func (ev *Event) Touches(pad string) bool { return slices.Contains(ev.Pads, pad) }

// MarshalRecord returns the canonical encoding of ev: compact JSON, fields in the order of the
// Event struct after a leading "v":1, empty fields omitted, Details keys sorted, time in RFC 3339
// UTC with trailing zeros of the fraction dropped. It refuses events that Validate refuses.
func MarshalRecord(ev *Event) ([]byte, error) {
	if err := ev.Validate(); err != nil {
		return nil, err
	}
	b, err := json.Marshal(wireEvent{V: recordVersion, Event: *ev})
	if err != nil {
		return nil, malformed("event", "%v", err)
	}
	if len(b) > MaxRecordSize {
		return nil, malformed("event", "record is %d bytes, more than %d", len(b), MaxRecordSize)
	}
	return b, nil
}

// ParseRecord parses a record strictly: at most MaxRecordSize bytes, no unknown fields, no
// trailing data, a valid Event, and byte-for-byte the canonical encoding of what it decodes to.
func ParseRecord(b []byte) (*Event, error) {
	if len(b) > MaxRecordSize {
		return nil, malformed("record", "%d bytes, more than %d", len(b), MaxRecordSize)
	}
	var w wireEvent
	if err := decodeStrict(b, &w); err != nil {
		return nil, malformed("record", "%v", err)
	}
	if w.V != recordVersion {
		return nil, malformed("record", "version %d, want %d", w.V, recordVersion)
	}
	canon, err := MarshalRecord(&w.Event)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, malformed("record", "not in canonical form")
	}
	return &w.Event, nil
}

// decodeStrict decodes exactly one JSON value with no unknown fields and nothing after it.
func decodeStrict(b []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the value")
	}
	return nil
}

// Validate checks ev against the schema and the size caps.
func (ev *Event) Validate() error {
	if err := checkKind(ev.Kind); err != nil {
		return err
	}
	if ev.Time.IsZero() || ev.Time.Location() != time.UTC || ev.Time.Year() > 9999 || ev.Time.Year() < 1 {
		return malformed("event", "time %v is not a UTC time", ev.Time)
	}
	if err := checkOptionalID("actor", ev.Actor); err != nil {
		return err
	}
	if err := checkOptionalID("job", ev.Job); err != nil {
		return err
	}
	if err := checkIDList("pads", ev.Pads, maxPads); err != nil {
		return err
	}
	if err := checkReasons(ev.Reasons); err != nil {
		return err
	}
	if err := checkDetails(ev.Details); err != nil {
		return err
	}
	if ev.Receipt != nil {
		return ev.Receipt.Validate()
	}
	return nil
}

func checkKind(k Kind) error {
	if len(k) == 0 || len(k) > maxKindLen {
		return malformed("event", "kind %q is empty or longer than %d bytes", k, maxKindLen)
	}
	for _, c := range []byte(k) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '-') {
			return malformed("event", "kind %q has a byte outside [a-z0-9.-]", k)
		}
	}
	return nil
}

// checkID accepts 1..maxIDLen bytes of printable ASCII without spaces: party ids, Pad ids, job
// ids and digests are all of that form, and anything else in their place is an error upstream.
func checkID(what, s string) error {
	if len(s) == 0 || len(s) > maxIDLen {
		return malformed("event", "%s %q is empty or longer than %d bytes", what, clip(s), maxIDLen)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] >= 0x7f {
			return malformed("event", "%s %q has a byte that is not printable ASCII", what, clip(s))
		}
	}
	return nil
}

func checkOptionalID(what, s string) error {
	if s == "" {
		return nil
	}
	return checkID(what, s)
}

func checkIDList(what string, ids []string, maxN int) error {
	if len(ids) > maxN {
		return malformed("event", "%d %s, more than %d", len(ids), what, maxN)
	}
	for _, id := range ids {
		if err := checkID(what, id); err != nil {
			return err
		}
	}
	return nil
}

// checkText accepts valid UTF-8 without control characters, up to maxLen bytes.
func checkText(what, s string, maxLen int) error {
	if len(s) > maxLen {
		return malformed("event", "%s is %d bytes, more than %d", what, len(s), maxLen)
	}
	if !utf8.ValidString(s) {
		return malformed("event", "%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f {
			return malformed("event", "%s holds control character %U", what, r)
		}
	}
	return nil
}

func checkReasons(rs []string) error {
	if len(rs) > maxReasons {
		return malformed("event", "%d reasons, more than %d", len(rs), maxReasons)
	}
	for _, r := range rs {
		if r == "" {
			return malformed("event", "empty reason")
		}
		if err := checkText("reason", r, maxReasonLen); err != nil {
			return err
		}
	}
	return nil
}

func checkDetails(d map[string]string) error {
	if len(d) > maxDetails {
		return malformed("event", "%d details, more than %d", len(d), maxDetails)
	}
	for k, v := range d {
		if k == "" {
			return malformed("event", "empty detail key")
		}
		if err := checkText("detail key", k, maxDetailKeyLen); err != nil {
			return err
		}
		if err := checkText("detail "+clip(k), v, maxDetailValLen); err != nil {
			return err
		}
	}
	return nil
}

// clip shortens attacker-controlled strings quoted in error messages.
func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
