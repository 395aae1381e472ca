// Object transfer between processes: a child stores a Go value, ["a" "b"],
// in a Slot of shared memory; its parent loads a copy back.
//
//	go run ./examples/object
//
// The program plays both parts: the parent starts the program again as its
// child, handing it an anonymous segment with processshared.Pass.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"

	ps "github.com/processshared/processshared"
)

// childEnv is set in the environment of the child process.
const childEnv = "EXAMPLE_OBJECT_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	parent()
}

func parent() {
	// An anonymous segment has no name in /dev/shm: it disappears when the
	// last process that has it exits.
	seg, err := ps.NewAnonymous("object", 1<<20, nil)
	check(err)
	defer seg.Close()

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg)) // the child finds it with Inherit("object")
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Run())

	slot, err := ps.NewSlot(seg, "object", 1024)
	check(err)
	var v []string
	check(slot.Load(&v))
	fmt.Printf("process %d read %q\n", os.Getpid(), v)
}

func child() {
	seg, err := ps.Inherit("object")
	check(err)
	defer seg.Close()
	slot, err := ps.NewSlot(seg, "object", 1024) // values of up to 1024 encoded bytes
	check(err)
	v := []string{"a", "b"}
	check(slot.Store(v))
	fmt.Printf("process %d wrote %q\n", os.Getpid(), v)
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
