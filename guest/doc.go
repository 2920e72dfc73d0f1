// Package guest is the Go SDK for Styx programs: untrusted code compiled with
// GOOS=wasip1 GOARCH=wasm and run by the sandbox inside the TEE.
//
// A program starts with [Inputs] and [Params], reads inputs with [Open], writes declared
// outputs with [Create] and logs with [Logf] (logs are outputs under policy, not a side
// channel). [Kernels] (and [Dot], [Axpy], [Scal], [Gemv]) run dense linear algebra
// natively on the host. A query-serving program is built with -buildmode=c-shared and
// calls [Serve] from an init function; the sandbox then calls it once per query.
//
// Outside the sandbox (any other GOOS) the host calls fail with [ErrNotInSandbox] and the
// kernels run in plain Go, so programs build, vet and unit-test anywhere.
package guest

import (
	"errors"
	"fmt"
)

// Kind is an output kind; the job must declare every output with its kind.
type Kind string

// Output kinds.
const (
	Model      Kind = "model"
	Aggregate  Kind = "aggregate"
	Table      Kind = "table"
	Prediction Kind = "prediction"
	Log        Kind = "log"
)

// Input describes an input the program may open.
type Input struct {
	Name string `json:"name"`
	Kind string `json:"kind"`
	Size int64  `json:"size"`
}

// Errors returned by host calls.
var (
	ErrBadHandle    = errors.New("guest: bad handle")
	ErrNotFound     = errors.New("guest: no such input")
	ErrDenied       = errors.New("guest: refused by the host")
	ErrIO           = errors.New("guest: host i/o error")
	ErrNoQuery      = errors.New("guest: not in a query")
	ErrFormat       = errors.New("guest: table field is not a finite number, or row of the wrong width")
	ErrShortBuffer  = errors.New("guest: buffer smaller than one table row")
	ErrNotInSandbox = errors.New("guest: not running in the styx sandbox")
)

// errnoNotInSandbox is returned by the stubs outside the sandbox.
const errnoNotInSandbox = 100

func errno(n int32) error {
	switch -n {
	case 1:
		return ErrBadHandle
	case 2:
		return ErrNotFound
	case 3:
		return ErrDenied
	case 4:
		return ErrIO
	case 5:
		return ErrNoQuery
	case 6:
		return ErrFormat
	case 7:
		return ErrShortBuffer
	case errnoNotInSandbox:
		return ErrNotInSandbox
	}
	return fmt.Errorf("guest: host error %d", n)
}
