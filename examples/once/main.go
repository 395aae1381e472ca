// One-time setup shared by processes with a Once: three processes start at
// once, and exactly one of them initializes the shared state; the others
// wait for it. Had the initializer died half-way, the next would run it
// again, told so by retry.
//
//	go run ./examples/once
//
// The program plays every part: the parent starts the program again three
// times, handing each child an anonymous segment with processshared.Pass.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"

	ps "github.com/processshared/processshared"
)

const childEnv = "EXAMPLE_ONCE_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	seg, err := ps.NewAnonymous("once", 1<<16, nil)
	check(err)
	defer seg.Close()
	exe, err := os.Executable()
	check(err)
	var cmds []*exec.Cmd
	for range 3 {
		cmd := exec.Command(exe)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		check(ps.Pass(cmd, seg))
		cmd.Env = append(cmd.Env, childEnv+"=1")
		check(cmd.Start())
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		check(cmd.Wait())
	}
	runs, err := ps.NewArray[int64](seg, "runs", 1)
	check(err)
	fmt.Println("setup ran", runs.Load(0), "time(s)")
}

func child() {
	seg, err := ps.Inherit("once")
	check(err)
	defer seg.Close()
	setup, err := ps.NewOnce(seg, "setup")
	check(err)
	runs, err := ps.NewArray[int64](seg, "runs", 1)
	check(err)
	check(setup.Do(func(retry bool) error {
		if retry {
			fmt.Println("an earlier setup died or failed: cleaning up after it")
		}
		ps.Add(runs, 0, 1) // the setup itself
		return nil
	}))
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
