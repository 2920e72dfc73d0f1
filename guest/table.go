package guest

import (
	"fmt"
	"io"
	"strings"
	"unsafe"
)

// Frame is an input read as a numeric CSV table, parsed natively by the host: a header row
// of names, then rows of finite numbers. Use it instead of parsing CSV in the guest, which
// is many times slower in WebAssembly.
type Frame struct {
	f      *file
	header []string
	size   int64 // the input's size in bytes if known, to size ReadAll's buffer
}

// OpenTable opens the named input as a numeric table and reads its header.
func OpenTable(name string) (*Frame, error) {
	r, err := Open(name)
	if err != nil {
		return nil, err
	}
	f := r.(*file)
	b, err := fetch(func(p unsafe.Pointer, c uint32) int32 { return hostCSVHeader(f.h, p, c) })
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("table %q: %w", name, err)
	}
	return &Frame{f: f, header: splitHeader(b), size: inputSize(name)}, nil
}

func inputSize(name string) int64 {
	ins, _ := Inputs()
	for _, in := range ins {
		if in.Name == name {
			return in.Size
		}
	}
	return 0
}

// The last query's header: queries to one model usually share it, so a query whose header
// is the same bytes reuses the names (and the slice) instead of splitting them again.
var queryHeader struct {
	raw, buf []byte
	names    []string
}

// OpenQueryTable opens the current query (inside a [Handler]) as a numeric table parsed
// natively by the host. The table closes when the query ends. While queries keep the same
// header, their frames return the very same Header slice (do not modify it): a handler may
// key what it derives from the header on that slice.
func OpenQueryTable() (*Frame, error) {
	h := hostQueryOpen()
	if h < 0 {
		return nil, fmt.Errorf("query: %w", errno(h))
	}
	f := &file{h: h, name: "query"}
	qh := &queryHeader
	b, err := fetchInto(qh.buf[:0], func(p unsafe.Pointer, c uint32) int32 { return hostCSVHeader(f.h, p, c) })
	qh.buf = b[:0]
	if err != nil {
		return nil, fmt.Errorf("query: %w", err)
	}
	if qh.names == nil || !sameBytes(b, qh.raw) {
		qh.raw, qh.names = append(qh.raw[:0], b...), splitHeader(b)
	}
	return &Frame{f: f, header: qh.names}, nil
}

// splitHeader decodes the host's header: names each followed by a NUL byte.
func splitHeader(b []byte) []string {
	names := strings.Split(string(b), "\x00")
	return names[:len(names)-1]
}

// Header returns the column names.
func (t *Frame) Header() []string { return t.header }

// ReadFloats parses whole rows into dst and returns how many values it wrote (a multiple
// of the number of columns); io.EOF at the end of the table.
func (t *Frame) ReadFloats(dst []float64) (int, error) {
	n := hostCSVFloats(t.f.h, unsafe.Pointer(unsafe.SliceData(dst)), uint32(len(dst)))
	switch {
	case n < 0:
		return 0, fmt.Errorf("table %q: %w", t.f.name, errno(n))
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// ReadAll returns every remaining value, row-major. The host writes straight into the
// result, which doubles when full.
func (t *Frame) ReadAll() ([]float64, error) {
	// A CSV value takes at least two bytes ("0,"); typical numeric tables take about six.
	out := make([]float64, 0, max(len(t.header)*64, int(min(t.size/5, 1<<26))))
	for {
		if cap(out)-len(out) < len(t.header) {
			out = append(make([]float64, 0, 2*cap(out)), out...)
		}
		n, err := t.ReadFloats(out[len(out):cap(out)])
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = out[:len(out)+n]
	}
}

// ReadSplit reads every remaining row, returning column col as y (one value per row)
// and the other columns as x (row-major), parsed natively by the host without a pass in
// the guest.
func (t *Frame) ReadSplit(col int) (x, y []float64, err error) {
	rows := t.RowsHint()
	return t.ReadSplitInto(col, make([]float64, 0, rows*max(len(t.header)-1, 0)), make([]float64, 0, rows))
}

// ReadSplitInto is ReadSplit appending to x and y, which it grows if they fill up. Sized
// with the inputs' [Input.RowsHint], they take several tables of the same columns as one
// dataset, without copying them afterwards.
func (t *Frame) ReadSplitInto(col int, x, y []float64) ([]float64, []float64, error) {
	w := len(t.header)
	if col < 0 || col >= w || w < 2 || len(x) != len(y)*(w-1) {
		return nil, nil, fmt.Errorf("table %q: column %d of %d", t.f.name, col, w)
	}
	for {
		if len(y) == cap(y) || cap(x)-len(x) < (cap(y)-len(y))*(w-1) {
			rows := max(64, 2*cap(y))
			x = append(make([]float64, 0, rows*(w-1)), x...)
			y = append(make([]float64, 0, rows), y...)
		}
		free := cap(y) - len(y)
		n := hostCSVSplit(t.f.h, uint32(col), unsafe.Pointer(unsafe.SliceData(x[len(x):cap(x)])),
			unsafe.Pointer(unsafe.SliceData(y[len(y):cap(y)])), uint32(free))
		switch {
		case n < 0:
			return nil, nil, fmt.Errorf("table %q: %w", t.f.name, errno(n))
		case n == 0:
			return x, y, nil
		}
		x, y = x[:len(x)+int(n)*(w-1)], y[:len(y)+int(n)]
	}
}

// RowsHint estimates, from the input's size, how many rows the table holds.
func (t *Frame) RowsHint() int { return Input{Size: t.size}.RowsHint(len(t.header)) }

// RowsHint estimates, from its size, how many rows the input holds read as a numeric table
// of that many columns (at least 64): usually more, as a numeric CSV value takes about six
// bytes, rarely fewer.
func (in Input) RowsHint(columns int) int {
	return max(64, int(min(in.Size/int64(5*max(columns, 1)), 1<<24)))
}

// Close closes the input.
func (t *Frame) Close() error { return t.f.Close() }

// sameBytes is bytes.Equal eight bytes per step: in the sandbox every loop iteration of guest
// code costs a call out to the host (see docs/sandbox.md), and bytes.Equal loops per byte.
func sameBytes(a, b []byte) bool {
	if len(a) != len(b) {
		return false
	}
	i := 0
	for ; i+8 <= len(a); i += 8 {
		if *(*uint64)(unsafe.Pointer(&a[i])) != *(*uint64)(unsafe.Pointer(&b[i])) {
			return false
		}
	}
	for ; i < len(a); i++ {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
