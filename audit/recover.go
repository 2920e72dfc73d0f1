package audit

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/mod/sumdb/tlog"
)

// recover scans the records file, truncates a torn tail, and brings the hashes file in line
// with the records: every stored hash is recomputed and compared; the first disagreement and
// everything after it is rewritten.
func (s *FileStorage) recover() error {
	st, err := s.hashes.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat hashes: %w", err)
	}
	onDisk := st.Size() / tlog.HashSize // a partial trailing hash is not a hash
	sc := &scan{
		s:      s,
		r:      bufio.NewReaderSize(io.NewSectionReader(s.records, int64(len(s.magic)), 1<<62), 1<<20),
		hashes: bufio.NewReaderSize(io.NewSectionReader(s.hashes, 0, onDisk*tlog.HashSize), 1<<20),
		onDisk: onDisk,
		off:    int64(len(s.magic)),
		front:  &frontier{},
	}
	if err := sc.run(); err != nil {
		return err
	}
	if err := s.truncateTornTail(sc); err != nil {
		return err
	}
	s.offsets, s.end = sc.offsets, sc.off
	return s.repairHashes(sc)
}

// A scan walks the frames, recomputing stored hashes and comparing them with the hashes file.
type scan struct {
	s       *FileStorage
	r       *bufio.Reader
	hashes  *bufio.Reader
	onDisk  int64 // stored hashes in the hashes file
	off     int64 // offset of the next frame
	offsets []int64
	front   *frontier

	verified int64       // leading stored hashes that match the records
	diverged bool        // a stored hash disagreed (or was missing) at index verified
	rebuilt  []tlog.Hash // recomputed hashes from index verified on

	bad    bool  // a damaged or incomplete frame at off
	badErr error // what was wrong with it
}

func (sc *scan) run() error {
	for {
		payload, err := sc.next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			sc.bad, sc.badErr = true, err
			return nil
		}
		n := int64(len(sc.offsets))
		// A frame with a good CRC that does not open was not torn: it was tampered with, or
		// the key is wrong.
		rec, err := sc.s.openRecord(n, payload)
		if err != nil {
			return err
		}
		hs, err := sc.front.add(n, tlog.RecordHash(rec))
		if err != nil {
			return err
		}
		if err := sc.compare(hs); err != nil {
			return err
		}
		sc.offsets = append(sc.offsets, sc.off)
		sc.off += int64(frameHeader + len(payload))
	}
}

var errTorn = errors.New("incomplete frame")

// next reads one frame and returns its payload. io.EOF means a clean end; any other error a damaged or torn frame.
func (sc *scan) next() ([]byte, error) {
	var hdr [frameHeader]byte
	n, err := io.ReadFull(sc.r, hdr[:])
	if err == io.EOF {
		return nil, io.EOF
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %d header bytes", errTorn, n)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size > maxPayload {
		return nil, fmt.Errorf("frame length %d exceeds %d", size, maxPayload)
	}
	buf := make([]byte, frameHeader+int(size))
	copy(buf, hdr[:])
	if n, err := io.ReadFull(sc.r, buf[frameHeader:]); err != nil {
		return nil, fmt.Errorf("%w: %d of %d record bytes", errTorn, n, size)
	}
	rec, ok := decodeFrame(buf)
	if !ok {
		return nil, errors.New("frame checksum mismatch")
	}
	return rec, nil
}

// compare checks freshly computed hashes against the file until the first disagreement, and
// keeps the computed ones from there on for repairHashes.
func (sc *scan) compare(hs []tlog.Hash) error {
	for _, h := range hs {
		if !sc.diverged {
			var disk tlog.Hash
			if sc.verified < sc.onDisk {
				if _, err := io.ReadFull(sc.hashes, disk[:]); err != nil {
					return fmt.Errorf("audit: read hashes: %w", err)
				}
				if disk == h {
					sc.verified++
					continue
				}
			}
			sc.diverged = true
		}
		sc.rebuilt = append(sc.rebuilt, h)
	}
	return nil
}

// truncateTornTail cuts a damaged last frame if it is the torn tail of an unacknowledged append.
// Records are synced before their hashes are written, so if the hashes file reaches the damaged
// record's leaf hash, that record had been durable: the damage is corruption, not a torn write.
func (s *FileStorage) truncateTornTail(sc *scan) error {
	if !sc.bad {
		return nil
	}
	i := int64(len(sc.offsets))
	if sc.onDisk > tlog.StoredHashIndex(0, i) {
		return fmt.Errorf("audit: record %d at offset %d is damaged (%v) but was acknowledged: %w", i, sc.off, sc.badErr, ErrCorrupt)
	}
	st, err := s.records.Stat()
	if err != nil {
		return fmt.Errorf("audit: stat records: %w", err)
	}
	s.log.Warn("audit: truncating torn tail of an unacknowledged append",
		"dir", s.dir, "records", i, "offset", sc.off, "bytes", st.Size()-sc.off, "why", sc.badErr.Error())
	if err := s.records.Truncate(sc.off); err != nil {
		return fmt.Errorf("audit: truncate torn tail: %w", err)
	}
	if err := s.records.Sync(); err != nil {
		return fmt.Errorf("audit: sync records: %w", err)
	}
	return nil
}

// repairHashes rewrites the hashes file from the first disagreement and drops any excess.
func (s *FileStorage) repairHashes(sc *scan) error {
	total := sc.verified + int64(len(sc.rebuilt))
	if total != tlog.StoredHashCount(int64(len(sc.offsets))) {
		return fmt.Errorf("audit: recomputed %d stored hashes for %d records: internal error", total, len(sc.offsets))
	}
	s.nhashes = total
	if !sc.diverged && sc.onDisk == total {
		return nil
	}
	if sc.diverged || sc.onDisk > total {
		s.log.Warn("audit: rebuilding stored hashes", "dir", s.dir, "kept", sc.verified, "rebuilt", len(sc.rebuilt), "on_disk", sc.onDisk)
	}
	if err := s.hashes.Truncate(sc.verified * tlog.HashSize); err != nil {
		return fmt.Errorf("audit: truncate hashes: %w", err)
	}
	if _, err := s.hashes.WriteAt(hashBytes(sc.rebuilt), sc.verified*tlog.HashSize); err != nil {
		return fmt.Errorf("audit: write hashes: %w", err)
	}
	if err := s.hashes.Sync(); err != nil {
		return fmt.Errorf("audit: sync hashes: %w", err)
	}
	return nil
}
