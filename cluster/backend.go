package cluster

import (
	"fmt"
	"path/filepath"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-sev-guest/client"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sim"
	"github.com/styx-tee/styx/tee/snp"
	"github.com/styx-tee/styx/tee/tdx"
)

// SimSealKeyFile is the simulator's sealing key file in a node's data directory.
const SimSealKeyFile = "sim-seal.key"

// Platform says how a node reaches its TEE. The zero value means the kernel's interfaces.
type Platform struct {
	// TSMRoot is the configfs-tsm root: the directory that holds report/ ("" for the kernel's,
	// /sys/kernel/config/tsm).
	TSMRoot string
	// TSM, if set, replaces the tree at TSMRoot (tests: a faked configfs-tsm tree).
	TSM configfsi.Client
	// SEVGuestDevice is the SEV guest device SNP's derived sealing key comes from ("" for
	// /dev/sev-guest).
	SEVGuestDevice string
	// SEVGuest, if set, replaces the device at SEVGuestDevice (tests: go-sev-guest's fake).
	SEVGuest client.Device
}

// LocalTEE returns the attester and sealer of this machine's TEE of type t, with the default
// device paths, for a node whose data directory is dir: Platform{}.TEE(t, dir).
func LocalTEE(t tee.Type, dir string) (tee.Attester, tee.Sealer, error) {
	return Platform{}.TEE(t, dir)
}

// TEE returns the attester and sealer of the TEE of type t on p, for a node whose data
// directory is dir:
//
//   - sim: measurement = SHA-256 of the running executable; sealing key file dir/sim-seal.key
//   - tdx: configfs-tsm; an ephemeral sealer: what it seals lives as long as the process, and
//     the cluster key comes back after a restart through its escrow (Recover) or a peer
//   - snp: configfs-tsm; a sealer keyed by the firmware's derived key (the SEV guest device,
//     VMPL 0); an error if that device cannot be opened
//   - sgx: Gramine's /dev/attestation; no sealer, so an error
func (p Platform) TEE(t tee.Type, dir string) (tee.Attester, tee.Sealer, error) {
	switch t {
	case tee.Sim:
		m, err := sim.ExecutableMeasurement()
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: sim measurement: %w", err)
		}
		s, err := sim.NewSealer(filepath.Join(dir, SimSealKeyFile))
		if err != nil {
			return nil, nil, err
		}
		return sim.New(m, false), s, nil
	case tee.TDX:
		return p.Attester(t), tee.NewEphemeralSealer(), nil
	case tee.SNP:
		var (
			s   *tee.KeySealer
			err error
		)
		if p.SEVGuest != nil {
			s, err = snp.NewDerivedKeySealer(p.SEVGuest, 0)
		} else {
			s, err = snp.OpenDerivedKeySealer(p.SEVGuestDevice, 0)
		}
		if err != nil {
			return nil, nil, fmt.Errorf("cluster: snp sealing key: %w", err)
		}
		return p.Attester(t), s, nil
	case tee.SGX:
		return nil, nil, fmt.Errorf("cluster: sgx nodes: %w (quote verification and sealing are not implemented)", tee.ErrUnsupported)
	}
	return nil, nil, fmt.Errorf("cluster: unknown tee type %q", t)
}

// Attester returns the configfs-tsm attester of t (tdx or snp) on p, or nil for other types.
func (p Platform) Attester(t tee.Type) tee.Attester {
	switch {
	case t == tee.TDX && p.TSM != nil:
		return tdx.NewAttesterClient(p.TSM)
	case t == tee.TDX:
		return tdx.NewAttester(p.TSMRoot)
	case t == tee.SNP && p.TSM != nil:
		return snp.NewAttesterClient(p.TSM)
	case t == tee.SNP:
		return snp.NewAttester(p.TSMRoot)
	}
	return nil
}
