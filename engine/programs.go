package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/styx-tee/styx/api"
	"github.com/styx-tee/styx/party"
	"github.com/styx-tee/styx/sandbox"
	"github.com/styx-tee/styx/store"
)

// AddProgram stores a WebAssembly module by its sha256 after checking that the sandbox accepts
// it (valid module, imports only from the host API and WASI), so a bad module fails at upload
// rather than in a job.
func (e *Engine) AddProgram(ctx context.Context, caller *party.Identity, body io.Reader, size int64) (*api.ProgramInfo, error) {
	e.rememberParty(ctx, caller)
	wasm, err := io.ReadAll(io.LimitReader(body, sandbox.MaxModuleSize+1))
	if err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "read module: %v", err)
	}
	if len(wasm) > sandbox.MaxModuleSize {
		return nil, api.Errorf(api.ErrTooLarge, "module is larger than %d bytes", sandbox.MaxModuleSize)
	}
	if _, err := e.sb.Compile(ctx, wasm); err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "module refused by the sandbox: %v", err)
	}
	sum := sha256.Sum256(wasm)
	sha := hex.EncodeToString(sum[:])
	var existing api.ProgramInfo
	if _, err := e.getJSON(ctx, store.Programs, sha, &existing); err == nil {
		return &existing, nil
	}
	if _, err := e.blobs.Stat(ctx, progBlob(sha)); err == nil {
		e.blobs.Delete(ctx, progBlob(sha)) // a leftover of a crash between blob and record
	}
	if _, err := e.blobs.Put(ctx, progBlob(sha), bytesReader(wasm)); err != nil {
		return nil, err
	}
	info := &api.ProgramInfo{SHA256: sha, Size: int64(len(wasm)), Added: e.now().UTC(), AddedBy: caller.ID().String()}
	if err := e.createJSON(ctx, store.Programs, sha, info); err != nil && !errors.Is(err, store.ErrExists) {
		return nil, err
	}
	e.log.Info("program added", "sha256", sha, "bytes", len(wasm))
	return info, nil
}

// programExists checks that a module is stored, without reading it (admission needs only that;
// the run reads it and checks its hash).
func (e *Engine) programExists(ctx context.Context, sha string) error {
	if len(sha) != 64 || !store.ValidKey(sha) {
		return api.Errorf(api.ErrBadRequest, "program %q is not a sha256 in hex", sha)
	}
	var info api.ProgramInfo
	if _, err := e.getJSON(ctx, store.Programs, sha, &info); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return api.Errorf(api.ErrNotFound, "no program %s on this node: add it with styx program add", sha)
		}
		return err
	}
	return nil
}

// compiled returns the program named sha ready to run: from the sandbox's in-memory cache when
// it holds the program, otherwise loaded from the store, checked against its name and
// compiled. The caller closes it. Taking it from the cache skips reading the module from the
// store and hashing it twice (once here, once by Compile): for a Go-built module of a few MiB
// that was a large part of a small job's cost. The cache was filled from bytes the sandbox
// hashed itself, in the TEE's memory, so it needs no second check against the store.
func (e *Engine) compiled(ctx context.Context, sha string) (*sandbox.Program, error) {
	var h [32]byte
	if len(sha) != 64 || !store.ValidKey(sha) {
		return nil, api.Errorf(api.ErrBadRequest, "program %q is not a sha256 in hex", sha)
	}
	if _, err := hex.Decode(h[:], []byte(sha)); err != nil {
		return nil, api.Errorf(api.ErrBadRequest, "program %q is not a sha256 in hex", sha)
	}
	if p := e.sb.Cached(h); p != nil {
		return p, nil
	}
	wasm, err := e.program(ctx, sha)
	if err != nil {
		return nil, err
	}
	return e.sb.Compile(ctx, wasm)
}

// program loads a stored module and checks it still hashes to its name.
func (e *Engine) program(ctx context.Context, sha string) ([]byte, error) {
	if len(sha) != 64 || !store.ValidKey(sha) {
		return nil, api.Errorf(api.ErrBadRequest, "program %q is not a sha256 in hex", sha)
	}
	var info api.ProgramInfo
	if _, err := e.getJSON(ctx, store.Programs, sha, &info); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, api.Errorf(api.ErrNotFound, "no program %s on this node: add it with styx program add", sha)
		}
		return nil, err
	}
	rc, err := e.blobs.Open(ctx, progBlob(sha))
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	wasm, err := io.ReadAll(io.LimitReader(rc, sandbox.MaxModuleSize+1))
	if err != nil {
		return nil, err
	}
	if sum := sha256.Sum256(wasm); hex.EncodeToString(sum[:]) != sha {
		return nil, fmt.Errorf("%w: program blob %s does not hash to its name", errTamperedState, sha)
	}
	return wasm, nil
}

// cachedProgram returns the program named sha if the sandbox holds it compiled, or nil.
func (e *Engine) cachedProgram(sha string) *sandbox.Program {
	var h [32]byte
	if len(sha) != 64 {
		return nil
	}
	if _, err := hex.Decode(h[:], []byte(sha)); err != nil {
		return nil
	}
	return e.sb.Cached(h)
}
