package pad

import (
	"bytes"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/pad/internal/stream"
	"github.com/styx-tee/styx/party"
)

// DefaultContentType is the content type of a payload when SealOptions leaves it empty.
const DefaultContentType = "application/octet-stream"

// SealOptions say how to seal a Pad.
type SealOptions struct {
	// Signer signs the header: the owner of a fresh Pad, the cluster for a derived one. Required.
	Signer *party.Key
	// Recipients receive a key wrap each (at most MaxWraps, duplicates merged). Seal does not add
	// the signer: the CLI does, and the cluster seals derived Pads with no recipients at all.
	Recipients []*party.Identity
	// PQ wraps with the post-quantum hybrid KEM ML-KEM-768+X25519 instead of X25519.
	PQ bool
	// Policy is the sticky policy (1..MaxPolicySize bytes) and PolicyType its media type.
	Policy     []byte
	PolicyType string
	// ContentType is the media type of the payload; empty means DefaultContentType.
	ContentType string
	// Parents make the Pad a derived Pad (at most MaxParents, duplicates refused).
	Parents []ParentRef
	// DataKey, if set, is used instead of a fresh random key: the engine keeps the keys of the
	// derived Pads it seals. A Pad with neither recipients nor DataKey could never be opened and
	// is refused.
	DataKey *DataKey
	// Size is the exact number of plaintext bytes src yields. It is in the header, so it must be
	// known before the first byte is written.
	Size int64
	// CreatedAt is the creation time (whole seconds); zero means now.
	CreatedAt time.Time
	// Progress, if set, is called with the plaintext bytes sealed so far after each chunk.
	Progress func(done int64)
}

// Seal reads opts.Size bytes from src and writes a Pad to dst. It returns the header it wrote.
// If src yields fewer or more bytes than opts.Size, Seal fails and what it wrote to dst is not a
// valid Pad.
func Seal(dst io.Writer, src io.Reader, opts SealOptions) (*Header, error) {
	id := NewID()
	dk := opts.DataKey
	if dk == nil {
		if len(opts.Recipients) == 0 {
			return nil, opErr("seal", fmt.Errorf("no recipients and no data key: nobody could open this pad: %w", ErrInvalidOptions))
		}
		dk = NewDataKey()
	}
	f, err := newHeader(id, &opts)
	if err != nil {
		return nil, opErr("seal", err)
	}
	if err := signHeader(f, dk, &opts); err != nil {
		return nil, opErr("seal", err)
	}
	raw := f.Marshal()
	if _, err := dst.Write(raw); err != nil {
		return nil, opErr("seal", fmt.Errorf("write header: %w", err))
	}
	var progress func(uint64)
	if opts.Progress != nil {
		progress = func(n uint64) { opts.Progress(int64(n)) }
	}
	if err := stream.Encrypt(dst, src, deriveKey(dk, id, labelPayload), f.Size, progress); err != nil {
		return nil, opErr("seal", err)
	}
	return headerFrom(f, raw), nil
}

// newHeader builds and validates the header fields other than wraps, MAC and signature.
func newHeader(id ID, o *SealOptions) (*format.Header, error) {
	if o.Signer == nil {
		return nil, fmt.Errorf("no signer key: %w", ErrInvalidOptions)
	}
	if o.Size < 0 || o.Size > MaxSize {
		return nil, fmt.Errorf("size %d out of range 0..%d: %w", o.Size, int64(MaxSize), ErrInvalidOptions)
	}
	if len(o.Policy) == 0 {
		return nil, fmt.Errorf("empty policy: a pad must carry a policy: %w", ErrInvalidOptions)
	}
	if len(o.Policy) > MaxPolicySize {
		return nil, fmt.Errorf("policy is %d bytes, over the %d-byte limit: %w", len(o.Policy), MaxPolicySize, ErrTooLarge)
	}
	if len(o.Parents) > MaxParents {
		return nil, fmt.Errorf("%d parents, over the limit of %d: %w", len(o.Parents), MaxParents, ErrTooLarge)
	}
	created := o.CreatedAt
	if created.IsZero() {
		created = time.Now()
	}
	if created.Unix() < 0 {
		return nil, fmt.Errorf("creation time %v before 1970: %w", created, ErrInvalidOptions)
	}
	ct := o.ContentType
	if ct == "" {
		ct = DefaultContentType
	}
	f := &format.Header{
		ID:          id,
		Created:     uint64(created.Unix()),
		Size:        uint64(o.Size),
		Signer:      o.Signer.Identity(),
		ContentType: ct,
		PolicyType:  o.PolicyType,
		Policy:      bytes.Clone(o.Policy),
	}
	for _, p := range o.Parents {
		f.Parents = append(f.Parents, format.Parent{ID: p.ID, PolicyDigest: p.PolicyDigest})
	}
	slices.SortFunc(f.Parents, func(a, b format.Parent) int { return bytes.Compare(a.ID[:], b.ID[:]) })
	if err := f.Validate(); err != nil {
		return nil, fmt.Errorf("%w (%w)", err, ErrInvalidOptions)
	}
	return f, nil
}

// signHeader adds the key wraps, the MAC and the signature to f.
func signHeader(f *format.Header, dk *DataKey, o *SealOptions) error {
	recips := dedupRecipients(o.Recipients)
	if len(recips) > MaxWraps {
		return fmt.Errorf("%d recipients, over the limit of %d: %w", len(recips), MaxWraps, ErrTooLarge)
	}
	kem := party.KEMX25519
	if o.PQ {
		kem = party.KEMXWing
	}
	core := f.MarshalCore()
	for _, r := range recips {
		w, err := wrap(dk, r, kem, core)
		if err != nil {
			return fmt.Errorf("wrap data key to %s: %w", r.ID(), err)
		}
		f.Wraps = append(f.Wraps, w)
	}
	f.MAC = headerMAC(dk, ID(f.ID), f.MarshalUnsigned())
	f.Signature = [64]byte(o.Signer.Sign(sigDomain, f.MarshalMACed()))
	return f.Validate()
}

// dedupRecipients returns the recipients sorted by party id, each once.
func dedupRecipients(rs []*party.Identity) []*party.Identity {
	out := slices.Clone(rs)
	out = slices.DeleteFunc(out, func(r *party.Identity) bool { return r == nil })
	slices.SortFunc(out, func(a, b *party.Identity) int {
		ia, ib := a.ID(), b.ID()
		return bytes.Compare(ia[:], ib[:])
	})
	return slices.CompactFunc(out, func(a, b *party.Identity) bool { return a.ID() == b.ID() })
}
