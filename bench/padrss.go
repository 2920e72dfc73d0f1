package main

import (
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"syscall"

	"github.com/styx-tee/styx/pad"
	"github.com/styx-tee/styx/party"
)

func init() {
	register(&section{name: "pad-rss", summary: "peak memory (RSS) of sealing and opening a large Pad through files", run: benchPadRSS})
}

// benchPadRSS seals a generated stream to a temporary file and opens it again, printing the
// process's peak resident set size after each step. Streaming means the peak does not grow with
// the Pad: compare -size 64MiB with -size 1GiB.
func benchPadRSS(fs *flag.FlagSet, args []string) error {
	size := byteSize(1 << 30)
	fs.Var(&size, "size", "plaintext `SIZE`")
	fs.Parse(args)
	key, err := party.Generate()
	if err != nil {
		return err
	}
	f, err := os.CreateTemp("", "styx-bench-*.pad")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	fmt.Printf("pad-rss: %s through %s\n", formatBytes(int64(size)), f.Name())
	fmt.Printf("start            peak RSS %6.1f MiB\n", peakRSS())
	src := io.LimitReader(chachaReader{rand.NewChaCha8([32]byte{1})}, int64(size))
	_, err = pad.Seal(f, src, pad.SealOptions{
		Signer: key, Recipients: []*party.Identity{key.Identity()},
		Policy: []byte("permit(principal, action, resource);"), PolicyType: "application/cedar", Size: int64(size),
	})
	if err != nil {
		return err
	}
	fmt.Printf("after seal       peak RSS %6.1f MiB\n", peakRSS())
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return err
	}
	_, r, err := pad.Open(f, key)
	if err != nil {
		return err
	}
	n, err := io.Copy(io.Discard, r)
	if err != nil {
		return err
	}
	if n != int64(size) {
		return fmt.Errorf("opened %d bytes, want %d", n, int64(size))
	}
	fmt.Printf("after open       peak RSS %6.1f MiB\n", peakRSS())
	return nil
}

type chachaReader struct{ c *rand.ChaCha8 }

func (r chachaReader) Read(p []byte) (int, error) { return r.c.Read(p) }

// peakRSS returns the peak resident set size of this process in MiB (Linux reports KiB).
func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) / 1024
}
