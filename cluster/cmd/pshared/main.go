// Command pshared, built from the cluster module, runs commands under
// locks and semaphores that span machines, kept in etcd:
//
//	pshared lock --etcd ENDPOINTS [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared sem --etcd ENDPOINTS [-j N] [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//
// Its options and exit statuses are those of the root module's pshared
// (which has the machine-local forms and answers --etcd with status 2),
// plus the etcd connection's (--etcd, TLS, auth, --prefix, --ttl) and
// status 4: the lock was lost while COMMAND ran.
package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/processshared/processshared/internal/cli"
)

type command struct {
	name    string
	summary string
	help    string
	run     func(c *command, args []string) int
}

var commands = []*command{lockCmd, semCmd}

const mainHelp = `pshared (cluster build): locks and semaphores for shell scripts and cron
jobs across machines, kept in etcd.

Usage:
  pshared lock --etcd ENDPOINTS [-w SECONDS] [-n] [-E CODE] NAME [--] COMMAND [ARG...]
  pshared sem --etcd ENDPOINTS [-j N] [-w SECONDS] [-n] [-E CODE] NAME [--] COMMAND [ARG...]
  pshared help [COMMAND]

Commands:
%s
Examples:
  # one backup at a time across the fleet
  pshared lock --etcd etcd1:2379,etcd2:2379,etcd3:2379 backup -- /usr/local/bin/backup.sh

  # in a crontab on every host: skip this run if another host still runs it
  */5 * * * * pshared lock --etcd etcd1:2379 -n sync -- rsync -a /src/ /dst/

The same options and exit statuses as the machine-local pshared; without
--etcd this build refuses (status 2): use the root module's pshared.

Exit status:
  0      success
  1      busy (-n) or timed out (-w), unless -E sets another code
  2      usage error
  3      pshared failed: etcd could not be reached, the session could not
         be created, -j differs from the semaphore's, ...
  4      the lock or permit was lost while COMMAND ran (the session's lease
         expired: pshared could not reach etcd for the TTL); COMMAND got
         SIGTERM, and SIGKILL 10 s later if it still ran
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it

Run "pshared COMMAND -h" for a command's options.
`

func main() {
	os.Exit(run(os.Args[1:]))
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

func run(args []string) int {
	if len(args) == 0 {
		return cli.UsageError("", "missing command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			c := lookup(args[1])
			if c == nil {
				return cli.UsageError("help", "unknown command %q", args[1])
			}
			fmt.Print(c.help)
			return cli.ExitOK
		}
		var b strings.Builder
		for _, c := range commands {
			fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
		}
		fmt.Printf(mainHelp, b.String())
		return cli.ExitOK
	}
	c := lookup(args[0])
	if c == nil {
		return cli.UsageError("", "unknown command %q (this is the cluster build: lock and sem only)", args[0])
	}
	return c.run(c, args[1:])
}
