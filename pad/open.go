package pad

import (
	"bufio"
	"crypto/hmac"
	"errors"
	"fmt"
	"io"

	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/pad/internal/stream"
	"github.com/styx-tee/styx/party"
)

// Open reads a Pad from src with the party key k. Before it returns, it has checked the header's
// signature, unwrapped k's key wrap and checked the MAC. The returned reader yields the
// plaintext; it returns a chunk only after the chunk authenticates and fails with an error
// wrapping ErrTampered on any change, reordering, truncation or extension of the payload.
//
// A Pad without a key wrap for k fails with ErrNotRecipient.
func Open(src io.Reader, k *party.Key) (*Header, io.Reader, error) {
	if k == nil {
		return nil, nil, opErr("open", fmt.Errorf("no key: %w", ErrInvalidOptions))
	}
	br := buffered(src)
	f, raw, err := readSigned(br)
	if err != nil {
		return nil, nil, opErr("open", err)
	}
	me := k.Identity().ID()
	i := wrapIndex(f, me)
	if i < 0 {
		return nil, nil, opErr("open", &NotRecipientError{Pad: ID(f.ID), You: me, Recipients: headerFrom(f, nil).Recipients()})
	}
	dk, err := unwrap(&f.Wraps[i], k, f.MarshalCore())
	if err != nil {
		return nil, nil, opErr("open", err)
	}
	return openPayload(br, f, raw, dk)
}

// OpenWithKey reads a Pad from src with its data key, for the engine, which keeps the keys of the
// Pads it derives. It checks the signature and the MAC before it returns; the reader is as for
// Open.
func OpenWithKey(src io.Reader, dk *DataKey) (*Header, io.Reader, error) {
	if dk == nil {
		return nil, nil, opErr("open", fmt.Errorf("no data key: %w", ErrInvalidOptions))
	}
	br := buffered(src)
	f, raw, err := readSigned(br)
	if err != nil {
		return nil, nil, opErr("open", err)
	}
	return openPayload(br, f, raw, dk)
}

// buffered returns src with a buffer for the header's many small reads, unless src holds its
// bytes in memory already: the payload stream then reads whole chunks straight from that memory.
func buffered(src io.Reader) io.Reader {
	if stream.InMemory(src) {
		return src
	}
	return bufio.NewReader(src)
}

// Inspect reads the header of a Pad from src and checks its signature. It reads nothing of the
// payload. It cannot check the MAC, which needs the data key: the Header it returns has
// MACVerified false.
func Inspect(src io.Reader) (*Header, error) {
	f, raw, err := readSigned(src)
	if err != nil {
		return nil, opErr("inspect", err)
	}
	return headerFrom(f, raw), nil
}

// readSigned parses a header and checks its signature.
func readSigned(r io.Reader) (*format.Header, []byte, error) {
	f, raw, err := format.Read(r)
	if err != nil {
		return nil, nil, err
	}
	signed := raw[:len(raw)-format.SignatureSize]
	if !f.Signer.Verify(sigDomain, signed, f.Signature[:]) {
		return nil, nil, tampered("header signature by %s does not verify", f.Signer.ID())
	}
	return f, raw, nil
}

func wrapIndex(f *format.Header, id party.ID) int {
	for i := range f.Wraps {
		if f.Wraps[i].Recipient == id {
			return i
		}
	}
	return -1
}

// openPayload checks the MAC and returns the payload reader.
func openPayload(br io.Reader, f *format.Header, raw []byte, dk *DataKey) (*Header, io.Reader, error) {
	unsigned := raw[:len(raw)-format.SignatureSize-format.MACSize]
	mac := headerMAC(dk, ID(f.ID), unsigned)
	if !hmac.Equal(mac[:], f.MAC[:]) {
		return nil, nil, opErr("open", tampered("header mac does not verify (wrong data key or changed header)"))
	}
	sr, err := stream.NewReader(br, deriveKey(dk, ID(f.ID), labelPayload), f.Size)
	if err != nil {
		return nil, nil, opErr("open", err)
	}
	h := headerFrom(f, raw)
	h.MACVerified = true
	return h, &payloadReader{r: sr}, nil
}

// payloadReader turns payload authentication failures into ErrTampered errors.
type payloadReader struct{ r *stream.Reader }

func (p *payloadReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	return n, payloadErr(err)
}

func (p *payloadReader) WriteTo(w io.Writer) (int64, error) {
	n, err := p.r.WriteTo(w)
	return n, payloadErr(err)
}

func payloadErr(err error) error {
	if err == nil || err == io.EOF || !errors.Is(err, stream.ErrInvalid) {
		return err
	}
	return &Error{Op: "open", Err: fmt.Errorf("%w: %w", err, ErrTampered)}
}

// NotRecipientError reports a Pad with no key wrap for the opener. It unwraps to ErrNotRecipient.
type NotRecipientError struct {
	Pad        ID
	You        party.ID
	Recipients []party.ID
}

func (e *NotRecipientError) Error() string {
	if len(e.Recipients) == 0 {
		return fmt.Sprintf("%s is not sealed to any party key (a derived pad: its key is held by the cluster that derived it)", e.Pad)
	}
	return fmt.Sprintf("%s is not sealed to %s (it has %d recipients; run 'styx pad inspect' to list them)", e.Pad, e.You, len(e.Recipients))
}

func (e *NotRecipientError) Unwrap() error { return ErrNotRecipient }
