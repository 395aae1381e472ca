// Processes meeting at a Barrier: three children work in rounds, and none
// starts round r+1 before all have finished round r.
//
//	go run ./examples/barrier
//
// The program plays every part: the parent starts the program again three
// times, handing each child an anonymous segment with processshared.Pass.
package main

import (
	"fmt"
	"log"
	"os"
	"os/exec"
	"strconv"

	ps "github.com/processshared/processshared"
)

const childEnv = "EXAMPLE_BARRIER_CHILD"

const parties, rounds = 3, 2

func main() {
	if id := os.Getenv(childEnv); id != "" {
		child(id)
		return
	}
	seg, err := ps.NewAnonymous("barrier", 1<<16, nil)
	check(err)
	defer seg.Close()
	var cmds []*exec.Cmd
	exe, err := os.Executable()
	check(err)
	for i := range parties {
		cmd := exec.Command(exe)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		check(ps.Pass(cmd, seg))
		cmd.Env = append(cmd.Env, childEnv+"="+strconv.Itoa(i))
		check(cmd.Start())
		cmds = append(cmds, cmd)
	}
	for _, cmd := range cmds {
		check(cmd.Wait())
	}
	fmt.Println("all rounds done")
}

func child(id string) {
	seg, err := ps.Inherit("barrier")
	check(err)
	defer seg.Close()
	b, err := ps.NewBarrier(seg, "rounds", parties) // joins as one party
	check(err)
	for r := range rounds {
		fmt.Printf("worker %s finished round %d\n", id, r)
		if _, err := b.Wait(); err != nil {
			log.Fatal(err) // ErrBroken: another worker died
		}
	}
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
