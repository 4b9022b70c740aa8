//go:build !((amd64 || arm64) && gc)

package machine

// haveCurg tells whether curg identifies goroutines on this platform: not
// here, so the drainer is found on the stack (see drainsOnStack).
const haveCurg = false

func curg() uintptr { return 0 }
