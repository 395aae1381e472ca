package processshared

import (
	"errors"
	"fmt"
)

// ErrClosed is returned when a Segment, or an object inside it, is used after
// the Segment was closed, or when an object handle is used after its Drop.
var ErrClosed = errors.New("processshared: segment is closed")

// ErrDeleted is returned by a blocking call on an object handle when the
// object was deleted (Segment.Delete), by this process or another, after
// the handle was obtained.
var ErrDeleted = errors.New("processshared: object was deleted")

// ErrNotSegment is returned when a file is not a processshared segment: its
// magic number is wrong or it is too short to hold a header.
var ErrNotSegment = errors.New("processshared: not a processshared segment")

// ErrVersion is returned when a segment was written with another layout version.
var ErrVersion = errors.New("processshared: unsupported segment layout version")

// ErrTruncated is returned when a segment's file is shorter than its header says.
var ErrTruncated = errors.New("processshared: segment file is truncated")

// ErrCorrupt is returned when a value read from shared memory is out of range:
// another process wrote garbage into the segment.
var ErrCorrupt = errors.New("processshared: corrupt shared memory")

// ErrNotInitialized is returned when a segment's creator did not finish
// initializing it within the wait bound.
var ErrNotInitialized = errors.New("processshared: segment was not initialized in time")

// ErrInvalidName is returned for a segment or object name that is empty, too
// long, or contains a forbidden character.
var ErrInvalidName = errors.New("processshared: invalid name")

// ErrNoSpace is returned when a segment has no room left for a new object, or
// its directory is full.
var ErrNoSpace = errors.New("processshared: segment is full")

// ErrTooManyProcesses is returned when a segment's process table is full.
var ErrTooManyProcesses = errors.New("processshared: too many processes attached to the segment")

// ErrMismatch is returned when a named object exists with another kind, size or
// element type than the caller asked for.
var ErrMismatch = errors.New("processshared: object exists with another kind or size")

// ErrOutOfRange is returned for an offset, index or length outside an object.
var ErrOutOfRange = errors.New("processshared: offset out of range")

// ErrBadType is returned when a type cannot live in shared memory: it has
// size zero, or it is or contains a pointer, uintptr, unsafe.Pointer, string,
// slice, map, channel, function or interface.
var ErrBadType = errors.New("processshared: type cannot live in shared memory")

// ErrTooLarge is returned when a value does not fit in an object slot.
var ErrTooLarge = errors.New("processshared: value too large for slot")

// ErrEmpty is returned when reading an object slot that was never written.
var ErrEmpty = errors.New("processshared: slot is empty")

// ErrChecksum is returned when a value read from an object slot, stored
// with a checksum (WithChecksum), fails it: another process wrote into the
// slot's memory behind the library's back. (A writer that dies mid-write
// never causes it: the slot keeps the previous value.)
var ErrChecksum = errors.New("processshared: slot value fails its checksum")

// ErrQueueClosed is returned by a Queue's Send after Close ended the
// queue's stream.
var ErrQueueClosed = errors.New("processshared: queue is closed")

// ErrNotInherited is returned by Inherit when the process was not handed the
// named segment by its parent.
var ErrNotInherited = errors.New("processshared: segment was not inherited")

// ErrOwnerDead is returned when a lock is acquired whose previous holder died
// while holding it. The caller holds the lock; the state it protects may be
// inconsistent.
var ErrOwnerDead = errors.New("processshared: previous owner died while holding the lock")

// ErrNotOwner is matched by a *NotOwnerError.
var ErrNotOwner = errors.New("processshared: unlock by a process that does not hold the lock")

// ErrNotHeld is returned when Release of a Semaphore of owned permits
// releases more permits than the Segment handle holds: a bug in the caller,
// which would otherwise create permits.
var ErrNotHeld = errors.New("processshared: release of semaphore permits not held")

// ErrBroken is returned by a Barrier's Wait once the barrier is broken (a
// registered party died, or a waiter's context ended) and by a WaitGroup's
// Wait once a process holding Adds died, until Reset.
var ErrBroken = errors.New("processshared: broken by a dead process or an abandoned wait")

// ErrOverflow is returned when a Release would raise a Semaphore past its maximum.
var ErrOverflow = errors.New("processshared: semaphore released past its maximum")

// A NotOwnerError records an Unlock by a process that does not hold the Mutex.
// It matches ErrNotOwner.
type NotOwnerError struct {
	Object    string // the mutex's name
	HolderPID int    // the process holding the mutex, or 0 if it was unlocked
	CallerPID int    // the process that tried to unlock it
}

func (e *NotOwnerError) Error() string {
	if e.HolderPID == 0 {
		return fmt.Sprintf("processshared: unlock of unlocked mutex %q by pid %d", e.Object, e.CallerPID)
	}
	return fmt.Sprintf("processshared: mutex %q is held by pid %d, not by pid %d", e.Object, e.HolderPID, e.CallerPID)
}

// Is reports whether target is ErrNotOwner.
func (e *NotOwnerError) Is(target error) bool { return target == ErrNotOwner }

// An OwnerDeadError records the acquisition of a lock whose previous holder
// died. It matches ErrOwnerDead.
type OwnerDeadError struct {
	Object  string // the lock's name
	DeadPID int    // the process that died holding it, or 0 if not known
}

func (e *OwnerDeadError) Error() string {
	if e.DeadPID == 0 {
		return fmt.Sprintf("processshared: previous owner of %q died while holding it", e.Object)
	}
	return fmt.Sprintf("processshared: previous owner of %q (pid %d) died while holding it", e.Object, e.DeadPID)
}

// Is reports whether target is ErrOwnerDead.
func (e *OwnerDeadError) Is(target error) bool { return target == ErrOwnerDead }
