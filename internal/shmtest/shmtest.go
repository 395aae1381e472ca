// Package shmtest gives tests unique segment names and checks that they leave
// nothing behind in /dev/shm.
package shmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// Prefix starts every segment name a test makes.
const Prefix = "pstest-"

var seq atomic.Int64

// Name returns a segment name unique to this test and process, and removes
// the segment when the test ends.
func Name(t testing.TB) string {
	t.Helper()
	name := fmt.Sprintf("%s%d-%d-%s", Prefix, os.Getpid(), seq.Add(1), sanitize(t.Name()))
	if len(name) > 120 {
		name = name[:120]
	}
	t.Cleanup(func() { os.Remove(filepath.Join("/dev/shm", name)) })
	return name
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '/' || r == '.' || r == ' ' {
			return '_'
		}
		return r
	}, s)
}

// Leftovers returns the names in /dev/shm made by tests of process pid.
func Leftovers(pid int) []string {
	entries, _ := os.ReadDir("/dev/shm")
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fmt.Sprintf("%s%d-", Prefix, pid)) {
			out = append(out, e.Name())
		}
	}
	return out
}
