package sandbox

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/tetratelabs/wazero/api"
)

// Native CSV parsing: a numeric table parsed by the host into guest float64 memory. Go's
// strconv compiled to wasm is 25-40 times slower than native, which would dominate
// training; the engine's input pipeline parses the same CSV anyway.

const (
	errnoFormat = 6 // a field is not a finite number, or a row has the wrong width
	errnoSmall  = 7 // the buffer cannot hold one row
)

// maxColumns caps the width of a table (as ml.MaxColumns).
const maxColumns = 1024

type table struct {
	r       *csv.Reader
	header  []string
	hdr     []byte // header as csv_header returns it, built once
	width   int
	pending []float64 // a parsed row that did not fit the last buffer
	err     int32     // sticky error number
}

func tableFuncs() []hostFunc {
	return []hostFunc{
		{"csv_header", hCSVHeader, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
		{"csv_floats", hCSVFloats, []api.ValueType{i32, i32, i32}, []api.ValueType{i32}},
		{"csv_split", hCSVSplit, []api.ValueType{i32, i32, i32, i32, i32}, []api.ValueType{i32}},
	}
}

// hCSVHeader: csv_header(h, buf, cap) -> len. Switches input h to table mode (before any
// raw read) and returns its header row as a JSON array of strings.
func hCSVHeader(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	h := st.handles[api.DecodeI32(stack[0])]
	if h == nil || h.r == nil || (h.table == nil && h.raw) {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	if h.table == nil {
		if h.query && !st.queryTableBusy {
			st.queryTableBusy = true
			h.table = st.qt.open(st.req)
		} else {
			h.table = newTable(h.r)
		}
	}
	if h.table.err != 0 && h.table.header == nil {
		stack[0] = api.EncodeI32(-h.table.err)
		return
	}
	copyOut(m, stack[1:], h.table.headerBytes())
	stack[0] = stack[1]
}

func newTable(r io.Reader) *table {
	t := &table{r: csv.NewReader(r)}
	t.r.ReuseRecord = true
	t.readHeader()
	return t
}

func (t *table) readHeader() {
	rec, err := t.r.Read()
	switch {
	case err != nil:
		t.err = errnoFormat
	case len(rec) > maxColumns:
		t.err = errnoFormat
	default:
		t.header = append(t.header[:0], rec...)
		t.width = len(rec)
		for _, name := range rec {
			if strings.IndexByte(name, 0) >= 0 {
				t.header, t.err = nil, errnoFormat
			}
		}
	}
	t.hdr = t.hdr[:0]
	for _, name := range t.header {
		t.hdr = append(append(t.hdr, name...), 0)
	}
}

func (t *table) headerBytes() []byte { return t.hdr }

// queryTable is the table of a warm instance's queries (query_open, then csv_header), kept
// between queries: its CSV reader and buffers, and the header of the last query with the
// bytes it was parsed from. A query that starts with those very bytes (up to and including
// the newline that ended the header record) has that header, so it is not parsed again; any
// other query is parsed from its first byte. Nothing else carries over: the reader restarts
// on each query's bytes, and what one query left unread is dropped.
type queryTable struct {
	src bytes.Reader
	br  *bufio.Reader
	t   table
	raw []byte // the bytes of the last header record, ending in a newline; empty if none
}

// open returns the table of req, reading its header unless it is the last one's.
func (q *queryTable) open(req []byte) *table {
	t := &q.t
	if t.r == nil {
		q.br = bufio.NewReader(&q.src)
		t.r = csv.NewReader(q.br) // reads from q.br itself (bufio.NewReader returns it)
		t.r.ReuseRecord = true
		t.r.FieldsPerRecord = -1 // every row's width is checked against the header by next
	}
	t.pending, t.err = nil, 0
	if len(q.raw) > 0 && bytes.HasPrefix(req, q.raw) {
		q.src.Reset(req[len(q.raw):])
		q.br.Reset(&q.src)
		return t
	}
	q.raw = q.raw[:0]
	q.src.Reset(req)
	q.br.Reset(&q.src)
	start := t.r.InputOffset()
	t.readHeader()
	if n := int(t.r.InputOffset() - start); t.err == 0 && n > 0 && n <= len(req) && req[n-1] == '\n' {
		q.raw = append(q.raw, req[:n]...)
	}
	return t
}

// hCSVFloats: csv_floats(h, dst, n) -> count. Parses whole rows into dst (n float64
// values, 8-byte aligned) and returns how many values it wrote (a multiple of the width),
// 0 at the end of the table, or a negative error number.
func hCSVFloats(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	h := st.handles[api.DecodeI32(stack[0])]
	n := uint64(api.DecodeU32(stack[2]))
	dst := floats(m, api.DecodeU32(stack[1]), n)
	if h == nil || h.table == nil {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	stack[0] = api.EncodeI32(h.table.fill(dst))
}

func (t *table) fill(dst []float64) int32 {
	if t.err != 0 {
		return -t.err
	}
	if len(dst) < t.width {
		return -errnoSmall
	}
	done := 0
	for done+t.width <= len(dst) {
		if t.pending != nil {
			done += copy(dst[done:], t.pending)
			t.pending = nil
			continue
		}
		row, errno := t.next(dst[done : done+t.width])
		if errno != 0 {
			t.err = errno
			break
		}
		if row == nil {
			break
		}
		done += t.width
	}
	if done == 0 && t.err != 0 {
		return -t.err
	}
	return int32(done)
}

// next parses one row into dst; it returns nil at the end of the table.
func (t *table) next(dst []float64) ([]float64, int32) {
	rec, err := t.r.Read()
	if errors.Is(err, io.EOF) {
		return nil, 0
	}
	if err != nil || len(rec) != t.width {
		return nil, errnoFormat
	}
	for i, s := range rec {
		v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, errnoFormat
		}
		dst[i] = v
	}
	return dst, 0
}

// hCSVSplit: csv_split(h, col, x, y, rows) -> rows written. Parses up to rows whole rows;
// column col goes to y (one value per row), the others to x (width-1 per row). Returns
// 0 at the end of the table or a negative error number.
func hCSVSplit(ctx context.Context, m api.Module, stack []uint64) {
	st := stateOf(ctx)
	h := st.handles[api.DecodeI32(stack[0])]
	col, rows := uint64(api.DecodeU32(stack[1])), uint64(api.DecodeU32(stack[4]))
	if h == nil || h.table == nil {
		stack[0] = api.EncodeI32(-errnoBadHandle)
		return
	}
	t := h.table
	if t.width < 2 || col >= uint64(t.width) {
		stack[0] = api.EncodeI32(-errnoDenied)
		return
	}
	if rows*uint64(t.width) > maxFloats {
		panic(faultf(ErrGuestFault, "csv_split of %d rows", rows))
	}
	x := floats(m, api.DecodeU32(stack[2]), rows*uint64(t.width-1))
	y := floats(m, api.DecodeU32(stack[3]), rows)
	stack[0] = api.EncodeI32(t.split(int(col), x, y))
}

func (t *table) split(col int, x, y []float64) int32 {
	row := make([]float64, t.width)
	done := 0
	for done < len(y) {
		n := t.fill(row)
		if n < 0 {
			if done > 0 {
				break // the error is sticky: reported by the next call
			}
			return n
		}
		if n == 0 {
			break
		}
		y[done] = row[col]
		copy(x[done*(t.width-1):], row[:col])
		copy(x[done*(t.width-1)+col:], row[col+1:])
		done++
	}
	return int32(done)
}
