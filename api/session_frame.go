package api

import (
	"encoding/binary"
	"fmt"
	"time"
)

// Session query framing (docs/api.md, "Query sessions"). Everything that changes from one
// session query to the next travels in the body, so that a session's requests carry the same
// headers every time and HTTP/2 header compression (HPACK) finds them all in its table: with a
// fresh nonce, MAC and body hash in headers, encoding and decoding them cost about as much CPU
// as the rest of the query. A session query's body is one frame:
//
//	offset  size  field
//	0       1     version, sessionFrameVersion
//	1       8     date: big-endian Unix seconds (UTC), 1 to maxFrameDate
//	9       16    nonce: random
//	25      32    MAC: HMAC-SHA256 of SessionCanonical under the session's request key
//	57      rest  input: the query, at most MaxQueryInput bytes
//
// The server reads only the fixed fields before the MAC holds; the input is handed on as
// bytes, never parsed here.
const (
	sessionFrameVersion = 1
	sessionFrameHeader  = 1 + 8 + 16 + 32
	maxFrameDate        = 253402300799 // 9999-12-31T23:59:59Z: every date has a four-digit year

	frameDateAt  = 1
	frameNonceAt = 9
	frameMACAt   = 25
)

// A sessionFrame is a parsed session query body. input aliases the body it was parsed from.
type sessionFrame struct {
	date  time.Time
	nonce [16]byte
	mac   [32]byte
	input []byte
}

// parseSessionFrame splits a session query body into its fields, checking their shapes and
// sizes only: it authenticates nothing.
func parseSessionFrame(b []byte) (sessionFrame, error) {
	var f sessionFrame
	if len(b) < sessionFrameHeader {
		return f, fmt.Errorf("session frame of %d bytes is shorter than its %d-byte header", len(b), sessionFrameHeader)
	}
	if b[0] != sessionFrameVersion {
		return f, fmt.Errorf("session frame version %d: want %d", b[0], sessionFrameVersion)
	}
	sec := binary.BigEndian.Uint64(b[frameDateAt:])
	if sec == 0 || sec > maxFrameDate {
		return f, fmt.Errorf("session frame date %d: want Unix seconds from 1 to %d", sec, uint64(maxFrameDate))
	}
	if n := len(b) - sessionFrameHeader; n > MaxQueryInput {
		return f, fmt.Errorf("session frame input of %d bytes: at most %d", n, MaxQueryInput)
	}
	f.date = time.Unix(int64(sec), 0).UTC()
	copy(f.nonce[:], b[frameNonceAt:])
	copy(f.mac[:], b[frameMACAt:])
	f.input = b[sessionFrameHeader:]
	return f, nil
}

// appendSessionFrame appends f, as parseSessionFrame reads it, to dst.
func appendSessionFrame(dst []byte, f *sessionFrame) []byte {
	dst = append(dst, sessionFrameVersion)
	dst = binary.BigEndian.AppendUint64(dst, uint64(f.date.Unix()))
	dst = append(dst, f.nonce[:]...)
	dst = append(dst, f.mac[:]...)
	return append(dst, f.input...)
}
