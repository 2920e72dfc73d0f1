package guest

import (
	"encoding/json"
	"fmt"
	"io"
	"unsafe"
)

func ptr(b []byte) unsafe.Pointer { return unsafe.Pointer(unsafe.SliceData(b)) }

func strPtr(s string) unsafe.Pointer { return unsafe.Pointer(unsafe.StringData(s)) }

// fetch implements the "call with a buffer, get the needed length" convention.
func fetch(call func(unsafe.Pointer, uint32) int32) ([]byte, error) {
	b, err := fetchInto(nil, call)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// fetchInto is fetch into buf's capacity (grown if too small), for callers that reuse it.
func fetchInto(buf []byte, call func(unsafe.Pointer, uint32) int32) ([]byte, error) {
	if cap(buf) == 0 {
		buf = make([]byte, 4096)
	}
	buf = buf[:cap(buf)]
	for {
		n := call(ptr(buf), uint32(len(buf)))
		if n < 0 {
			return buf[:0], errno(n)
		}
		if int(n) <= len(buf) {
			return buf[:n], nil
		}
		buf = make([]byte, n)
	}
}

// Inputs lists the inputs this job may open.
func Inputs() ([]Input, error) {
	b, err := fetch(hostInputs)
	if err != nil {
		return nil, err
	}
	var ins []Input
	if err := json.Unmarshal(b, &ins); err != nil {
		return nil, fmt.Errorf("guest: input list: %w", err)
	}
	return ins, nil
}

// Params returns the job parameters (nil if none).
func Params() ([]byte, error) { return fetch(hostParams) }

// ParamsJSON decodes the job parameters into v; empty parameters leave v unchanged.
func ParamsJSON(v any) error {
	b, err := Params()
	if err != nil || len(b) == 0 {
		return err
	}
	return json.Unmarshal(b, v)
}

type file struct {
	h    int32
	name string
}

// Open opens the named input. Reads go to the host one call each: wrap the reader in a
// bufio.Reader for small reads.
func Open(name string) (io.ReadCloser, error) {
	h := hostOpen(strPtr(name), uint32(len(name)))
	if h < 0 {
		return nil, fmt.Errorf("open %q: %w", name, errno(h))
	}
	return &file{h: h, name: name}, nil
}

// Create creates the named output of the given kind; the job must have declared it.
// Close it to finish the output. Wrap it in a bufio.Writer for small writes.
func Create(name string, kind Kind) (io.WriteCloser, error) {
	k := string(kind)
	h := hostCreate(strPtr(name), uint32(len(name)), strPtr(k), uint32(len(k)))
	if h < 0 {
		return nil, fmt.Errorf("create %q: %w", name, errno(h))
	}
	return &file{h: h, name: name}, nil
}

func (f *file) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n := hostRead(f.h, ptr(p), uint32(len(p)))
	switch {
	case n < 0:
		return 0, fmt.Errorf("read %q: %w", f.name, errno(n))
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

func (f *file) Write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n := hostWrite(f.h, ptr(p[done:]), uint32(len(p)-done))
		if n < 0 {
			return done, fmt.Errorf("write %q: %w", f.name, errno(n))
		}
		done += int(n)
	}
	return done, nil
}

func (f *file) Close() error {
	if n := hostClose(f.h); n < 0 {
		return fmt.Errorf("close %q: %w", f.name, errno(n))
	}
	return nil
}

// Logf writes one line to the job's log (an output under policy, capped by the host).
func Logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	if len(s) == 0 || s[len(s)-1] != '\n' {
		s += "\n"
	}
	hostLog(strPtr(s), uint32(len(s)))
}
