// Sending messages between processes with a Queue: the seed's send/receive
// example ([12345 67890] from a child to its parent), with the Mutex, the
// Cond and the hand-made flag replaced by one TypedQueue, and an end of
// stream.
//
//	go run ./examples/queue
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
const childEnv = "EXAMPLE_QUEUE_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	parent()
}

func parent() {
	seg, err := ps.NewAnonymous("queue", 1<<20, nil)
	check(err)
	defer seg.Close()
	q, err := ps.NewTypedQueue[[2]int64](seg, "msgs", 16)
	check(err)

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg))
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Start())

	for msg := range q.All() { // until the child's Close
		fmt.Printf("process %d received %v\n", os.Getpid(), msg)
	}
	check(cmd.Wait())
}

func child() {
	seg, err := ps.Inherit("queue")
	check(err)
	defer seg.Close()
	q, err := ps.NewTypedQueue[[2]int64](seg, "msgs", 16)
	check(err)

	data := [2]int64{12345, 67890}
	fmt.Printf("process %d sending %v\n", os.Getpid(), data)
	check(q.Send(data))
	check(q.Close()) // end of stream: the parent's loop ends
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
