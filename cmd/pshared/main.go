// Command pshared gives shell scripts and cron jobs machine-wide locks and
// limits on parallelism, and shows operators what processshared segments sit
// in /dev/shm, who holds which lock, and what is stale.
//
//	pshared lock [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared sem [-j N] [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared send [-0] [-w SECONDS] [-n] NAME [MSG...]
//	pshared recv [-n COUNT] [-w SECONDS] [-0] NAME
//	pshared close NAME
//	pshared holder [--segment SEG] NAME
//	pshared ls [--json] [PATTERN...]
//	pshared inspect [--json] NAME
//	pshared top [--once] [-d SECONDS] [SEGMENT]
//	pshared rm [-f] NAME... | pshared rm --stale [PATTERN...]
//	pshared demo [sendrecv|incdec|object]
//
// Run "pshared help" for the details, and "pshared COMMAND -h" for each
// command's options, an example and its exit status.
//
// This build has no etcd: lock and sem --etcd exit 2 and name the cluster
// module's build of pshared, which adds them (the code is shared, in
// internal/pshared and internal/cli).
package main

import (
	"os"

	"github.com/processshared/processshared/internal/pshared"
)

func main() {
	os.Exit(pshared.Main(os.Args[1:], nil))
}
