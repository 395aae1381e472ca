//go:build darwin || freebsd || linux

package pshared

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/processshared/processshared/internal/shmtest"
)

// binDir holds the pshared binary the tests run, built once by TestMain
// (with -race when the tests have it).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pshared-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", filepath.Join(dir, "pshared")}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, "../../cmd/pshared")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	if left := shmtest.Leftovers(os.Getpid()); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "tests left segments in /dev/shm: %v\n", left)
		code = 1
	}
	os.Exit(code)
}

// segmentEnv returns the environment that points pshared at a segment of
// its own for this test, removed when the test ends.
func segEnv(t *testing.T) (name string, env []string) {
	name = shmtest.Name(t)
	return name, []string{segmentEnv + "=" + name}
}

// shell returns a command that runs script with sh -c, in dir, as a user
// would: pshared on PATH, env added to the environment.
func shell(t *testing.T, dir string, env []string, script string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
	// A race-enabled binary sleeps a second before a successful exit
	// (atexit_sleep_ms) unless told not to.
	cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"))
	cmd.Env = append(cmd.Env, env...)
	cmd.Dir = dir
	cmd.WaitDelay = 5 * time.Second
	return cmd
}

type result struct {
	code           int
	stdout, stderr string
}

// sh runs script (see shell) to the end and returns its exit status and
// output.
func sh(t *testing.T, dir string, env []string, script string) result {
	t.Helper()
	cmd := shell(t, dir, env, script)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if _, ok := err.(*exec.ExitError); err != nil && !ok {
		t.Fatalf("sh -c %q: %v", script, err)
	}
	return result{cmd.ProcessState.ExitCode(), stdout.String(), stderr.String()}
}

// want checks a result's exit status, and that its stderr matches re.
func (r result) want(t *testing.T, what string, code int, stderr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit status %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(stderr).MatchString(r.stderr) {
		t.Errorf("%s: stderr %q does not match %q", what, r.stderr, stderr)
	}
}

// A holder is a pshared process running a command that holds a lock or a
// permit until its stdin closes.
type holder struct {
	cmd    *exec.Cmd // pshared itself (the shell execs it)
	stdin  io.WriteCloser
	inner  int // the command's pid
	stderr bytes.Buffer
}

// startHolder runs "pshared ARGS -- cat" (ARGS, e.g. "lock L") and returns
// once cat runs, holding the lock or permit. It stops it at cleanup.
func startHolder(t *testing.T, env []string, args string) *holder {
	t.Helper()
	h := &holder{cmd: shell(t, t.TempDir(), env, "exec pshared "+args+` -- sh -c 'echo $$; exec cat >/dev/null'`)}
	h.stdin, _ = h.cmd.StdinPipe()
	stdout, _ := h.cmd.StdoutPipe()
	h.cmd.Stderr = &h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
		waitGone(t, h.inner)
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if h.inner, _ = strconv.Atoi(strings.TrimSpace(line)); h.inner == 0 {
		t.Fatalf("pshared %s: said %q (%v); stderr %s", args, line, err, h.stderr.String())
	}
	return h
}

// release ends the holder's command and checks that pshared exits 0.
func (h *holder) release(t *testing.T) {
	t.Helper()
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Errorf("holder: %v; stderr %s", err, h.stderr.String())
	}
}

// kill kills pshared with SIGKILL, as an operator's kill -9 would.
func (h *holder) kill(t *testing.T) {
	t.Helper()
	syscall.Kill(h.cmd.Process.Pid, syscall.SIGKILL)
	h.cmd.Wait()
}

// waitGone waits until process pid has exited (a zombie counts as gone),
// failing the test after 10 seconds.
func waitGone(t *testing.T, pid int) {
	t.Helper()
	if pid <= 0 {
		return
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && bytes.HasPrefix(stat[i+1:], []byte(" Z")) {
			return
		}
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Errorf("process %d still runs after its pshared was killed", pid)
			return
		}
	}
}

func TestUsage(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	for _, args := range []string{
		"",
		"bogus",
		"help bogus",
		"lock",
		"lock L",
		"lock L --",
		"lock -w x L -- true",
		"lock -w -1 L -- true",
		"lock -E 256 L -- true",
		"lock --bogus L -- true",
		"lock L -q -- true",
		"lock '' -- true",
		"lock " + strings.Repeat("n", 97) + " -- true",
		"sem -j 0 S -- true",
		"sem -j x S -- true",
		"sem S",
		"ls --bogus",
		"ls '['",
		"inspect",
		"inspect a b",
		"rm",
		"rm -f --stale",
		"rm --stale '['",
		"demo bogus",
	} {
		sh(t, dir, env, "pshared "+args).want(t, "pshared "+args, exitUsage, `(?m)^pshared.*: .+\nRun 'pshared.*-h' for usage\.\n$`)
	}
}

func TestHelp(t *testing.T) {
	dir := t.TempDir()
	for _, args := range []string{"-h", "--help", "help"} {
		r := sh(t, dir, nil, "pshared "+args)
		r.want(t, "pshared "+args, exitOK, "^$")
		for _, c := range commands {
			if !strings.Contains(r.stdout, "  "+c.name+" ") {
				t.Errorf("pshared %s does not list %s:\n%s", args, c.name, r.stdout)
			}
		}
		if !strings.Contains(r.stdout, "Exit status:") || !strings.Contains(r.stdout, "Examples:") {
			t.Errorf("pshared %s: no exit status or examples:\n%s", args, r.stdout)
		}
	}
	for _, c := range commands {
		for _, args := range []string{c.name + " -h", c.name + " --help", "help " + c.name} {
			r := sh(t, dir, nil, "pshared "+args)
			r.want(t, "pshared "+args, exitOK, "^$")
			if !strings.HasPrefix(r.stdout, "Usage: pshared "+c.name) || !strings.Contains(r.stdout, "Example") ||
				!strings.Contains(r.stdout, "Exit status:") {
				t.Errorf("pshared %s: want usage, an example and the exit status:\n%s", args, r.stdout)
			}
		}
	}
}

// TestDemo runs the demos: each process prints its part.
func TestDemo(t *testing.T) {
	r := sh(t, t.TempDir(), nil, "pshared demo")
	r.want(t, "pshared demo", exitOK, "^$")
	for _, line := range []string{
		`process \d+ sending \[12345 67890\]`,
		`process \d+ received \[12345 67890\]`,
		`process \d+ added \+1 ten times`,
		`process \d+ added -1 ten times`,
		`value should be zero: 0`,
		`process \d+ wrote \["a" "b"\]`,
		`process \d+ read \["a" "b"\]`,
	} {
		if !regexp.MustCompile(`(?m)^` + line + `$`).MatchString(r.stdout) {
			t.Errorf("demo output lacks %s:\n%s", line, r.stdout)
		}
	}
	// The sender and the receiver are different processes.
	m := regexp.MustCompile(`process (\d+) sending[^\n]*\nprocess (\d+) received`).FindStringSubmatch(r.stdout)
	if m == nil || m[1] == m[2] {
		t.Errorf("sending and receiving processes: %q", m)
	}
}
