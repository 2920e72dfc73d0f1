package audit

import (
	"context"
	"testing"
)

// Append throughput is bound by fsync: each Append or AppendBatch costs two (records, then
// hashes). Batching amortises them; run with -benchtime to taste.

func BenchmarkAppend(b *testing.B) {
	l := openTestLog(b, b.TempDir())
	ctx := context.Background()
	ev := testEvent(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.Append(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendBatch100(b *testing.B) {
	l := openTestLog(b, b.TempDir())
	ctx := context.Background()
	batch := make([]Event, 100)
	for i := range batch {
		batch[i] = testEvent(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}

// bigLog builds a log of n records in batches of 1000.
func bigLog(b *testing.B, n int) *Log {
	b.Helper()
	l := openTestLog(b, b.TempDir())
	batch := make([]Event, 1000)
	for i := range batch {
		batch[i] = testEvent(i)
	}
	for l.Size() < int64(n) {
		if _, err := l.AppendBatch(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	return l
}

func BenchmarkProveInclusion100k(b *testing.B) {
	l := bigLog(b, 100_000)
	size := l.Size()
	i := int64(0)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.ProveInclusion(i%size, size); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkProveConsistency100k(b *testing.B) {
	l := bigLog(b, 100_000)
	size := l.Size()
	i := int64(1)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.ProveConsistency(1+i%(size-1), size); err != nil {
			b.Fatal(err)
		}
		i += 7919
	}
}

func BenchmarkSignHead(b *testing.B) {
	l := openTestLog(b, b.TempDir())
	ctx := context.Background()
	for b.Loop() {
		b.StopTimer()
		appendN(b, l, 0, 1)
		b.StartTimer()
		if _, err := l.SignHead(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyReceipt(b *testing.B) {
	l := bigLog(b, 10_000)
	r, err := l.IssueReceipt(context.Background(), testClaims(), "styxid1c", nil)
	if err != nil {
		b.Fatal(err)
	}
	enc, _ := r.Marshal()
	pub := l.PublicKey()
	b.ReportAllocs()
	for b.Loop() {
		p, err := ParseReceipt(enc)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := p.Verify(pub); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen100k measures recovery on open: every frame's CRC and every stored hash is
// recomputed and compared.
func BenchmarkOpen100k(b *testing.B) {
	l := bigLog(b, 100_000)
	dir := l.st.(*FileStorage).dir
	l.Close()
	for b.Loop() {
		l, err := Open(dir, testOptions(testKey("cluster")))
		if err != nil {
			b.Fatal(err)
		}
		l.Close()
	}
}

// BenchmarkAppendParallel: concurrent single appends share fsyncs through group commit.
func BenchmarkAppendParallel(b *testing.B) {
	l := openTestLog(b, b.TempDir())
	ctx := context.Background()
	ev := testEvent(1)
	b.SetParallelism(16)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := l.Append(ctx, ev); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
}

func BenchmarkAppendBatch100Sealed(b *testing.B) {
	l, err := Open(b.TempDir(), sealedOptions(b, "k"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	batch := make([]Event, 100)
	for i := range batch {
		batch[i] = testEvent(i)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := l.AppendBatch(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(batch))/b.Elapsed().Seconds(), "events/s")
}
