package cluster

import (
	"fmt"
	"path/filepath"

	"github.com/styx-tee/styx/tee"
	"github.com/styx-tee/styx/tee/sim"
	"github.com/styx-tee/styx/tee/snp"
	"github.com/styx-tee/styx/tee/tdx"
)

// SimSealKeyFile is the simulator's sealing key file in a node's data directory.
const SimSealKeyFile = "sim-seal.key"

// LocalTEE returns the attester and sealer of this machine's TEE of type t, with the default
// device paths, for a node whose data directory is dir:
//
//   - sim: measurement = SHA-256 of the running executable; sealing key file dir/sim-seal.key
//   - tdx: configfs-tsm; an ephemeral sealer (the key returns through a peer or an escrow)
//   - snp: configfs-tsm; a sealer keyed by the firmware's derived key (/dev/sev-guest, VMPL 0)
//   - sgx: Gramine's /dev/attestation; no sealer, so an error
func LocalTEE(t tee.Type, dir string) (tee.Attester, tee.Sealer, error) {
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
		return tdx.NewAttester(""), tee.NewEphemeralSealer(), nil
	case tee.SNP:
		s, err := snp.OpenDerivedKeySealer("", 0)
		if err != nil {
			return nil, nil, err
		}
		return snp.NewAttester(""), s, nil
	case tee.SGX:
		return nil, nil, fmt.Errorf("cluster: sgx nodes: %w (quote verification and sealing are not implemented)", tee.ErrUnsupported)
	}
	return nil, nil, fmt.Errorf("cluster: unknown tee type %q", t)
}
