//go:build darwin || freebsd || linux

package pshared

import (
	"fmt"
	"os"
	"strings"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/shmtest"
)

// TestRWMutexState: ls and inspect describe an RWMutex in words and in
// JSON: its readers, then its writer.
func TestRWMutexState(t *testing.T) {
	seg, err := ps.Create(shmtest.Name(t), 1<<16, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	rw, err := ps.NewRWMutex(seg, "rw")
	if err != nil {
		t.Fatal(err)
	}
	object := func() ps.ObjectState {
		t.Helper()
		si, err := ps.Inspect(seg.Name())
		if err != nil || len(si.Objects) != 1 {
			t.Fatalf("Inspect: %v %+v", err, si.Objects)
		}
		return si.Objects[0]
	}
	if got := objectState(object()); got != "free" {
		t.Errorf("free rwmutex: %q", got)
	}
	rw.RLock()
	o := object()
	want := fmt.Sprintf("read by pid %d ×1 (alive)", os.Getpid())
	if got := objectState(o); got != want {
		t.Errorf("read-locked: %q, want %q", got, want)
	}
	js := toJSON(ps.SegmentInfo{Objects: []ps.ObjectState{o}})
	if j := js.Objects[0].RWMutex; j == nil || j.Writer || len(j.Readers) != 1 || j.Readers[0].PID != os.Getpid() || j.Readers[0].Count != 1 || !j.Consistent {
		t.Errorf("read-locked, JSON: %+v", js.Objects[0].RWMutex)
	}
	rw.RUnlock()
	rw.Lock()
	o = object()
	if got := objectState(o); !strings.HasPrefix(got, fmt.Sprintf("writer pid %d (alive)", os.Getpid())) {
		t.Errorf("write-locked: %q", got)
	}
	js = toJSON(ps.SegmentInfo{Objects: []ps.ObjectState{o}})
	if j := js.Objects[0].RWMutex; j == nil || !j.Writer || j.WriterPID != os.Getpid() || !j.WriterAlive || len(j.Readers) != 0 {
		t.Errorf("write-locked, JSON: %+v", js.Objects[0].RWMutex)
	}
	if o.Kind.String() != "rwmutex" {
		t.Errorf("kind %q", o.Kind)
	}
	rw.Unlock()
}
