package party

import (
	"bufio"
	"bytes"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// keyLinePrefix starts the one line of a key file that holds the secret.
const keyLinePrefix = "STYX-PARTY-KEY-1-"

// maxKeyFileSize caps how much of a key file is read; a real one is under 3 KiB.
const maxKeyFileSize = 16 << 10

// Marshal returns the key file contents for k: comment lines naming the public identity, then
// one line holding the secret seeds with a checksum.
func (k *Key) Marshal(created time.Time) []byte {
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# Styx party key. Keep it secret: it signs your policies and opens Pads sealed to you.\n")
	fmt.Fprintf(&buf, "# created: %s\n", created.UTC().Format(time.RFC3339))
	fmt.Fprintf(&buf, "# id: %s\n", k.id.ID())
	fmt.Fprintf(&buf, "# identity: %s\n", k.id)
	body := make([]byte, 0, 3*seedSize)
	for _, s := range k.seeds {
		body = append(body, s[:]...)
	}
	sum := checksum("styx party key", body)
	fmt.Fprintf(&buf, "%s%s\n", keyLinePrefix, b32.EncodeToString(append(body, sum[:]...)))
	return buf.Bytes()
}

// ParseKey parses the contents of a key file written by Marshal.
func ParseKey(data []byte) (*Key, error) {
	if len(data) > maxKeyFileSize {
		return nil, fmt.Errorf("party: key file is %d bytes, larger than any key file: %w", len(data), ErrMalformed)
	}
	var line string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		if line != "" {
			return nil, fmt.Errorf("party: key file holds more than one key line: %w", ErrMalformed)
		}
		line = l
	}
	if line == "" {
		return nil, fmt.Errorf("party: no %s… line in key file: %w", keyLinePrefix, ErrMalformed)
	}
	if !strings.HasPrefix(line, keyLinePrefix) {
		if strings.HasPrefix(line, IdentityPrefix) || strings.HasPrefix(line, IDPrefix) {
			return nil, fmt.Errorf("party: this is a public identity, not a private key file: %w", ErrMalformed)
		}
		return nil, fmt.Errorf("party: key line does not start with %s: %w", keyLinePrefix, ErrMalformed)
	}
	raw, err := b32.DecodeString(line[len(keyLinePrefix):])
	if err != nil || len(raw) != 3*seedSize+4 {
		return nil, fmt.Errorf("party: key line is damaged (bad base32 or length): %w", ErrMalformed)
	}
	body := raw[:3*seedSize]
	want := checksum("styx party key", body)
	if subtle.ConstantTimeCompare(raw[3*seedSize:], want[:]) != 1 {
		return nil, fmt.Errorf("party: key line: %w", ErrChecksum)
	}
	var seeds [3][seedSize]byte
	for i := range seeds {
		copy(seeds[i][:], body[i*seedSize:])
	}
	return keyFromSeeds(seeds)
}

// LoadKeyFile reads a private key file. Like ssh, it refuses a file that its group or others
// can read or write, with an error saying how to fix it.
func LoadKeyFile(path string) (*Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("party: open key file: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("party: key file: %w", err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return nil, &PermissionError{Path: path, Mode: perm}
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("party: read key file %s: %w", path, err)
	}
	k, err := ParseKey(data)
	if err != nil {
		return nil, fmt.Errorf("%w (in %s)", err, path)
	}
	return k, nil
}

// WriteKeyFile writes k to a new file at path with mode 0600. It refuses to overwrite an
// existing file, and leaves nothing behind if it fails.
func WriteKeyFile(path string, k *Key, created time.Time) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".styx-key-*")
	if err != nil {
		return fmt.Errorf("party: create key file: %w", err)
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if err = tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("party: key file mode: %w", err)
	}
	if _, err = tmp.Write(k.Marshal(created)); err != nil {
		return fmt.Errorf("party: write key file: %w", err)
	}
	if err = tmp.Sync(); err != nil {
		return fmt.Errorf("party: write key file: %w", err)
	}
	if err = tmp.Close(); err != nil {
		return fmt.Errorf("party: write key file: %w", err)
	}
	// Link rather than rename, so an existing key is never replaced.
	if err = os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("party: %s already exists; refusing to overwrite a key", path)
		}
		return fmt.Errorf("party: write key file: %w", err)
	}
	os.Remove(tmp.Name())
	return nil
}

// PermissionError reports a key file whose mode lets others read or change it.
type PermissionError struct {
	Path string
	Mode fs.FileMode
}

func (e *PermissionError) Error() string {
	return fmt.Sprintf("key file %s is accessible by others (mode %04o); run: chmod 600 %s", e.Path, e.Mode, e.Path)
}

func (e *PermissionError) Unwrap() error { return ErrKeyFilePermissions }
