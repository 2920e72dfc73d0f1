package sandbox

import "io"

// Kind is the declared kind of an output.
type Kind string

// Output kinds a program may declare.
const (
	KindModel      Kind = "model"
	KindAggregate  Kind = "aggregate"
	KindTable      Kind = "table"
	KindPrediction Kind = "prediction"
	KindLog        Kind = "log"
)

// Valid reports whether k is one of the declared kinds.
func (k Kind) Valid() bool {
	switch k {
	case KindModel, KindAggregate, KindTable, KindPrediction, KindLog:
		return true
	}
	return false
}

// Input describes one input a program may open.
type Input struct {
	Name string `json:"name"`
	Kind string `json:"kind"` // content type, e.g. "text/csv" or "model"
	Size int64  `json:"size"` // bytes, or -1 if unknown
}

// Host is what a run can reach: the engine implements it with its input and output
// pipelines. The sandbox calls it from the goroutine that runs the program, one call at a
// time. Readers and writers that also implement io.Closer are closed when the guest closes
// them or when the run ends; after a failed run the engine must discard every output.
type Host interface {
	// Inputs lists the inputs the program may open.
	Inputs() []Input
	// Params returns the job parameters (opaque bytes, usually JSON).
	Params() []byte
	// Open returns the filtered stream of the named input.
	Open(name string) (io.Reader, error)
	// Create starts an output of a declared name and kind.
	Create(name string, kind Kind) (io.WriteCloser, error)
	// Log receives the program's log lines and its stdout and stderr, within the log cap.
	Log(p []byte)
}
