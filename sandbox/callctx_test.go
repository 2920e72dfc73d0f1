package sandbox

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

// A warm instance keeps one deadline mechanism for its life, re-armed per query: a query that
// loops forever after many fast queries on the same instance, for longer than the limit in
// all, must still be stopped, by the time limit or by its caller, and the instance then dies.
func TestWarmLoopStoppedAfterManyQueries(t *testing.T) {
	const limit = time.Second
	r := newRuntime(t, Config{Timeout: limit, MemoryLimit: 32 << 20})
	p, err := r.Compile(context.Background(), build(t, "sandbox/testdata/hostile", true))
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want error
		ctx  func() (context.Context, context.CancelFunc)
	}{
		{"timeout", ErrTimeout, func() (context.Context, context.CancelFunc) {
			return context.WithTimeout(context.Background(), 30*limit) // ErrCanceled if the limit failed
		}},
		{"canceled", ErrCanceled, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			time.AfterFunc(100*time.Millisecond, cancel)
			return ctx, cancel
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in, err := r.Warm(context.Background(), p, newHost(nil, nil))
			if err != nil {
				t.Fatal(err)
			}
			defer in.Close(context.Background())
			begin := time.Now()
			for i := 0; i < 500 || time.Since(begin) < 2*limit; i++ {
				ctx, cancel := context.WithCancel(context.Background())
				got, err := in.Query(ctx, []byte("echo"))
				cancel() // a context that ends after its query must not stop a later one
				if err != nil || string(got) != "echo" {
					t.Fatalf("echo %d: %q, %v", i, got, err)
				}
			}
			ctx, cancel := c.ctx()
			defer cancel()
			if _, err := in.Query(ctx, []byte("loop")); !errors.Is(err, c.want) {
				t.Fatalf("loop: %v, want %v", err, c.want)
			}
			if _, err := in.Query(context.Background(), []byte("echo")); !errors.Is(err, c.want) || in.Err() == nil {
				t.Fatalf("dead instance answered: %v", err)
			}
		})
	}
}

// The query table keeps the last header and the bytes it came from: a query with the same
// header bytes and other rows, a query whose header only starts like the last one, and a
// malformed query in between must all parse as if read afresh.
func TestQueryTableReuse(t *testing.T) {
	var q queryTable
	read := func(req string) ([]string, []float64, int32) {
		tb := q.open([]byte(req))
		if tb.err != 0 {
			return nil, nil, -tb.err
		}
		buf := make([]float64, 16)
		var got []float64
		for {
			n := tb.fill(buf)
			if n <= 0 {
				return append([]string(nil), tb.header...), got, n
			}
			got = append(got, buf[:n]...)
		}
	}
	for i, c := range []struct {
		req    string
		header []string
		rows   []float64
		errno  int32
	}{
		{"a,b\n1,2\n", []string{"a", "b"}, []float64{1, 2}, 0},
		{"a,b\n3,4\n5,6\n", []string{"a", "b"}, []float64{3, 4, 5, 6}, 0},
		{"a,b\n7\n", []string{"a", "b"}, nil, -errnoFormat},
		{"a,b\n8,9\n", []string{"a", "b"}, []float64{8, 9}, 0},
		{"a,b", []string{"a", "b"}, nil, 0},
		{"a,bc\n1,2\n", []string{"a", "bc"}, []float64{1, 2}, 0},
		{"a,\"bc\n1\",2\n", []string{"a", "bc\n1", "2"}, nil, 0},
		{"\"a\nb\",c\n1,2\n", []string{"a\nb", "c"}, []float64{1, 2}, 0},
		{"\"a\nb\",c\n3,4\n", []string{"a\nb", "c"}, []float64{3, 4}, 0},
		{"\"a\nb\",c,d\n3,4,5\n", []string{"a\nb", "c", "d"}, []float64{3, 4, 5}, 0},
		{"", nil, nil, -errnoFormat},
		{"x\n1\n", []string{"x"}, []float64{1}, 0},
	} {
		h, rows, errno := read(c.req)
		fresh := newTable(bytes.NewReader([]byte(c.req)))
		if errno != c.errno || !slices.Equal(h, c.header) || !slices.Equal(rows, c.rows) {
			t.Fatalf("query %d %q: header %q rows %v errno %d, want %q %v %d", i, c.req, h, rows, errno, c.header, c.rows, c.errno)
		}
		if c.header != nil && !slices.Equal(fresh.header, h) {
			t.Fatalf("query %d: reused header %q, fresh %q", i, h, fresh.header)
		}
	}
}
