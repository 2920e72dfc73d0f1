package sandbox

import (
	"context"
	"errors"
	"fmt"
)

// Pool serves queries from up to size warm instances of one program in parallel. An
// instance that dies (fault, timeout) is replaced by a fresh one on the next query.
type Pool struct {
	r       *Runtime
	p       *Program
	newHost func() Host
	free    chan *Instance // nil entries are slots to warm lazily
}

// NewPool creates a pool of size slots; newHost returns the Host of a new instance.
// Instances are warmed on first use.
func (r *Runtime) NewPool(p *Program, size int, newHost func() Host) (*Pool, error) {
	if size <= 0 {
		return nil, fmt.Errorf("sandbox: pool size %d", size)
	}
	pl := &Pool{r: r, p: p, newHost: newHost, free: make(chan *Instance, size)}
	for range size {
		pl.free <- nil
	}
	return pl, nil
}

// Query answers req on a free instance, waiting for one if all are busy.
func (pl *Pool) Query(ctx context.Context, req []byte) ([]byte, error) {
	var in *Instance
	select {
	case in = <-pl.free:
	case <-ctx.Done():
		return nil, &RunError{Err: ErrCanceled, Op: "query", Detail: ctx.Err().Error()}
	}
	if in == nil {
		var err error
		if in, err = pl.r.Warm(ctx, pl.p, pl.newHost()); err != nil {
			pl.free <- nil
			return nil, err
		}
	}
	resp, err := in.Query(ctx, req)
	if in.Err() != nil {
		in = nil
	}
	pl.free <- in
	return resp, err
}

// Close closes every idle instance; call it once no query is running.
func (pl *Pool) Close(ctx context.Context) error {
	var errs []error
	for range cap(pl.free) {
		if in := <-pl.free; in != nil {
			errs = append(errs, in.Close(ctx))
		}
	}
	return errors.Join(errs...)
}
