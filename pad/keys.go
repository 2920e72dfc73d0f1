package pad

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/styx-tee/styx/pad/internal/format"
	"github.com/styx-tee/styx/party"
)

// The labels of the key schedule (docs/pad-format.md, "Key schedule").
const (
	labelMAC     = "styx pad v1 header mac"
	labelPayload = "styx pad v1 payload"
	labelWrap    = "styx pad v1 key wrap"
	sigDomain    = "styx pad header v1"
)

func deriveKey(dk *DataKey, id ID, label string) []byte {
	k, err := hkdf.Key(sha256.New, dk[:], id[:], label, 32)
	if err != nil {
		panic("pad: hkdf: " + err.Error()) // only for lengths HKDF-SHA256 cannot produce
	}
	return k
}

func headerMAC(dk *DataKey, id ID, unsigned []byte) [32]byte {
	m := hmac.New(sha256.New, deriveKey(dk, id, labelMAC))
	m.Write(unsigned)
	return [32]byte(m.Sum(nil))
}

func wrapInfo(core []byte) []byte {
	sum := sha256.Sum256(core)
	return append(append([]byte(labelWrap), 0), sum[:]...)
}

func wrapAAD(recipient party.ID, kem uint16) []byte {
	return binary.BigEndian.AppendUint16(recipient[:], kem)
}

// wrap encrypts the data key to one recipient.
func wrap(dk *DataKey, to *party.Identity, kem uint16, core []byte) (format.Wrap, error) {
	pk, err := to.HPKEPublicKey(kem)
	if err != nil {
		return format.Wrap{}, err
	}
	enc, s, err := hpke.NewSender(pk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(core))
	if err != nil {
		return format.Wrap{}, fmt.Errorf("hpke: %w", err)
	}
	ct, err := s.Seal(wrapAAD(to.ID(), kem), dk[:])
	if err != nil {
		return format.Wrap{}, fmt.Errorf("hpke: %w", err)
	}
	if len(enc) != format.EncSize(kem) || len(ct) != format.WrappedKeySize {
		return format.Wrap{}, fmt.Errorf("hpke: unexpected sizes %d, %d", len(enc), len(ct))
	}
	return format.Wrap{Recipient: to.ID(), KEM: kem, Enc: enc, Key: [format.WrappedKeySize]byte(ct)}, nil
}

// unwrap opens the wrap addressed to k. A wrap that does not open is tampering.
func unwrap(w *format.Wrap, k *party.Key, core []byte) (*DataKey, error) {
	sk, err := k.HPKEPrivateKey(w.KEM)
	if err != nil {
		return nil, tampered("key wrap uses kem 0x%04x: %v", w.KEM, err)
	}
	r, err := hpke.NewRecipient(w.Enc, sk, hpke.HKDFSHA256(), hpke.AES256GCM(), wrapInfo(core))
	if err != nil {
		return nil, tampered("key wrap for %s does not open", w.Recipient)
	}
	pt, err := r.Open(wrapAAD(w.Recipient, w.KEM), w.Key[:])
	if err != nil || len(pt) != len(DataKey{}) {
		return nil, tampered("key wrap for %s does not open", w.Recipient)
	}
	return (*DataKey)(pt), nil
}
