//go:build freebsd

package processshared

import (
	"os"

	"golang.org/x/sys/unix"
)

// shmDir is where named segments live; see memfd_none.go.
const shmDir = "/tmp/processshared"

// symlinkErrno is what open(2) with O_NOFOLLOW returns for a symbolic link:
// EMLINK on FreeBSD.
const symlinkErrno = unix.EMLINK

// processStatus returns (0, false): neither the start time of a process nor
// whether it is a zombie is known on FreeBSD (both are in sysctl
// kern.proc.pid's struct kinfo_proc, which golang.org/x/sys does not decode
// there). So a process that died is recognized only once its parent has
// reaped it, and one whose pid was reused by then is taken for alive.
func processStatus(pid int) (start uint64, exited bool) { return 0, false }

// placeholderFlags are the extra flags of the mapping Close leaves in a
// segment's place (none: the system has no MAP_NORESERVE, and untouched
// anonymous pages cost nothing).
const placeholderFlags = 0

// selfStart returns this process's start time (see processStatus).
func selfStart() uint64 { return processStart(os.Getpid()) }

// pidNamespace returns 0: the system has no PID namespaces.
func pidNamespace() uint64 { return 0 }
