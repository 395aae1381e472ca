// Waiting for worker processes with a WaitGroup: each worker Adds for
// itself, does its task and calls Done; the parent waits for all.
//
//	go run ./examples/waitgroup
//
// The program plays every part: the parent starts the program again as its
// workers, handing each an anonymous segment with processshared.Pass.
package main

import (
	"context"
	"fmt"
	"log"
	"os"
	"os/exec"

	ps "github.com/processshared/processshared"
)

const childEnv = "EXAMPLE_WAITGROUP_CHILD"

const workers = 3

func main() {
	if os.Getenv(childEnv) != "" {
		worker()
		return
	}
	seg, err := ps.NewAnonymous("waitgroup", 1<<16, nil)
	check(err)
	defer seg.Close()
	g, err := ps.NewWaitGroup(seg, "tasks")
	check(err)
	started, err := ps.NewCountingSemaphore(seg, "started", 0, 0)
	check(err)
	total, err := ps.NewArray[int64](seg, "total", 1)
	check(err)
	exe, err := os.Executable()
	check(err)
	for range workers {
		cmd := exec.Command(exe)
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		check(ps.Pass(cmd, seg))
		cmd.Env = append(cmd.Env, childEnv+"=1")
		check(cmd.Start())
		defer cmd.Wait()
	}
	// Wait only once every worker has made its Add.
	check(started.Acquire(context.Background(), workers))
	check(g.Wait()) // ErrBroken if a worker died before its Done
	fmt.Println("tasks done:", total.Load(0))
}

func worker() {
	seg, err := ps.Inherit("waitgroup")
	check(err)
	defer seg.Close()
	g, err := ps.NewWaitGroup(seg, "tasks")
	check(err)
	started, err := ps.NewCountingSemaphore(seg, "started", 0, 0)
	check(err)
	total, err := ps.NewArray[int64](seg, "total", 1)
	check(err)
	check(g.Add(1))
	check(started.Release(1))
	ps.Add(total, 0, 1) // the task
	check(g.Done())
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
