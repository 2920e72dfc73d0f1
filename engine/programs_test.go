package engine

import (
	"context"
	"strings"
	"testing"

	"github.com/styx-tee/styx/api"
)

// A job runs the program the sandbox compiled when it was added, from the sandbox's cache in
// the TEE's memory, without reading the stored module again; once the cache is cold (after a
// restart) the stored module is read and checked again, and one that no longer hashes to its
// name is refused.
func TestJobRunsProgramFromCompiledCache(t *testing.T) {
	ctx := context.Background()
	w, restart := newRestartableWorld(t)
	e := w.e
	if err := e.blobs.Delete(ctx, progBlob(w.prog)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.blobs.Put(ctx, progBlob(w.prog), strings.NewReader("not the program")); err != nil {
		t.Fatal(err)
	}
	if st := w.runHere(t); st.State != api.JobDone {
		t.Fatalf("job with the program compiled in memory: %s (%s), want done", st.State, fmtAPIErr(st.Error))
	}
	restart()
	st := w.runHere(t)
	if st.State != api.JobFailed || st.Error == nil || !strings.Contains(st.Error.Message, "does not hash to its name") {
		t.Fatalf("job with a cold cache and a replaced module: %s (%s), want failed: does not hash to its name", st.State, fmtAPIErr(st.Error))
	}
}
