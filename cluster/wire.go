package cluster

import (
	"bytes"
	"encoding/json"
	"io"

	"github.com/styx-tee/styx/party"
)

// MaxJoinMessageSize caps a join request or response.
const MaxJoinMessageSize = 2 * MaxBundleSize

// Marshal returns the JSON encoding of r.
func (r *JoinRequest) Marshal() []byte { return mustJSON(r) }

// Marshal returns the JSON encoding of r.
func (r *JoinResponse) Marshal() []byte { return mustJSON(r) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic("cluster: marshal: " + err.Error()) // plain data: cannot fail
	}
	return append(b, '\n')
}

// ParseJoinRequest parses a join request strictly (size cap, known fields, one value, a valid
// identity, nonce size and evidence type). It does not verify the evidence: Node.Admit does.
func ParseJoinRequest(data []byte) (*JoinRequest, error) {
	var r JoinRequest
	if err := decodeStrict(data, &r, MaxJoinMessageSize); err != nil {
		return nil, malformed("join request: %v", err)
	}
	if _, err := party.ParseIdentity(r.Identity); err != nil {
		return nil, malformed("join request identity: %v", err)
	}
	if len(r.Nonce) != NonceSize || !r.Evidence.Type.Valid() || len(r.Evidence.Data) == 0 {
		return nil, malformed("join request: nonce of %d bytes, evidence type %q", len(r.Nonce), r.Evidence.Type)
	}
	return &r, nil
}

// ParseJoinResponse parses a join response strictly; its bundle must be canonical.
func ParseJoinResponse(data []byte) (*JoinResponse, error) {
	var raw struct {
		Bundle json.RawMessage `json:"bundle"`
		Wrap   []byte          `json:"wrap"`
	}
	if err := decodeStrict(data, &raw, MaxJoinMessageSize); err != nil {
		return nil, malformed("join response: %v", err)
	}
	r := &JoinResponse{Wrap: raw.Wrap}
	if len(raw.Wrap) == 0 {
		return nil, malformed("join response without a wrap")
	}
	if len(raw.Bundle) != 0 && string(raw.Bundle) != "null" {
		b, err := ParseBundle(append(raw.Bundle, '\n'))
		if err != nil {
			return nil, err
		}
		r.Bundle = b
	}
	return r, nil
}

func decodeStrict(data []byte, v any, max int) error {
	if len(data) > max {
		return io.ErrShortBuffer
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); err != io.EOF {
		return io.ErrUnexpectedEOF
	}
	return nil
}
