package store

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
)

// put streams r into a temporary file next to the final location, then
// links it into place. id "" means content-addressed.
func (d *Disk) put(ctx context.Context, id string, r io.Reader) (BlobInfo, error) {
	tmpDir := d.dir
	if id != "" {
		tmpDir = d.shard(id)
	}
	if err := os.MkdirAll(tmpDir, 0o700); err != nil {
		return BlobInfo{}, fmt.Errorf("store: blob dir: %w", err)
	}
	f, err := os.CreateTemp(tmpDir, blobTempPrefix)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("store: blob temp file: %w", err)
	}
	defer os.Remove(f.Name()) // after a successful link this only drops the temp name
	info, err := d.fill(ctx, f, r)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("store: close blob: %w", cerr)
	}
	if err != nil {
		return BlobInfo{}, err
	}
	if id == "" {
		id = ContentID(info.SHA256)
	}
	info.ID = id
	return info, d.publish(f.Name(), id, id == ContentID(info.SHA256))
}

// fill copies r into f, hashing as it goes, enforcing the size cap and
// watching ctx, then fsyncs f.
func (d *Disk) fill(ctx context.Context, f *os.File, r io.Reader) (BlobInfo, error) {
	h := sha256.New()
	src := io.Reader(&ctxReader{ctx: ctx, r: r})
	if d.maxSize > 0 {
		src = io.LimitReader(src, d.maxSize+1)
	}
	n, err := io.Copy(io.MultiWriter(f, h), src)
	if err != nil {
		return BlobInfo{}, fmt.Errorf("store: write blob: %w", err)
	}
	if d.maxSize > 0 && n > d.maxSize {
		return BlobInfo{}, fmt.Errorf("%w: blob larger than %d bytes", ErrInvalid, d.maxSize)
	}
	if err := f.Sync(); err != nil {
		return BlobInfo{}, fmt.Errorf("store: sync blob: %w", err)
	}
	return BlobInfo{Size: n, SHA256: sum(h)}, nil
}

func sum(h hash.Hash) (out [32]byte) {
	copy(out[:], h.Sum(nil))
	return out
}

// publish hard-links tmp to id's path (failing if it exists, unlike rename)
// and fsyncs the directory. For content-addressed blobs an existing file
// already holds the same bytes, so that is success.
func (d *Disk) publish(tmp, id string, contentAddressed bool) error {
	dst := d.path(id)
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return fmt.Errorf("store: blob dir: %w", err)
	}
	err := os.Link(tmp, dst)
	if errors.Is(err, fs.ErrExist) {
		if contentAddressed {
			return nil
		}
		return fmt.Errorf("%w: blob %s", ErrExists, id)
	}
	if err != nil {
		return fmt.Errorf("store: publish blob %s: %w", id, err)
	}
	if err := syncDir(filepath.Dir(dst)); err != nil {
		return fmt.Errorf("store: sync blob dir: %w", err)
	}
	return nil
}

// ctxReader stops a copy when its context is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c *ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
