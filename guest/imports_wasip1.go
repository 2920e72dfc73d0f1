//go:build wasip1

package guest

import "unsafe"

//go:wasmimport styx inputs
func hostInputs(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport styx params
func hostParams(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport styx open
func hostOpen(name unsafe.Pointer, nameLen uint32) int32

//go:wasmimport styx create
func hostCreate(name unsafe.Pointer, nameLen uint32, kind unsafe.Pointer, kindLen uint32) int32

//go:wasmimport styx read
func hostRead(h int32, buf unsafe.Pointer, n uint32) int32

//go:wasmimport styx write
func hostWrite(h int32, buf unsafe.Pointer, n uint32) int32

//go:wasmimport styx close
func hostClose(h int32) int32

//go:wasmimport styx log
func hostLog(buf unsafe.Pointer, n uint32)

//go:wasmimport styx query_request
func hostQueryRequest(buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport styx query_respond
func hostQueryRespond(buf unsafe.Pointer, n uint32) int32

//go:wasmimport styx query_open
func hostQueryOpen() int32

//go:wasmimport styx dot
func hostDot(n uint32, x, y unsafe.Pointer) float64

//go:wasmimport styx axpy
func hostAxpy(n uint32, alpha float64, x, y unsafe.Pointer)

//go:wasmimport styx scal
func hostScal(n uint32, alpha float64, x unsafe.Pointer)

//go:wasmimport styx gemv
func hostGemv(trans, m, n uint32, alpha float64, a, x unsafe.Pointer, beta float64, y unsafe.Pointer)

//go:wasmimport styx colvar
func hostColVar(m, n uint32, a, mean, out unsafe.Pointer)

//go:wasmimport styx hinge_step
func hostHingeStep(eta, lambda, bias float64, b, n uint32, xb, lb, w, mean, std, scratch unsafe.Pointer) float64

//go:wasmimport styx hinge_epoch
func hostHingeEpoch(rate, lambda, bias float64, steps int64, batch, rows, n uint32, x, labels, w, mean, std, rng, order, scratch unsafe.Pointer) float64

//go:wasmimport styx csv_header
func hostCSVHeader(h int32, buf unsafe.Pointer, capacity uint32) int32

//go:wasmimport styx csv_floats
func hostCSVFloats(h int32, dst unsafe.Pointer, n uint32) int32

//go:wasmimport styx csv_split
func hostCSVSplit(h int32, col uint32, x, y unsafe.Pointer, rows uint32) int32

//go:wasmexport styx_query
func styxQuery() int32 { return serveOne() }
