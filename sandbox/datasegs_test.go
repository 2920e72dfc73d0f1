package sandbox

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"testing"

	"github.com/tetratelabs/wazero"
)

// initialMemory instantiates wasm as it is (no start function runs) on r's wazero runtime
// and returns a copy of its memory, or the instantiation's error.
func initialMemory(t testing.TB, r *Runtime, wasm []byte) ([]byte, error) {
	t.Helper()
	ctx := context.Background()
	cm, err := r.rt.CompileModule(ctx, wasm)
	if err != nil {
		return nil, err
	}
	defer cm.Close(ctx)
	mod, err := r.rt.InstantiateModule(ctx, cm, wazero.NewModuleConfig().WithName("").WithStartFunctions())
	if err != nil {
		return nil, err
	}
	defer mod.Close(ctx)
	mem, _ := mod.Memory().Read(0, mod.Memory().Size())
	return bytes.Clone(mem), nil
}

// segmentCount returns the number of data segments of a module whose data section
// parseDataSection accepts.
func segmentCount(t testing.TB, wasm []byte) int {
	t.Helper()
	for p := 8; p < len(wasm); {
		size, n := readU32(wasm[p+1:])
		start := p + 1 + n
		if wasm[p] == sectionData {
			segs, ok := parseDataSection(wasm[start : start+int(size)])
			if !ok {
				t.Fatal("data section not parsed")
			}
			return len(segs)
		}
		p = start + int(size)
	}
	return 0
}

// The Go programs start from the same memory with a fraction of their data segments.
func TestCoalesceDataGoPrograms(t *testing.T) {
	r := newRuntime(t, Config{})
	for _, pkg := range []string{"examples/programs/rowcount", "examples/programs/svmtrain"} {
		wasm := build(t, pkg, false)
		merged := coalesceData(wasm)
		before, after := segmentCount(t, wasm), segmentCount(t, merged)
		if after*100 > before {
			t.Errorf("%s: %d data segments coalesced into %d, want at most 1%%", pkg, before, after)
		}
		if !sameStart(t, r, wasm, merged) {
			t.Errorf("%s: the coalesced module starts with other memory", pkg)
		}
	}
}

// Compile runs the coalesced module: a Go program still runs (the other tests show its
// behaviour) and its hash stays that of the bytes given.
func TestCompileKeepsHashOfGivenBytes(t *testing.T) {
	r := newRuntime(t, Config{})
	wasm := build(t, "examples/programs/rowcount", false)
	p, err := r.Compile(context.Background(), wasm)
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash() != sha256.Sum256(wasm) {
		t.Fatal("the program's hash is not that of the module given")
	}
	mustStillServe(t, r)
}

type seg struct {
	flag byte // 0 active; 1 passive
	off  int32
	data string
}

// dataModule assembles a module with one memory of pages pages and segs; extra sections
// (id, contents) follow the data section.
func dataModule(pages byte, segs []seg, extra ...[]byte) []byte {
	w := []byte("\x00asm\x01\x00\x00\x00")
	section := func(id byte, body []byte) {
		w = append(w, id)
		w = binary.AppendUvarint(w, uint64(len(body)))
		w = append(w, body...)
	}
	section(5, []byte{1, 0, pages})
	for i := 0; i+1 < len(extra); i += 2 {
		if extra[i][0] < sectionData {
			section(extra[i][0], extra[i+1])
		}
	}
	body := binary.AppendUvarint(nil, uint64(len(segs)))
	for _, s := range segs {
		body = append(body, s.flag)
		if s.flag == 0 {
			body = append(body, 0x41)
			body = appendI32(body, s.off)
			body = append(body, 0x0b)
		}
		body = binary.AppendUvarint(body, uint64(len(s.data)))
		body = append(body, s.data...)
	}
	section(sectionData, body)
	return w
}

func TestCoalesceDataEquivalent(t *testing.T) {
	r := newRuntime(t, Config{})
	zeros := string(make([]byte, coalesceGap))
	for _, tc := range []struct {
		name     string
		segs     []seg
		segments int // after coalescing
	}{
		{"adjacent", []seg{{0, 8, "ab"}, {0, 10, "cd"}, {0, 12, "e"}}, 1},
		{"gaps", []seg{{0, 0, "a"}, {0, 100, "b"}, {0, 100 + 1 + coalesceGap, "c"}}, 1},
		{"gap too wide", []seg{{0, 0, "a"}, {0, 2 + coalesceGap, "b"}}, 2},
		// A later segment that overlaps or precedes an earlier one starts a new segment, so
		// that it is still written after it.
		{"overlap", []seg{{0, 0, "aaaa"}, {0, 6, "xx"}, {0, 2, "bb"}, {0, 4, "cc"}}, 2},
		{"descending", []seg{{0, 100, "late"}, {0, 200, "x"}, {0, 0, "early"}, {0, 5, "y"}}, 2},
		{"zeros in data", []seg{{0, 0, zeros}, {0, coalesceGap, "z"}}, 1},
		{"empty segments", []seg{{0, 10, ""}, {0, 12, "a"}, {0, 20, ""}}, 1},
		{"last page", []seg{{0, 65536 - 3, "ab"}, {0, 65536 - 1, "c"}}, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wasm := dataModule(1, tc.segs)
			merged := coalesceData(wasm)
			if n := segmentCount(t, merged); n != tc.segments {
				t.Errorf("%d segments after coalescing, want %d", n, tc.segments)
			}
			if !sameStart(t, r, wasm, merged) {
				t.Error("the coalesced module starts with other memory")
			}
		})
	}
}

// A segment past the end of memory fails the instantiation of the coalesced module as it
// fails the original's.
func TestCoalesceDataOutOfBounds(t *testing.T) {
	r := newRuntime(t, Config{})
	for _, segs := range [][]seg{
		{{0, 0, "a"}, {0, 65536 - 1, "bc"}},
		{{0, 65536 - 10, "a"}, {0, 65536 + 1, ""}, {0, 0, "b"}},
		{{0, 65530, "a"}, {0, 65536 + 100, "b"}},
	} {
		wasm := dataModule(1, segs)
		if _, err := initialMemory(t, r, wasm); err == nil {
			t.Fatalf("%v: the original instantiated", segs)
		}
		if _, err := initialMemory(t, r, coalesceData(wasm)); err == nil {
			t.Errorf("%v: the coalesced module instantiated", segs)
		}
	}
}

// What the rewrite cannot prove equivalent is left as it is.
func TestCoalesceDataLeavesOthers(t *testing.T) {
	two := []seg{{0, 0, "a"}, {0, 1, "b"}}
	for name, wasm := range map[string][]byte{
		"passive":          dataModule(1, []seg{{0, 0, "a"}, {1, 0, "p"}, {0, 1, "b"}}),
		"data count":       append(dataModule(1, two), sectionDataCount, 1, 2),
		"negative offset":  dataModule(1, []seg{{0, -1, "a"}, {0, 1, "b"}}),
		"one segment":      dataModule(1, []seg{{0, 0, "ab"}}),
		"not merged":       dataModule(1, []seg{{0, 0, "a"}, {0, 2 + coalesceGap, "b"}}),
		"truncated":        dataModule(1, two)[:len(dataModule(1, two))-1],
		"trailing bytes":   append(dataModule(1, two)[:len(dataModule(1, two)):len(dataModule(1, two))], 0),
		"two data":         append(dataModule(1, two), dataModule(1, two)[8+5:]...),
		"not wasm":         []byte("\x00asm\x02\x00\x00\x00"),
		"global offset":    append(dataModule(1, nil)[:8+5:8+5], sectionData, 13, 2, 0, 0x23, 0, 0x0b, 1, 'a', 0, 0x41, 1, 0x0b, 1, 'b'),
		"oversized offset": append(dataModule(1, nil)[:8+5:8+5], sectionData, 15, 2, 0, 0x41, 0x80, 0x80, 0x80, 0x80, 0x10, 0x0b, 0, 0, 0x41, 1, 0x0b, 0),
	} {
		if got := coalesceData(wasm); !bytes.Equal(got, wasm) {
			t.Errorf("%s: rewritten", name)
		}
	}
}

// A module of more than coalesceMax segments is compiled as given (the rewrite's own
// bookkeeping stays bounded).
func TestCoalesceDataCapsSegments(t *testing.T) {
	segs := make([]seg, coalesceMax+1)
	wasm := dataModule(1, segs)
	if got := coalesceData(wasm); !bytes.Equal(got, wasm) {
		t.Errorf("%d segments rewritten", len(segs))
	}
	if got := coalesceData(dataModule(1, segs[:coalesceMax])); segmentCount(t, got) != 1 {
		t.Errorf("%d segments: %d after coalescing, want 1", coalesceMax, segmentCount(t, got))
	}
}

// The zeros added are capped by the data's own bytes and coalesceSlack.
func TestCoalesceDataCapsZeros(t *testing.T) {
	var segs []seg
	for i := range 2 * coalesceSlack / coalesceGap {
		segs = append(segs, seg{0, int32(i * (coalesceGap + 1)), "a"})
	}
	wasm := dataModule(3, segs)
	if got := coalesceData(wasm); !bytes.Equal(got, wasm) {
		t.Errorf("%d bytes of data coalesced into %d bytes", len(wasm), len(got))
	}
}

func TestLEB128(t *testing.T) {
	for _, v := range []int32{0, 1, -1, 63, 64, -64, -65, 1 << 20, 1<<31 - 1, -1 << 31} {
		b := appendI32(nil, v)
		if got, n := readI32(b); got != v || n != len(b) {
			t.Errorf("readI32(appendI32(%d)) = %d, %d", v, got, n)
		}
	}
	for _, b := range [][]byte{{0x80, 0x80, 0x80, 0x80, 0x08}, {0xff, 0xff, 0xff, 0xff, 0x77}, {0x80, 0x80, 0x80, 0x80, 0x80, 0}, {0x80}} {
		if _, n := readI32(b); n != 0 {
			t.Errorf("readI32(% x) accepted", b)
		}
	}
	if _, n := readU32([]byte{0xff, 0xff, 0xff, 0xff, 0x10}); n != 0 {
		t.Error("readU32 accepted 33 bits")
	}
	if v, n := readU32([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}); v != 0xffffffff || n != 5 {
		t.Errorf("readU32(max) = %d, %d", v, n)
	}
}

// FuzzCoalesceData checks that the rewrite never panics and that whatever it rewrites
// instantiates to the same memory, or fails to, as the original.
func FuzzCoalesceData(f *testing.F) {
	f.Add(dataModule(1, []seg{{0, 0, "ab"}, {0, 3, "c"}, {0, 1, "d"}}))
	f.Add(dataModule(1, []seg{{0, 65535, "a"}, {0, 65536, "b"}}))
	f.Add(dataModule(1, []seg{{0, 0, "a"}, {1, 0, "b"}}))
	r := newRuntime(f, Config{})
	f.Fuzz(func(t *testing.T, wasm []byte) {
		merged := coalesceData(wasm)
		if bytes.Equal(merged, wasm) {
			return
		}
		want, err1 := initialMemory(t, r, wasm)
		got, err2 := initialMemory(t, r, merged)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("original: %v; coalesced: %v", err1, err2)
		}
		if !bytes.Equal(got, want) {
			t.Fatal("the coalesced module starts with other memory")
		}
	})
}

// sameStart reports whether modules a and b start with the same linear memory.
func sameStart(t *testing.T, r *Runtime, a, b []byte) bool {
	t.Helper()
	want, err := initialMemory(t, r, a)
	if err != nil {
		t.Fatal(err)
	}
	got, err := initialMemory(t, r, b)
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Equal(got, want)
}
