// Package sandbox runs untrusted WebAssembly programs for the Styx middleware.
//
// Call [New] once per node with a [Config] (zero value: safe defaults) to get a [Runtime];
// then [Runtime.Run] runs a program (a WASI command, e.g. a Go program built with
// GOOS=wasip1) to completion against a [Host], and [Runtime.Warm] instantiates a reactor
// module once so that [Instance.Query] can answer many queries without re-instantiating.
//
// The guest sees no filesystem, no environment, no arguments beyond argv[0], no network,
// a fake clock and a deterministic random source. It reaches its inputs, outputs and logs
// only through the host module "styx" (see docs/sandbox.md for the ABI), whose functions
// check every guest pointer against the guest's memory; a bad pointer ends the run with
// [ErrGuestFault]. Memory, wall time, output bytes, log bytes and handles are capped.
// The host module also offers native float64 kernels (dot, axpy, scal, gemv) that work
// directly on guest memory, so that training runs near native speed.
package sandbox
