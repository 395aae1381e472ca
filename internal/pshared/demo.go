package pshared

import (
	"fmt"
	"os"
	"os/exec"
	"time"

	ps "github.com/processshared/processshared"
)

// demoRoleEnv tells a pshared process started by "pshared demo" which part
// of a demo it plays. It is not meant for users.
const demoRoleEnv = "PSHARED_DEMO_ROLE"

var demoCmd = &command{
	name:    "demo",
	summary: "show Mutex, Cond and Slot at work between real processes",
	run:     runDemo,
	help: `Usage: pshared demo [sendrecv|incdec|object]...

Run the library's three examples across real processes: pshared starts
itself again as a child and hands it an anonymous shared memory segment
(processshared.Pass and Inherit). Nothing is left in /dev/shm.

  sendrecv  a child sends [12345 67890] to its parent through shared
            memory, under a Mutex, and wakes it with a Cond
  incdec    parent and child add +1 and -1 ten times each to a shared
            int under a Mutex (read, sleep, write); the sum stays 0
  object    a child stores ["a" "b"] in a Slot; the parent loads it back

With no argument, all three run, in that order. The same programs live in
the repository's examples/ directory (go run ./examples/object).

Example:
  pshared demo object

Exit status:
  0  the demos ran
  2  usage error
  3  a demo failed
`,
}

type demo struct {
	title  string
	parent func() error
	child  func(seg *ps.Segment) error
}

var demos = map[string]demo{
	"sendrecv": {"Mutex and Cond: send a message to another process", sendrecvParent, sendrecvChild},
	"incdec":   {"Mutex: two processes add +1 and -1 to a shared int", incdecParent, incdecChild},
	"object":   {"Slot: hand an object to another process", objectParent, objectChild},
}

func runDemo(c *command, args []string) int {
	fs := newFlags(c.name)
	if done, status := parseFlags(c, fs, args); done {
		return status
	}
	names := fs.Args()
	if len(names) == 0 {
		names = []string{"sendrecv", "incdec", "object"}
	}
	for _, name := range names {
		if _, ok := demos[name]; !ok {
			return usageError(c.name, "unknown demo %q (want sendrecv, incdec or object)", name)
		}
	}
	for i, name := range names {
		d := demos[name]
		if i > 0 {
			fmt.Println()
		}
		fmt.Printf("== %s\n", d.title)
		if err := d.parent(); err != nil {
			return failf("demo %s: %v", name, err)
		}
	}
	return exitOK
}

// demoChild runs the child's part of demo role, in a process that demoStart
// started.
func demoChild(role string) int {
	d, ok := demos[role]
	if !ok {
		return failf("demo: unknown role %q", role)
	}
	seg, err := ps.Inherit(role)
	if err != nil {
		return failf("demo %s: %v", role, err)
	}
	defer seg.Close()
	if err := d.child(seg); err != nil {
		return failf("demo %s: %v", role, err)
	}
	return exitOK
}

// demoStart creates the anonymous segment of demo role and starts pshared
// again as the demo's child, handing it the segment.
func demoStart(role string) (*ps.Segment, *exec.Cmd, error) {
	seg, err := ps.NewAnonymous(role, 1<<20, nil)
	if err != nil {
		return nil, nil, err
	}
	exe, err := os.Executable()
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	cmd := exec.Command(exe, "demo")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := ps.Pass(cmd, seg); err != nil {
		seg.Close()
		return nil, nil, err
	}
	cmd.Env = append(cmd.Env, demoRoleEnv+"="+role) // Pass filled cmd.Env
	if err := cmd.Start(); err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, cmd, nil
}

// sendrecvObjects finds the objects of the sendrecv demo: msg[0] is 1 once
// msg[1:] holds a message.
func sendrecvObjects(seg *ps.Segment) (*ps.Mutex, *ps.Cond, *ps.Array[int64], error) {
	m, err := ps.NewMutex(seg, "lock")
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := ps.NewCond(seg, "sent", m)
	if err != nil {
		return nil, nil, nil, err
	}
	msg, err := ps.NewArray[int64](seg, "msg", 3)
	return m, c, msg, err
}

func sendrecvParent() error {
	seg, cmd, err := demoStart("sendrecv")
	if err != nil {
		return err
	}
	defer seg.Close()
	m, c, msg, err := sendrecvObjects(seg)
	if err != nil {
		return err
	}
	m.Lock()
	for msg.Load(0) == 0 {
		c.Wait()
	}
	got := []int64{msg.Load(1), msg.Load(2)}
	m.Unlock()
	fmt.Printf("process %d received %v\n", os.Getpid(), got)
	return cmd.Wait()
}

func sendrecvChild(seg *ps.Segment) error {
	m, c, msg, err := sendrecvObjects(seg)
	if err != nil {
		return err
	}
	data := []int64{12345, 67890}
	fmt.Printf("process %d sending %v\n", os.Getpid(), data)
	m.Lock()
	msg.Store(1, data[0])
	msg.Store(2, data[1])
	msg.Store(0, 1)
	c.Signal()
	m.Unlock()
	return nil
}

// addTen adds delta to value[0] ten times, each time under m: read, sleep,
// write. Without the lock, the other process's updates would be lost.
func addTen(seg *ps.Segment, delta int64) error {
	m, err := ps.NewMutex(seg, "lock")
	if err != nil {
		return err
	}
	value, err := ps.NewArray[int64](seg, "value", 1)
	if err != nil {
		return err
	}
	for range 10 {
		m.Lock()
		v := value.Load(0)
		time.Sleep(time.Millisecond)
		value.Store(0, v+delta)
		m.Unlock()
	}
	fmt.Printf("process %d added %+d ten times\n", os.Getpid(), delta)
	return nil
}

func incdecParent() error {
	seg, cmd, err := demoStart("incdec")
	if err != nil {
		return err
	}
	defer seg.Close()
	if err := addTen(seg, +1); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		return err
	}
	value, err := ps.NewArray[int64](seg, "value", 1)
	if err != nil {
		return err
	}
	fmt.Printf("value should be zero: %d\n", value.Load(0))
	return nil
}

func incdecChild(seg *ps.Segment) error { return addTen(seg, -1) }

func objectParent() error {
	seg, cmd, err := demoStart("object")
	if err != nil {
		return err
	}
	defer seg.Close()
	if err := cmd.Wait(); err != nil {
		return err
	}
	slot, err := ps.NewSlot(seg, "object", 1024)
	if err != nil {
		return err
	}
	var got []string
	if err := slot.Load(&got); err != nil {
		return err
	}
	fmt.Printf("process %d read %q\n", os.Getpid(), got)
	return nil
}

func objectChild(seg *ps.Segment) error {
	slot, err := ps.NewSlot(seg, "object", 1024)
	if err != nil {
		return err
	}
	v := []string{"a", "b"}
	if err := slot.Store(v); err != nil {
		return err
	}
	fmt.Printf("process %d wrote %q\n", os.Getpid(), v)
	return nil
}
