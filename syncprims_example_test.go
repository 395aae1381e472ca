//go:build darwin || freebsd || linux

package processshared_test

import (
	"errors"
	"fmt"
	"log"

	ps "github.com/processshared/processshared"
)

// An auto-reset Event releases one waiter per Set. (Setter and waiter are
// in one process here; examples/event has them in two.)
func ExampleEvent() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	ready, err := ps.NewEvent(seg, "ready", true)
	if err != nil {
		log.Fatal(err)
	}
	ready.Set()
	fmt.Println("set:", ready.IsSet())
	ready.Wait() // takes the Set
	fmt.Println("set after Wait:", ready.IsSet())
	// Output:
	// set: true
	// set after Wait: false
}

// A Barrier's Wait returns each party's arrival index; a party that gives
// up breaks it for everyone until Reset.
func ExampleBarrier() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	b, err := ps.NewBarrier(seg, "b", 1) // one party: Wait never blocks
	if err != nil {
		log.Fatal(err)
	}
	idx, err := b.Wait()
	fmt.Println(idx, err)
	// Output: 0 <nil>
}

// A WaitGroup whose Adds are all matched by Dones releases Wait.
func ExampleWaitGroup() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	g, err := ps.NewWaitGroup(seg, "tasks")
	if err != nil {
		log.Fatal(err)
	}
	g.Add(2)
	g.Done()
	g.Done() // from any process
	fmt.Println(g.Wait(), g.Count())
	// Output: <nil> 0
}

// A Once whose function fails runs it again at the next Do, which is told.
func ExampleOnce() {
	seg, err := ps.NewAnonymous("example", 1<<16, nil)
	if err != nil {
		log.Fatal(err)
	}
	defer seg.Close()
	o, err := ps.NewOnce(seg, "setup")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(o.Do(func(retry bool) error { return errors.New("disk full") }))
	fmt.Println(o.Do(func(retry bool) error { fmt.Println("retry:", retry); return nil }))
	fmt.Println(o.Do(func(retry bool) error { panic("not run again") }))
	// Output:
	// disk full
	// retry: true
	// <nil>
	// <nil>
}
