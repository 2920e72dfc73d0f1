//go:build !linux

package sandbox

import "errors"

// Elsewhere than on Linux the sandbox keeps wazero's default linear memory.
const canReserve = false

var errNoReserve = errors.New("sandbox: reserving memory is not supported on this platform")

func reserve(uint64) ([]byte, error) { return nil, errNoReserve }
func commit([]byte) error            { return errNoReserve }
func unreserve([]byte) error         { return errNoReserve }
