//go:build !race

package main

import "time"

// lateBound is how late after its deadline a 504 may come: maxLate, as
// measured, whatever the peer saw.
func lateBound(time.Duration) time.Duration { return maxLate }
