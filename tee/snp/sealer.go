package snp

import (
	"fmt"

	"github.com/google/go-sev-guest/client"

	"github.com/styx-tee/styx/tee"
)

// DefaultDevice is the SEV guest device the firmware's key derivation goes through.
const DefaultDevice = "/dev/sev-guest"

// DerivedKeyRequest is what the sealing key is bound to: the chip's VCEK, the guest's launch
// measurement and its guest policy, at the given VMPL. Not the TCB version (a firmware update
// would lose the key) and not the guest SVN.
func DerivedKeyRequest(vmpl uint32) *client.SnpDerivedKeyReq {
	return &client.SnpDerivedKeyReq{
		UseVCEK:          true,
		GuestFieldSelect: client.GuestFieldSelect{Measurement: true, GuestPolicy: true},
		Vmpl:             vmpl,
	}
}

// NewDerivedKeySealer asks the SNP firmware, through d, for a key derived from the chip and the
// guest's measurement and policy (MSG_KEY_REQ), and seals with it (tee.KeySealer). Only the same
// guest image with the same policy on the same chip derives the same key.
func NewDerivedKeySealer(d client.Device, vmpl uint32) (*tee.KeySealer, error) {
	resp, err := client.GetDerivedKeyAcknowledgingItsLimitations(d, DerivedKeyRequest(vmpl))
	if err != nil {
		return nil, fmt.Errorf("snp: derived key: %w", err)
	}
	if resp.Status != 0 {
		return nil, fmt.Errorf("snp: derived key: firmware status %#x", resp.Status)
	}
	s, err := tee.NewKeySealer(resp.Data[:])
	clear(resp.Data[:])
	return s, err
}

// OpenDerivedKeySealer opens the SEV guest device at path ("" for DefaultDevice) and returns
// NewDerivedKeySealer over it.
func OpenDerivedKeySealer(path string, vmpl uint32) (*tee.KeySealer, error) {
	if path == "" {
		path = DefaultDevice
	}
	d := &client.LinuxDevice{}
	if err := d.Open(path); err != nil {
		return nil, fmt.Errorf("snp: open %s: %w", path, err)
	}
	defer d.Close()
	return NewDerivedKeySealer(d, vmpl)
}
