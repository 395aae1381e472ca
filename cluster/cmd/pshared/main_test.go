package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/processshared/processshared/cluster/internal/etcdtest"
	"github.com/processshared/processshared/internal/shmtest"
)

// binDir holds the pshared binary the tests run, built once by TestMain
// (with -race when the tests have it).
var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "pshared-etcd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	args := []string{"build", "-o", filepath.Join(dir, "pshared")}
	if raceEnabled {
		args = append(args, "-race")
	}
	if out, err := exec.Command("go", append(args, ".")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env starts an etcd for the test and returns the environment the tests'
// scripts use: $ETCD, its endpoint, and $PFX, a key prefix of the test's
// own.
func env(t *testing.T) []string {
	ep := etcdtest.Single(t)
	return []string{"ETCD=" + ep, "PFX=/pstest/" + t.Name() + "/"}
}

// shell returns a command that runs script with sh -c, in dir, pshared on
// PATH, env added to the environment.
func shell(t *testing.T, dir string, env []string, script string) *exec.Cmd {
	cmd := exec.Command("sh", "-c", script)
	cmd.Env = append(os.Environ(), "PATH="+binDir+string(filepath.ListSeparator)+os.Getenv("PATH"))
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

func (r result) want(t *testing.T, what string, code int, stderr string) {
	t.Helper()
	if r.code != code {
		t.Errorf("%s: exit status %d, want %d\nstdout: %s\nstderr: %s", what, r.code, code, r.stdout, r.stderr)
	}
	if !regexp.MustCompile(stderr).MatchString(r.stderr) {
		t.Errorf("%s: stderr %q does not match %q", what, r.stderr, stderr)
	}
}

// holder is a pshared process whose command holds the lock until its
// stdin closes; started prints the command's first line of output.
type holder struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  *bufio.Reader
	stderr bytes.Buffer
}

func startHolder(t *testing.T, env []string, args, command string) *holder {
	t.Helper()
	h := &holder{cmd: shell(t, t.TempDir(), env, "exec pshared "+args+" -- "+command)}
	h.stdin, _ = h.cmd.StdinPipe()
	stdout, _ := h.cmd.StdoutPipe()
	h.lines = bufio.NewReader(stdout)
	h.cmd.Stderr = &h.stderr
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if h.cmd.ProcessState == nil {
			h.cmd.Process.Kill()
			h.cmd.Wait()
		}
	})
	line, err := h.lines.ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("pshared %s: said %q (%v); stderr %s", args, line, err, h.stderr.String())
	}
	return h
}

const catCmd = `sh -c 'echo ready; exec cat >/dev/null'`

// TestLockExclusive: 4 concurrent "pshared lock --etcd" runs of a command
// that writes a start and an end marker with a pause between: the markers
// never interleave.
func TestLockExclusive(t *testing.T) {
	env := env(t)
	dir := t.TempDir()
	sh(t, dir, env, `
		for i in 1 2 3 4; do
			(pshared lock --etcd "$ETCD" --prefix "$PFX" L -- sh -c 'echo "start $$" >> out; sleep 0.05; echo "end $$" >> out' || echo "fail $?" >> out) &
		done
		wait
	`).want(t, "4 × pshared lock", 0, "^$")
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != 8 {
		t.Fatalf("%d lines, want 8:\n%s", len(lines), out)
	}
	for i := 0; i < len(lines); i += 2 {
		start, end := strings.TrimPrefix(lines[i], "start "), strings.TrimPrefix(lines[i+1], "end ")
		if start == lines[i] || end == lines[i+1] || start != end {
			t.Fatalf("commands overlapped at line %d:\n%s", i+1, out)
		}
	}
}

// TestLockBusy: while a holder runs, -n, -w 0.2 and -w 0 give up with
// status 1, or -E's; the command's own status passes through; then the
// holder ends and -n succeeds.
func TestLockBusy(t *testing.T) {
	env := env(t)
	dir := t.TempDir()
	h := startHolder(t, env, `lock --etcd "$ETCD" --prefix "$PFX" L`, catCmd)
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -n L -- echo ran`).want(t, "-n", 1, "^$")
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -w 0.2 L -- echo ran`).want(t, "-w 0.2", 1, "^$")
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -w 0 -E 7 -v L -- echo ran`).want(t, "-w 0 -E 7", 7, "held")
	h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("holder: %v\n%s", err, h.stderr.String())
	}
	r := sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -n L -- sh -c 'echo ran; exit 5'`)
	r.want(t, "-n after the holder", 5, "^$")
	if r.stdout != "ran\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// TestLockHolderKilled: a pshared holding the lock is SIGKILLed; the next
// one waits for its lease (--ttl 1), is told the holder died, and runs.
func TestLockHolderKilled(t *testing.T) {
	env := env(t)
	dir := t.TempDir()
	h := startHolder(t, env, `lock --etcd "$ETCD" --prefix "$PFX" --ttl 1 L`, catCmd)
	h.cmd.Process.Kill()
	h.cmd.Wait()
	r := sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -w 30 L -- echo ran`)
	r.want(t, "lock after the holder was killed", 0, `previous holder \(pid \d+ on its machine\) died while holding it`)
	if r.stdout != "ran\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -n L -- true`).want(t, "lock after the repair", 0, "^$")
}

// TestLockLost: a pshared holding the lock is stopped past its TTL; another
// takes the lock; when the first continues it finds its lease gone, sends
// its command SIGTERM and exits 4.
func TestLockLost(t *testing.T) {
	env := env(t)
	dir := t.TempDir()
	h := startHolder(t, env, `lock --etcd "$ETCD" --prefix "$PFX" --ttl 1 L`,
		`sh -c 'trap "echo TERM >> `+dir+`/term; exit 0" TERM; echo ready; while :; do sleep 0.05; done'`)
	h.cmd.Process.Signal(syscall.SIGSTOP)
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --prefix "$PFX" -w 30 L -- echo ran`).want(t, "lock while the holder is stopped", 0, "died while holding it")
	h.cmd.Process.Signal(syscall.SIGCONT)
	err := h.cmd.Wait()
	if code := h.cmd.ProcessState.ExitCode(); code != 4 {
		t.Fatalf("stopped holder: %v (status %d), want status 4\n%s", err, code, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), "was lost while sh ran") {
		t.Fatalf("stderr %q", h.stderr.String())
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "term")); string(b) != "TERM\n" {
		t.Fatalf("the command was not sent SIGTERM (%q)", b)
	}
}

// TestSem: -j 2 lets two holders in and turns a third away; another -j is
// refused with status 3.
func TestSem(t *testing.T) {
	env := env(t)
	dir := t.TempDir()
	startHolder(t, env, `sem --etcd "$ETCD" --prefix "$PFX" -j 2 S`, catCmd)
	startHolder(t, env, `sem --etcd "$ETCD" --prefix "$PFX" -j 2 S`, catCmd)
	sh(t, dir, env, `pshared sem --etcd "$ETCD" --prefix "$PFX" -j 2 -n S -- echo ran`).want(t, "third -n", 1, "^$")
	sh(t, dir, env, `pshared sem --etcd "$ETCD" --prefix "$PFX" -j 3 -n S -- echo ran`).want(t, "-j 3", 3, `has 2 permits, not 3`)
}

// TestUsage: the exit statuses of what goes wrong before COMMAND runs.
func TestUsage(t *testing.T) {
	dir := t.TempDir()
	sh(t, dir, nil, `pshared lock --etcd 127.0.0.1:1 L`).want(t, "no COMMAND", 2, "missing COMMAND")
	sh(t, dir, nil, `pshared lock --etcd 127.0.0.1:1 L -- no-such-command-here`).want(t, "missing command", 127, "command not found")
	sh(t, dir, nil, `pshared lock --etcd 127.0.0.1:1 --dial-timeout 0.5 L -- true`).want(t, "etcd unreachable", 3, "127.0.0.1:1")
	sh(t, dir, nil, `pshared sem --etcd 127.0.0.1:1 --dial-timeout 0.5 S -- true`).want(t, "etcd unreachable", 3, "127.0.0.1:1")
	sh(t, dir, nil, `pshared lock --etcd 127.0.0.1:1 --cert x L -- true`).want(t, "--cert alone", 2, "--cert and --key")
	sh(t, dir, nil, `pshared lock --etcd 127.0.0.1:1 --ttl 0.5 L -- true`).want(t, "--ttl 0.5", 2, "at least 1 second")
	r := sh(t, dir, nil, `pshared lock --etcd x -h`)
	r.want(t, "-h", 0, "^$")
	if !strings.Contains(r.stdout, "-cacert FILE") {
		t.Errorf("lock --etcd -h does not document the TLS options:\n%s", r.stdout)
	}
}

// TestLocal: without --etcd, the cluster build is the machine-local
// pshared.
func TestLocal(t *testing.T) {
	seg := shmtest.Name(t)
	dir := t.TempDir()
	env := []string{"PSHARED_SEGMENT=" + seg}
	r := sh(t, dir, env, `pshared lock L -- echo local; pshared sem -j 2 S -- echo sem; pshared ls "$PSHARED_SEGMENT"`)
	r.want(t, "local lock, sem, ls", 0, "^$")
	if !strings.Contains(r.stdout, "local\nsem\n") || !strings.Contains(r.stdout, seg) {
		t.Fatalf("stdout %q", r.stdout)
	}
}

// TestAuth: against an etcd with authentication on, --user NAME:PASSWORD
// (or --user NAME --password PASSWORD) gets in, and no user is refused
// with status 3.
func TestAuth(t *testing.T) {
	ep := etcdtest.Single(t)
	cli := etcdtest.Client(t, ep)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := cli.UserAdd(ctx, "root", "secret"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.UserGrantRole(ctx, "root", "root"); err != nil {
		t.Fatal(err)
	}
	if _, err := cli.AuthEnable(ctx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	env := []string{"ETCD=" + ep}
	r := sh(t, dir, env, `pshared lock --etcd "$ETCD" --user root:secret L -- echo in`)
	r.want(t, "--user root:secret", 0, "^$")
	if r.stdout != "in\n" {
		t.Fatalf("stdout %q", r.stdout)
	}
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --user root --password secret L -- true`).want(t, "--user --password", 0, "^$")
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --dial-timeout 20 L -- echo in`).want(t, "no user", 3, "user name is empty|permission denied|authentication")
	sh(t, dir, env, `pshared lock --etcd "$ETCD" --dial-timeout 20 --user root:wrong L -- echo in`).want(t, "wrong password", 3, "authentication failed")
}
