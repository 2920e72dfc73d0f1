package api

import (
	"crypto/hpke"
	"crypto/rand"
	"crypto/sha256"
	"fmt"

	"github.com/styx-tee/styx/party"
)

// MaxQueryInput caps the input of one model query (POST /v1/pads/{id}/query).
const MaxQueryInput = 1 << 20

// A QueryRequest asks a model Pad one question. Nonce (16 random bytes) binds the encrypted
// answer to this request, so an old answer cannot be passed off as a new one.
type QueryRequest struct {
	// Program is the sha256 of the serving program that answers from the model; the model's
	// policies decide which programs may query it.
	Program string `json:"program,omitempty"`
	Input   []byte `json:"input"`
	Nonce   []byte `json:"nonce"`
}

// NewQueryRequest returns a request for input with a fresh nonce.
func NewQueryRequest(input []byte) *QueryRequest {
	n := make([]byte, 16)
	rand.Read(n)
	return &QueryRequest{Input: input, Nonce: n}
}

func (q *QueryRequest) validate() error {
	if len(q.Input) > MaxQueryInput {
		return Errorf(ErrTooLarge, "query input is %d bytes, at most %d", len(q.Input), MaxQueryInput)
	}
	if q.Program != "" && !validHexSHA256(q.Program) {
		return Errorf(ErrBadRequest, "query program %q: want a lowercase hex sha256", abbrev(q.Program))
	}
	if len(q.Nonce) != 16 {
		return Errorf(ErrBadRequest, "query nonce: want 16 bytes, got %d", len(q.Nonce))
	}
	return nil
}

// A QueryResponse carries the answer HPKE-encrypted to the querier's identity: base mode,
// the X-Wing KEM (ML-KEM-768 + X25519), HKDF-SHA256, AES-256-GCM, with info binding the Pad id,
// the serving program, the request's input hash and nonce (see answerInfo). Sealed is enc || ciphertext.
type QueryResponse struct {
	KEM    uint16 `json:"kem"`
	Sealed []byte `json:"sealed"`
}

// answerInfo is the HPKE info string of a query answer.
func answerInfo(pad string, q *QueryRequest) []byte {
	sum := sha256.Sum256(q.Input)
	info := []byte("styx query answer v1\x00" + pad + "\x00" + q.Program + "\x00")
	info = append(info, sum[:]...)
	return append(info, q.Nonce...)
}

// SealAnswer encrypts answer to the querier for request q on pad. The engine calls it inside
// the TEE.
func SealAnswer(to *party.Identity, pad string, q *QueryRequest, answer []byte) (*QueryResponse, error) {
	pk, err := to.HPKEPublicKey(party.KEMXWing)
	if err != nil {
		return nil, err
	}
	ct, err := hpke.Seal(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), answerInfo(pad, q), answer)
	if err != nil {
		return nil, fmt.Errorf("api: seal query answer: %w", err)
	}
	return &QueryResponse{KEM: party.KEMXWing, Sealed: ct}, nil
}

// Open decrypts the answer with the querier's key, checking it was made for pad and q.
func (r *QueryResponse) Open(key *party.Key, pad string, q *QueryRequest) ([]byte, error) {
	sk, err := key.HPKEPrivateKey(r.KEM)
	if err != nil {
		return nil, fmt.Errorf("api: query answer: %w", err)
	}
	pt, err := hpke.Open(sk, hpke.HKDFSHA256(), hpke.AES256GCM(), answerInfo(pad, q), r.Sealed)
	if err != nil {
		return nil, fmt.Errorf("api: query answer does not open for this request and key: %w", err)
	}
	return pt, nil
}
