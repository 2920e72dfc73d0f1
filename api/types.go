package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// PadInfo describes a stored Pad: what its public header says plus the node's lifecycle view.
type PadInfo struct {
	ID            string    `json:"id"`
	Owner         string    `json:"owner"`                    // party id (styxid1…) of the owner
	Size          int64     `json:"size"`                     // bytes of the sealed Pad
	PolicyVersion uint64    `json:"policy_version"`           // current policy version
	PolicySHA256  string    `json:"policy_sha256,omitempty"`  // hex digest of the current policy
	State         PadState  `json:"state"`                    // live, expired, revoked, deleted
	Derived       bool      `json:"derived,omitempty"`        // produced by a job, not uploaded
	Parents       []string  `json:"parents,omitempty"`        // Pad ids of direct parents
	Kind          string    `json:"kind,omitempty"`           // output kind, for derived Pads
	Created       time.Time `json:"created"`                  // when the node stored it
	Expires       time.Time `json:"expires,omitzero"`         // zero: no expiry
	Uses          uint64    `json:"uses,omitempty"`           // admitted uses so far
	MaxUses       uint64    `json:"max_uses,omitempty"`       // zero: unlimited
	RevokedReason string    `json:"revoked_reason,omitempty"` // set when State is revoked
}

// PadState is the lifecycle state of a Pad.
type PadState string

// The Pad states.
const (
	PadLive    PadState = "live"
	PadExpired PadState = "expired"
	PadRevoked PadState = "revoked"
	PadDeleted PadState = "deleted"
)

// ListPadsRequest filters GET /v1/pads. The zero value lists every Pad the caller may see.
type ListPadsRequest struct {
	Owner string `json:"owner,omitempty"` // party id; empty: any
	After string `json:"after,omitempty"` // page after this Pad id
	Limit int    `json:"limit,omitempty"` // at most this many; zero: the server's default
}

// PadList is one page of Pads.
type PadList struct {
	Pads []PadInfo `json:"pads"`
	Next string    `json:"next,omitempty"` // pass as After for the next page; empty at the end
}

// ProgramInfo describes a stored WebAssembly module.
type ProgramInfo struct {
	SHA256  string    `json:"sha256"` // lowercase hex: how jobs and policies name the program
	Size    int64     `json:"size"`
	Added   time.Time `json:"added"`
	AddedBy string    `json:"added_by,omitempty"` // party id of whoever first uploaded it
}

// An OutputSpec declares one output a job will create.
type OutputSpec struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // e.g. model, table, aggregate, log
}

// A JobSpec is what a consumer submits (POST /v1/jobs) or asks to explain.
type JobSpec struct {
	Program string            `json:"program"`          // sha256 of the module
	Inputs  map[string]string `json:"inputs"`           // input name → Pad id
	Purpose string            `json:"purpose"`          // checked against every input's policy
	Outputs []OutputSpec      `json:"outputs"`          // declared outputs, in order
	Params  json.RawMessage   `json:"params,omitempty"` // a JSON object, passed to the program as is
	Wait    bool              `json:"wait,omitempty"`   // hold the response until the job ends (bounded)
}

// Limits on a JobSpec.
const (
	maxJobInputs  = 256
	maxJobOutputs = 64
	maxNameLen    = 64
	maxPurposeLen = 256
	maxParamsLen  = 64 << 10
)

// Validate checks the shape of the spec (not its policy); the server calls it before the Service.
func (j *JobSpec) Validate() error {
	if !validHexSHA256(j.Program) {
		return Errorf(ErrBadRequest, "job program %q: want a lowercase hex sha256", abbrev(j.Program))
	}
	if len(j.Inputs) == 0 || len(j.Inputs) > maxJobInputs {
		return Errorf(ErrBadRequest, "job has %d inputs, want 1 to %d", len(j.Inputs), maxJobInputs)
	}
	for name, id := range j.Inputs {
		if !validName(name) {
			return Errorf(ErrBadRequest, "input name %q: want 1-%d of [a-z0-9_-]", abbrev(name), maxNameLen)
		}
		if err := ValidatePadID(id); err != nil {
			return err
		}
	}
	if j.Purpose == "" || len(j.Purpose) > maxPurposeLen || !printableASCII(strings.ReplaceAll(j.Purpose, " ", "_")) {
		return Errorf(ErrBadRequest, "job purpose: want 1-%d printable characters", maxPurposeLen)
	}
	if len(j.Outputs) > maxJobOutputs {
		return Errorf(ErrBadRequest, "job declares %d outputs, at most %d", len(j.Outputs), maxJobOutputs)
	}
	seen := map[string]bool{}
	for _, o := range j.Outputs {
		if !validName(o.Name) || !validName(o.Kind) {
			return Errorf(ErrBadRequest, "output %q:%q: want NAME:KIND, each 1-%d of [a-z0-9_-]", abbrev(o.Name), abbrev(o.Kind), maxNameLen)
		}
		if seen[o.Name] {
			return Errorf(ErrBadRequest, "output %q declared twice", o.Name)
		}
		seen[o.Name] = true
	}
	if len(j.Params) > maxParamsLen {
		return Errorf(ErrBadRequest, "job params are %d bytes, at most %d", len(j.Params), maxParamsLen)
	}
	if len(j.Params) > 0 && (!json.Valid(j.Params) || !bytes.HasPrefix(bytes.TrimSpace(j.Params), []byte("{"))) {
		return Errorf(ErrBadRequest, "job params: want a JSON object")
	}
	return nil
}

// JobState is where a job is in its life.
type JobState string

// The job states. Done, Failed, Denied and Aborted are final.
const (
	JobQueued  JobState = "queued"
	JobRunning JobState = "running"
	JobDone    JobState = "done"
	JobFailed  JobState = "failed"  // the program or an output rule failed; Error says why
	JobDenied  JobState = "denied"  // admission refused; Error.Reasons say why
	JobAborted JobState = "aborted" // stopped mid-run (expiry, revocation, limits)
)

// Final reports whether the state is terminal.
func (s JobState) Final() bool {
	return s == JobDone || s == JobFailed || s == JobDenied || s == JobAborted
}

// JobStatus is the state of one job.
type JobStatus struct {
	ID        string            `json:"id"`
	State     JobState          `json:"state"`
	Submitter string            `json:"submitter"` // party id
	Spec      JobSpec           `json:"spec"`
	Outputs   map[string]string `json:"outputs,omitempty"` // output name → derived Pad id, when done
	Receipt   string            `json:"receipt,omitempty"` // receipt id, when done
	Error     *Error            `json:"error,omitempty"`   // when failed, denied or aborted
	Submitted time.Time         `json:"submitted"`
	Started   time.Time         `json:"started,omitzero"`
	Finished  time.Time         `json:"finished,omitzero"`
}

// Explanation is the answer to a dry run (POST /v1/jobs/explain): the decision the engine
// would take for every input and every ancestor, without touching a key or a counter.
type Explanation struct {
	Allowed   bool       `json:"allowed"`
	Decisions []Decision `json:"decisions"`
}

// A Decision is one policy evaluation with its reasons.
type Decision struct {
	Pad     string   `json:"pad"`
	Input   string   `json:"input,omitempty"` // the job input it came from
	Via     []string `json:"via,omitempty"`   // for an ancestor: the Pad ids from the input down to it
	Action  string   `json:"action"`          // use, derive, release, query
	Allowed bool     `json:"allowed"`
	Reasons []string `json:"reasons"` // which rule, why; never empty for a denial
}

// abbrev shortens attacker-supplied text quoted in an error.
func abbrev(s string) string {
	if len(s) <= 40 {
		return s
	}
	return s[:32] + "…"
}

func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// MaxPadIDLen caps the length of a Pad id (and job and receipt ids) on the wire.
const MaxPadIDLen = 128

// ValidatePadID checks that id can be a Pad, job or receipt id: 1 to 128 of [A-Za-z0-9._-].
// The server checks every id in a path or body before a Service sees it.
func ValidatePadID(id string) error {
	if id == "" || len(id) > MaxPadIDLen {
		return Errorf(ErrBadRequest, "id %q: want 1 to %d characters", abbrev(id), MaxPadIDLen)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-' || c == '.') {
			return Errorf(ErrBadRequest, "id %q: character %q not allowed", abbrev(id), c)
		}
	}
	if id == "." || id == ".." {
		return Errorf(ErrBadRequest, "id %q not allowed", id)
	}
	return nil
}

// ParseOutputSpec parses "NAME:KIND".
func ParseOutputSpec(s string) (OutputSpec, error) {
	name, kind, ok := strings.Cut(s, ":")
	if !ok || !validName(name) || !validName(kind) {
		return OutputSpec{}, fmt.Errorf("output %q: want NAME:KIND, each of [a-z0-9_-]", s)
	}
	return OutputSpec{Name: name, Kind: kind}, nil
}
