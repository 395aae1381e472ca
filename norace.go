//go:build !race

package processshared

import "unsafe"

const raceEnabled = false

func raceAcquire(addr unsafe.Pointer)      {}
func raceReleaseMerge(addr unsafe.Pointer) {}
