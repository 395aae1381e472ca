//go:build darwin || freebsd || linux

package processshared_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

func queue(t testing.TB, s *ps.Segment, name string, capacity, maxSize int) *ps.Queue {
	t.Helper()
	q, err := ps.NewQueue(s, name, capacity, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	return q
}

// Test messages carry their producer, sequence number and a checksum, so
// that a receiver can tell a whole message from a partial or corrupt one:
//
//	0   4  producer
//	4   4  sequence
//	8   4  CRC-32C of the bytes from 12 on
//	12  …  payload, byte i = byte(seq + i)
const msgHdr = 12

func makeMsg(producer, seq uint32, n int) []byte {
	n = max(n, msgHdr)
	m := make([]byte, n)
	binary.LittleEndian.PutUint32(m[0:], producer)
	binary.LittleEndian.PutUint32(m[4:], seq)
	for i := msgHdr; i < n; i++ {
		m[i] = byte(int(seq) + i)
	}
	binary.LittleEndian.PutUint32(m[8:], crc32.Checksum(m[msgHdr:], crc32.MakeTable(crc32.Castagnoli)))
	return m
}

// checkMsg returns the producer and sequence of a message made by makeMsg,
// or an error if it is not whole.
func checkMsg(m []byte) (producer, seq uint32, err error) {
	if len(m) < msgHdr {
		return 0, 0, fmt.Errorf("message of %d bytes, shorter than its header", len(m))
	}
	producer, seq = binary.LittleEndian.Uint32(m[0:]), binary.LittleEndian.Uint32(m[4:])
	if crc32.Checksum(m[msgHdr:], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(m[8:]) {
		return producer, seq, fmt.Errorf("message %d/%d of %d bytes fails its checksum", producer, seq, len(m))
	}
	return producer, seq, nil
}

// TestQueueBasic: order, Len and Cap, TrySend on a full queue, TryRecv on an
// empty one, ErrTooLarge, empty messages, and the ring's wrap-around with
// random sizes (every message compared).
func TestQueueBasic(t *testing.T) {
	s := create(t, 1<<20, nil)
	q := queue(t, s, "q", 4, 100)
	if q.Cap() != 4 || q.MaxSize() != 100 || q.Len() != 0 {
		t.Fatalf("Cap %d MaxSize %d Len %d", q.Cap(), q.MaxSize(), q.Len())
	}
	if _, ok, err := q.TryRecv(); ok || err != nil {
		t.Fatalf("TryRecv on empty: %v %v", ok, err)
	}
	for i := range 4 {
		if ok, err := q.TrySend([]byte{byte(i)}); !ok || err != nil {
			t.Fatalf("TrySend %d: %v %v", i, ok, err)
		}
	}
	if ok, err := q.TrySend([]byte{9}); ok || err != nil {
		t.Fatalf("TrySend on full: %v %v", ok, err)
	}
	if q.Len() != 4 {
		t.Fatalf("Len %d, want 4", q.Len())
	}
	for i := range 4 {
		m, err := q.Recv()
		if err != nil || !bytes.Equal(m, []byte{byte(i)}) {
			t.Fatalf("Recv %d: %v %v", i, m, err)
		}
	}
	if err := q.Send(make([]byte, 101)); !errors.Is(err, ps.ErrTooLarge) {
		t.Fatalf("Send of 101 bytes: %v, want ErrTooLarge", err)
	}
	if err := q.Send(nil); err != nil {
		t.Fatal(err)
	}
	if m, err := q.Recv(); err != nil || m == nil || len(m) != 0 {
		t.Fatalf("Recv of an empty message: %q %v", m, err)
	}

	// Random sizes, sent and received in random batches: the ring wraps
	// many times, with wrap markers at every offset.
	r := rand.New(rand.NewPCG(1, 2))
	var sent [][]byte
	next := 0
	for i := 0; i < 20000; {
		for k := r.IntN(5); k > 0; k-- {
			m := make([]byte, r.IntN(101))
			for j := range m {
				m[j] = byte(r.Uint32())
			}
			ok, err := q.TrySend(m)
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				break
			}
			sent = append(sent, m)
			i++
		}
		for k := r.IntN(5); k > 0; k-- {
			m, ok, err := q.TryRecv()
			if err != nil {
				t.Fatal(err)
			}
			if !ok {
				if next != len(sent) {
					t.Fatalf("TryRecv found nothing with %d queued", len(sent)-next)
				}
				break
			}
			if !bytes.Equal(m, sent[next]) {
				t.Fatalf("message %d: got %d bytes %x, sent %d bytes %x", next, len(m), m, len(sent[next]), sent[next])
			}
			next++
		}
		if q.Len() != len(sent)-next {
			t.Fatalf("Len %d, want %d", q.Len(), len(sent)-next)
		}
	}

	// Another capacity or maximum is another queue.
	if _, err := ps.NewQueue(s, "q", 5, 100); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("NewQueue with another capacity: %v", err)
	}
	if _, err := ps.NewQueue(s, "q", 4, 99); !errors.Is(err, ps.ErrMismatch) {
		t.Fatalf("NewQueue with another maximum: %v", err)
	}
	if _, err := ps.NewQueue(s, "z", 0, 99); !errors.Is(err, ps.ErrOutOfRange) {
		t.Fatalf("NewQueue of capacity 0: %v", err)
	}
}

// TestQueueRecvFunc: RecvFunc reads in place; an error from f leaves the
// message first in the queue, and so does a panic.
func TestQueueRecvFunc(t *testing.T) {
	q := queue(t, create(t, 1<<16, nil), "q", 2, 16)
	q.Send([]byte("one"))
	q.Send([]byte("two"))
	boom := errors.New("boom")
	if err := q.RecvFunc(context.Background(), func(m []byte) error { return boom }); err != boom {
		t.Fatalf("RecvFunc: %v, want boom", err)
	}
	func() {
		defer func() { recover() }()
		q.RecvFunc(context.Background(), func(m []byte) error { panic("f") })
	}()
	var got string
	if err := q.RecvFunc(context.Background(), func(m []byte) error { got = string(m); return nil }); err != nil || got != "one" {
		t.Fatalf("RecvFunc: %q %v", got, err)
	}
	b, err := q.AppendRecv(context.Background(), []byte("x:"))
	if err != nil || string(b) != "x:two" {
		t.Fatalf("AppendRecv: %q %v", b, err)
	}
}

// TestQueueContext: Recv on an empty queue and Send on a full one, cancelled
// before, cancelled during, and past a deadline; each returns ctx's error
// and leaves the queue as it was.
func TestQueueContext(t *testing.T) {
	q := queue(t, create(t, 1<<16, nil), "q", 1, 8)
	calls := map[string]func(ctx context.Context) error{
		"Recv": func(ctx context.Context) error { _, err := q.RecvContext(ctx); return err },
		"Send": func(ctx context.Context) error { return q.SendContext(ctx, []byte("full")) },
	}
	for _, name := range []string{"Recv", "Send"} {
		call := calls[name]
		if name == "Send" {
			if err := q.Send([]byte("x")); err != nil {
				t.Fatal(err)
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := call(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("%s cancelled before: %v", name, err)
		}
		ctx, cancel = context.WithCancel(context.Background())
		var err error
		wait := mustBlock(t, name, func() { err = call(ctx) })
		cancel()
		wait()
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("%s cancelled during: %v", name, err)
		}
		ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
		err = call(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("%s past its deadline: %v", name, err)
		}
	}
	if q.Len() != 1 {
		t.Fatalf("Len %d after the cancelled calls, want 1", q.Len())
	}
	if m, err := q.Recv(); err != nil || string(m) != "x" {
		t.Fatalf("Recv: %q %v", m, err)
	}
}

// TestQueueClose: Close wakes blocked receivers and senders in other
// processes; receivers drain what was queued, then each gets io.EOF; Send
// after Close returns ErrQueueClosed.
//
//	C1..C3  block in Recv (3 processes)
//	P.1     sends 300 messages, then Close
//	C*      receive until io.EOF, print their counts; the sum is 300
func TestQueueClose(t *testing.T) {
	const n, children = 300, 3
	if childtest.Role() == "recv" {
		q := queue(t, inherit(t), "q", 8, 64)
		count := 0
		for m := range q.All() {
			if _, _, err := checkMsg(m); err != nil {
				t.Fatal(err)
			}
			count++
		}
		if _, err := q.Recv(); err != io.EOF {
			t.Fatalf("Recv after the end: %v, want io.EOF", err)
		}
		fmt.Println(count)
		return
	}
	seg := create(t, 1<<20, nil)
	q := queue(t, seg, "q", 8, 64)
	var wg sync.WaitGroup
	counts := make([]int, children)
	for i := range children {
		cmd := segChild(t, seg, "recv")
		wg.Go(func() {
			out := childtest.Output(t, cmd)
			line, _, _ := bytes.Cut([]byte(out), []byte("\n"))
			counts[i], _ = strconv.Atoi(string(line))
		})
	}
	time.Sleep(100 * time.Millisecond) // let them block (not needed for correctness)
	for i := range n {
		if err := q.Send(makeMsg(0, uint32(i), 20)); err != nil {
			t.Fatal(err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Send([]byte("late")); !errors.Is(err, ps.ErrQueueClosed) {
		t.Fatalf("Send after Close: %v, want ErrQueueClosed", err)
	}
	wg.Wait()
	if sum := counts[0] + counts[1] + counts[2]; sum != n {
		t.Fatalf("receivers got %v messages, %d in all, want %d", counts, sum, n)
	}
	if _, err := q.Recv(); err != io.EOF {
		t.Fatalf("Recv after the end: %v", err)
	}
	if err := q.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	// A sender blocked on a full queue is woken by Close.
	q2 := queue(t, seg, "q2", 1, 8)
	q2.Send([]byte("a"))
	var err error
	wait := mustBlock(t, "Send on a full queue", func() { err = q2.Send([]byte("b")) })
	q2.Close()
	wait()
	if !errors.Is(err, ps.ErrQueueClosed) {
		t.Fatalf("blocked Send after Close: %v", err)
	}
}

// TestQueueSegmentClose: closing the Segment handle while Send and Recv are
// blocked makes them return ErrClosed, without a fault; later calls return
// ErrClosed too.
func TestQueueSegmentClose(t *testing.T) {
	s := create(t, 1<<16, nil)
	r := queue(t, s, "r", 1, 8)
	w := queue(t, s, "w", 1, 8)
	w.Send([]byte("x"))
	var rerr, werr error
	waitR := mustBlock(t, "Recv", func() { _, rerr = r.Recv() })
	waitW := mustBlock(t, "Send", func() { werr = w.Send([]byte("y")) })
	s.Close()
	waitR()
	waitW()
	if !errors.Is(rerr, ps.ErrClosed) || !errors.Is(werr, ps.ErrClosed) {
		t.Fatalf("Recv %v, Send %v, want ErrClosed", rerr, werr)
	}
	if err := w.Send([]byte("z")); !errors.Is(err, ps.ErrClosed) {
		t.Fatalf("Send after Close: %v", err)
	}
	if _, _, err := r.TryRecv(); !errors.Is(err, ps.ErrClosed) {
		t.Fatalf("TryRecv after Close: %v", err)
	}
	mustPanic(t, ps.ErrClosed, func() { r.Len() })
}

// TestQueueHammer: 4 producer and 4 consumer processes move 1,000,000
// messages of random sizes (12 to 300 bytes) through a queue of 64. Every
// consumer checks each message whole and, per producer, in increasing
// order; each marks the message received in a shared array of counts,
// which ends all ones: every message delivered exactly once.
func TestQueueHammer(t *testing.T) {
	const producers, consumers = 4, 4
	total := 1_000_000
	if ps.RaceEnabled || testing.Short() {
		total = 100_000
	}
	if n, err := strconv.Atoi(os.Getenv("QUEUE_HAMMER_N")); err == nil {
		total = n
	}
	per := total / producers
	switch childtest.Role() {
	case "producer":
		s := inherit(t)
		q := queue(t, s, "q", 64, 300)
		id, _ := strconv.Atoi(os.Getenv("ID"))
		r := rand.New(rand.NewPCG(uint64(id), 7))
		for i := range per {
			if err := q.Send(makeMsg(uint32(id), uint32(i), msgHdr+r.IntN(300-msgHdr+1))); err != nil {
				t.Fatal(err)
			}
		}
		return
	case "consumer":
		s := inherit(t)
		q := queue(t, s, "q", 64, 300)
		seen, err := ps.NewArray[uint32](s, "seen", total)
		if err != nil {
			t.Fatal(err)
		}
		last := make([]int64, producers)
		for i := range last {
			last[i] = -1
		}
		buf := make([]byte, 0, 300)
		for {
			m, err := q.AppendRecv(context.Background(), buf[:0])
			if err == io.EOF {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			p, seq, err := checkMsg(m)
			if err != nil {
				t.Fatal(err)
			}
			if p >= producers || int(seq) >= per || int64(seq) <= last[p] {
				t.Fatalf("message %d/%d after %d/%d", p, seq, p, last[p])
			}
			last[p] = int64(seq)
			ps.Add(seen, int(p)*per+int(seq), 1)
		}
	}
	seg := create(t, 16<<20, nil)
	q := queue(t, seg, "q", 64, 300)
	seen, err := ps.NewArray[uint32](seg, "seen", total)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var cwg sync.WaitGroup
	n := "QUEUE_HAMMER_N=" + strconv.Itoa(total) // the children's size, whatever their flags
	cwg.Go(func() { runChildren(t, seg, consumers, "consumer", n) })
	runChildren(t, seg, producers, "producer", n)
	q.Close()
	cwg.Wait()
	t.Logf("%d messages in %v", total, time.Since(start))
	bad := 0
	for i := range total {
		if n := ps.AtomicLoad(seen, i); n != 1 {
			if bad++; bad < 10 {
				t.Errorf("message %d/%d received %d times", i/per, i%per, n)
			}
		}
	}
	if bad > 0 {
		t.Fatalf("%d messages not received exactly once", bad)
	}
}

// TestQueueInspect: Inspect reports a queue's length, capacity, end of
// stream, and the goroutines blocked in Send and Recv.
func TestQueueInspect(t *testing.T) {
	s := create(t, 1<<16, nil)
	q := queue(t, s, "q", 2, 8)
	e := queue(t, s, "e", 2, 8)
	q.Send([]byte("a"))
	q.Send([]byte("b"))
	waitS := mustBlock(t, "Send", func() { q.Send([]byte("c")) })
	waitR := mustBlock(t, "Recv", func() { e.Recv() })
	si, err := s.Inspect()
	if err != nil {
		t.Fatal(err)
	}
	qs, es := objectState(t, si, "q").Queue, objectState(t, si, "e").Queue
	if qs == nil || es == nil {
		t.Fatalf("no queue state: %+v %+v", qs, es)
	}
	if qs.Len != 2 || qs.Cap != 2 || qs.Senders != 1 || qs.Receivers != 0 || qs.Closed {
		t.Errorf("full queue: %+v", *qs)
	}
	if es.Len != 0 || es.Receivers != 1 || es.Senders != 0 {
		t.Errorf("empty queue: %+v", *es)
	}
	q.Recv()
	waitS()
	e.Close()
	waitR()
	si, _ = s.Inspect()
	if es := objectState(t, si, "e").Queue; !es.Closed || es.Receivers != 0 {
		t.Errorf("closed queue: %+v", *es)
	}
}
