//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// TestQueuePollContext: a polling receiver (WithRecvPolling) gives up when
// its context is cancelled before and during the receive and at its
// deadline, receiving nothing; a Close of the stream and a Close of the
// segment end its poll.
func TestQueuePollContext(t *testing.T) {
	s := create(t, 1<<16, nil)
	q, err := ps.NewQueue(s, "q", 2, 8, ps.WithRecvPolling())
	if err != nil {
		t.Fatal(err)
	}
	recv := func(ctx context.Context) error { _, err := q.RecvContext(ctx); return err }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := recv(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled before: %v", err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	wait := mustBlock(t, "polling Recv", func() { err = recv(ctx) })
	cancel()
	wait()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled during: %v", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	err = recv(ctx)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("past its deadline: %v", err)
	}
	// A message sent while it polls is received, and one queued is left
	// alone by the cancelled calls above (there was none: Len is 0).
	if q.Len() != 0 {
		t.Fatalf("Len %d after the cancelled calls, want 0", q.Len())
	}
	var got []byte
	wait = mustBlock(t, "polling Recv", func() { got, err = q.Recv() })
	si, ierr := s.Inspect()
	if ierr != nil {
		t.Fatal(ierr)
	}
	if qs := objectState(t, si, "q").Queue; qs == nil || qs.Receivers != 1 {
		t.Errorf("Inspect while a polling Recv waits: %+v, want 1 receiver", qs)
	}
	if err := q.Send([]byte("x")); err != nil {
		t.Fatal(err)
	}
	wait()
	if err != nil || string(got) != "x" {
		t.Fatalf("Recv: %q, %v", got, err)
	}
	// Close of the stream: EOF.
	wait = mustBlock(t, "polling Recv", func() { _, err = q.Recv() })
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	wait()
	if err != io.EOF {
		t.Fatalf("Recv after Close: %v, want io.EOF", err)
	}
	// Close of the segment: ErrClosed.
	r, err := ps.NewQueue(s, "r", 2, 8, ps.WithRecvPolling())
	if err != nil {
		t.Fatal(err)
	}
	wait = mustBlock(t, "polling Recv", func() { _, err = r.Recv() })
	s.Close()
	wait()
	if !errors.Is(err, ps.ErrClosed) {
		t.Fatalf("Recv after the segment's Close: %v, want ErrClosed", err)
	}
}

// TestQueuePollProcesses: a polling receiver in another process receives
// every message of a sender, in order and whole, through a queue small
// enough that the sender blocks (and is woken by the poller's receives),
// then io.EOF after Close.
//
//	C.1  opens the queue WithRecvPolling, receives until io.EOF, checking
//	     each message and its sequence; prints the count
//	P.1  sends n messages of 12 to 200 bytes into a queue of 4, then Close
//	P.2  the child's count is n
func TestQueuePollProcesses(t *testing.T) {
	const n = 20000
	if childtest.Role() == "poll" {
		q, err := ps.NewQueue(inherit(t), "q", 4, 200, ps.WithRecvPolling())
		if err != nil {
			t.Fatal(err)
		}
		var count uint32
		buf := make([]byte, 0, 200)
		for {
			buf, err = q.AppendRecv(context.Background(), buf[:0])
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			_, seq, err := checkMsg(buf)
			if err != nil {
				t.Fatal(err)
			}
			if seq != count {
				t.Fatalf("message %d arrived as number %d", seq, count)
			}
			count++
		}
		fmt.Println(count)
		return
	}
	seg := create(t, 1<<20, nil)
	q := queue(t, seg, "q", 4, 200)
	type output struct {
		out []byte
		err error
	}
	done := make(chan output, 1)
	cmd := segChild(t, seg, "poll")
	go func() {
		out, err := cmd.Output()
		done <- output{out, err}
	}()
	for i := range n {
		if err := q.Send(makeMsg(0, uint32(i), 12+i%189)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	o := <-done
	if o.err != nil {
		t.Fatalf("child: %v\n%s", o.err, o.out)
	}
	line, _, _ := bytes.Cut(o.out, []byte("\n"))
	if got, err := strconv.Atoi(string(line)); err != nil || got != n {
		t.Fatalf("the polling receiver got %q messages, want %d", line, n)
	}
	t.Logf("the polling receiver (pid %d) got %s messages", cmd.Process.Pid, line)
}

// TestQueueHandlesAgainstModel: four handles of one queue (two sending, two
// receiving, each caching the other side's word it saw last) take random
// turns with TrySend and TryRecv of random sizes, wrapping the ring many
// times, and every outcome is checked against a slice: no more than Cap
// messages are ever queued, a TrySend is never refused with one message or
// none queued (a cached head that kept understating the room would be), Len
// follows, and every TryRecv returns the oldest message, whole (a cached
// word that overstated the room or the messages would break that).
func TestQueueHandlesAgainstModel(t *testing.T) {
	s := create(t, 1<<16, nil)
	const capacity, maxSize = 5, 40
	var hs [4]*ps.Queue
	for i := range hs {
		hs[i] = queue(t, s, "q", capacity, maxSize)
	}
	r := rand.New(rand.NewPCG(1, 2))
	var model [][]byte
	sent, refused := 0, 0
	for step := range 200_000 {
		if r.IntN(2) == 0 {
			m := make([]byte, r.IntN(maxSize+1))
			for i := range m {
				m[i] = byte(step + i)
			}
			ok, err := hs[r.IntN(2)].TrySend(m)
			if err != nil {
				t.Fatalf("step %d: TrySend: %v", step, err)
			}
			if ok {
				model = append(model, m)
				sent++
			} else {
				refused++
				// The ring is (5+1)·48 bytes: with at most one record of
				// 48 in it, one side or the other has room for another.
				if len(model) <= 1 {
					t.Fatalf("step %d: TrySend of %d bytes refused with %d queued", step, len(m), len(model))
				}
			}
			if len(model) > capacity {
				t.Fatalf("step %d: %d messages queued, capacity %d", step, len(model), capacity)
			}
			continue
		}
		m, ok, err := hs[2+r.IntN(2)].TryRecv()
		if err != nil {
			t.Fatalf("step %d: TryRecv: %v", step, err)
		}
		if ok != (len(model) > 0) {
			t.Fatalf("step %d: TryRecv ok=%v with %d queued", step, ok, len(model))
		}
		if ok {
			if !bytes.Equal(m, model[0]) {
				t.Fatalf("step %d: received %v, want %v", step, m, model[0])
			}
			model = model[1:]
		}
		if hs[0].Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, hs[0].Len(), len(model))
		}
	}
	t.Logf("%d sent, %d refused (full)", sent, refused)
}
