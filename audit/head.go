package audit

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A Signer signs tree heads with the cluster's Ed25519 key, which stays inside the TEE. Sign
// returns a pure Ed25519 signature (RFC 8032, no pre-hash) of message.
type Signer interface {
	Sign(message []byte) ([]byte, error)
}

// Ed25519Signer adapts an Ed25519 private key to Signer.
func Ed25519Signer(key ed25519.PrivateKey) Signer { return ed25519Signer{key} }

type ed25519Signer struct{ key ed25519.PrivateKey }

func (s ed25519Signer) Sign(msg []byte) ([]byte, error) { return ed25519.Sign(s.key, msg), nil }
func (s ed25519Signer) Public() crypto.PublicKey        { return s.key.Public() }

// CryptoSigner adapts a crypto.Signer holding an Ed25519 key (a key in a TEE or an HSM) to Signer.
func CryptoSigner(s crypto.Signer) Signer { return cryptoSigner{s} }

type cryptoSigner struct{ s crypto.Signer }

func (c cryptoSigner) Sign(msg []byte) ([]byte, error) {
	return c.s.Sign(rand.Reader, msg, crypto.Hash(0))
}
func (c cryptoSigner) Public() crypto.PublicKey { return c.s.Public() }

// maxHeadSize caps a signed head: ours are about 250 bytes, a few co-signatures fit.
const maxHeadSize = 4 << 10

// DefaultOrigin names a log whose Options leave Origin empty.
const DefaultOrigin = "styx.audit"

// A Head is a tree head: the log named Origin had Size records with Merkle root Root at Time.
type Head struct {
	Origin string
	Size   int64
	Root   tlog.Hash
	Time   time.Time
}

// A SignedHead is a Head together with the signed note that carries it.
type SignedHead struct {
	Head
	KeyID string // the note key hash of the signing key, 8 hex digits
	Note  []byte // the signed note, exactly as signed; what clients store and exchange
}

// headText formats h as the body of a C2SP checkpoint: origin, size, base64 root, and one
// extension line "time <RFC 3339 UTC>".
func headText(h Head) []byte {
	return fmt.Appendf(nil, "%s\n%d\n%s\ntime %s\n", h.Origin, h.Size, h.Root, h.Time.UTC().Format(time.RFC3339Nano))
}

// parseHeadText parses exactly what headText writes.
func parseHeadText(text string) (Head, error) {
	lines := strings.Split(text, "\n")
	if len(lines) != 5 || lines[4] != "" {
		return Head{}, malformed("tree head", "want 4 lines, got %d", len(lines)-1)
	}
	var h Head
	h.Origin = lines[0]
	if err := checkOrigin(h.Origin); err != nil {
		return Head{}, err
	}
	n, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != lines[1] {
		return Head{}, malformed("tree head", "bad size %q", clip(lines[1]))
	}
	h.Size = n
	if h.Root, err = tlog.ParseHash(lines[2]); err != nil || h.Root.String() != lines[2] {
		return Head{}, malformed("tree head", "bad root hash %q", clip(lines[2]))
	}
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok {
		return Head{}, malformed("tree head", "missing time line")
	}
	if h.Time, err = time.Parse(time.RFC3339Nano, ts); err != nil || h.Time.UTC().Format(time.RFC3339Nano) != ts {
		return Head{}, malformed("tree head", "bad time %q", clip(ts))
	}
	h.Time = h.Time.UTC()
	return h, nil
}

// checkOrigin accepts what a note key name may be: non-empty, printable ASCII, no space, no '+'.
func checkOrigin(o string) error {
	if o == "" || len(o) > 128 {
		return malformed("origin", "%q is empty or longer than 128 bytes", clip(o))
	}
	for i := 0; i < len(o); i++ {
		if o[i] <= ' ' || o[i] >= 0x7f || o[i] == '+' {
			return malformed("origin", "%q has a space, '+' or a non-printable byte", clip(o))
		}
	}
	return nil
}

// VerifierKey returns the note verifier key string ("origin+hash+key") for a log's public key:
// what a client configures to verify that log's heads with note-aware tools.
func VerifierKey(origin string, pub ed25519.PublicKey) (string, error) {
	if err := checkOrigin(origin); err != nil {
		return "", err
	}
	return note.NewEd25519VerifierKey(origin, pub)
}

// keyHash is the note key hash: the first 4 bytes of SHA-256(name || "\n" || 0x01 || pub).
func keyHash(origin string, pub ed25519.PublicKey) (uint32, error) {
	vkey, err := VerifierKey(origin, pub)
	if err != nil {
		return 0, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		return 0, fmt.Errorf("audit: verifier key: %w", err)
	}
	return v.KeyHash(), nil
}

// noteSigner adapts a Signer to note.Signer for one origin and key.
type noteSigner struct {
	name string
	hash uint32
	s    Signer
}

func (n noteSigner) Name() string                    { return n.name }
func (n noteSigner) KeyHash() uint32                 { return n.hash }
func (n noteSigner) Sign(msg []byte) ([]byte, error) { return n.s.Sign(msg) }

// signHead signs h with s and checks the result against pub before returning it, so a signer
// that does not hold pub's key is caught at once rather than by every client.
func signHead(h Head, s Signer, pub ed25519.PublicKey) (*SignedHead, error) {
	kh, err := keyHash(h.Origin, pub)
	if err != nil {
		return nil, err
	}
	msg, err := note.Sign(&note.Note{Text: string(headText(h))}, noteSigner{h.Origin, kh, s})
	if err != nil {
		return nil, fmt.Errorf("audit: sign tree head: %w", err)
	}
	sh, err := VerifyHead(msg, pub)
	if err != nil {
		return nil, fmt.Errorf("audit: signer does not match the log's public key: %w", err)
	}
	return sh, nil
}

// keyVerifiers serves a note verifier for pub under whatever name the note gives; the name is
// then checked against the head's origin line.
type keyVerifiers struct{ pub ed25519.PublicKey }

func (k keyVerifiers) Verifier(name string, hash uint32) (note.Verifier, error) {
	vkey, err := note.NewEd25519VerifierKey(name, k.pub)
	if err != nil {
		return nil, err
	}
	v, err := note.NewVerifier(vkey)
	if err != nil || v.KeyHash() != hash {
		return nil, &note.UnknownVerifierError{Name: name, KeyHash: hash}
	}
	return v, nil
}

// VerifyHead checks that signed is a tree head signed by pub and parses it. Signatures by other
// keys are ignored; at least one by pub, under the head's own origin, is required.
func VerifyHead(signed []byte, pub ed25519.PublicKey) (*SignedHead, error) {
	if len(pub) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("audit: cluster public key is %d bytes, want %d: %w", len(pub), ed25519.PublicKeySize, ErrBadSignature)
	}
	if len(signed) > maxHeadSize {
		return nil, malformed("tree head", "%d bytes, more than %d", len(signed), maxHeadSize)
	}
	n, err := note.Open(signed, keyVerifiers{pub})
	if err != nil {
		var unverified *note.UnverifiedNoteError
		var invalid *note.InvalidSignatureError
		if errors.As(err, &unverified) || errors.As(err, &invalid) {
			return nil, fmt.Errorf("audit: tree head: %v: %w", err, ErrBadSignature)
		}
		return nil, malformed("tree head", "%v", err)
	}
	h, err := parseHeadText(n.Text)
	if err != nil {
		return nil, err
	}
	kh, found := uint32(0), false
	for _, sig := range n.Sigs {
		if sig.Name == h.Origin {
			kh, found = sig.Hash, true
		}
	}
	if !found {
		return nil, fmt.Errorf("audit: tree head for %q is not signed under its origin: %w", h.Origin, ErrBadSignature)
	}
	return &SignedHead{Head: h, KeyID: fmt.Sprintf("%08x", kh), Note: append([]byte(nil), signed...)}, nil
}
