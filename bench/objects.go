package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// Helpers of the transfer figures (queue.go), and sock_pingpong_64b: 64
// bytes through a unix socketpair to a child process, which reads all of
// them and writes them back; the parent reads them back. One op is that
// round trip: four copies through the kernel and two wake-ups; half of it
// is the socketpair's 64 B latency, next to ps_queue_pingpong_64b's.
//
// Each value carries the iteration number in its first and last 8 bytes,
// checked on every read; every 64th read is compared in full.

// fillValue writes the pattern of iteration i into p.
func fillValue(p []byte, i uint64) {
	binary.LittleEndian.PutUint64(p, i)
	binary.LittleEndian.PutUint64(p[len(p)-8:], i)
}

// checkValue checks that p is the value of iteration i (in full if full).
func checkValue(p, want []byte, i uint64, full bool) error {
	if len(p) != len(want) || binary.LittleEndian.Uint64(p) != i || binary.LittleEndian.Uint64(p[len(p)-8:]) != i {
		return fmt.Errorf("iteration %d: wrong value (length %d)", i, len(p))
	}
	if full && !bytes.Equal(p, want) {
		return fmt.Errorf("iteration %d: value differs", i)
	}
	return nil
}

func newValue(n int) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7 + 1)
	}
	return p
}

// sockObject measures the socketpair round trip of size bytes.
func sockObject(size int) func(ctx context.Context, cfg *config) result {
	return func(ctx context.Context, cfg *config) result {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return failed(os.NewSyscallError("socketpair", err))
		}
		mine, theirs := os.NewFile(uintptr(fds[0]), "sock"), os.NewFile(uintptr(fds[1]), "sock-child")
		defer mine.Close()
		t, err := newTeam(ctx, false)
		if err != nil {
			theirs.Close()
			return failed(err)
		}
		defer t.close()
		err = t.spawn("sock_echo", 1, strconv.Itoa(size), theirs) // the child's fd 4
		theirs.Close()
		if err != nil {
			return failed(err)
		}
		fd := fds[0]
		val := newValue(size)
		back := make([]byte, size)
		var i uint64
		chunk := max(1, (256<<10)/size)
		ns, n, err := timedLoop(cfg.loopDur(), chunk, func(k int) error {
			for range k {
				fillValue(val, i)
				if err := writeFull(fd, val); err != nil {
					return err
				}
				if err := readFull(fd, back); err != nil {
					return err
				}
				if err := checkValue(back, val, i, i%64 == 0); err != nil {
					return err
				}
				i++
			}
			return nil
		})
		if err != nil {
			return failed(fmt.Errorf("%w (child: %v)", err, t.failure()))
		}
		unix.Shutdown(fd, unix.SHUT_WR) // the child sees EOF and exits
		if err := t.wait(); err != nil {
			return failed(err)
		}
		echoed := t.sc.load(wTotal)
		return result{ns, echoed == i, fmt.Sprintf("%d bytes through a unix socketpair to a child process and back (blocking read/write), n=%d, child echoed %d, contents checked", size, n, echoed)}
	}
}

func writeFull(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Write(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("write", err)
		}
		p = p[n:]
	}
	return nil
}

func readFull(fd int, p []byte) error {
	for len(p) > 0 {
		n, err := unix.Read(fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("read", err)
		}
		if n == 0 {
			return io.ErrUnexpectedEOF
		}
		p = p[n:]
	}
	return nil
}

func init() {
	childRoles["sock_echo"] = func(c *childEnv) error {
		size, err := strconv.Atoi(c.arg)
		if err != nil {
			return err
		}
		const fd = 4
		buf := make([]byte, size)
		for n := uint64(0); ; n++ {
			if err := readFull(fd, buf); err != nil {
				c.sc.store(wTotal, n)
				if errors.Is(err, io.ErrUnexpectedEOF) {
					return nil
				}
				return err
			}
			if err := writeFull(fd, buf); err != nil {
				c.sc.store(wTotal, n)
				return err
			}
		}
	}
}
