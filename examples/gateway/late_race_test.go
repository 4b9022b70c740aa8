//go:build race

package main

import "time"

// lateBound is how late after its deadline a 504 may come. Under the race
// detector, which slows every goroutine switch and memory access several
// times, the process itself can be late (other processes share the
// cores): there a 504 may come maxLate after the latest the peer's did, the
// same HTTP round trip without the backend, measured in the same run.
func lateBound(peerMax time.Duration) time.Duration { return maxLate + max(peerMax, 0) }
