// Command pshared is the cluster build of pshared: the root module's
// pshared (machine-local locks and semaphores, ls, inspect, rm, demo) plus
// lock and sem --etcd, whose locks are kept in etcd and span machines:
//
//	pshared lock --etcd ENDPOINTS [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared sem --etcd ENDPOINTS [-j N] [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//
// The --etcd forms take the local forms' options and exit statuses, so
// that a cron job moves from one host to many by adding a flag, plus the
// etcd connection's (TLS, auth, --prefix, --ttl) and status 4: the lock
// was lost while COMMAND ran. Run "pshared lock --etcd x -h".
package main

import (
	"os"

	"github.com/processshared/processshared/internal/pshared"
)

func main() {
	os.Exit(pshared.Main(os.Args[1:], runEtcd))
}

// runEtcd runs lock or sem with args if they hold --etcd (or -h).
func runEtcd(cmd string, args []string) (status int, handled bool) {
	switch cmd {
	case "lock":
		return etcdLock(args)
	case "sem":
		return etcdSem(args)
	}
	return 0, false
}
