package audit

import (
	"golang.org/x/mod/sumdb/tlog"
)

// Storage persists a log: its records, their tlog stored hashes and the latest signed head. Open
// uses a FileStorage; another implementation (a replicated store) must keep the same promises:
// Append is durable when it returns, and a record once acknowledged is never lost or changed.
type Storage interface {
	// Size returns the number of records stored.
	Size() int64
	// Append stores records at indexes Size(), Size()+1, … together with their stored hashes
	// (the concatenation of tlog.StoredHashes for each record, in order). It is durable when it
	// returns nil; after an error the storage refuses further appends.
	Append(records [][]byte, hashes []tlog.Hash) error
	// ReadRecord returns the record at index.
	ReadRecord(index int64) ([]byte, error)
	// ReadHashes implements tlog.HashReader over the stored hashes.
	ReadHashes(indexes []int64) ([]tlog.Hash, error)
	// SaveHead durably replaces the saved signed head; LoadHead returns it, or nil if none.
	SaveHead(signed []byte) error
	LoadHead() ([]byte, error)
	Close() error
}
