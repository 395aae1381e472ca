//go:build darwin || freebsd || linux

package processshared_test

import (
	"errors"
	"io"
	"testing"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/childtest"
)

type qpoint struct {
	X, Y int64
	Tag  [4]byte
}

// TestTypedQueue: values of a fixed-size type cross to a child process and
// back, bit for bit; a type with a pointer is refused with ErrBadType.
//
//	P.1  sends qpoint{i, -i, "pt"} for i < 100, then Close
//	C.1  receives each, sends it back with X doubled on "back", then Close
//	P.2  receives 100 doubled points, then io.EOF
func TestTypedQueue(t *testing.T) {
	if childtest.Role() == "echo" {
		s := inherit(t)
		in, err := ps.NewTypedQueue[qpoint](s, "in", 8)
		if err != nil {
			t.Fatal(err)
		}
		back, err := ps.NewTypedQueue[qpoint](s, "back", 8)
		if err != nil {
			t.Fatal(err)
		}
		for p := range in.All() {
			p.X *= 2
			if err := back.Send(p); err != nil {
				t.Fatal(err)
			}
		}
		back.Close()
		return
	}
	seg := create(t, 1<<16, nil)
	if _, err := ps.NewTypedQueue[*int](seg, "bad", 8); !errors.Is(err, ps.ErrBadType) {
		t.Fatalf("NewTypedQueue[*int]: %v, want ErrBadType", err)
	}
	in, err := ps.NewTypedQueue[qpoint](seg, "in", 8)
	if err != nil {
		t.Fatal(err)
	}
	back, err := ps.NewTypedQueue[qpoint](seg, "back", 8)
	if err != nil {
		t.Fatal(err)
	}
	cmd := segChild(t, seg, "echo")
	childtest.Start(t, cmd)
	go func() {
		for i := range int64(100) {
			in.Send(qpoint{i, -i, [4]byte{'p', 't'}})
		}
		in.Close()
	}()
	for i := range int64(100) {
		p, err := back.Recv()
		if err != nil || p != (qpoint{2 * i, -i, [4]byte{'p', 't'}}) {
			t.Fatalf("value %d: %+v %v", i, p, err)
		}
	}
	if _, err := back.Recv(); err != io.EOF {
		t.Fatalf("after the last value: %v, want io.EOF", err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatal(err)
	}
	// A byte message of the wrong size is an error, and stays queued.
	raw := back.Queue()
	if err := raw.Send([]byte("short")); !errors.Is(err, ps.ErrQueueClosed) {
		t.Fatalf("Send on the closed queue: %v", err)
	}
}

// TestCodecQueue: values encoded with gob and with JSON; a message that does
// not decode is consumed and reported.
func TestCodecQueue(t *testing.T) {
	seg := create(t, 1<<16, nil)
	for _, c := range []ps.Codec{nil, ps.JSONCodec{}} {
		q := ps.NewCodecQueue(queue(t, seg, "q", 4, 256), c)
		want := map[string]int{"a": 1, "b": 2}
		if err := q.Send(want); err != nil {
			t.Fatal(err)
		}
		var got map[string]int
		if err := q.Recv(&got); err != nil || len(got) != 2 || got["b"] != 2 {
			t.Fatalf("%T: %v %v", c, got, err)
		}
		q.Queue().Send([]byte("\xffnot an encoding"))
		if err := q.Recv(&got); err == nil {
			t.Fatalf("%T: garbage decoded", c)
		}
		if q.Queue().Len() != 0 {
			t.Fatalf("%T: the bad message stayed", c)
		}
		if err := q.Send(make([]byte, 1000)); !errors.Is(err, ps.ErrTooLarge) {
			t.Fatalf("%T: large value: %v", c, err)
		}
	}
}
