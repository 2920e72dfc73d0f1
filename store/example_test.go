package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/styx-tee/styx/store"
)

func Example() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "styx-store-example")
	defer os.RemoveAll(dir)

	// The engine derives this key from the sealed cluster secret.
	key := store.GenerateKey()
	s, err := store.Open(ctx, store.Config{Dir: filepath.Join(dir, "store"), Key: key})
	if err != nil {
		panic(err)
	}
	defer s.Close()

	// A Pad that may be used twice.
	for range 3 {
		n, err := s.Reserve(ctx, "use.pad1.use", 1, 2)
		if errors.Is(err, store.ErrLimitReached) {
			fmt.Println("denied:", err)
			continue
		}
		fmt.Println("admitted, uses so far:", n)
	}

	// Policy versions only go up.
	_ = s.AdvanceVersion(ctx, "policy.pad1", 2, []byte("signed policy v2"))
	err = s.AdvanceVersion(ctx, "policy.pad1", 1, []byte("signed policy v1"))
	fmt.Println("rollback refused:", errors.Is(err, store.ErrStale))

	// Output:
	// admitted, uses so far: 1
	// admitted, uses so far: 2
	// denied: store: counter "use.pad1.use" at 2: reserving 1 more would exceed limit 2
	// rollback refused: true
}
