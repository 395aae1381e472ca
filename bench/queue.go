package main

import (
	"context"
	_ "embed"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	ipcmq "bitbucket.org/avd/go-ipc/mq"
	ps "github.com/processshared/processshared"
	"golang.org/x/sys/unix"
)

// One-way transfer: process A (the parent) holds the bytes in a Go slice,
// process B (a child) ends with them in a slice of its own, checked. A sends
// back to back for the loop's duration, then ends the stream; the time is
// from A's first send to B's report that it has received everything, over
// the messages sent: ns per message, end to end.
//
// ps_queue_oneway_<size>: a processshared Queue; A's Send copies into the
// ring, B's AppendRecv into a reused buffer copies out (one copy each side).
// sock_oneway_<size>, pipe_oneway_<size>: a unix socketpair, a pipe: A's
// write(2), B's read(2) until the message is whole.
//
// Each message carries its number in its first and last 8 bytes, checked
// by B for every message; every 64th is compared in full.

var onewaySizes = []struct {
	name string
	n    int
}{{"64b", 64}, {"4k", 4 << 10}, {"64k", 64 << 10}, {"1m", 1 << 20}, {"4m", 4 << 20}, {"64m", 64 << 20}}

// queueCap is the capacity of the benchmark's queue for messages of n
// bytes: 256 small ones, about 16 MiB of large ones, at least 4 (2 of 64
// MiB: a ring of 192 MiB).
func queueCap(n int) int {
	if n >= 64<<20 {
		return 2
	}
	return max(4, min(256, (16<<20)/n))
}

// psQueueOneway is ps_queue_oneway_<size>, or with poll
// ps_queue_oneway_poll_<size>, where B's handle is made WithRecvPolling: it
// busy-polls instead of sleeping.
func psQueueOneway(size int, poll bool) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		capacity := queueCap(size)
		seg, err := ps.NewAnonymous(uniqueName("seg"), int64((capacity+1)*(size+64)+(1<<20)), nil)
		if err != nil {
			return failed(err)
		}
		defer seg.Close()
		q, err := ps.NewQueue(seg, "q", capacity, size)
		if err != nil {
			return failed(err)
		}
		role, what := "queue_recv", "AppendRecv into a reused buffer"
		if poll {
			role, what = "queue_recv_poll", "AppendRecv into a reused buffer by a polling receiver (WithRecvPolling)"
		}
		return oneway(ctx, cfg, size, role, strconv.Itoa(size), seg, nil, func(p []byte) error { return q.SendContext(ctx, p) }, func(uint64) error { return q.Close() },
			fmt.Sprintf("Queue of %d × %d bytes: Send, %s", capacity, size, what), nil)
	}
}

// psSlotOneway is ps_slot_oneway_<size>: the same transfer through a
// processshared Slot, one value in flight, handed over by two Semaphores
// (empty, full): A acquires empty, StoreBytes, releases full; B acquires
// full, AppendBytes into a reused buffer, releases empty. The end of the
// stream is an empty value.
func psSlotOneway(size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		seg, err := ps.NewAnonymous(uniqueName("seg"), int64(2*size+(1<<20)), nil)
		if err != nil {
			return failed(err)
		}
		defer seg.Close()
		sl, empty, full, err := slotOnewayObjects(seg, size)
		if err != nil {
			return failed(err)
		}
		send := func(p []byte) error {
			if err := empty.Acquire(ctx, 1); err != nil {
				return err
			}
			if err := sl.StoreBytes(p); err != nil {
				return err
			}
			return full.Release(1)
		}
		return oneway(ctx, cfg, size, "slot_recv", strconv.Itoa(size), seg, nil, send, func(uint64) error { return send(nil) },
			fmt.Sprintf("Slot of %d bytes, one value in flight, two Semaphores: StoreBytes, AppendBytes into a reused buffer", size), nil)
	}
}

func slotOnewayObjects(seg *ps.Segment, size int) (*ps.Slot, *ps.Semaphore, *ps.Semaphore, error) {
	sl, err1 := ps.NewSlot(seg, "v", size)
	empty, err2 := ps.NewCountingSemaphore(seg, "empty", 1, 1)
	full, err3 := ps.NewCountingSemaphore(seg, "full", 0, 1)
	return sl, empty, full, errors.Join(err1, err2, err3)
}

// goipcMqOneway is goipc_mq_oneway_<size>: the same transfer through
// go-ipc's FastMq (its shared-memory queue, in /dev/shm) of as many
// messages as our Queue has: Send, Receive into a reused buffer.
//
// FastMq is a priority heap, and does not keep the order of messages of
// equal priority (seen here: at capacities 8 to 256, a third of 64-byte
// messages arrive out of order; at 2, none). So B checks each message whole
// (its number in its first and last 8 bytes, its contents against that
// number), counts them and sums their numbers, which must come to the
// count and sum of 0..n-1: every message delivered once. The messages
// arriving out of order are counted and reported, not failed. The end of
// the stream is a 9-byte message holding n, since it may overtake messages
// too.
func goipcMqOneway(size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		name := uniqueName("goipcmq")
		capacity := queueCap(size)
		q, err := ipcmq.CreateFastMq(name, os.O_EXCL, 0o600, capacity, size)
		if err != nil {
			return failed(fmt.Errorf("go-ipc CreateFastMq of %d × %d bytes: %w", capacity, size, err))
		}
		defer q.Destroy()
		end := func(sent uint64) error { return q.Send(binary.LittleEndian.AppendUint64([]byte{0}, sent)) }
		extra := func(sc *scratch, sent uint64) (bool, string) {
			sum, disorder := sc.load(wSeq), sc.load(wViol)
			want := sent * (sent - 1) / 2
			return sum == want, fmt.Sprintf("sum of the numbers received %d (want %d), %d received out of order (FastMq's heap does not keep FIFO order)", sum, want, disorder)
		}
		return oneway(ctx, cfg, size, "goipc_mq_recv", strconv.Itoa(size)+"/"+name, nil, nil, q.Send, end,
			fmt.Sprintf("go-ipc v0.6.1 FastMq of %d × %d bytes: Send, Receive into a reused buffer", capacity, size), extra)
	}
}

func fdOneway(size int, kind string) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		var fds [2]int
		var err error
		switch kind {
		case "sock":
			fds, err = unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		default:
			err = unix.Pipe2(fds[:], unix.O_CLOEXEC)
			fds[0], fds[1] = fds[1], fds[0] // fds[0] writes, fds[1] reads
		}
		if err != nil {
			return failed(os.NewSyscallError(kind, err))
		}
		mine, theirs := os.NewFile(uintptr(fds[0]), kind), os.NewFile(uintptr(fds[1]), kind+"-child")
		closed := false
		closeMine := func() error {
			if !closed {
				closed = true
				if kind == "sock" {
					unix.Shutdown(fds[0], unix.SHUT_WR)
				}
				return mine.Close()
			}
			return nil
		}
		defer closeMine()
		res := oneway(ctx, cfg, size, "fd_recv", strconv.Itoa(size), nil, theirs, func(p []byte) error { return writeFull(fds[0], p) }, func(uint64) error { return closeMine() },
			fmt.Sprintf("unix %s, blocking write(2) and read(2) of %d bytes", map[string]string{"sock": "socketpair (SOCK_STREAM)", "pipe": "pipe"}[kind], size), nil)
		return res
	}
}

// oneway runs A's side: it starts B (role, with arg and seg or file), sends
// until the loop's duration is over, ends the stream, and waits for B's
// count.
//
// extra, if not nil, checks what B left in the scratch page beyond its
// count, given the number sent, and adds to the notes.
func oneway(ctx context.Context, cfg *config, size int, role, arg string, seg *ps.Segment, file *os.File, send func([]byte) error, end func(sent uint64) error, what string, extra func(sc *scratch, sent uint64) (bool, string)) result {
	sc, err := newScratch()
	if err != nil {
		return failed(err)
	}
	defer sc.close()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var files []*os.File
	if file != nil {
		files = append(files, file) // the child's fd 4
	}
	c, err := spawn(ctx, role, 1, arg, sc, seg, cancel, files...)
	if file != nil {
		file.Close()
	}
	if err != nil {
		return failed(err)
	}
	defer func() {
		if !c.got {
			c.cmd.Process.Kill()
			<-c.done
		}
	}()
	if err := sc.awaitAtLeast(ctx, wReady, 1); err != nil {
		return failed(err)
	}
	val := newValue(size)
	chunk := max(1, (4<<20)/size)
	start := time.Now()
	var i uint64
	for time.Since(start) < cfg.loopDur() || i < 16 {
		for range chunk {
			fillValue(val, i)
			if err := send(val); err != nil {
				return failed(fmt.Errorf("send %d: %w", i, err))
			}
			i++
		}
	}
	if err := end(i); err != nil {
		return failed(err)
	}
	if err := c.wait(ctx); err != nil {
		return failed(err)
	}
	elapsed := time.Since(start)
	got := sc.load(wTotal)
	ns := float64(elapsed.Nanoseconds()) / float64(i)
	mbs := float64(i) * float64(size) / elapsed.Seconds() / 1e6
	ok, note := got == i && sc.load(wErrors) == 0, ""
	if extra != nil {
		var xok bool
		xok, note = extra(sc, i)
		ok = ok && xok
		note = ", " + note
	}
	return result{ns, ok, fmt.Sprintf("one-way A→B, %s; n=%d, B received %d, %.0f MB/s, contents checked%s", what, i, got, mbs, note)}
}

// queueRecv is B's side of ps_queue_oneway_<size>, polling if poll.
func queueRecv(poll bool) func(c *childEnv) error {
	return func(c *childEnv) error {
		size, err := strconv.Atoi(c.arg)
		if err != nil {
			return err
		}
		var opts []ps.QueueOption
		if poll {
			opts = append(opts, ps.WithRecvPolling())
		}
		q, err := ps.NewQueue(c.seg, "q", queueCap(size), size, opts...)
		if err != nil {
			return err
		}
		want := newValue(size)
		buf := make([]byte, 0, size)
		c.sc.store(wReady, 1)
		for n := uint64(0); ; n++ {
			buf, err = q.AppendRecv(c.ctx, buf[:0])
			if errors.Is(err, io.EOF) {
				c.sc.store(wTotal, n)
				return nil
			}
			if err != nil {
				return err
			}
			fillValue(want, n)
			if err := checkValue(buf, want, n, n%64 == 0); err != nil {
				c.sc.add(wErrors, 1)
				return err
			}
		}
	}
}

func init() {
	childRoles["queue_recv"] = queueRecv(false)
	childRoles["queue_recv_poll"] = queueRecv(true)
	childRoles["slot_recv"] = func(c *childEnv) error {
		size, err := strconv.Atoi(c.arg)
		if err != nil {
			return err
		}
		sl, empty, full, err := slotOnewayObjects(c.seg, size)
		if err != nil {
			return err
		}
		want := newValue(size)
		buf := make([]byte, 0, size)
		c.sc.store(wReady, 1)
		for n := uint64(0); ; n++ {
			if err := full.Acquire(c.ctx, 1); err != nil {
				return err
			}
			if buf, err = sl.AppendBytes(buf[:0]); err != nil {
				return err
			}
			if err := empty.Release(1); err != nil {
				return err
			}
			if len(buf) == 0 {
				c.sc.store(wTotal, n)
				return nil
			}
			fillValue(want, n)
			if err := checkValue(buf, want, n, n%64 == 0); err != nil {
				c.sc.add(wErrors, 1)
				return err
			}
		}
	}
	childRoles["goipc_mq_recv"] = func(c *childEnv) error {
		sz, name, _ := strings.Cut(c.arg, "/")
		size, err := strconv.Atoi(sz)
		if err != nil {
			return err
		}
		q, err := ipcmq.OpenFastMq(name, 0)
		if err != nil {
			return err
		}
		defer q.Close()
		want := newValue(size)
		buf := make([]byte, size)
		c.sc.store(wReady, 1)
		var n, sum, disorder, last uint64
		total := ^uint64(0) // unknown until the end message
		for n < total {
			m, err := q.Receive(buf)
			if err != nil {
				return err
			}
			if m == 9 && buf[0] == 0 {
				total = binary.LittleEndian.Uint64(buf[1:9])
				continue
			}
			if m < 16 {
				c.sc.add(wErrors, 1)
				return fmt.Errorf("message of %d bytes", m)
			}
			k := binary.LittleEndian.Uint64(buf)
			fillValue(want, k)
			if err := checkValue(buf[:m], want, k, k%64 == 0); err != nil {
				c.sc.add(wErrors, 1)
				return err
			}
			if n > 0 && k != last+1 {
				disorder++
			}
			last = k
			sum += k
			n++
		}
		c.sc.store(wSeq, sum)
		c.sc.store(wViol, disorder)
		c.sc.store(wTotal, n)
		return nil
	}
	childRoles["fd_recv"] = func(c *childEnv) error {
		size, err := strconv.Atoi(c.arg)
		if err != nil {
			return err
		}
		const fd = 4
		want := newValue(size)
		buf := make([]byte, size)
		c.sc.store(wReady, 1)
		for n := uint64(0); ; n++ {
			if err := readFull(fd, buf); err != nil {
				c.sc.store(wTotal, n)
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil
				}
				return err
			}
			fillValue(want, n)
			if err := checkValue(buf, want, n, n%64 == 0); err != nil {
				c.sc.add(wErrors, 1)
				return err
			}
		}
	}
}

//go:embed cpeers/mq_oneway.c
var mqOnewayC []byte

// cMqOneway is c_mq_oneway_<size>: POSIX mq, at the sizes the system's
// limits allow (10 messages, as Linux's default msg_max).
func cMqOneway(name string, size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		args := []string{"-s", strconv.Itoa(size), "-m", "10", "-d", strconv.FormatInt(cfg.loopDur().Nanoseconds(), 10), "-n", name}
		return runCPeer(ctx, name, "mq_oneway", mqOnewayC, args)
	}
}

// cMqPingPong is c_mq_pingpong_<size>: the ping-pong of
// ps_queue_pingpong_64b through two POSIX mqs, one per direction (the same
// program, -p).
func cMqPingPong(name string, size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		args := []string{"-p", "-s", strconv.Itoa(size), "-m", "10", "-d", strconv.FormatInt(cfg.loopDur().Nanoseconds(), 10), "-n", name}
		return runCPeer(ctx, name, "mq_oneway", mqOnewayC, args)
	}
}

// goChanOneway is go_chan_oneway_<size>: the same transfer between two
// goroutines of one process through a channel of 256 slices: A sends a copy
// of its slice (a Go user cannot hand over a slice it goes on writing), B
// copies it into a slice of its own.
func goChanOneway(size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		ch := make(chan []byte, 256)
		done := make(chan [2]uint64)
		go func() {
			want := newValue(size)
			buf := make([]byte, size)
			var n, bad uint64
			for m := range ch {
				copy(buf, m)
				fillValue(want, n)
				if checkValue(buf, want, n, n%64 == 0) != nil {
					bad++
				}
				n++
			}
			done <- [2]uint64{n, bad}
		}()
		val := newValue(size)
		chunk := max(1, (4<<20)/size)
		start := time.Now()
		var i uint64
		for time.Since(start) < cfg.loopDur() || i < 16 {
			for range chunk {
				fillValue(val, i)
				ch <- append([]byte(nil), val...)
				i++
			}
		}
		close(ch)
		r := <-done
		elapsed := time.Since(start)
		ns := float64(elapsed.Nanoseconds()) / float64(i)
		return result{ns, r[0] == i && r[1] == 0, fmt.Sprintf("one-way between 2 goroutines, channel of 256 []byte (a copy sent, copied out), %d bytes; n=%d, %.0f MB/s, contents checked (in-process)", size, i, float64(i)*float64(size)/elapsed.Seconds()/1e6)}
	}
}

// memmoveFloor is memmove_<size>: copy of size bytes between two slices of
// one goroutine, the bandwidth floor of one copy.
func memmoveFloor(size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		src, dst := newValue(size), make([]byte, size)
		ns, n, _ := timedLoop(cfg.loopDur(), max(1, (4<<20)/size), func(k int) error {
			for range k {
				copy(dst, src)
			}
			return nil
		})
		return result{ns, dst[size-1] == src[size-1], fmt.Sprintf("copy() of %d bytes between two slices, 1 goroutine (one copy, in-process floor), n=%d, %.0f MB/s", size, n, float64(size)/ns*1e3)}
	}
}

// psQueuePingPong is ps_queue_pingpong_64b: the ping-pong protocol of
// ps_sem_pingpong through two Queues, one per direction, with 64-byte
// messages: Send, and a blocking RecvFunc (spinning first, as every wait of
// the library). Half its value is the 64 B latency; sock_pingpong_64b is the
// socketpair's round trip.
func psQueuePingPong(ctx context.Context, cfg *config) result {
	t, err := newTeam(ctx, true)
	if err != nil {
		return failed(err)
	}
	defer t.close()
	ping, err1 := ps.NewQueue(t.seg, "ping", 4, 64)
	pong, err2 := ps.NewQueue(t.seg, "pong", 4, 64)
	if err := errors.Join(err1, err2); err != nil {
		return failed(err)
	}
	if err := t.spawn("ps_queue_pong", 1, ""); err != nil {
		return failed(err)
	}
	msg := newValue(64)
	p := pingPostWait(t.sc, func() error { return ping.Send(msg) }, func(ctx context.Context) error {
		return pong.RecvFunc(ctx, func([]byte) error { return nil })
	})
	p.note = "two processshared Queues of 64-byte messages, one per direction: Send / RecvFunc(ctx)"
	r := pingpong(ctx, cfg, t, p)
	if n := pong.Len(); n != 0 {
		r.ok = false
		r.notes += fmt.Sprintf("; %d messages left in pong after the run, want 0", n)
	}
	return r
}

func init() {
	childRoles["ps_queue_pong"] = func(c *childEnv) error {
		ping, err1 := ps.NewQueue(c.seg, "ping", 4, 64)
		pong, err2 := ps.NewQueue(c.seg, "pong", 4, 64)
		if err := errors.Join(err1, err2); err != nil {
			return err
		}
		msg := newValue(64)
		return pongPostWait(c, func() error { return ping.RecvFunc(c.ctx, func([]byte) error { return nil }) }, func() error { return pong.Send(msg) })
	}
}
