// Command recursion recurses without end.
package main

import "os"

func deep(n int) int {
	var pad [64]byte
	pad[n%64] = byte(n)
	return deep(n+1) + int(pad[(n+1)%64])
}

func main() { os.Exit(deep(0)) }
