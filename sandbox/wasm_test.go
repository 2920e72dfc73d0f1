package sandbox

// A tiny WebAssembly assembler for hand-made hostile modules: one memory page, the
// imports given, and one function exported as _start.

type wasmFunc struct {
	module, name   string
	params, result []byte // value types
}

const (
	tI32 = 0x7f
	tI64 = 0x7e
	tF64 = 0x7c
)

func uleb(v uint64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func sleb(v int64) []byte {
	var b []byte
	for {
		c := byte(v & 0x7f)
		v >>= 7
		done := (v == 0 && c&0x40 == 0) || (v == -1 && c&0x40 != 0)
		if !done {
			c |= 0x80
		}
		b = append(b, c)
		if done {
			return b
		}
	}
}

func vec(items ...[]byte) []byte {
	out := uleb(uint64(len(items)))
	for _, it := range items {
		out = append(out, it...)
	}
	return out
}

func str(s string) []byte { return append(uleb(uint64(len(s))), s...) }

func section(id byte, body []byte) []byte {
	return append(append([]byte{id}, uleb(uint64(len(body)))...), body...)
}

func cat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

// Instructions.
func i32c(v int32) []byte   { return append([]byte{0x41}, sleb(int64(v))...) }
func i64c(v int64) []byte   { return append([]byte{0x42}, sleb(v)...) }
func call(f uint32) []byte  { return append([]byte{0x10}, uleb(uint64(f))...) }
func drop() []byte          { return []byte{0x1a} }
func f64c(v float64) []byte { return cat([]byte{0x44}, make([]byte, 8)) } // 0.0 only

// module assembles imports (function indices 0..n-1) and a _start at index n with body.
func module(imports []wasmFunc, body []byte) []byte {
	var types, imps [][]byte
	for i, f := range imports {
		types = append(types, cat([]byte{0x60}, vec(splitBytes(f.params)...), vec(splitBytes(f.result)...)))
		imps = append(imps, cat(str(f.module), str(f.name), []byte{0x00}, uleb(uint64(i))))
	}
	startType := uint64(len(types))
	types = append(types, []byte{0x60, 0x00, 0x00})
	start := uint64(len(imports))
	code := cat([]byte{0x00}, body, []byte{0x0b}) // no locals
	return cat(
		[]byte{0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00},
		section(1, vec(types...)),
		section(2, vec(imps...)),
		section(3, vec(uleb(startType))),
		section(5, vec([]byte{0x00, 0x01})),
		section(7, vec(cat(str("memory"), []byte{0x02, 0x00}), cat(str("_start"), []byte{0x00}, uleb(start)))),
		section(10, vec(cat(uleb(uint64(len(code))), code))),
	)
}

func splitBytes(b []byte) [][]byte {
	var out [][]byte
	for _, c := range b {
		out = append(out, []byte{c})
	}
	return out
}
