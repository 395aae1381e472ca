package main

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"

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

func psQueueOneway(size int) func(ctx context.Context, cfg *config) result {
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
		return oneway(ctx, cfg, size, "queue_recv", seg, nil, func(p []byte) error { return q.SendContext(ctx, p) }, q.Close,
			fmt.Sprintf("Queue of %d × %d bytes: Send, AppendRecv into a reused buffer", capacity, size))
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
		res := oneway(ctx, cfg, size, "fd_recv", nil, theirs, func(p []byte) error { return writeFull(fds[0], p) }, closeMine,
			fmt.Sprintf("unix %s, blocking write(2) and read(2) of %d bytes", map[string]string{"sock": "socketpair (SOCK_STREAM)", "pipe": "pipe"}[kind], size))
		return res
	}
}

// oneway runs A's side: it starts B (role, with seg or file), sends until
// the loop's duration is over, ends the stream, and waits for B's count.
func oneway(ctx context.Context, cfg *config, size int, role string, seg *ps.Segment, file *os.File, send func([]byte) error, end func() error, what string) result {
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
	c, err := spawn(ctx, role, 1, strconv.Itoa(size), sc, seg, cancel, files...)
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
	if err := end(); err != nil {
		return failed(err)
	}
	if err := c.wait(ctx); err != nil {
		return failed(err)
	}
	elapsed := time.Since(start)
	got := sc.load(wTotal)
	ns := float64(elapsed.Nanoseconds()) / float64(i)
	mbs := float64(i) * float64(size) / elapsed.Seconds() / 1e6
	return result{ns, got == i && sc.load(wErrors) == 0, fmt.Sprintf("one-way A→B, %s; n=%d, B received %d, %.0f MB/s, contents checked", what, i, got, mbs)}
}

func init() {
	childRoles["queue_recv"] = func(c *childEnv) error {
		size, err := strconv.Atoi(c.arg)
		if err != nil {
			return err
		}
		q, err := ps.NewQueue(c.seg, "q", queueCap(size), size)
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
// the library). Half its value is the 64 B latency; sock_64b is the
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
