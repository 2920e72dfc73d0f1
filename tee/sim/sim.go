// Package sim is the software TEE backend for development and CI. It protects nothing: its
// evidence is signed by a key that lives in ordinary process memory, and its sealing key is a
// file the operator can read. Its claims say Simulated, and every verifier refuses them unless
// the reference values set allow_simulated.
//
// Start with New (an Attester), Verifier, and NewSealer (a key file sealer).
package sim

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/styx-tee/styx/tee"
)

// magic starts simulated evidence.
const magic = "STYXSIM1"

// signDomain separates the simulator's signatures from anything else.
const signDomain = "styx sim evidence v1\x00"

// EvidenceSize is the exact size of simulated evidence:
// magic(8) || measurement(32) || flags(1) || report data(64) || public key(32) || signature(64).
const EvidenceSize = len(magic) + 32 + 1 + 64 + ed25519.PublicKeySize + ed25519.SignatureSize

const flagDebug = 1

// Attester produces simulated evidence.
type Attester struct {
	key         ed25519.PrivateKey
	measurement [32]byte
	debug       bool
}

var _ tee.Attester = (*Attester)(nil)

// New returns a simulated attester claiming measurement. Each attester has a fresh signing key.
// debug marks the evidence as coming from a debug TEE (for testing refusals).
func New(measurement [32]byte, debug bool) *Attester {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	return &Attester{key: key, measurement: measurement, debug: debug}
}

// Type implements tee.Attester.
func (a *Attester) Type() tee.Type { return tee.Sim }

// Evidence implements tee.Attester.
func (a *Attester) Evidence(reportData [64]byte) (tee.Evidence, error) {
	b := make([]byte, 0, EvidenceSize)
	b = append(b, magic...)
	b = append(b, a.measurement[:]...)
	var flags byte
	if a.debug {
		flags |= flagDebug
	}
	b = append(b, flags)
	b = append(b, reportData[:]...)
	b = append(b, a.key.Public().(ed25519.PublicKey)...)
	b = append(b, ed25519.Sign(a.key, append([]byte(signDomain), b...))...)
	return tee.Evidence{Type: tee.Sim, Data: b}, nil
}

// Verifier verifies simulated evidence. The signature only shows the evidence was not altered
// after the simulator produced it; anyone can run a simulator.
type Verifier struct{}

var _ tee.Verifier = Verifier{}

// Verify implements tee.Verifier.
func (Verifier) Verify(ev tee.Evidence, ref *tee.ReferenceValues, want [64]byte) (*tee.Claims, error) {
	c, err := Parse(ev)
	if err != nil {
		return nil, err
	}
	if err := ref.Check(c); err != nil {
		return nil, err
	}
	rd, _ := hex.DecodeString(c.ReportData)
	if err := tee.CheckReportData(tee.Sim, rd, want); err != nil {
		return nil, err
	}
	return c, nil
}

// Parse checks the format and self-signature of simulated evidence and returns its claims,
// without applying reference values.
func Parse(ev tee.Evidence) (*tee.Claims, error) {
	d := ev.Data
	if ev.Type != tee.Sim || len(d) != EvidenceSize || !bytes.HasPrefix(d, []byte(magic)) {
		return nil, tee.Refuse(tee.Sim, tee.ErrMalformed, "want %d bytes starting %q, got %d bytes", EvidenceSize, magic, len(d))
	}
	body, sig := d[:EvidenceSize-ed25519.SignatureSize], d[EvidenceSize-ed25519.SignatureSize:]
	pub := ed25519.PublicKey(body[len(body)-ed25519.PublicKeySize:])
	if !ed25519.Verify(pub, append([]byte(signDomain), body...), sig) {
		return nil, tee.Refuse(tee.Sim, tee.ErrSignature, "simulator signature does not verify")
	}
	p := len(magic)
	flags := d[p+32]
	if flags&^flagDebug != 0 {
		return nil, tee.Refuse(tee.Sim, tee.ErrMalformed, "unknown flags %#x", flags)
	}
	m := hex.EncodeToString(d[p : p+32])
	return &tee.Claims{
		Type:        tee.Sim,
		Simulated:   true,
		Measurement: m,
		Registers:   map[string]string{"measurement": m},
		Debug:       flags&flagDebug != 0,
		ReportData:  hex.EncodeToString(d[p+33 : p+97]),
	}, nil
}

// NewSealer returns a sealer keyed by the 32-byte key in keyFile, creating the file (mode 0600)
// when it does not exist. Residual risk: whoever can read the file (root on the host, a backup)
// can unseal everything; the simulator offers no hardware-bound key.
func NewSealer(keyFile string) (*tee.KeySealer, error) {
	key, err := os.ReadFile(keyFile)
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		f, err := os.OpenFile(keyFile, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return nil, fmt.Errorf("sim: create sealing key: %w", err)
		}
		if _, err := f.Write(key); err != nil {
			f.Close()
			return nil, fmt.Errorf("sim: write sealing key: %w", err)
		}
		if err := f.Close(); err != nil {
			return nil, fmt.Errorf("sim: write sealing key: %w", err)
		}
	} else if err != nil {
		return nil, fmt.Errorf("sim: read sealing key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("sim: sealing key file %s holds %d bytes, want 32", keyFile, len(key))
	}
	return tee.NewKeySealer(key)
}

// ExecutableMeasurement returns the SHA-256 of the running executable: the measurement a
// simulated node claims by default, so that a rebuilt binary shows up as a new measurement.
func ExecutableMeasurement() ([32]byte, error) {
	path, err := os.Executable()
	if err != nil {
		return [32]byte{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return [32]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
