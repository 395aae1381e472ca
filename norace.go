//go:build !race

package processshared

import "unsafe"

const raceEnabled = false

func raceAcquire(addr unsafe.Pointer)      {}
func raceReleaseMerge(addr unsafe.Pointer) {}

func raceAddr(fid fileID, off uint64) unsafe.Pointer { return nil }
