package audit

import (
	"crypto/rand"
	"encoding/binary"
	"fmt"
)

// sealAD is the associated data of a sealed record: a label and the record's index, so frames
// cannot be moved to another position or another file format.
func sealAD(index int64) []byte {
	return binary.BigEndian.AppendUint64([]byte("styx audit record v1\x00"), uint64(index))
}

// sealAll seals records for indexes Size(), Size()+1, …; in a plaintext log it returns them as is.
// Called with s.mu held.
func (s *FileStorage) sealAll(records [][]byte) [][]byte {
	if s.seal == nil {
		return records
	}
	base := int64(len(s.offsets))
	out := make([][]byte, len(records))
	for i, rec := range records {
		nonce := make([]byte, s.seal.NonceSize(), s.seal.NonceSize()+len(rec)+s.seal.Overhead())
		rand.Read(nonce) // crypto/rand.Read never fails
		out[i] = s.seal.Seal(nonce, nonce, rec, sealAD(base+int64(i)))
	}
	return out
}

// openRecord returns the record in a frame payload, decrypting and authenticating it in a sealed log.
func (s *FileStorage) openRecord(index int64, payload []byte) ([]byte, error) {
	if s.seal == nil {
		return payload, nil
	}
	ns := s.seal.NonceSize()
	if len(payload) < ns+s.seal.Overhead() {
		return nil, fmt.Errorf("audit: sealed record %d is %d bytes, too short: %w", index, len(payload), ErrCorrupt)
	}
	rec, err := s.seal.Open(nil, payload[:ns], payload[ns:], sealAD(index))
	if err != nil {
		return nil, fmt.Errorf("audit: sealed record %d does not open (wrong key, or moved or changed on disk): %w", index, ErrCorrupt)
	}
	return rec, nil
}
