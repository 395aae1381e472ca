// A writer and a reader in two processes share a record under an RWMutex:
// the parent writes the record under Lock, the child reads it under RLock
// and can never see it half-written.
//
//	go run ./examples/rwmutex
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
const childEnv = "EXAMPLE_RWMUTEX_CHILD"

func main() {
	if os.Getenv(childEnv) != "" {
		seg, err := ps.Inherit("rwmutex")
		check(err)
		defer seg.Close()
		rw, record := open(seg)
		rw.RLock() // any number of readers, in any processes, at once
		fmt.Printf("reader: version %d, %d\n", record.Load(0), record.Load(1))
		rw.RUnlock()
		return
	}

	seg, err := ps.NewAnonymous("rwmutex", 1<<20, nil)
	check(err)
	defer seg.Close()
	rw, record := open(seg)
	rw.Lock() // one writer, and no reader meanwhile
	record.Store(0, 1)
	record.Store(1, 100)
	rw.Unlock()

	exe, err := os.Executable()
	check(err)
	cmd := exec.Command(exe)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	check(ps.Pass(cmd, seg))
	cmd.Env = append(cmd.Env, childEnv+"=1")
	check(cmd.Run())
}

func open(seg *ps.Segment) (*ps.RWMutex, *ps.Array[int64]) {
	rw, err := ps.NewRWMutex(seg, "lock")
	check(err)
	record, err := ps.NewArray[int64](seg, "record", 2)
	check(err)
	return rw, record
}

func check(err error) {
	if err != nil {
		log.Fatal(err)
	}
}
