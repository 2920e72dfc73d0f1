package engine

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"encoding/hex"
	"io"
	"strings"
)

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }

// newJobID returns a random job id ("job-" and 26 base32 characters).
func newJobID() string {
	var b [16]byte
	rand.Read(b[:])
	return "job-" + strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:]))
}

func hexDigest(d [32]byte) string { return hex.EncodeToString(d[:]) }
