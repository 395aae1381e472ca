// Package cli is the code the two pshared commands share: the root
// module's (local locks) and the cluster module's (locks on etcd). It
// holds the exit statuses, the options of lock and sem, and the running of
// COMMAND.
package cli

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
	"syscall"
	"time"
)

// Exit statuses. COMMAND's own status passes through lock and sem.
const (
	ExitOK        = 0
	ExitConflict  = 1 // lock or semaphore busy (-n), wait timed out (-w); rm: segment in use
	ExitUsage     = 2
	ExitError     = 3 // pshared could not do its part: open, create, read or remove
	ExitLost      = 4 // the lock or permit was lost while COMMAND ran (pshared --etcd)
	ExitCannotRun = 126
	ExitNotFound  = 127
)

// KillGrace is how long COMMAND has to exit after the SIGTERM that tells
// it the lock was lost, before it gets SIGKILL.
const KillGrace = 10 * time.Second

// UsageError reports a usage error of command cmd ("" for pshared itself)
// and returns ExitUsage.
func UsageError(cmd, format string, args ...any) int {
	prefix, help := "pshared", "pshared -h"
	if cmd != "" {
		prefix, help = "pshared "+cmd, "pshared "+cmd+" -h"
	}
	fmt.Fprintf(os.Stderr, "%s: %s\nRun '%s' for usage.\n", prefix, fmt.Sprintf(format, args...), help)
	return ExitUsage
}

// Failf reports an error and returns ExitError.
func Failf(format string, args ...any) int {
	fmt.Fprintf(os.Stderr, "pshared: "+format+"\n", args...)
	return ExitError
}

// NewFlags returns the flag set of command c. Its errors and -h are
// reported by ParseFlags, not by the flag package.
func NewFlags(c string) *flag.FlagSet {
	fs := flag.NewFlagSet("pshared "+c, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// ParseFlags parses args into fs, for the command name whose -h prints
// help. It returns done and the exit status when the command should stop:
// after -h (help on stdout, status 0) or a bad flag.
func ParseFlags(fs *flag.FlagSet, args []string, name, help string) (done bool, status int) {
	err := fs.Parse(args)
	switch {
	case err == nil:
		return false, 0
	case errors.Is(err, flag.ErrHelp):
		fmt.Print(help)
		return true, ExitOK
	default:
		return true, UsageError(name, "%v", err)
	}
}

// Guard holds the options lock and sem share: how long to wait, and what
// to say and return when the wait fails.
type Guard struct {
	Wait     Seconds
	NoWait   bool
	Conflict int
	Verbose  bool
}

// Register registers -w, -n, -E and -v (and their long forms) on fs.
func (g *Guard) Register(fs *flag.FlagSet) {
	g.Wait = -1
	fs.Var(&g.Wait, "w", "")
	fs.Var(&g.Wait, "timeout", "")
	fs.BoolVar(&g.NoWait, "n", false, "")
	fs.BoolVar(&g.NoWait, "nonblock", false, "")
	fs.IntVar(&g.Conflict, "E", ExitConflict, "")
	fs.IntVar(&g.Conflict, "conflict-exit-code", ExitConflict, "")
	fs.BoolVar(&g.Verbose, "v", false, "")
	fs.BoolVar(&g.Verbose, "verbose", false, "")
}

// Parse parses [OPTION...] NAME [OPTION...] [--] COMMAND [ARG...] for the
// command cmd (help is its -h text); checkName vets NAME.
func (g *Guard) Parse(fs *flag.FlagSet, args []string, cmd, help string, checkName func(string) error) (name string, argv []string, done bool, status int) {
	if done, status := ParseFlags(fs, args, cmd, help); done {
		return "", nil, true, status
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return "", nil, true, UsageError(cmd, "missing NAME and COMMAND")
	}
	name, rest = rest[0], rest[1:]
	if len(rest) > 0 && len(rest[0]) > 1 && rest[0][0] == '-' && rest[0] != "--" {
		if done, status := ParseFlags(fs, rest, cmd, help); done { // options after NAME
			return "", nil, true, status
		}
		rest = fs.Args()
	} else if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return "", nil, true, UsageError(cmd, "missing COMMAND after NAME %q", name)
	}
	if err := checkName(name); err != nil {
		return "", nil, true, UsageError(cmd, "%v", err)
	}
	if g.Conflict < 0 || g.Conflict > 255 {
		return "", nil, true, UsageError(cmd, "-E %d: want an exit status from 0 to 255", g.Conflict)
	}
	if g.Wait == 0 {
		g.NoWait = true
	}
	return name, rest, false, 0
}

// Deadline returns the end of the wait, if it has one.
func (g *Guard) Deadline() (time.Time, bool) {
	if g.Wait < 0 {
		return time.Time{}, false
	}
	return time.Now().Add(time.Duration(float64(g.Wait) * float64(time.Second))), true
}

// Busy reports a failed wait (with -v) and returns the conflict status.
func (g *Guard) Busy(format string, args ...any) int {
	g.Say(format, args...)
	return g.Conflict
}

// Say reports on stderr, with -v.
func (g *Guard) Say(format string, args ...any) {
	if g.Verbose {
		fmt.Fprintf(os.Stderr, "pshared: "+format+"\n", args...)
	}
}

// Seconds is a flag value: a non-negative number of seconds, -1 if unset.
type Seconds float64

func (s *Seconds) String() string { return strconv.FormatFloat(float64(*s), 'g', -1, 64) }

// Duration returns s as a time.Duration.
func (s Seconds) Duration() time.Duration { return time.Duration(float64(s) * float64(time.Second)) }

// Set parses v.
func (s *Seconds) Set(v string) error {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 || f > 1e9 {
		return fmt.Errorf("want a number of seconds, at least 0")
	}
	*s = Seconds(f)
	return nil
}

// LookCommand finds the program argv[0] names, before anything is locked,
// as a shell would: 127 if it does not exist, 126 if it cannot be executed.
func LookCommand(argv []string) (path string, status int) {
	path, err := exec.LookPath(argv[0])
	if errors.Is(err, exec.ErrDot) {
		err = nil // found through "." in PATH: a shell would run it
	}
	switch {
	case err == nil:
		return path, ExitOK
	case errors.Is(err, exec.ErrNotFound), errors.Is(err, fs.ErrNotExist):
		fmt.Fprintf(os.Stderr, "pshared: %s: command not found\n", argv[0])
		return "", ExitNotFound
	default:
		fmt.Fprintf(os.Stderr, "pshared: %s: cannot execute: %v\n", argv[0], errors.Unwrap(err))
		return "", ExitCannotRun
	}
}

// RunCommand runs the program at path with argv, connected to pshared's
// standard input, output and error, and returns its exit status (128+N if
// a signal N killed it).
//
// SIGTERM and SIGHUP sent to pshared are passed on to the command; SIGINT
// and SIGQUIT, which a terminal sends to the whole foreground process
// group, reach it without help, and pshared waits for it to exit. If
// pshared itself is killed, the kernel kills the command
// (PR_SET_PDEATHSIG), so that no command keeps running unprotected after
// its lock passed to another process; the command's own children are not
// covered. The death signal is tied to the thread that started the child
// (golang/go#27505): that thread is locked and outlives the child.
//
// If lost is closed while the command runs (the lock was lost), the
// command gets SIGTERM, and SIGKILL KillGrace later if it still runs;
// wasLost reports it.
func RunCommand(path string, argv []string, lost <-chan struct{}) (status int, wasLost bool) {
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
			return ExitNotFound, false
		}
		return ExitCannotRun, false
	}
	go func() {
		for s := range sigs {
			if s == syscall.SIGTERM || s == syscall.SIGHUP {
				cmd.Process.Signal(s)
			}
		}
	}()
	exited := make(chan struct{})
	lostc := make(chan bool, 1)
	go func() {
		select {
		case <-lost:
			lostc <- true
			cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-exited:
			case <-time.After(KillGrace):
				cmd.Process.Kill()
			}
		case <-exited:
			lostc <- false
		}
	}()
	cmd.Wait()
	close(exited)
	wasLost = <-lostc
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	switch {
	case !ok:
		return cmd.ProcessState.ExitCode(), wasLost
	case ws.Signaled():
		return 128 + int(ws.Signal()), wasLost
	default:
		return ws.ExitStatus(), wasLost
	}
}
