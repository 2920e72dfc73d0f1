package pad_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"testing"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

// The benchmarks compare Seal and Open with AES-256-GCM over the same 64 KiB chunks and no
// format at all. go run ./bench pad does the same on 1 GiB and adds age.

var benchSizes = []int{1 << 10, 1 << 20, 64 << 20}

func BenchmarkSeal(b *testing.B) {
	keys(b)
	for _, n := range benchSizes {
		plain := make([]byte, n)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			opts := pad.SealOptions{Signer: alice, Recipients: []*party.Identity{alice.Identity()}, Policy: testPolicy, PolicyType: testPolicyType, Size: int64(n)}
			for b.Loop() {
				if _, err := pad.Seal(io.Discard, bytes.NewReader(plain), opts); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkOpen(b *testing.B) {
	keys(b)
	for _, n := range benchSizes {
		p := seal(b, make([]byte, n), pad.SealOptions{Recipients: []*party.Identity{alice.Identity()}})
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			for b.Loop() {
				_, r, err := pad.Open(bytes.NewReader(p), alice)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, r); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkRawAESGCM(b *testing.B) {
	blk, _ := aes.NewCipher(make([]byte, 32))
	aead, _ := cipher.NewGCM(blk)
	for _, n := range benchSizes {
		plain := make([]byte, n)
		out := make([]byte, 0, n+n/pad.ChunkSize*16+16)
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			b.SetBytes(int64(n))
			nonce := make([]byte, 12)
			for b.Loop() {
				out = out[:0]
				for i := 0; i < n; i += pad.ChunkSize {
					nonce[10] = byte(i / pad.ChunkSize)
					out = aead.Seal(out, nonce, plain[i:min(n, i+pad.ChunkSize)], nil)
				}
			}
		})
	}
}
