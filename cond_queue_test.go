//go:build darwin || freebsd || linux

package processshared_test

import (
	"fmt"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

// A boundedQueue is the textbook bounded queue in shared memory: one Mutex,
// two Conds (notFull, notEmpty), a ring of queueCap slots, and Broadcast on
// close. Every field but the Conds is guarded by mu.
type boundedQueue struct {
	mu                *ps.Mutex
	notFull, notEmpty *ps.Cond
	ring              *ps.Array[int64]
	seen              *ps.Array[uint8] // how often each message was received
	head, count       *int64
	closed, producers *int64
}

const queueCap = 8

func openQueue(t *testing.T, s *ps.Segment, msgs int) *boundedQueue {
	t.Helper()
	ring, err := ps.NewArray[int64](s, "ring", queueCap)
	if err != nil {
		t.Fatal(err)
	}
	seen, err := ps.NewArray[uint8](s, "seen", msgs)
	if err != nil {
		t.Fatal(err)
	}
	mu := mutex(t, s, "mu")
	return &boundedQueue{
		mu:        mu,
		notFull:   cond(t, s, "notFull", mu),
		notEmpty:  cond(t, s, "notEmpty", mu),
		ring:      ring,
		seen:      seen,
		head:      counter(t, s, "head"),
		count:     counter(t, s, "count"),
		closed:    counter(t, s, "closed"),
		producers: counter(t, s, "producers"),
	}
}

func (q *boundedQueue) put(v int64) {
	q.mu.Lock()
	for *q.count == queueCap {
		q.notFull.Wait()
	}
	q.ring.Store(int((*q.head+*q.count)%queueCap), v)
	*q.count++
	q.notEmpty.Signal()
	q.mu.Unlock()
}

// get returns the next message, or false once the queue is closed and
// empty.
func (q *boundedQueue) get() (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for *q.count == 0 && *q.closed == 0 {
		q.notEmpty.Wait()
	}
	if *q.count == 0 {
		return 0, false
	}
	v := q.ring.Load(int(*q.head))
	*q.head = (*q.head + 1) % queueCap
	*q.count--
	q.notFull.Signal()
	return v, true
}

// producerDone counts a producer out; the last one closes the queue and
// wakes every consumer.
func (q *boundedQueue) producerDone(producers int) {
	q.mu.Lock()
	*q.producers++
	if *q.producers == int64(producers) {
		*q.closed = 1
		q.notEmpty.Broadcast()
	}
	q.mu.Unlock()
}

// TestCondBoundedQueue moves PSTEST_QUEUE_MSGS messages (default 50,000;
// the figure is 100,000) through a bounded queue of 8 slots, from
// 2 producer processes to 2 consumer processes, PSTEST_QUEUE_RUNS times
// (default 1). Every message must arrive exactly once, and each run must
// end well before its deadline: a lost wake-up hangs a producer or a
// consumer, and the failure then shows the queue's and the Conds' state.
func TestCondBoundedQueue(t *testing.T) {
	const producers, consumers = 2, 2
	msgs := envInt("PSTEST_QUEUE_MSGS", 50000)
	msgs -= msgs % producers
	switch childtest.Role() {
	case "producer":
		id, _ := strconv.Atoi(os.Getenv("ID"))
		q := openQueue(t, inherit(t), msgs)
		for i := id; i < msgs; i += producers {
			q.put(int64(i))
		}
		q.producerDone(producers)
		return
	case "consumer":
		q := openQueue(t, inherit(t), msgs)
		for {
			v, ok := q.get()
			if !ok {
				return
			}
			q.mu.Lock()
			if v < 0 || v >= int64(msgs) {
				q.mu.Unlock()
				panic(fmt.Sprintf("received %d, not a message", v))
			}
			q.seen.Store(int(v), q.seen.Load(int(v))+1)
			q.mu.Unlock()
		}
	}
	runs := envInt("PSTEST_QUEUE_RUNS", 1)
	for run := range runs {
		seg := create(t, 1<<20+int64(msgs), nil)
		q := openQueue(t, seg, msgs)
		var wg sync.WaitGroup
		errs := make(chan error, producers+consumers)
		start := func(role string, id int) {
			cmd := segChild(t, seg, role, "ID="+strconv.Itoa(id), "PSTEST_QUEUE_MSGS="+strconv.Itoa(msgs))
			cmd.Stderr = nil
			wg.Go(func() {
				if out, err := cmd.CombinedOutput(); err != nil {
					errs <- fmt.Errorf("%s %d: %v\n%s", role, id, err, out)
				}
			})
		}
		for i := range producers {
			start("producer", i)
		}
		for i := range consumers {
			start("consumer", i)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(60 * time.Second):
			_, fw, fs := ps.CondWords(q.notFull)
			_, ew, es := ps.CondWords(q.notEmpty)
			t.Fatalf("run %d hung: count %d closed %d producers done %d; notFull %d waiters %d signals; notEmpty %d waiters %d signals",
				run, *q.count, *q.closed, *q.producers, fw, fs, ew, es)
		}
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		if t.Failed() {
			t.Fatalf("run %d failed", run)
		}
		bad := 0
		for i := range msgs {
			if n := q.seen.Load(i); n != 1 {
				if bad++; bad <= 5 {
					t.Errorf("run %d: message %d received %d times", run, i, n)
				}
			}
		}
		if bad > 0 {
			t.Fatalf("run %d: %d of %d messages not received exactly once", run, bad, msgs)
		}
		seg.Close()
	}
	if runs > 1 {
		t.Logf("%d runs of %d messages passed", runs, msgs)
	}
}
