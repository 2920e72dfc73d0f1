package tee

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"
)

// MaxReferenceSize caps a reference values file.
const MaxReferenceSize = 256 << 10

// maxMeasurements caps the measurement sets listed for one TEE type.
const maxMeasurements = 1024

// ReferenceValues say which TEEs a verifier accepts. The zero value accepts nothing.
//
// In JSON:
//
//	{
//	  "allow_simulated": false,
//	  "allow_debug": false,
//	  "tee": {
//	    "tdx": {"measurements": [{"mrtd": "…96 hex…", "rtmr1": "…"}], "min_tcb": "…32 hex…"},
//	    "snp": {"measurements": [{"measurement": "…96 hex…"}], "min_tcb": "…16 hex…"}
//	  }
//	}
//
// A measurement set matches when every register it names equals the claimed value; it must name
// the type's primary register (see PrimaryRegister). min_tcb is the platform's minimum security
// version: for TDX the 16-byte TEE_TCB_SVN compared component-wise, for SNP the 8-byte TCB version
// (little-endian as in the report) compared per component.
type ReferenceValues struct {
	// AllowSimulated accepts simulated evidence. Never set it where real data is at stake.
	AllowSimulated bool `json:"allow_simulated,omitempty"`
	// AllowDebug accepts TEEs in debug mode, whose memory the host can read.
	AllowDebug bool                    `json:"allow_debug,omitempty"`
	TEE        map[Type]*TypeReference `json:"tee,omitempty"`
}

// TypeReference holds the accepted values of one TEE type.
type TypeReference struct {
	Measurements []Measurement `json:"measurements,omitempty"`
	MinTCB       string        `json:"min_tcb,omitempty"`
}

// A Measurement maps register names to lowercase hex values.
type Measurement map[string]string

// registers lists, per type, the register names and their sizes in bytes. The first is primary.
var registers = map[Type][]struct {
	name string
	size int
}{
	Sim: {{"measurement", 32}},
	TDX: {{"mrtd", 48}, {"rtmr0", 48}, {"rtmr1", 48}, {"rtmr2", 48}, {"rtmr3", 48},
		{"mrconfigid", 48}, {"mrowner", 48}, {"mrownerconfig", 48}, {"mrseam", 48}},
	SNP: {{"measurement", 48}, {"hostdata", 32}},
	SGX: {{"mrenclave", 32}, {"mrsigner", 32}},
}

// tcbSizes gives the size in bytes of min_tcb per type (0: not supported).
var tcbSizes = map[Type]int{TDX: 16, SNP: 8}

// PrimaryRegister names the register every measurement set of t must name.
func PrimaryRegister(t Type) string { return registers[t][0].name }

// ParseReferenceValues parses reference values strictly: one JSON object and nothing after it,
// field names spelled exactly (no other capitalisation), no unknown fields, no key twice in any
// object, known TEE types and registers, lowercase hex of the right sizes.
func ParseReferenceValues(data []byte) (*ReferenceValues, error) {
	if len(data) > MaxReferenceSize {
		return nil, fmt.Errorf("tee: reference values are %d bytes, more than %d: %w", len(data), MaxReferenceSize, ErrMalformed)
	}
	// encoding/json matches field names case-insensitively and lets a repeated key win: check
	// the keys first, then decode.
	if err := checkKeys(data); err != nil {
		return nil, fmt.Errorf("tee: reference values: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var rv ReferenceValues
	if err := dec.Decode(&rv); err != nil {
		return nil, fmt.Errorf("tee: reference values: %v: %w", err, ErrMalformed)
	}
	if err := rv.validate(); err != nil {
		return nil, fmt.Errorf("tee: reference values: %w", err)
	}
	return &rv, nil
}

// LoadReferenceValues reads and parses a reference values file.
func LoadReferenceValues(path string) (*ReferenceValues, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxReferenceSize+1))
	if err != nil {
		return nil, err
	}
	rv, err := ParseReferenceValues(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return rv, nil
}

func (rv *ReferenceValues) validate() error {
	for t, tr := range rv.TEE {
		if !t.Valid() {
			return fmt.Errorf("unknown tee type %q: %w", t, ErrMalformed)
		}
		if tr == nil {
			return fmt.Errorf("%s: null entry: %w", t, ErrMalformed)
		}
		if len(tr.Measurements) > maxMeasurements {
			return fmt.Errorf("%s: more than %d measurement sets: %w", t, maxMeasurements, ErrMalformed)
		}
		for i, m := range tr.Measurements {
			if err := validMeasurement(t, m); err != nil {
				return fmt.Errorf("%s: measurement %d: %w", t, i, err)
			}
		}
		if tr.MinTCB != "" {
			if err := validHex(tr.MinTCB, tcbSizes[t]); err != nil || tcbSizes[t] == 0 {
				return fmt.Errorf("%s: min_tcb: want %d bytes of lowercase hex: %w", t, tcbSizes[t], ErrMalformed)
			}
		}
	}
	return nil
}

func validMeasurement(t Type, m Measurement) error {
	if _, ok := m[PrimaryRegister(t)]; !ok {
		return fmt.Errorf("must name %q: %w", PrimaryRegister(t), ErrMalformed)
	}
	for name, v := range m {
		i := slices.IndexFunc(registers[t], func(r struct {
			name string
			size int
		}) bool {
			return r.name == name
		})
		if i < 0 {
			return fmt.Errorf("unknown register %q: %w", name, ErrMalformed)
		}
		if err := validHex(v, registers[t][i].size); err != nil {
			return fmt.Errorf("register %s: %w", name, err)
		}
	}
	return nil
}

func validHex(s string, size int) error {
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != size || hex.EncodeToString(b) != s {
		return fmt.Errorf("want %d bytes of lowercase hex: %w", size, ErrMalformed)
	}
	return nil
}

// Marshal returns the canonical JSON form of rv (sorted keys, no insignificant space).
func (rv *ReferenceValues) Marshal() []byte {
	b, _ := json.Marshal(rv) // maps marshal with sorted keys; no value can fail
	return b
}

// Check applies the reference values to claims a backend has authenticated: type, simulation,
// debug and measurement. Backends check the TCB and the report data themselves.
func (rv *ReferenceValues) Check(c *Claims) error {
	if rv == nil {
		return Refuse(c.Type, ErrType, "no reference values")
	}
	if c.Simulated && !rv.AllowSimulated {
		return Refuse(c.Type, ErrSimulated, "evidence comes from the simulator, which has no hardware protection; accept it only for development with allow_simulated or --allow-simulated")
	}
	tr := rv.TEE[c.Type]
	if tr == nil {
		if c.Type == Sim && rv.AllowSimulated {
			return nil // simulated evidence is allowed and no sim measurements are listed
		}
		return Refuse(c.Type, ErrType, "reference values accept %s", rv.acceptedTypes())
	}
	if c.Debug && !rv.AllowDebug {
		return Refuse(c.Type, ErrDebug, "the TEE runs in debug mode: the host can read its memory")
	}
	for _, m := range tr.Measurements {
		if m.matches(c) {
			return nil
		}
	}
	return Refuse(c.Type, ErrMeasurement, "%s %s is not listed in the reference values", PrimaryRegister(c.Type), c.Measurement)
}

func (m Measurement) matches(c *Claims) bool {
	for name, want := range m {
		got := c.Registers[name]
		if name == PrimaryRegister(c.Type) {
			got = c.Measurement
		}
		if got != want {
			return false
		}
	}
	return true
}

func (rv *ReferenceValues) acceptedTypes() string {
	var ts []string
	for t := range rv.TEE {
		ts = append(ts, string(t))
	}
	if rv.AllowSimulated && rv.TEE[Sim] == nil {
		ts = append(ts, string(Sim))
	}
	if len(ts) == 0 {
		return "no tee type"
	}
	sort.Strings(ts)
	return fmt.Sprint(ts)
}

// MinTCB returns the decoded minimum TCB for t, or nil when none is set.
func (rv *ReferenceValues) MinTCB(t Type) []byte {
	if rv == nil || rv.TEE[t] == nil || rv.TEE[t].MinTCB == "" {
		return nil
	}
	b, _ := hex.DecodeString(rv.TEE[t].MinTCB) // validated at parse time
	return b
}

// keySchema describes the keys of a JSON value: fields lists the exact names of a struct's
// fields (each with the schema of its value); a nil fields is a map whose values (or an array
// whose elements) follow elem. A nil *keySchema constrains nothing below it.
type keySchema struct {
	fields map[string]*keySchema
	elem   *keySchema
}

var referenceKeys = func() *keySchema {
	typeRef := &keySchema{fields: map[string]*keySchema{
		"measurements": {elem: &keySchema{}}, // an array of register maps
		"min_tcb":      nil,
	}}
	return &keySchema{fields: map[string]*keySchema{
		"allow_simulated": nil,
		"allow_debug":     nil,
		"tee":             {elem: typeRef},
	}}
}()

// maxReferenceDepth caps the nesting of reference values (they need 5 levels).
const maxReferenceDepth = 8

// checkKeys refuses data unless it is exactly one JSON object whose keys are unique in every
// object and, where referenceKeys names the fields, spelled exactly as one of them.
func checkKeys(data []byte) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	if tok, err := dec.Token(); err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	} else if tok != json.Delim('{') {
		return fmt.Errorf("want a JSON object: %w", ErrMalformed)
	}
	if err := walkObject(dec, referenceKeys, "top level", 1); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after the object: %w", ErrMalformed)
	}
	return nil
}

// walkObject reads the rest of an object whose '{' was read.
func walkObject(dec *json.Decoder, sc *keySchema, where string, depth int) error {
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return fmt.Errorf("%v: %w", err, ErrMalformed)
		}
		k, _ := tok.(string)
		if seen[k] {
			return fmt.Errorf("key %q twice in %s: %w", k, where, ErrMalformed)
		}
		seen[k] = true
		sub := sc.child()
		if sc != nil && sc.fields != nil {
			var ok bool
			if sub, ok = sc.fields[k]; !ok {
				return fmt.Errorf("unknown field %q in %s (field names are exact: %s): %w", k, where, sc.names(), ErrMalformed)
			}
		}
		if err := walkValue(dec, sub, fmt.Sprintf("%q", k), depth); err != nil {
			return err
		}
	}
	return closeToken(dec) // '}'
}

// closeToken reads the token that closes an object or array.
func closeToken(dec *json.Decoder) error {
	if _, err := dec.Token(); err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	return nil
}

func walkValue(dec *json.Decoder, sc *keySchema, where string, depth int) error {
	if depth > maxReferenceDepth {
		return fmt.Errorf("nested more than %d levels: %w", maxReferenceDepth, ErrMalformed)
	}
	tok, err := dec.Token()
	if err != nil {
		return fmt.Errorf("%v: %w", err, ErrMalformed)
	}
	switch tok {
	case json.Delim('{'):
		return walkObject(dec, sc, where, depth+1)
	case json.Delim('['):
		for dec.More() {
			if err := walkValue(dec, sc.child(), where, depth+1); err != nil {
				return err
			}
		}
		return closeToken(dec) // ']'

	}
	return nil
}

func (sc *keySchema) child() *keySchema {
	if sc == nil {
		return nil
	}
	return sc.elem
}

func (sc *keySchema) names() string {
	var ns []string
	for n := range sc.fields {
		ns = append(ns, n)
	}
	sort.Strings(ns)
	return strings.Join(ns, ", ")
}
