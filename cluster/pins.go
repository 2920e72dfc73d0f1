package cluster

import (
	"bytes"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/styx-tee/styx/party"
)

// maxPinFile caps the pin store file.
const maxPinFile = 1 << 20

// A Pin is what a client remembers about an attested server.
type Pin struct {
	Cluster    party.ID  `json:"cluster"`
	TLSKey     string    `json:"tls_key_sha256"` // hex SHA-256 of the DER SubjectPublicKeyInfo
	TEE        string    `json:"tee"`
	Simulated  bool      `json:"simulated,omitempty"`
	AttestedAt time.Time `json:"attested_at"`
}

// PinStore keeps pins in a JSON file keyed by canonical server URL (mode 0600).
type PinStore struct {
	path string
	mu   sync.Mutex
}

// NewPinStore returns the pin store in path; the file is created on the first Record.
func NewPinStore(path string) *PinStore { return &PinStore{path: path} }

// DefaultPinFile is pins.json in the user's config directory (e.g. ~/.config/styx).
func DefaultPinFile() (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "styx", "pins.json"), nil
}

func (s *PinStore) load() (map[string]Pin, error) {
	f, err := os.Open(s.path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]Pin{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxPinFile+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxPinFile {
		return nil, fmt.Errorf("cluster: pin store %s is larger than %d bytes", s.path, maxPinFile)
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	pins := map[string]Pin{}
	if err := dec.Decode(&pins); err != nil {
		return nil, fmt.Errorf("cluster: pin store %s: %w", s.path, err)
	}
	return pins, nil
}

// Get returns the pin of server, if any.
func (s *PinStore) Get(server string) (Pin, bool, error) {
	base, err := CanonicalServer(server)
	if err != nil {
		return Pin{}, false, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pins, err := s.load()
	if err != nil {
		return Pin{}, false, err
	}
	p, ok := pins[base]
	return p, ok, nil
}

// TLSConfig returns a client TLS configuration pinned to the key attested for server, or an
// error telling the user to attest first.
func (s *PinStore) TLSConfig(server string) (*tls.Config, error) {
	p, ok, err := s.Get(server)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("cluster: %s has not been attested; run: styx attest --server %s --reference FILE", server, server)
	}
	b, err := hex.DecodeString(p.TLSKey)
	if err != nil || len(b) != 32 {
		return nil, fmt.Errorf("cluster: pin store %s: bad pin for %s", s.path, server)
	}
	return PinnedTLSConfig([32]byte(b)), nil
}

// Record stores the pin of a successful attestation. It refuses a server that was pinned to
// another cluster: that is either an attack or a new deployment, and only the user can tell.
func (s *PinStore) Record(a *Attested) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	pins, err := s.load()
	if err != nil {
		return err
	}
	if old, ok := pins[a.Server]; ok && old.Cluster != a.Cluster.ID() {
		return fmt.Errorf("cluster: %s was pinned to cluster %s and now attests cluster %s; if this is expected, remove its entry from %s: %w",
			a.Server, old.Cluster, a.Cluster.ID(), s.path, ErrKeyMismatch)
	}
	pins[a.Server] = Pin{
		Cluster:    a.Cluster.ID(),
		TLSKey:     hex.EncodeToString(a.Pin[:]),
		TEE:        string(a.Claims.Type),
		Simulated:  a.Claims.Simulated,
		AttestedAt: time.Now().UTC().Truncate(time.Second),
	}
	data, err := json.MarshalIndent(pins, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(s.path, append(data, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".pins.tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
