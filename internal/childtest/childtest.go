// Package childtest runs a test binary again as a child process, the way
// processshared tests exercise real cross-process behaviour.
//
// A test that needs a child calls Command with its own name and a role; the
// child runs the same test function, which finds its role with Role and runs
// the child's part instead of the parent's.
package childtest

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"
)

// RoleEnv names the environment variable that carries a child's role.
const RoleEnv = "PROCESSSHARED_TEST_ROLE"

// Role returns the role this process was started with, or "" in the parent.
func Role() string { return os.Getenv(RoleEnv) }

// Command returns a command that runs test (a top-level test name) of the
// current test binary with role in the child's environment, plus the
// variables in env ("K=V"). The child is killed when the test ends, or when
// its deadline comes near. The caller chooses where its output goes.
func Command(t testing.TB, test, role string, env ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var cancel context.CancelFunc
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			ctx, cancel = context.WithDeadline(ctx, dl.Add(-5*time.Second))
		}
	}
	if cancel == nil {
		ctx, cancel = context.WithTimeout(ctx, 10*time.Minute)
	}
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, exe, "-test.run=^"+test+"$", "-test.count=1", "-test.timeout=10m")
	cmd.Env = append(os.Environ(), RoleEnv+"="+role)
	if os.Getenv("GORACE") == "" {
		// A -race child otherwise sleeps 1 s at exit.
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	cmd.Env = append(cmd.Env, env...)
	cmd.WaitDelay = time.Second
	return cmd
}

// Output runs cmd and returns its standard output, failing the test if the
// child fails.
func Output(t testing.TB, cmd *exec.Cmd) string {
	t.Helper()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child %v: %v\n%s", cmd.Args, err, out)
	}
	return string(out)
}

// Start starts cmd and arranges for it to be killed and reaped at cleanup.
func Start(t testing.TB, cmd *exec.Cmd) {
	t.Helper()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
		}
	})
}
