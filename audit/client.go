package audit

import (
	"crypto/ed25519"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"
)

// VerifyInclusion checks that record is entry index of the tree under head. It needs no access to
// the log.
func VerifyInclusion(head *SignedHead, index int64, record []byte, proof tlog.RecordProof) error {
	if index < 0 || index >= head.Size {
		return tampered("inclusion proof", "index %d outside a tree of %d records", index, head.Size)
	}
	if len(proof) > maxProofLen {
		return tampered("inclusion proof", "%d hashes, more than %d", len(proof), maxProofLen)
	}
	if err := tlog.CheckRecord(proof, head.Size, head.Root, index, tlog.RecordHash(record)); err != nil {
		return tampered("inclusion proof", "record %d does not lead to the signed root: %v", index, err)
	}
	return nil
}

// maxProofLen caps proofs: a tree of 2^63 records needs at most 63 hashes for inclusion and about
// twice that for consistency.
const maxProofLen = 128

// VerifyConsistency checks that newer extends older. A smaller newer is ErrRollback; a different
// root at the same size, or a proof that fails, is ErrFork. Both heads must already be verified
// (VerifyHead) and name the same origin.
func VerifyConsistency(older, newer *SignedHead, proof tlog.TreeProof) error {
	if older.Origin != newer.Origin {
		return fmt.Errorf("audit: heads of different logs %q and %q: %w", older.Origin, newer.Origin, ErrFork)
	}
	switch {
	case newer.Size < older.Size:
		return fmt.Errorf("audit: new head has %d records, a head with %d was seen before: %w", newer.Size, older.Size, ErrRollback)
	case older.Size == 0:
		return nil
	case newer.Size == older.Size:
		if newer.Root != older.Root {
			return fmt.Errorf("audit: two heads of %d records with different roots: %w", newer.Size, ErrFork)
		}
		return nil
	}
	if len(proof) > maxProofLen {
		return fmt.Errorf("audit: consistency proof of %d hashes: %w", len(proof), ErrFork)
	}
	if err := tlog.CheckTree(proof, newer.Size, newer.Root, older.Size, older.Root); err != nil {
		return fmt.Errorf("audit: head of %d records does not extend the head of %d seen before (%v): %w", newer.Size, older.Size, err, ErrFork)
	}
	return nil
}

// LoadLastHead reads the head a client saved with SaveLastHead and verifies it with pub. A missing
// file is (nil, nil): the first use of a log trusts its first verified head.
func LoadLastHead(path string, pub ed25519.PublicKey) (*SignedHead, error) {
	b, err := readCapped(path, maxHeadSize)
	if err != nil || b == nil {
		return nil, err
	}
	sh, err := VerifyHead(b, pub)
	if err != nil {
		return nil, fmt.Errorf("audit: last head in %s: %w", path, err)
	}
	return sh, nil
}

// SaveLastHead durably replaces the client's last seen head in path.
func SaveLastHead(path string, head *SignedHead) error {
	return writeFileAtomic(path, head.Note)
}

// AdvanceHead is what `styx audit --verify` does: verify signed with pub, check it is consistent
// with the head last saved in path (using proof, from the last head's size to the new one), and
// save it. It refuses a rollback or a fork and then leaves path unchanged.
func AdvanceHead(path string, pub ed25519.PublicKey, signed []byte, proof tlog.TreeProof) (*SignedHead, error) {
	newer, err := VerifyHead(signed, pub)
	if err != nil {
		return nil, err
	}
	older, err := LoadLastHead(path, pub)
	if err != nil {
		return nil, err
	}
	if older != nil {
		if err := VerifyConsistency(older, newer, proof); err != nil {
			return nil, err
		}
		if newer.Size == older.Size {
			return older, nil // keep the first head seen at this size
		}
	}
	if err := SaveLastHead(path, newer); err != nil {
		return nil, err
	}
	return newer, nil
}
