//go:build wasip1

// Command oobhost is a hostile test program: it calls the host API with a pointer far
// outside its linear memory, as a program probing the host for a way out would. The
// sandbox must end the run with a guest fault without touching memory it does not own.
package main

//go:wasmimport styx log
func hostLog(buf, n uint32)

func main() {
	hostLog(0xffff0000, 100) // 4 GiB - 64 KiB: beyond any memory the node allows
	println("the host accepted an out-of-bounds pointer")
}
