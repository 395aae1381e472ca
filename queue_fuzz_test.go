//go:build darwin || freebsd || linux

package processshared_test

import (
	"context"
	"errors"
	"io"
	"syscall"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
)

// useQueue uses a queue whose memory may hold garbage: every call returns
// (an error, or a message no longer than the maximum), none panics, and
// none waits past its deadline. The context forms are used because a lock
// word of garbage may name a live holder, for which a plain call would wait.
func useQueue(q *ps.Queue) error {
	q.Len()
	q.Closed()
	for range 3 {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
		m, err := q.RecvContext(ctx)
		cancel()
		if err == nil && len(m) > q.MaxSize() {
			return errors.New("Recv returned a message longer than the maximum")
		}
		if err != nil && !errors.Is(err, ps.ErrCorrupt) && !errors.Is(err, io.EOF) && !errors.Is(err, context.DeadlineExceeded) {
			return err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Millisecond)
	err := q.SendContext(ctx, []byte("after"))
	cancel()
	if err != nil && !errors.Is(err, ps.ErrCorrupt) && !errors.Is(err, ps.ErrQueueClosed) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// FuzzQueueMemory writes fuzz bytes over a queue's memory (its header,
// locks, head and tail words, futex words and ring), at a fuzz-chosen
// offset, and uses the queue: errors, never a panic or a hang. The segment
// is anonymous, written with pwrite(2), so an interrupted fuzz worker leaves
// nothing in /dev/shm.
func FuzzQueueMemory(f *testing.F) {
	s, err := ps.NewAnonymous("fuzz-queue", 1<<16, &ps.Options{MaxObjects: 4, MaxProcesses: 4})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { s.Close() })
	q, err := ps.NewQueue(s, "q", 4, 40)
	if err != nil {
		f.Fatal(err)
	}
	for _, m := range []string{"one", "two", "three"} {
		q.Send([]byte(m))
	}
	q.Recv()
	info := objectInfo(f, s, "q")
	fd := int(s.Fd())
	valid := make([]byte, info.Size)
	if _, err := syscall.Pread(fd, valid, info.Offset); err != nil {
		f.Fatal(err)
	}
	f.Add(uint16(0), []byte{})
	f.Add(uint16(128), []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})    // tail
	f.Add(uint16(256), []byte{0x08, 0, 0, 0, 0, 0x10, 0, 0})                      // head
	f.Add(uint16(256), []byte{0x09, 0, 0, 0, 0, 0x01, 0, 0})                      // head, unaligned
	f.Add(uint16(136), []byte{1, 0, 0, 0})                                        // closed
	f.Add(uint16(64), []byte{1, 0, 0, 0})                                         // producers' lock
	f.Add(uint16(192), []byte{0x05, 0, 0, 0x80})                                  // consumers' lock
	f.Add(uint16(320), []byte{0, 0, 0, 0x80})                                     // recvWord
	f.Add(uint16(576), []byte{0xf0, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff})    // a record length
	f.Add(uint16(576+16), []byte{0xff, 0xff, 0xff, 0xff, 0x20, 0x00, 0x00, 0x00}) // a wrap marker
	f.Fuzz(func(t *testing.T, at uint16, data []byte) {
		if _, err := syscall.Pwrite(fd, valid, info.Offset); err != nil {
			t.Fatal(err)
		}
		off := int64(at) % info.Size
		n := min(int64(len(data)), info.Size-off)
		if _, err := syscall.Pwrite(fd, data[:n], info.Offset+off); err != nil {
			t.Fatal(err)
		}
		if err := useQueue(q); err != nil {
			t.Fatal(err)
		}
	})
}
