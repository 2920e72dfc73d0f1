package sandbox

import (
	"errors"
	"fmt"
)

// Sentinel errors; every error from a run unwraps to one of them through a [*RunError].
var (
	ErrBadModule  = errors.New("sandbox: bad module")
	ErrTimeout    = errors.New("sandbox: wall-time limit exceeded")
	ErrMemory     = errors.New("sandbox: memory limit exceeded")
	ErrLimit      = errors.New("sandbox: output limit exceeded")
	ErrGuestFault = errors.New("sandbox: guest fault")
	ErrExit       = errors.New("sandbox: program exited with an error")
	ErrCanceled   = errors.New("sandbox: run canceled")
	ErrClosed     = errors.New("sandbox: closed")
)

// RunError describes why a run or a query failed. Detail is written by the sandbox, never copied
// from the guest, but for a guest fault it may hold numbers the guest chose (a pointer, a
// length, a matrix size), and ExitCode is chosen by the guest: both can carry what a program read
// to whoever sees the error. Show a job's submitter Public, and put Error where the policies
// govern it (the job's log output).
type RunError struct {
	Err      error  // one of the sentinels
	Op       string // "compile", "run", "init" or "query"
	Detail   string
	ExitCode uint32 // when Err is ErrExit
}

func (e *RunError) Error() string {
	msg := e.Err.Error()
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	if e.Err == ErrExit {
		msg += fmt.Sprintf(" (exit code %d)", e.ExitCode)
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

func (e *RunError) Unwrap() error { return e.Err }

// Public is the error without what the guest could have chosen: the category and the operation,
// and the detail only for the categories whose detail the sandbox alone determines (a bad module,
// a limit of the configuration, a cancellation). It leaks no more than which way the run failed.
func (e *RunError) Public() string {
	msg := e.Err.Error()
	if e.Op != "" {
		msg = e.Op + ": " + msg
	}
	switch e.Err {
	case ErrExit, ErrGuestFault:
		return msg
	}
	if e.Detail != "" {
		msg += ": " + e.Detail
	}
	return msg
}

// PublicError returns err's Public text if it is a *RunError, and err's text otherwise.
func PublicError(err error) string {
	var re *RunError
	if errors.As(err, &re) {
		return re.Public()
	}
	return err.Error()
}

// fault is what host functions panic with to end a run; wazero recovers the panic and
// the run's error classification reads the fault recorded in the run state.
type fault struct{ err *RunError }

func (f fault) Error() string { return f.err.Error() }

func faultf(sentinel error, format string, args ...any) fault {
	return fault{&RunError{Err: sentinel, Detail: fmt.Sprintf(format, args...)}}
}
