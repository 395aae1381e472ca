package processshared

import (
	"context"
	"fmt"
	"iter"
	"reflect"
	"unsafe"
)

// A TypedQueue is a Queue of values of type T, each sent and received as
// its bytes in memory: one copy on each side and no encoding. Obtain one
// with NewTypedQueue; the zero value is not usable. T must be fixed-size and
// pointer-free, as for Array. A TypedQueue must not be copied; its promises
// are Queue's.
type TypedQueue[T any] struct {
	q *Queue
}

// NewTypedQueue returns the queue of values of type T called name in s,
// which holds up to capacity values, creating it, empty, if it does not
// exist. It returns an error matching ErrBadType if T cannot live in shared
// memory (see Array), and NewQueue's errors. The segment records only the
// size of T: a queue of another type of the same size, or a byte Queue of
// that maximum, opens as this one. Options are NewQueue's.
func NewTypedQueue[T any](s *Segment, name string, capacity int, opts ...QueueOption) (*TypedQueue[T], error) {
	var zero T
	t := reflect.TypeOf(&zero).Elem()
	if err := checkType(t); err != nil {
		return nil, fmt.Errorf("queue %q: %w", name, err)
	}
	if t.Size() > MaxQueueMessage {
		return nil, fmt.Errorf("queue %q: %w: %v has %d bytes", name, ErrBadType, t, t.Size())
	}
	q, err := NewQueue(s, name, capacity, int(t.Size()), opts...)
	if err != nil {
		return nil, err
	}
	return &TypedQueue[T]{q: q}, nil
}

// Drop releases this handle on the queue, as Queue.Drop does.
func (t *TypedQueue[T]) Drop() error { return t.q.Drop() }

// Queue returns the byte queue underneath, whose messages are the values'
// bytes.
func (t *TypedQueue[T]) Queue() *Queue { return t.q }

func valueBytes[T any](v *T) []byte {
	return unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
}

// Send sends a copy of v, as Queue.Send does.
func (t *TypedQueue[T]) Send(v T) error { return t.q.Send(valueBytes(&v)) }

// SendContext sends a copy of v, as Queue.SendContext does.
func (t *TypedQueue[T]) SendContext(ctx context.Context, v T) error {
	return t.q.SendContext(ctx, valueBytes(&v))
}

// TrySend sends a copy of v if there is room now, as Queue.TrySend does.
func (t *TypedQueue[T]) TrySend(v T) (bool, error) { return t.q.TrySend(valueBytes(&v)) }

// into returns a RecvFunc callback that copies a message into *v, or
// reports ErrCorrupt (and leaves the message) if it is not a T's size.
func (t *TypedQueue[T]) into(v *T) func([]byte) error {
	return func(m []byte) error {
		b := valueBytes(v)
		if len(m) != len(b) {
			return t.q.errorf("%w: message of %d bytes in a queue of %d-byte values", ErrCorrupt, len(m), len(b))
		}
		copy(b, m)
		return nil
	}
}

// Recv receives the oldest value, as Queue.Recv does.
func (t *TypedQueue[T]) Recv() (T, error) { return t.RecvContext(context.Background()) }

// RecvContext receives the oldest value, as Queue.RecvContext does.
func (t *TypedQueue[T]) RecvContext(ctx context.Context) (T, error) {
	var v T
	err := t.q.RecvFunc(ctx, t.into(&v))
	return v, err
}

// TryRecv receives the oldest value if one is queued, as Queue.TryRecv
// does.
func (t *TypedQueue[T]) TryRecv() (T, bool, error) {
	var v T
	ok, err := t.q.recv(context.Background(), t.into(&v), false)
	return v, ok, err
}

// Len returns the number of values queued.
func (t *TypedQueue[T]) Len() int { return t.q.Len() }

// Cap returns the most values the queue holds.
func (t *TypedQueue[T]) Cap() int { return t.q.Cap() }

// Close ends the stream, as Queue.Close does.
func (t *TypedQueue[T]) Close() error { return t.q.Close() }

// All returns an iterator over the values received, ending at the end of
// the stream or at the first error.
func (t *TypedQueue[T]) All() iter.Seq[T] {
	return func(yield func(T) bool) {
		for {
			v, err := t.Recv()
			if err != nil || !yield(v) {
				return
			}
		}
	}
}

// A CodecQueue sends values through a Queue encoded with a Codec. Obtain
// one with NewCodecQueue. The codec is not recorded in the segment: every
// process using the queue must choose the same one.
type CodecQueue struct {
	q *Queue
	c Codec
}

// NewCodecQueue returns q with values encoded by c (GobCodec if c is nil).
// An encoding longer than q.MaxSize() is refused with ErrTooLarge.
func NewCodecQueue(q *Queue, c Codec) *CodecQueue {
	if c == nil {
		c = GobCodec{}
	}
	return &CodecQueue{q: q, c: c}
}

// Queue returns the byte queue underneath.
func (c *CodecQueue) Queue() *Queue { return c.q }

// Send encodes v and sends the encoding, as Queue.Send does.
func (c *CodecQueue) Send(v any) error { return c.SendContext(context.Background(), v) }

// SendContext encodes v and sends the encoding, as Queue.SendContext does.
func (c *CodecQueue) SendContext(ctx context.Context, v any) error {
	data, err := c.c.Marshal(v)
	if err != nil {
		return c.q.errorf("encode %T: %w", v, err)
	}
	return c.q.SendContext(ctx, data)
}

// Recv receives the oldest message and decodes it into the value v points
// to, as Queue.Recv does. The message is decoded in place (Queue.RecvFunc).
// A message that does not decode is consumed all the same, and its error
// returned: it would fail again for every receiver.
func (c *CodecQueue) Recv(v any) error { return c.RecvContext(context.Background(), v) }

// RecvContext is Recv with a context, as Queue.RecvContext.
func (c *CodecQueue) RecvContext(ctx context.Context, v any) error {
	var derr error
	if err := c.q.RecvFunc(ctx, func(m []byte) error {
		derr = c.c.Unmarshal(m, v)
		return nil
	}); err != nil {
		return err
	}
	if derr != nil {
		return c.q.errorf("decode into %T: %w", v, derr)
	}
	return nil
}

// Close ends the stream, as Queue.Close does.
func (c *CodecQueue) Close() error { return c.q.Close() }
