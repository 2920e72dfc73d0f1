package audit

import (
	"encoding/json"
	"fmt"
	"slices"
)

// A ReceiptKind says what a receipt attests.
type ReceiptKind string

const (
	ReceiptJob     ReceiptKind = "job"     // a job ran and sealed derived Pads
	ReceiptRelease ReceiptKind = "release" // a derived Pad was released to a recipient
)

// eventKind is the log event a receipt of kind k is carried by.
func (k ReceiptKind) eventKind() (Kind, bool) {
	switch k {
	case ReceiptJob:
		return KindJobDone, true
	case ReceiptRelease:
		return KindRelease, true
	}
	return "", false
}

// A PadRef names a Pad and the digest of the policy that governed it: for inputs the policy
// version admitted against, for outputs the derived policy sealed with them.
type PadRef struct {
	Pad    string `json:"pad"`
	Policy string `json:"policy"`
}

// TEEClaims describe the environment a job ran in. A simulated TEE is always visible: Simulated is
// encoded even when false, and a "sim" Type with Simulated false is refused.
type TEEClaims struct {
	Type        string `json:"type"`                  // "sim", "tdx", "snp", "sgx"
	Measurement string `json:"measurement,omitempty"` // hex launch measurement of the middleware
	Simulated   bool   `json:"simulated"`
}

// Attested checks that these claims name the TEE an attestation verified: the same type,
// measurement and simulation flag. A receipt claiming hardware the attestation does not show,
// or other code, fails it. Whether a simulated TEE is acceptable at all is the verifier's
// reference values' call, not this one's.
func (c TEEClaims) Attested(typ, measurement string, simulated bool) error {
	if c.Type != typ || c.Simulated != simulated || c.Measurement != measurement {
		return fmt.Errorf("the receipt names TEE %s (measurement %s, simulated %t), the attestation shows %s (measurement %s, simulated %t)",
			c.Type, c.Measurement, c.Simulated, typ, measurement, simulated)
	}
	return nil
}

// Claims are what a receipt attests; they are logged verbatim inside the receipt's event.
type Claims struct {
	Kind      ReceiptKind `json:"kind"`
	Job       string      `json:"job"`
	Program   string      `json:"program,omitempty"` // digest of the program that ran
	Inputs    []PadRef    `json:"inputs,omitempty"`
	Outputs   []PadRef    `json:"outputs,omitempty"`
	Recipient string      `json:"recipient,omitempty"` // party id, for releases
	TEE       TEEClaims   `json:"tee"`
}

const maxRefs = 1024

// Validate checks c against the schema and the size caps.
func (c *Claims) Validate() error {
	if _, ok := c.Kind.eventKind(); !ok {
		return malformed("claims", "unknown receipt kind %q", clip(string(c.Kind)))
	}
	if err := checkID("claims job", c.Job); err != nil {
		return err
	}
	if err := checkOptionalID("claims program", c.Program); err != nil {
		return err
	}
	if err := checkOptionalID("claims recipient", c.Recipient); err != nil {
		return err
	}
	if c.Kind == ReceiptRelease && c.Recipient == "" {
		return malformed("claims", "a release receipt names no recipient")
	}
	if err := checkRefs("inputs", c.Inputs); err != nil {
		return err
	}
	if err := checkRefs("outputs", c.Outputs); err != nil {
		return err
	}
	return c.TEE.validate()
}

func checkRefs(what string, refs []PadRef) error {
	if len(refs) > maxRefs {
		return malformed("claims", "%d %s, more than %d", len(refs), what, maxRefs)
	}
	for _, r := range refs {
		if err := checkID(what+" pad", r.Pad); err != nil {
			return err
		}
		if err := checkID(what+" policy digest", r.Policy); err != nil {
			return err
		}
	}
	return nil
}

func (t *TEEClaims) validate() error {
	if err := checkID("tee type", t.Type); err != nil {
		return err
	}
	if err := checkOptionalID("tee measurement", t.Measurement); err != nil {
		return err
	}
	if t.Type == "sim" && !t.Simulated {
		return malformed("claims", "tee type sim must be marked simulated")
	}
	return nil
}

// pads lists the Pad ids a receipt's event touches: inputs, then outputs, without repeats.
func (c *Claims) pads() []string {
	var out []string
	for _, r := range slices.Concat(c.Inputs, c.Outputs) {
		if !slices.Contains(out, r.Pad) {
			out = append(out, r.Pad)
		}
	}
	return out
}

// canonical returns the claims' JSON encoding, the form compared when verifying a receipt.
func (c *Claims) canonical() []byte {
	b, err := json.Marshal(c)
	if err != nil {
		panic("audit: claims do not marshal: " + err.Error()) // plain strings and bools only
	}
	return b
}
