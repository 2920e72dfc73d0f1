package store

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Blobs stores large immutable objects (Pad payloads, program modules) by
// id. Implementations must make Put atomic: after a crash a blob is either
// absent or complete. The local-disk implementation is [Disk]; an
// S3-compatible one can sit behind the same interface.
//
// Blobs are outside the trust boundary: whoever controls the disk can
// replace or truncate them. Callers authenticate what they read (a Pad's
// header MAC and chunk AEAD, a program's sha256).
type Blobs interface {
	// Put stores r's bytes under id, streaming. It fails with ErrExists if
	// id is taken: blobs are immutable.
	Put(ctx context.Context, id string, r io.Reader) (BlobInfo, error)
	// Open returns a reader over the blob, or ErrNotFound.
	Open(ctx context.Context, id string) (io.ReadCloser, error)
	// Stat describes the blob, or returns ErrNotFound.
	Stat(ctx context.Context, id string) (BlobInfo, error)
	// Delete removes the blob. Deleting a missing blob is not an error.
	Delete(ctx context.Context, id string) error
}

// BlobInfo describes a stored blob. SHA256 is filled in by Put only.
type BlobInfo struct {
	ID      string
	Size    int64
	SHA256  [32]byte
	ModTime time.Time
}

// MaxBlobID is the longest blob id.
const MaxBlobID = 200

// ValidBlobID reports whether id can name a blob: 1 to MaxBlobID bytes of
// [A-Za-z0-9._-], starting with a letter or digit. Such ids cannot climb
// out of the blob directory or collide with temporary files.
func ValidBlobID(id string) bool {
	if len(id) == 0 || len(id) > MaxBlobID || !isAlnum(id[0]) {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !isAlnum(c) && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func checkBlobID(id string) error {
	if !ValidBlobID(id) {
		return fmt.Errorf("%w: blob id %q", ErrInvalid, id)
	}
	return nil
}

// ContentID is the content-addressed id of data whose sha256 is sum.
func ContentID(sum [32]byte) string { return "sha256-" + hex.EncodeToString(sum[:]) }

// PutContent stores r under its content address (see ContentID). Storing
// content that is already present succeeds and returns the existing blob.
func PutContent(ctx context.Context, d *Disk, r io.Reader) (BlobInfo, error) {
	return d.put(ctx, "", r)
}

// Disk keeps blobs as files under a directory, sharded into 256
// subdirectories. Writes go to a temporary file in the target directory,
// are fsynced, then hard-linked into place and the directory fsynced, so a
// blob appears complete or not at all.
type Disk struct {
	dir     string
	maxSize int64
}

var _ Blobs = (*Disk)(nil)

const blobTempPrefix = ".tmp-"

// OpenDisk opens (creating if needed) a blob directory. maxSize caps one
// blob (0 means no cap). Temporary files left by a crash are removed.
func OpenDisk(dir string, maxSize int64) (*Disk, error) {
	if maxSize < 0 {
		return nil, fmt.Errorf("%w: negative blob size cap", ErrInvalid)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("store: create blob dir: %w", err)
	}
	d := &Disk{dir: dir, maxSize: maxSize}
	if err := d.removeTemps(); err != nil {
		return nil, err
	}
	return d, nil
}

func (d *Disk) removeTemps() error {
	return filepath.WalkDir(d.dir, func(path string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !e.IsDir() && strings.HasPrefix(e.Name(), blobTempPrefix) {
			return os.Remove(path)
		}
		return nil
	})
}

// shard spreads ids over 256 directories by a hash of the id, so that ids
// sharing a prefix ("sha256-…") still spread evenly.
func (d *Disk) shard(id string) string {
	h := sha256.Sum256([]byte(id))
	return filepath.Join(d.dir, hex.EncodeToString(h[:1]))
}

func (d *Disk) path(id string) string { return filepath.Join(d.shard(id), id) }

// Put implements Blobs.
func (d *Disk) Put(ctx context.Context, id string, r io.Reader) (BlobInfo, error) {
	if err := checkBlobID(id); err != nil {
		return BlobInfo{}, err
	}
	return d.put(ctx, id, r)
}

// Open implements Blobs.
func (d *Disk) Open(ctx context.Context, id string) (io.ReadCloser, error) {
	if err := checkBlobID(id); err != nil {
		return nil, err
	}
	f, err := os.Open(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: blob %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: open blob %s: %w", id, err)
	}
	return f, nil
}

// Stat implements Blobs.
func (d *Disk) Stat(ctx context.Context, id string) (BlobInfo, error) {
	if err := checkBlobID(id); err != nil {
		return BlobInfo{}, err
	}
	fi, err := os.Stat(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return BlobInfo{}, fmt.Errorf("%w: blob %s", ErrNotFound, id)
	}
	if err != nil {
		return BlobInfo{}, fmt.Errorf("store: stat blob %s: %w", id, err)
	}
	return BlobInfo{ID: id, Size: fi.Size(), ModTime: fi.ModTime()}, nil
}

// Delete implements Blobs. The removal is made durable before it returns.
func (d *Disk) Delete(ctx context.Context, id string) error {
	if err := checkBlobID(id); err != nil {
		return err
	}
	err := os.Remove(d.path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("store: delete blob %s: %w", id, err)
	}
	return syncDir(d.shard(id))
}
