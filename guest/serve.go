package guest

import "unsafe"

// Handler answers one query. req is valid only until the handler returns (the next query
// reuses its memory); the host copies the answer, so a handler may reuse that too.
type Handler func(req []byte) ([]byte, error)

var (
	handler Handler
	reqBuf  []byte // the current query, reused: in WebAssembly every allocation is dear
)

// Serve registers h as the program's query handler. Call it from an init function of a
// reactor program (built with -buildmode=c-shared): the sandbox runs the initialisation
// once, then calls h once per query on the same warm instance, one query at a time.
func Serve(h Handler) { handler = h }

// serveOne runs the handler on the current query; it is the body of the styx_query
// export. A non-zero result tells the host the query failed.
func serveOne() int32 {
	if handler == nil {
		Logf("guest: no query handler registered")
		return 1
	}
	req, err := fetchInto(reqBuf[:0], hostQueryRequest)
	reqBuf = req[:0]
	if err != nil {
		Logf("guest: reading the query: %v", err)
		return 2
	}
	resp, err := handler(req)
	if err != nil {
		Logf("guest: query failed: %v", err)
		return 3
	}
	if n := hostQueryRespond(unsafe.Pointer(unsafe.SliceData(resp)), uint32(len(resp))); n < 0 {
		Logf("guest: answering the query: %v", errno(n))
		return 4
	}
	return 0
}
