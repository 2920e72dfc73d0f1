package audit

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"golang.org/x/mod/sumdb/tlog"
)

// On-disk layout of a FileStorage directory (docs/audit.md has the full description):
//
//	records  magic, then frames: uint32 BE length | uint32 BE CRC-32C(length || payload) | payload,
//	         where payload is the record, or nonce || AEAD(record) in a sealed log
//	hashes   tlog stored hashes, 32 bytes each, at offset 32*StoredHashIndex; a cache rebuilt from
//	         records whenever it disagrees with them
//	head     the latest signed tree head (a signed note), replaced atomically
//	lock     held with flock while the log is open
const (
	recordsFile = "records"
	hashesFile  = "hashes"
	headFile    = "head"
	lockFile    = "lock"
	frameHeader = 8
)

var (
	recordsMagic = []byte("styx-audit-records v1\n")
	sealedMagic  = []byte("styx-audit-records v1 sealed\n")
	castagnoli   = crc32.MakeTable(crc32.Castagnoli)
)

// maxPayload caps a frame's payload: a record plus an AEAD's nonce and tag.
const maxPayload = MaxRecordSize + 64

// FileOptions configure a FileStorage.
type FileOptions struct {
	// Logger receives diagnostics (torn-tail repairs, hash rebuilds); nil discards them.
	Logger *slog.Logger
	// Seal, if set, encrypts every record at rest (the disk is outside the TEE). Nonces are
	// random, so Seal must take nonces of at least 24 bytes: use chacha20poly1305.NewX with a key
	// derived from the cluster secret. A log is created sealed or not and stays so.
	Seal cipher.AEAD
}

// A FileStorage keeps a log in a directory. Appends are written with one write per file and made
// durable with fsync; opening recovers from a torn tail (see OpenFileStorage).
type FileStorage struct {
	dir    string
	log    *slog.Logger
	seal   cipher.AEAD // nil for a plaintext log
	magic  []byte
	unlock func() error

	mu       sync.RWMutex
	records  *os.File
	hashes   *os.File
	offsets  []int64 // offsets[i]: file offset of frame i
	end      int64   // end of the last complete frame
	nhashes  int64   // stored hashes on disk
	failed   error   // sticky: an append failed half-way; the state on disk is unknown until reopen
	isClosed bool
}

var _ Storage = (*FileStorage)(nil)

// OpenFileStorage opens or creates a log directory. It checks every frame's CRC and recomputes
// every stored hash from the records. A damaged frame at the tail whose hashes were never written
// is the torn tail of an append that was not acknowledged: it is truncated and logged. Any other
// damage is ErrCorrupt: an acknowledged record is never dropped silently.
func OpenFileStorage(dir string, opts FileOptions) (*FileStorage, error) {
	logger := opts.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	magic := recordsMagic
	if opts.Seal != nil {
		if opts.Seal.NonceSize() < 24 || opts.Seal.NonceSize()+opts.Seal.Overhead() > maxPayload-MaxRecordSize {
			return nil, fmt.Errorf("audit: sealing AEAD has %d-byte nonces and %d bytes of overhead; random nonces need an AEAD like XChaCha20-Poly1305", opts.Seal.NonceSize(), opts.Seal.Overhead())
		}
		magic = sealedMagic
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("audit: create log directory: %w", err)
	}
	unlock, err := lockDir(filepath.Join(dir, lockFile))
	if err != nil {
		return nil, err
	}
	s := &FileStorage{dir: dir, log: logger, seal: opts.Seal, magic: magic, unlock: unlock}
	if err := s.open(); err != nil {
		s.closeFiles()
		return nil, err
	}
	return s, nil
}

func (s *FileStorage) open() error {
	var err error
	if s.records, err = s.openFile(recordsFile); err != nil {
		return err
	}
	if s.hashes, err = s.openFile(hashesFile); err != nil {
		return err
	}
	if err := s.checkMagic(); err != nil {
		return err
	}
	return s.recover()
}

func (s *FileStorage) openFile(name string) (*os.File, error) {
	path := filepath.Join(s.dir, name)
	_, statErr := os.Stat(path)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("audit: open %s: %w", name, err)
	}
	if errors.Is(statErr, fs.ErrNotExist) {
		if err := syncDir(s.dir); err != nil {
			f.Close()
			return nil, err
		}
	}
	return f, nil
}

// checkMagic writes the magic into a new records file and checks it in an existing one. A file
// holding a strict prefix of the magic was cut short while being created and is started afresh.
func (s *FileStorage) checkMagic() error {
	buf := make([]byte, len(s.magic))
	n, err := s.records.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		return fmt.Errorf("audit: read records: %w", err)
	}
	if n == len(buf) && bytes.Equal(buf, s.magic) {
		return nil
	}
	if n < len(buf) && bytes.Equal(buf[:n], s.magic[:n]) {
		return s.writeMagic()
	}
	path := filepath.Join(s.dir, recordsFile)
	switch {
	case bytes.HasPrefix(buf[:n], sealedMagic[:n]) && s.seal == nil:
		return fmt.Errorf("audit: %s is sealed and no key was given: %w", path, ErrCorrupt)
	case bytes.HasPrefix(buf[:n], recordsMagic) && s.seal != nil:
		return fmt.Errorf("audit: %s is not sealed but a sealing key was given: %w", path, ErrCorrupt)
	}
	return fmt.Errorf("audit: %s is not an audit records file: %w", path, ErrCorrupt)
}

func (s *FileStorage) writeMagic() error {
	if err := s.records.Truncate(0); err != nil {
		return fmt.Errorf("audit: reset records: %w", err)
	}
	if _, err := s.records.WriteAt(s.magic, 0); err != nil {
		return fmt.Errorf("audit: write records magic: %w", err)
	}
	if err := s.records.Sync(); err != nil {
		return fmt.Errorf("audit: sync records: %w", err)
	}
	return nil
}

// Size returns the number of records.
func (s *FileStorage) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return int64(len(s.offsets))
}

// Append writes the frames in one write, syncs the records file, then writes and syncs the
// hashes. Hashes are written only after the records are durable: that order is what lets
// recovery tell a torn tail (no hashes yet) from damage to acknowledged records.
func (s *FileStorage) Append(records [][]byte, hashes []tlog.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.usable(); err != nil {
		return err
	}
	buf, offs := encodeFrames(s.sealAll(records), s.end)
	if _, err := s.records.WriteAt(buf, s.end); err != nil {
		return s.fail(fmt.Errorf("audit: write records: %w", err))
	}
	if err := s.records.Sync(); err != nil {
		return s.fail(fmt.Errorf("audit: sync records: %w", err))
	}
	if _, err := s.hashes.WriteAt(hashBytes(hashes), s.nhashes*tlog.HashSize); err != nil {
		return s.fail(fmt.Errorf("audit: write hashes: %w", err))
	}
	if err := s.hashes.Sync(); err != nil {
		return s.fail(fmt.Errorf("audit: sync hashes: %w", err))
	}
	s.offsets = append(s.offsets, offs...)
	s.end += int64(len(buf))
	s.nhashes += int64(len(hashes))
	return nil
}

func (s *FileStorage) usable() error {
	if s.isClosed {
		return ErrClosed
	}
	if s.failed != nil {
		return fmt.Errorf("audit: an earlier append failed, reopen the log: %w", s.failed)
	}
	return nil
}

func (s *FileStorage) fail(err error) error {
	s.failed = err
	return err
}

// encodeFrames frames records, returning the bytes and each frame's offset from base.
func encodeFrames(records [][]byte, base int64) ([]byte, []int64) {
	size := 0
	for _, r := range records {
		size += frameHeader + len(r)
	}
	buf := make([]byte, 0, size)
	offs := make([]int64, len(records))
	for i, r := range records {
		offs[i] = base + int64(len(buf))
		buf = appendFrame(buf, r)
	}
	return buf, offs
}

func appendFrame(buf, rec []byte) []byte {
	var hdr [frameHeader]byte
	binary.BigEndian.PutUint32(hdr[:4], uint32(len(rec)))
	crc := crc32.Update(crc32.Checksum(hdr[:4], castagnoli), castagnoli, rec)
	binary.BigEndian.PutUint32(hdr[4:], crc)
	return append(append(buf, hdr[:]...), rec...)
}

func hashBytes(hs []tlog.Hash) []byte {
	b := make([]byte, 0, len(hs)*tlog.HashSize)
	for _, h := range hs {
		b = append(b, h[:]...)
	}
	return b
}

// ReadRecord reads record index and checks its CRC again: the disk is outside the TEE.
func (s *FileStorage) ReadRecord(index int64) ([]byte, error) {
	s.mu.RLock()
	if s.isClosed {
		s.mu.RUnlock()
		return nil, ErrClosed
	}
	if index < 0 || index >= int64(len(s.offsets)) {
		s.mu.RUnlock()
		return nil, fmt.Errorf("audit: record %d: %w", index, ErrNotFound)
	}
	off, next := s.offsets[index], s.end
	if index+1 < int64(len(s.offsets)) {
		next = s.offsets[index+1]
	}
	f := s.records
	s.mu.RUnlock()
	buf := make([]byte, next-off)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, fmt.Errorf("audit: read record %d: %w", index, err)
	}
	payload, ok := decodeFrame(buf)
	if !ok || frameHeader+len(payload) != len(buf) {
		return nil, fmt.Errorf("audit: record %d changed on disk: %w", index, ErrCorrupt)
	}
	return s.openRecord(index, payload)
}

// decodeFrame returns the payload of the frame at the start of b, if complete and intact.
func decodeFrame(b []byte) ([]byte, bool) {
	if len(b) < frameHeader {
		return nil, false
	}
	n := binary.BigEndian.Uint32(b[:4])
	if n > maxPayload || uint64(len(b)-frameHeader) < uint64(n) {
		return nil, false
	}
	rec := b[frameHeader : frameHeader+int(n)]
	crc := crc32.Update(crc32.Checksum(b[:4], castagnoli), castagnoli, rec)
	return rec, crc == binary.BigEndian.Uint32(b[4:8])
}

// ReadHashes implements tlog.HashReader.
func (s *FileStorage) ReadHashes(indexes []int64) ([]tlog.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.isClosed {
		return nil, ErrClosed
	}
	out := make([]tlog.Hash, len(indexes))
	for i, x := range indexes {
		if x < 0 || x >= s.nhashes {
			return nil, fmt.Errorf("audit: stored hash %d of %d: %w", x, s.nhashes, ErrNotFound)
		}
		if _, err := s.hashes.ReadAt(out[i][:], x*tlog.HashSize); err != nil {
			return nil, fmt.Errorf("audit: read stored hash %d: %w", x, err)
		}
	}
	return out, nil
}

// SaveHead replaces the head file atomically: write a temporary file, sync, rename, sync the
// directory.
func (s *FileStorage) SaveHead(signed []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return ErrClosed
	}
	return writeFileAtomic(filepath.Join(s.dir, headFile), signed)
}

// LoadHead returns the saved head, or nil if none was saved.
func (s *FileStorage) LoadHead() ([]byte, error) {
	return readCapped(filepath.Join(s.dir, headFile), maxHeadSize)
}

// Close closes the files and releases the directory lock.
func (s *FileStorage) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.isClosed {
		return nil
	}
	s.isClosed = true
	return s.closeFiles()
}

func (s *FileStorage) closeFiles() error {
	var errs []error
	for _, f := range []*os.File{s.records, s.hashes} {
		if f != nil {
			errs = append(errs, f.Close())
		}
	}
	if s.unlock != nil {
		errs = append(errs, s.unlock())
	}
	return errors.Join(errs...)
}
