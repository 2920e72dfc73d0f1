package ml

import "math/bits"

// rngStream is the second PCG seed of every training run (the first is Config.Seed).
const rngStream = 0x53564d

// RNG draws the order of the mini-batches: math/rand/v2's PCG-DXSM generator and its Perm,
// written out here so that a kernel can draw an epoch's order where it runs (on the host, for
// a sandboxed program) and still give rand.New(rand.NewPCG(seed1, seed2)).Perm's orders bit
// for bit (TestRNGMatchesMathRand). Its state is two words, Hi then Lo, so that a sandboxed
// program can lend it to the host as 16 bytes.
type RNG struct{ Hi, Lo uint64 }

// NewRNG returns the generator rand.NewPCG(seed1, seed2) would be.
func NewRNG(seed1, seed2 uint64) RNG { return RNG{seed1, seed2} }

// Uint64 returns the next value, as rand.PCG.Uint64 does.
func (r *RNG) Uint64() uint64 {
	const (
		mulHi    = 2549297995355413924
		mulLo    = 4865540595714422341
		incHi    = 6364136223846793005
		incLo    = 1442695040888963407
		cheapMul = 0xda942042e4dd58b5
	)
	hi, lo := bits.Mul64(r.Lo, mulLo)
	hi += r.Hi*mulLo + r.Lo*mulHi
	lo, c := bits.Add64(lo, incLo, 0)
	hi, _ = bits.Add64(hi, incHi, c)
	r.Lo, r.Hi = lo, hi
	hi ^= hi >> 32
	hi *= cheapMul
	hi ^= hi >> 48
	hi *= lo | 1
	return hi
}

// uint64n returns a value in [0, n), n > 0, as rand.Rand.Uint64N does on 64-bit platforms.
func (r *RNG) uint64n(n uint64) uint64 {
	if n&(n-1) == 0 {
		return r.Uint64() & (n - 1)
	}
	hi, lo := bits.Mul64(r.Uint64(), n)
	if lo < n {
		thresh := -n % n
		for lo < thresh {
			hi, lo = bits.Mul64(r.Uint64(), n)
		}
	}
	return hi
}

// Perm fills p with a random permutation of 0..len(p)-1, as rand.Rand.Perm(len(p)) does.
func (r *RNG) Perm(p []uint32) {
	for i := range p {
		p[i] = uint32(i)
	}
	for i := len(p) - 1; i > 0; i-- {
		j := r.uint64n(uint64(i + 1))
		p[i], p[j] = p[j], p[i]
	}
}
