package sandbox

import "encoding/binary"

// Coalescing data segments.
//
// Go's wasm linker writes the initial contents of linear memory as tens of thousands of
// small active data segments (it starts a new one at every run of zeros): 37,000 segments
// for a 3 MiB program. wazero applies them one by one at every instantiation, evaluating
// each one's offset expression with a fresh allocation: about 6 ms of CPU and as much
// garbage per job, more than half the cost of starting a small program. Compile therefore
// rewrites the data section before handing the module to wazero: consecutive segments that
// follow each other in memory, ascending and disjoint, with gaps of zeros up to
// coalesceGap bytes, become one segment whose gaps are zeros. A fresh instance's memory is
// zeroed, so the rewritten module starts with exactly the memory the original would have,
// and an instantiation fails on an out-of-bounds segment exactly when the original's would
// (a run ends at its last segment's end, the largest end in the run). Nothing else changes:
// every other section is copied byte for byte.
//
// The rewrite applies only to what it can prove equivalent, and leaves the module as it
// was otherwise: every segment must be active, in memory 0, with an offset `i32.const c`
// (0 <= c < 2^31), and there must be no data count section (without one, validation
// refuses memory.init and data.drop, the only instructions that name a segment by its
// index, so renumbering the segments is invisible to the program). A malformed section is
// left as it is, for wazero to reject. The zeros added are capped by the segments' own
// bytes (plus 64 KiB), so a module cannot make the host allocate much more than twice its
// data, and a module of more than 2^20 segments is left as it is.
//
// The program's hash, its cache key and what receipts name, stays that of the bytes the
// caller gave.

const (
	coalesceGap   = 4096     // the largest run of zeros merged into a segment, in bytes
	coalesceSlack = 64 << 10 // zeros allowed beyond the segments' own bytes
	coalesceMax   = 1 << 20  // segments at most (a Go program has tens of thousands)

	sectionData      = 11
	sectionDataCount = 12
)

type dataSegment struct {
	off  uint32
	init []byte
}

// coalesceData returns wasm with its data segments coalesced, or wasm itself when the
// rewrite does not apply or would not reduce the number of segments.
func coalesceData(wasm []byte) []byte {
	if len(wasm) < 8 || string(wasm[:8]) != "\x00asm\x01\x00\x00\x00" {
		return wasm
	}
	var head, dataStart, dataEnd int // the data section: its id byte, its contents
	for p := 8; p < len(wasm); {
		id := wasm[p]
		size, n := readU32(wasm[p+1:])
		if n == 0 || uint64(size) > uint64(len(wasm)-p-1-n) {
			return wasm
		}
		start := p + 1 + n
		p = start + int(size)
		switch id {
		case sectionDataCount:
			return wasm
		case sectionData:
			if dataEnd != 0 {
				return wasm
			}
			head, dataStart, dataEnd = p-int(size)-n-1, start, p
		}
	}
	if dataEnd == 0 {
		return wasm
	}
	segs, ok := parseDataSection(wasm[dataStart:dataEnd])
	if !ok {
		return wasm
	}
	runs, ok := coalesceRuns(segs)
	if !ok || len(runs) >= len(segs) {
		return wasm
	}
	body := binary.AppendUvarint(nil, uint64(len(runs)))
	for _, r := range runs {
		body = append(body, 0, 0x41) // active, memory 0, i32.const
		body = appendI32(body, int32(r.off))
		body = append(body, 0x0b) // end
		body = binary.AppendUvarint(body, uint64(len(r.init)))
		body = append(body, r.init...)
	}
	out := make([]byte, 0, len(wasm)-(dataEnd-head)+len(body)+6)
	out = append(out, wasm[:head]...)
	out = append(out, sectionData)
	out = binary.AppendUvarint(out, uint64(len(body)))
	out = append(out, body...)
	return append(out, wasm[dataEnd:]...)
}

// parseDataSection reads a data section whose every segment is active in memory 0 at an
// `i32.const` offset in [0, 2^31); ok is false for anything else.
func parseDataSection(b []byte) (segs []dataSegment, ok bool) {
	count, n := readU32(b)
	if n == 0 || count > coalesceMax || uint64(count) > uint64(len(b)/5) { // a segment takes at least 5 bytes
		return nil, false
	}
	b = b[n:]
	segs = make([]dataSegment, 0, count)
	for range count {
		if len(b) < 2 || b[0] != 0 || b[1] != 0x41 {
			return nil, false
		}
		off, n := readI32(b[2:])
		if n == 0 || off < 0 {
			return nil, false
		}
		b = b[2+n:]
		if len(b) < 1 || b[0] != 0x0b {
			return nil, false
		}
		size, n := readU32(b[1:])
		if n == 0 || uint64(size) > uint64(len(b)-1-n) {
			return nil, false
		}
		b = b[1+n:]
		segs = append(segs, dataSegment{off: uint32(off), init: b[:size:size]})
		b = b[size:]
	}
	return segs, len(b) == 0
}

// coalesceRuns merges consecutive segments that are ascending, disjoint and at most
// coalesceGap bytes apart, in their order. ok is false if the zeros to add would exceed the
// segments' own bytes by more than coalesceSlack.
func coalesceRuns(segs []dataSegment) (runs []dataSegment, ok bool) {
	var data, zeros uint64
	for _, s := range segs {
		data += uint64(len(s.init))
	}
	for i := 0; i < len(segs); {
		j, end := i+1, uint64(segs[i].off)+uint64(len(segs[i].init))
		for j < len(segs) && uint64(segs[j].off) >= end && uint64(segs[j].off)-end <= coalesceGap {
			zeros += uint64(segs[j].off) - end
			end = uint64(segs[j].off) + uint64(len(segs[j].init))
			j++
		}
		if zeros > data+coalesceSlack {
			return nil, false
		}
		if j == i+1 {
			runs = append(runs, segs[i])
			i = j
			continue
		}
		base := segs[i].off
		init := make([]byte, end-uint64(base))
		for _, s := range segs[i:j] {
			copy(init[s.off-base:], s.init)
		}
		runs = append(runs, dataSegment{off: base, init: init})
		i = j
	}
	return runs, true
}

// readU32 decodes an unsigned LEB128 of at most 5 bytes that fits 32 bits; n is 0 if b
// does not start with one.
func readU32(b []byte) (v uint32, n int) {
	var x uint64
	for i := 0; i < 5 && i < len(b); i++ {
		x |= uint64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			if x > 0xffffffff {
				return 0, 0
			}
			return uint32(x), i + 1
		}
	}
	return 0, 0
}

// readI32 decodes a signed LEB128 of at most 5 bytes that fits 32 bits; n is 0 if b does
// not start with one.
func readI32(b []byte) (v int32, n int) {
	var x int64
	for i := 0; i < 5 && i < len(b); i++ {
		x |= int64(b[i]&0x7f) << (7 * i)
		if b[i] < 0x80 {
			if i == 4 { // bits 31 to 34: the sign and its extension, all equal
				if s := b[i] & 0x78; s != 0 && s != 0x78 {
					return 0, 0
				}
				return int32(uint32(x)), i + 1
			}
			if b[i]&0x40 != 0 {
				x |= -1 << (7 * (i + 1))
			}
			return int32(x), i + 1
		}
	}
	return 0, 0
}

// appendI32 appends v as a signed LEB128.
func appendI32(b []byte, v int32) []byte {
	x := int64(v)
	for {
		c := byte(x & 0x7f)
		x >>= 7
		if (x == 0 && c&0x40 == 0) || (x == -1 && c&0x40 != 0) {
			return append(b, c)
		}
		b = append(b, c|0x80)
	}
}
