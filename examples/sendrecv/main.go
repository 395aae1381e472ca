// Sending a message between processes: a child puts [12345 67890] in shared
// memory under a Mutex and wakes its parent with a Cond.
//
//	go run ./examples/sendrecv
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
const childEnv = "EXAMPLE_SENDRECV_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		child()
		return
	}
	parent()
}

// objects finds, or creates, the shared objects both processes use:
// msg[0] is 1 once msg[1] and msg[2] hold the message.
func objects(seg *ps.Segment) (*ps.Mutex, *ps.Cond, *ps.Array[int64]) {
	m, err := ps.NewMutex(seg, "lock")
	check(err)
	sent, err := ps.NewCond(seg, "sent", m)
	check(err)
	msg, err := ps.NewArray[int64](seg, "msg", 3)
	check(err)
	return m, sent, msg
}

func parent() {
	seg, err := ps.NewAnonymous("sendrecv", 1<<20, nil)
	check(err)
	defer seg.Close()
	m, sent, msg := objects(seg)

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg))
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Start())

	m.Lock()
	for msg.Load(0) == 0 { // waits may wake spuriously: check the condition
		sent.Wait()
	}
	got := []int64{msg.Load(1), msg.Load(2)}
	m.Unlock()
	fmt.Printf("process %d received %v\n", os.Getpid(), got)
	check(cmd.Wait())
}

func child() {
	seg, err := ps.Inherit("sendrecv")
	check(err)
	defer seg.Close()
	m, sent, msg := objects(seg)

	data := []int64{12345, 67890}
	fmt.Printf("process %d sending %v\n", os.Getpid(), data)
	m.Lock()
	msg.Store(1, data[0])
	msg.Store(2, data[1])
	msg.Store(0, 1)
	sent.Signal()
	m.Unlock()
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
