// Signalling between processes with an Event: the child waits until the
// parent sets a manual-reset event, and answers on an auto-reset one.
//
//	go run ./examples/event
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

const childEnv = "EXAMPLE_EVENT_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	seg, err := ps.NewAnonymous("event", 1<<16, nil)
	check(err)
	defer seg.Close()
	start, err := ps.NewEvent(seg, "start", false) // manual-reset
	check(err)
	done, err := ps.NewEvent(seg, "done", true) // auto-reset
	check(err)

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg))
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Start())

	fmt.Println("parent: go")
	check(start.Set())
	check(done.Wait())
	fmt.Println("parent: the child is done")
	check(cmd.Wait())
}

func child() {
	seg, err := ps.Inherit("event")
	check(err)
	defer seg.Close()
	start, err := ps.NewEvent(seg, "start", false)
	check(err)
	done, err := ps.NewEvent(seg, "done", true)
	check(err)
	check(start.Wait())
	fmt.Println("child: started")
	check(done.Set())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
