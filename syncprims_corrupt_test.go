//go:build linux

package processshared_test

import (
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestSyncCorruptNoHang writes random words over the Event, Barrier,
// WaitGroup and Once (and the objects after the first seven of build) and
// exercises the whole API: every call returns, none panics. It is
// FuzzCorruptSegment aimed at the new kinds, deterministic, 300 rounds.
func TestSyncCorruptNoHang(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for it := range 300 {
		name := shmtest.Name(t)
		seg, err := ps.Create(name, 96<<10, &ps.Options{MaxObjects: 16, MaxProcesses: 8, InitTimeout: 2 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		build(t, seg)
		objs, _ := seg.Objects()
		o := objs[7+r.IntN(len(objs)-7)]
		at := o.Offset + int64(r.IntN(int(o.Size)))
		data := make([]byte, 1+r.IntN(8))
		for i := range data {
			data[i] = byte(r.IntN(256))
		}
		if r.IntN(3) == 0 {
			for i := range data {
				data[i] = []byte{0, 1, 2, 0xff}[r.IntN(4)]
			}
		}
		f, _ := os.OpenFile(filepath.Join("/dev/shm", name), os.O_RDWR, 0)
		f.WriteAt(data, at)
		f.Close()
		done := make(chan struct{})
		go func() { exercise(seg); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			buf := make([]byte, 1<<20)
			n := runtime.Stack(buf, true)
			t.Fatalf("iteration %d: hang writing %x at %s+%d\n%s", it, data, o.Name, at-o.Offset, buf[:n])
		}
		seg.Close()
		os.Remove(filepath.Join("/dev/shm", name))
	}
}
