package format

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/styx-tee/styx/party"
)

// MarshalCore returns the core of the header: everything before the wrap list. Key wraps bind it
// through their HPKE info.
func (h *Header) MarshalCore() []byte {
	signer := h.Signer.Bytes()
	b := make([]byte, 0, 64+len(signer)+len(h.ContentType)+len(h.PolicyType)+len(h.Policy)+len(h.Parents)*48)
	b = append(b, Magic...)
	b = append(b, Version)
	b = append(b, h.ID[:]...)
	b = binary.BigEndian.AppendUint64(b, h.Created)
	b = binary.BigEndian.AppendUint64(b, h.Size)
	b = binary.BigEndian.AppendUint32(b, ChunkSize)
	b = binary.BigEndian.AppendUint16(b, uint16(len(signer)))
	b = append(b, signer...)
	b = append(b, byte(len(h.ContentType)))
	b = append(b, h.ContentType...)
	b = append(b, byte(len(h.PolicyType)))
	b = append(b, h.PolicyType...)
	b = binary.BigEndian.AppendUint32(b, uint32(len(h.Policy)))
	b = append(b, h.Policy...)
	b = append(b, byte(len(h.Parents)))
	for _, p := range h.Parents {
		b = append(b, p.ID[:]...)
		b = append(b, p.PolicyDigest[:]...)
	}
	return b
}

// MarshalUnsigned returns core || wraps: what the MAC covers.
func (h *Header) MarshalUnsigned() []byte {
	b := h.MarshalCore()
	b = append(b, byte(len(h.Wraps)))
	for _, w := range h.Wraps {
		b = append(b, w.Recipient[:]...)
		b = binary.BigEndian.AppendUint16(b, w.KEM)
		b = append(b, w.Enc...)
		b = append(b, w.Key[:]...)
	}
	return b
}

// MarshalMACed returns core || wraps || mac: what the signature covers.
func (h *Header) MarshalMACed() []byte {
	return append(h.MarshalUnsigned(), h.MAC[:]...)
}

// Marshal returns the whole encoded header. It does not validate; call Check first.
func (h *Header) Marshal() []byte {
	return append(h.MarshalMACed(), h.Signature[:]...)
}

// Read parses one header from the front of r, reading exactly its bytes and nothing after them,
// so that r is left at the start of the payload. It returns the header and its raw bytes. Every
// length is checked against its limit before anything is read or allocated for it.
func Read(r io.Reader) (*Header, []byte, error) {
	d := &decoder{r: r}
	h, err := d.header()
	if err != nil {
		return nil, nil, err
	}
	if err := h.Check(); err != nil {
		return nil, nil, err
	}
	return h, d.raw, nil
}

// decoder reads fields from r, keeping the raw bytes and refusing to go past MaxHeaderSize.
type decoder struct {
	r   io.Reader
	raw []byte
}

func (d *decoder) next(what string, n int) ([]byte, error) {
	if len(d.raw)+n > MaxHeaderSize {
		return nil, fmt.Errorf("header longer than %d bytes at %s: %w (%w)", MaxHeaderSize, what, ErrTooLarge, ErrMalformed)
	}
	start := len(d.raw)
	d.raw = append(d.raw, make([]byte, n)...)
	if _, err := io.ReadFull(d.r, d.raw[start:]); err != nil {
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			if start == 0 && err == io.EOF {
				return nil, malformed("empty input, not a pad")
			}
			return nil, malformed("header truncated in %s at byte %d", what, start)
		}
		return nil, fmt.Errorf("read pad header: %w", err)
	}
	return d.raw[start:], nil
}

func (d *decoder) u8(what string) (int, error) {
	b, err := d.next(what, 1)
	if err != nil {
		return 0, err
	}
	return int(b[0]), nil
}

func (d *decoder) u16(what string) (uint16, error) {
	b, err := d.next(what, 2)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint16(b), nil
}

func (d *decoder) u32(what string) (uint32, error) {
	b, err := d.next(what, 4)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint32(b), nil
}

func (d *decoder) u64(what string) (uint64, error) {
	b, err := d.next(what, 8)
	if err != nil {
		return 0, err
	}
	return binary.BigEndian.Uint64(b), nil
}

func (d *decoder) copyTo(what string, dst []byte) error {
	b, err := d.next(what, len(dst))
	if err == nil {
		copy(dst, b)
	}
	return err
}

// str8 reads a u8 length and that many bytes; an empty string is malformed.
func (d *decoder) str8(what string) (string, error) {
	n, err := d.u8(what + " length")
	if err != nil {
		return "", err
	}
	if n == 0 {
		return "", malformed("empty %s", what)
	}
	b, err := d.next(what, n)
	return string(b), err
}

func (d *decoder) header() (*Header, error) {
	if err := d.magic(); err != nil {
		return nil, err
	}
	h := new(Header)
	if err := d.fixed(h); err != nil {
		return nil, err
	}
	if err := d.signer(h); err != nil {
		return nil, err
	}
	if err := d.policy(h); err != nil {
		return nil, err
	}
	if err := d.parents(h); err != nil {
		return nil, err
	}
	if err := d.wraps(h); err != nil {
		return nil, err
	}
	if err := d.copyTo("mac", h.MAC[:]); err != nil {
		return nil, err
	}
	if err := d.copyTo("signature", h.Signature[:]); err != nil {
		return nil, err
	}
	return h, nil
}

func (d *decoder) magic() error {
	m, err := d.next("magic", len(Magic))
	if err != nil {
		return err
	}
	if string(m) != Magic {
		return malformed("input does not start with %q: not a pad", Magic)
	}
	v, err := d.u8("version")
	if err != nil {
		return err
	}
	if v != Version {
		return fmt.Errorf("pad format version %d, this build reads version %d: %w", v, Version, ErrUnsupportedVersion)
	}
	return nil
}

func (d *decoder) fixed(h *Header) error {
	if err := d.copyTo("pad id", h.ID[:]); err != nil {
		return err
	}
	var err error
	if h.Created, err = d.u64("creation time"); err != nil {
		return err
	}
	if h.Created >= 1<<63 {
		return malformed("creation time %d out of range", h.Created)
	}
	if h.Size, err = d.u64("size"); err != nil {
		return err
	}
	if h.Size > MaxSize {
		return malformed("plaintext size %d out of range", h.Size)
	}
	cs, err := d.u32("chunk size")
	if err != nil {
		return err
	}
	if cs != ChunkSize {
		return malformed("chunk size %d, version 1 uses %d", cs, ChunkSize)
	}
	return nil
}

func (d *decoder) signer(h *Header) error {
	n, err := d.u16("signer length")
	if err != nil {
		return err
	}
	if n > identityMaxSize {
		return tooLarge("signer identity", int(n), identityMaxSize)
	}
	b, err := d.next("signer", int(n))
	if err != nil {
		return err
	}
	id, err := party.IdentityFromBytes(b)
	if err != nil {
		return malformed("signer identity: %v", err)
	}
	h.Signer = id
	return nil
}

func (d *decoder) policy(h *Header) error {
	var err error
	if h.ContentType, err = d.str8("content type"); err != nil {
		return err
	}
	if h.PolicyType, err = d.str8("policy type"); err != nil {
		return err
	}
	n, err := d.u32("policy length")
	if err != nil {
		return err
	}
	if n == 0 {
		return malformed("empty policy")
	}
	if n > MaxPolicySize {
		return tooLarge("policy", int(n), MaxPolicySize)
	}
	b, err := d.next("policy", int(n))
	h.Policy = append([]byte(nil), b...)
	return err
}

func (d *decoder) parents(h *Header) error {
	n, err := d.u8("parent count")
	if err != nil {
		return err
	}
	if n > MaxParents {
		return tooLarge("parent list", n, MaxParents)
	}
	h.Parents = make([]Parent, n)
	for i := range h.Parents {
		if err := d.copyTo("parent id", h.Parents[i].ID[:]); err != nil {
			return err
		}
		if err := d.copyTo("parent policy digest", h.Parents[i].PolicyDigest[:]); err != nil {
			return err
		}
	}
	return nil
}

func (d *decoder) wraps(h *Header) error {
	n, err := d.u8("key wrap count")
	if err != nil {
		return err
	}
	if n > MaxWraps {
		return tooLarge("key wrap list", n, MaxWraps)
	}
	h.Wraps = make([]Wrap, n)
	for i := range h.Wraps {
		w := &h.Wraps[i]
		if err := d.copyTo("key wrap recipient", w.Recipient[:]); err != nil {
			return err
		}
		if w.KEM, err = d.u16("key wrap kem"); err != nil {
			return err
		}
		size := EncSize(w.KEM)
		if size == 0 {
			return malformed("key wrap %d uses unknown kem 0x%04x", i, w.KEM)
		}
		b, err := d.next("key wrap encapsulation", size)
		if err != nil {
			return err
		}
		w.Enc = append([]byte(nil), b...)
		if err := d.copyTo("wrapped key", w.Key[:]); err != nil {
			return err
		}
	}
	return nil
}
