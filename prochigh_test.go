//go:build darwin || freebsd || linux

package processshared_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"syscall"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// highSlotExtra is how many more handles TestOwnedPermitsHighSlotKilled
// opens before its child attaches: the child's slot is then highSlotExtra+1,
// past the 1024 slots of the largest table there used to be.
const highSlotExtra = 2000

// TestOwnedPermitsHighSlotKilled: in a segment of MaxProcessesLimit slots,
// a process attached at a high table index that holds an owned Semaphore
// permit and is SIGKILLed gives it back to a waiter: the waiter's scans,
// bounded by procHigh, see its slot.
//
//	P.1  P creates the segment (its handle in slot 0) and semaphore jobs
//	     with 2 permits, and opens highSlotExtra more handles of it (slots
//	     1 to highSlotExtra).
//	C.1  C inherits the segment: the lowest free slot, highSlotExtra+1,
//	     raising procHigh to highSlotExtra+2. It acquires 1 permit (holder
//	     mode, C the holder), prints its slot and waits on its input.
//	P.2  P checks C's slot and procHigh, and closes its extra handles:
//	     slots 1 to highSlotExtra are free again, procHigh stays.
//	P.3  P acquires 1 permit: the other process holding one, its take
//	     spills C's permit to C's held entry (table mode), which P checks.
//	P.4  P's second Acquire(1) blocks. Its sleep watches C's live word
//	     (watchOthers: the only other live slot, below procHigh), and no
//	     other process's: it does not poll where the kernel reports deaths.
//	P.5  P SIGKILLs C. The kernel marks C's live word dead and wakes P's
//	     sleeper; P's reclaim of table mode (bounded by procHigh) finds C's
//	     entry dead and returns its permit, which the Acquire takes.
//	P.6  Every permit back, P releases both: value 2.
func TestOwnedPermitsHighSlotKilled(t *testing.T) {
	if childtest.Role() == "hold" {
		s := inherit(t)
		sem := semaphore(t, s, "jobs", 2, 2)
		if err := sem.Acquire(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
		fmt.Printf("slot %d procHigh %d\n", ps.SlotOf(s), ps.ProcHigh(s))
		bufio.NewReader(os.Stdin).ReadString('\n') // until killed
		return
	}
	name := shmtest.Name(t)
	seg, err := ps.Create(name, 8<<20, &ps.Options{MaxProcesses: ps.MaxProcessesLimit})
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	sem := semaphore(t, seg, "jobs", 2, 2)
	extra := make([]*ps.Segment, 0, highSlotExtra)
	defer func() {
		for _, h := range extra {
			h.Close()
		}
	}()
	for range highSlotExtra {
		h, err := ps.Open(name)
		if err != nil {
			t.Fatal(err)
		}
		extra = append(extra, h)
	}

	c := segChild(t, seg, "hold")
	stdin, err := c.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childtest.Start(t, c)
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("child: %v (%q)", err, line)
	}
	var slot, high int
	if _, err := fmt.Sscanf(line, "slot %d procHigh %d", &slot, &high); err != nil {
		t.Fatalf("child said %q: %v", line, err)
	}
	if slot != highSlotExtra+1 || high != highSlotExtra+2 {
		t.Fatalf("child in slot %d with procHigh %d, want %d and %d", slot, high, highSlotExtra+1, highSlotExtra+2)
	}
	for _, h := range extra {
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
	extra = nil
	if h := ps.ProcHigh(seg); h != highSlotExtra+2 {
		t.Fatalf("procHigh %d after the extra handles closed, want %d (never lowered)", h, highSlotExtra+2)
	}

	if err := sem.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if id, n, table := ps.SemaphoreEntry(sem, slot); !table || id == 0 || n != 1 {
		t.Fatalf("after P's Acquire: the child's entry holds identity %#x, %d permits, table mode %v; want the child's, 1, true", id, n, table)
	}
	wait := mustBlock(t, "Acquire(1) with the child holding the last permit", func() {
		if err := sem.Acquire(context.Background(), 1); err != nil {
			t.Error(err)
		}
	})
	if err := c.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	c.Wait()
	wait()
	if _, n, _ := ps.SemaphoreEntry(sem, slot); n != 0 {
		t.Fatalf("the dead child's entry still counts %d permits", n)
	}
	if err := sem.Release(2); err != nil {
		t.Fatal(err)
	}
	if v := sem.Value(); v != 2 {
		t.Fatalf("value %d after every permit came back, want 2", v)
	}
}
