package processshared_test

import (
	"fmt"
	"os"
	"testing"

	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestMain fails the run if the tests of this process left segments behind.
func TestMain(m *testing.M) {
	code := m.Run()
	if childtest.Role() == "" {
		if left := shmtest.Leftovers(os.Getpid()); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "tests left segments in /dev/shm: %v\n", left)
			code = 1
		}
	}
	os.Exit(code)
}
