// Command pshared gives shell scripts and cron jobs machine-wide locks and
// limits on parallelism, and shows operators what processshared segments sit
// in /dev/shm, who holds which lock, and what is stale.
//
//	pshared lock [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared sem [-j N] [-w SECONDS] [-n] [-E CODE] NAME -- COMMAND...
//	pshared send [-0] [-w SECONDS] [-n] NAME [MSG...]
//	pshared recv [-n COUNT] [-w SECONDS] [-0] NAME
//	pshared close NAME
//	pshared ls [--json] [PATTERN...]
//	pshared inspect [--json] NAME
//	pshared rm [-f] NAME... | pshared rm --stale [PATTERN...]
//	pshared demo [sendrecv|incdec|object]
//
// Run "pshared help" for the details, and "pshared COMMAND -h" for each
// command's options, an example and its exit status.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	ps "github.com/processshared/processshared"
)

// Exit statuses. COMMAND's own status passes through lock and sem.
const (
	exitOK        = 0
	exitConflict  = 1 // lock or semaphore busy (-n), wait timed out (-w); rm: segment in use
	exitUsage     = 2
	exitError     = 3 // pshared could not do its part: open, create, read or remove
	exitCannotRun = 126
	exitNotFound  = 127
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
var commands = []*command{lockCmd, semCmd, sendCmd, recvCmd, closeCmd, lsCmd, inspectCmd, rmCmd, demoCmd}

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
  pshared ls [--json] [PATTERN...]
  pshared inspect [--json] NAME
  pshared rm [-f] NAME...
  pshared rm --stale [PATTERN...]
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

Run "pshared COMMAND -h" for a command's options.
`

func main() {
	if role := os.Getenv(demoRoleEnv); role != "" {
		os.Exit(demoChild(role))
	}
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
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
		fmt.Print(mainUsage())
		return exitOK
	}
	c := lookup(args[0])
	if c == nil {
		return usageError("", "unknown command %q", args[0])
	}
	return c.run(c, args[1:])
}

func mainUsage() string {
	var b strings.Builder
	for _, c := range commands {
		fmt.Fprintf(&b, "  %-8s %s\n", c.name, c.summary)
	}
	return fmt.Sprintf(mainHelp, b.String())
}

// usageError reports a usage error of command cmd ("" for pshared itself)
// and returns exitUsage.
func usageError(cmd, format string, args ...any) int {
	prefix, help := "pshared", "pshared -h"
	if cmd != "" {
		prefix, help = "pshared "+cmd, "pshared "+cmd+" -h"
	}
	fmt.Fprintf(os.Stderr, "%s: %s\nRun '%s' for usage.\n", prefix, fmt.Sprintf(format, args...), help)
	return exitUsage
}

// failf reports an error and returns exitError.
func failf(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "pshared: "+format+"\n", args...)
	return exitError
}

// newFlags returns the flag set of command c. Its errors and -h are
// reported by parseFlags, not by the flag package.
func newFlags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("pshared "+c, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// parseFlags parses args into fs. It returns done and the exit status when
// the command should stop: after -h (help on stdout, status 0) or a bad flag.
func parseFlags(c *command, fs *flag.FlagSet, args []string) (done bool, status int) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return false, 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Print(c.help)
		return true, exitOK
	default:
		return true, usageError(c.name, "%v", err)
	}
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

// guard holds the options lock and sem share: how long to wait, and what to
// say and return when the wait fails.
type guard struct {
	wait     seconds
	nowait   bool
	conflict int
	verbose  bool
	segment  *string
}

func (g *guard) register(fs *flag.FlagSet) {
	g.wait = -1
	fs.Var(&g.wait, "w", "")
	fs.Var(&g.wait, "timeout", "")
	fs.BoolVar(&g.nowait, "n", false, "")
	fs.BoolVar(&g.nowait, "nonblock", false, "")
	fs.IntVar(&g.conflict, "E", exitConflict, "")
	fs.IntVar(&g.conflict, "conflict-exit-code", exitConflict, "")
	fs.BoolVar(&g.verbose, "v", false, "")
	fs.BoolVar(&g.verbose, "verbose", false, "")
	g.segment = segmentFlag(fs)
}

// parse parses [OPTION...] NAME [OPTION...] [--] COMMAND [ARG...].
func (g *guard) parse(c *command, fs *flag.FlagSet, args []string) (name string, argv []string, done bool, status int) {
	if done, status := parseFlags(c, fs, args); done {
		return "", nil, true, status
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return "", nil, true, usageError(c.name, "missing NAME and COMMAND")
	}
	name, rest = rest[0], rest[1:]
	if len(rest) > 0 && len(rest[0]) > 1 && rest[0][0] == '-' && rest[0] != "--" {
		if done, status := parseFlags(c, fs, rest); done { // options after NAME
			return "", nil, true, status
		}
		rest = fs.Args()
	} else if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return "", nil, true, usageError(c.name, "missing COMMAND after NAME %q", name)
	}
	if err := checkObjectName(name); err != nil {
		return "", nil, true, usageError(c.name, "%v", err)
	}
	if g.conflict < 0 || g.conflict > 255 {
		return "", nil, true, usageError(c.name, "-E %d: want an exit status from 0 to 255", g.conflict)
	}
	if g.wait == 0 {
		g.nowait = true
	}
	return name, rest, false, 0
}

// deadline returns the end of the wait, if it has one.
func (g *guard) deadline() (time.Time, bool) {
	if g.wait < 0 {
		return time.Time{}, false
	}
	return time.Now().Add(time.Duration(float64(g.wait) * float64(time.Second))), true
}

// busy reports a failed wait (with -v) and returns the conflict status.
func (g *guard) busy(format string, args ...any) int {
	if g.verbose {
		fmt.Fprintf(os.Stderr, "pshared: "+format+"\n", args...)
	}
	return g.conflict
}

func (g *guard) say(format string, args ...any) {
	if g.verbose {
		fmt.Fprintf(os.Stderr, "pshared: "+format+"\n", args...)
	}
}

// seconds is a flag value: a non-negative number of seconds, -1 if unset.
type seconds float64

func (s *seconds) String() string { return strconv.FormatFloat(float64(*s), 'g', -1, 64) }

func (s seconds) duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

func (s *seconds) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e9 {
		return fmt.Errorf("want a number of seconds, at least 0")
	}
	*s = seconds(f)
	return nil
}

// lookCommand finds the program argv[0] names, before anything is locked, as
// a shell would: 127 if it does not exist, 126 if it cannot be executed.
func lookCommand(argv []string) (path string, status int) {
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) {
		err = nil // found through "." in PATH: a shell would run it
	}
	switch {
	case err == nil:
		return path, exitOK
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(os.Stderr, "pshared: %s: command not found\n", argv[0])
		return "", exitNotFound
	default:
		fmt.Fprintf(os.Stderr, "pshared: %s: cannot execute: %v\n", argv[0], errors.Unwrap(err))
		return "", exitCannotRun
	}
}

// runCommand runs the program at path with argv, connected to pshared's
// standard input, output and error, and returns its exit status (128+N if a
// signal N killed it).
//
// SIGTERM and SIGHUP sent to pshared are passed on to the command; SIGINT
// and SIGQUIT, which a terminal sends to the whole foreground process group,
// reach it without help, and pshared waits for it to exit. If pshared itself
// is killed, the kernel kills the command (PR_SET_PDEATHSIG), so that no
// command keeps running unprotected after its lock passed to another
// process; the command's own children are not covered.
// The death signal is tied to the thread that started the child
// (golang/go#27505): that thread is locked and outlives the child.
func runCommand(path string, argv []string) int {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cmd := &exec.Cmd{
		Path:        path,
		Args:        argv,
		Stdin:       os.Stdin,
		Stdout:      os.Stdout,
		Stderr:      os.Stderr,
		SysProcAttr: deathSignal(),
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGTERM, syscall.SIGHUP)
	defer func() { signal.Stop(sigs); close(sigs) }()
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pshared: %s: %v\n", argv[0], err)
		if errors.Is(err, fs.ErrNotExist) {
			return exitNotFound
		}
		return exitCannotRun
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM || s == syscall.SIGHUP {
				cmd.Process.Signal(s)
			}
		}
	}()
	cmd.Wait()
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return cmd.ProcessState.ExitCode()
	case ws.Signaled():
		return 128 + int(ws.Signal())
	default:
		return ws.ExitStatus()
	}
}
