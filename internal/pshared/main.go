// Package pshared is the pshared command, built twice: by the root module's
// cmd/pshared (machine-local locks only) and by the cluster module's
// cmd/pshared, which passes Main the etcd forms of lock and sem.
package pshared

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	ps "github.com/processshared/processshared"
	"github.com/processshared/processshared/internal/cli"
)

// Exit statuses (see internal/cli). COMMAND's own status passes through
// lock and sem.
const (
	exitOK        = cli.ExitOK
	exitConflict  = cli.ExitConflict // lock or semaphore busy (-n), wait timed out (-w); rm: segment in use
	exitUsage     = cli.ExitUsage
	exitError     = cli.ExitError // pshared could not do its part: open, create, read or remove
	exitCannotRun = cli.ExitCannotRun
	exitNotFound  = cli.ExitNotFound
)

// The segment that holds the names of lock and sem.
const (
	segmentEnv    = "PSHARED_SEGMENT"
	sharedSize    = 4 << 20 // reserved at creation: room for about 450 semaphores
	sharedProcs   = 1024    // pshared processes attached at once
	sharedObjects = 1024    // names
)

type command struct {
	name    string
	summary string
	help    string // the text of "pshared NAME -h"
	run     func(c *command, args []string) int
}

// commands lists the subcommands, a file each, in the order help shows them.
var commands = []*command{lockCmd, semCmd, sendCmd, recvCmd, closeCmd, holderCmd, lsCmd, inspectCmd, topCmd, rmCmd, demoCmd}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

const mainHelp = `pshared: cross-process locks and semaphores for shell scripts, and a view
of the processshared segments in /dev/shm.

Usage:
  pshared lock [-w SECONDS] [-n] [-E CODE] NAME [--] COMMAND [ARG...]
  pshared sem [-j N] [-w SECONDS] [-n] [-E CODE] NAME [--] COMMAND [ARG...]
  pshared send [-0] [-w SECONDS] [-n] NAME [MSG...]
  pshared recv [-n COUNT] [-w SECONDS] [-0] NAME
  pshared close NAME
  pshared holder [--segment SEG] NAME
  pshared ls [--json] [PATTERN...]
  pshared inspect [--json] NAME
  pshared top [--once] [-d SECONDS] [SEGMENT]
  pshared rm [-f] NAME...
  pshared rm --stale [PATTERN...]
  pshared rm --object [-f] SEGMENT OBJECT...
  pshared demo [sendrecv|incdec|object]
  pshared help [COMMAND]

Commands:
%s
Examples:
  # one backup at a time on this machine, whoever starts it
  pshared lock backup -- /usr/local/bin/backup.sh

  # in a crontab: skip this run if the last one still runs
  */5 * * * * pshared lock -n sync -- rsync -a /src/ /dst/

  # at most 4 compressions at once, across every shell
  for f in *.log; do pshared sem -j 4 gzip -- gzip "$f" & done; wait

  # who holds what; then remove what crashed processes left behind
  pshared ls
  pshared rm --stale

The names used by lock and sem live in one segment per user,
/dev/shm/pshared-UID (mode 0600), created on first use. --segment NAME,
or the environment variable PSHARED_SEGMENT, chooses another; processes
that should meet must use the same one.

Exit status:
  0      success
  1      lock, sem: busy (-n) or timed out (-w), unless -E sets another code;
         rm: a segment is in use and was left alone
  2      usage error
  3      pshared failed: a segment or name could not be opened, created,
         read or removed (missing, permission denied, -j differs, ...)
  126    COMMAND could not be executed
  127    COMMAND was not found
  other  COMMAND's own exit status; 128+N if signal N killed it

%s
Run "pshared COMMAND -h" for a command's options.
`

const localOnly = `Across machines, lock and sem take --etcd ENDPOINTS in the cluster build
of pshared (the cluster module's cmd/pshared: this pshared plus --etcd),
with the same exit statuses; this build answers --etcd with status 2.
`

const withEtcd = `Across machines: lock and sem with --etcd ENDPOINTS keep the lock in etcd
(this is the cluster build), with the same exit statuses plus 4: the lock
was lost while COMMAND ran. "pshared lock --etcd x -h" tells more.
`

// Etcd runs lock or sem (cmd) with args on etcd, if args ask for it
// (--etcd); handled is false if they do not. The cluster build of pshared
// passes one to Main; the root build passes nil.
type Etcd func(cmd string, args []string) (status int, handled bool)

// Main runs pshared with args (without the program's name) and returns
// its exit status. etcd, if not nil, runs lock and sem --etcd.
func Main(args []string, etcd Etcd) int {
	if role := os.Getenv(demoRoleEnv); role != "" {
		return demoChild(role)
	}
	return run(args, etcd)
}

func run(args []string, etcd Etcd) int {
	if len(args) == 0 {
		return usageError("", "missing command")
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		if len(args) > 1 && args[0] == "help" {
			c := lookup(args[1])
			if c == nil {
				return usageError("help", "unknown command %q", args[1])
			}
			fmt.Print(c.help)
			return exitOK
		}
		fmt.Print(mainUsage(etcd != nil))
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		return usageError("", "unknown command %q", args[0])
	}
	if etcd != nil && (c.name == "lock" || c.name == "sem") {
		if status, handled := etcd(c.name, args[1:]); handled {
			return status
		}
	}
	return c.run(c, args[1:])
}

func mainUsage(etcd bool) string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	across := localOnly
	if etcd {
		across = withEtcd
	}
	return fmt.Sprintf(mainHelp, b.String(), across)
}

// usageError reports a usage error of command cmd ("" for pshared itself)
// and returns exitUsage.
func usageError(cmd, format string, args ...any) int { return cli.UsageError(cmd, format, args...) }

// failf reports an error and returns exitError.
func failf(format string, args ...any) int { return cli.Failf(format, args...) }

// newFlags returns the flag set of command c. Its errors and -h are
// reported by parseFlags, not by the flag package.
func newFlags(c string) *flag.FlagSet { return cli.NewFlags(c) }

// parseFlags parses args into fs. It returns done and the exit status when
// the command should stop: after -h (help on stdout, status 0) or a bad flag.
func parseFlags(c *command, fs *flag.FlagSet, args []string) (done bool, status int) {
	return cli.ParseFlags(fs, args, c.name, c.help)
}

// segmentFlag registers --segment on fs.
func segmentFlag(fs *flag.FlagSet) *string {
	def := os.Getenv(segmentEnv)
	if def == "" {
		def = "pshared-" + strconv.Itoa(os.Getuid())
	}
	return fs.String("segment", def, "")
}

// openShared opens the segment that holds lock and sem names, creating it if
// it does not exist.
func openShared(name string) (*ps.Segment, error) {
	seg, err := ps.OpenOrCreate(name, sharedSize, &ps.Options{
		Mode:         0o600,
		MaxProcesses: sharedProcs,
		MaxObjects:   sharedObjects,
	})
	if errors.Is(err, ps.ErrVersion) {
		// A segment left by an older pshared (or library): it cannot be
		// used, and only the operator knows whether it is still in use.
		return nil, fmt.Errorf("%w\n"+
			"segment %q was made by a version of pshared with another layout; remove it with\n"+
			"  pshared rm --stale %s     (if no process uses it any more)\n"+
			"or, when no process of the old version runs,\n"+
			"  rm -f /dev/shm/%s", err, name, name, name)
	}
	return seg, err
}

// checkObjectName reports whether name can name a lock or semaphore.
func checkObjectName(name string) error {
	if name == "" || len(name) > ps.MaxObjectNameLen || strings.ContainsRune(name, 0) {
		return fmt.Errorf("bad NAME %q: want 1 to %d bytes", name, ps.MaxObjectNameLen)
	}
	return nil
}

// guard holds the options lock and sem share: how long to wait, what to
// say and return when the wait fails (cli.Guard), and the segment.
type guard struct {
	cli.Guard
	segment *string
	etcd    *string
}

func (g *guard) register(fs *flag.FlagSet) {
	g.Register(fs)
	g.segment = segmentFlag(fs)
	g.etcd = fs.String("etcd", "", "")
}

// clusterBuild is what a user of --etcd is told to install.
const clusterBuild = `--etcd ENDPOINTS needs the cluster build of pshared (this pshared plus
--etcd), which this build leaves out so that it does not depend on etcd.
From a clone of github.com/processshared/processshared:
  (cd cluster && go install ./cmd/pshared)`

// parse parses [OPTION...] NAME [OPTION...] [--] COMMAND [ARG...].
func (g *guard) parse(c *command, fs *flag.FlagSet, args []string) (name string, argv []string, done bool, status int) {
	name, argv, done, status = g.Parse(fs, args, c.name, c.help, checkObjectName)
	if !done && *g.etcd != "" {
		return "", nil, true, usageError(c.name, "%s", clusterBuild)
	}
	return name, argv, done, status
}

// deadline returns the end of the wait, if it has one.
func (g *guard) deadline() (time.Time, bool) { return g.Deadline() }

// busy reports a failed wait (with -v) and returns the conflict status.
func (g *guard) busy(format string, args ...any) int { return g.Busy(format, args...) }

func (g *guard) say(format string, args ...any) { g.Say(format, args...) }

// lookCommand finds the program argv[0] names, before anything is locked, as
// a shell would: 127 if it does not exist, 126 if it cannot be executed.
func lookCommand(argv []string) (path string, status int) { return cli.LookCommand(argv) }

// runCommand runs the program at path with argv and returns its exit
// status; see cli.RunCommand.
func runCommand(path string, argv []string) int {
	status, _ := cli.RunCommand(path, argv, nil)
	return status
}
