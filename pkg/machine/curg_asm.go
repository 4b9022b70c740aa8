//go:build (amd64 || arm64) && gc

package machine

// haveCurg tells whether curg identifies goroutines on this platform.
const haveCurg = true

// curg returns an identity of the calling goroutine: the address of its
// runtime descriptor, which stays the same while the goroutine lives and
// which no other live goroutine shares. It is only compared, never
// dereferenced.
func curg() uintptr
