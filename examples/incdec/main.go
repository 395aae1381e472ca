// Two processes update one shared int under a Mutex: the parent adds +1 ten
// times, the child -1 ten times, each time reading, sleeping and writing
// back. The lock keeps every update: the value ends at zero.
//
//	go run ./examples/incdec
//
// The program plays both parts: the parent starts the program again as its
// child, handing it an anonymous segment with processshared.Pass.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"time"

	ps "github.com/processshared/processshared"
)

// childEnv is set in the environment of the child process.
const childEnv = "EXAMPLE_INCDEC_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		seg, err := ps.Inherit("incdec")
		check(err)
		defer seg.Close()
		addTen(seg, -1)
		return
	}

	seg, err := ps.NewAnonymous("incdec", 1<<20, nil)
	check(err)
	defer seg.Close()

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg))
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Start())

	addTen(seg, +1) // while the child adds -1
	check(cmd.Wait())

	value, err := ps.NewArray[int64](seg, "value", 1)
	check(err)
	fmt.Printf("value should be zero: %d\n", value.Load(0))
}

// addTen adds delta to the shared value ten times, under the shared lock.
func addTen(seg *ps.Segment, delta int64) {
	m, err := ps.NewMutex(seg, "lock")
	check(err)
	value, err := ps.NewArray[int64](seg, "value", 1)
	check(err)
	for range 10 {
		m.Lock()
		v := value.Load(0)
		time.Sleep(time.Millisecond) // the other process would overwrite us here, without the lock
		value.Store(0, v+delta)
		m.Unlock()
	}
	fmt.Printf("process %d added %+d ten times\n", os.Getpid(), delta)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
