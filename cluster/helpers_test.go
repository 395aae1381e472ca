package cluster_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/cluster/internal/etcdtest"
	"github.com/processshared/processshared/internal/childtest"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// endpointEnv hands a child process the etcd endpoints of its parent.
const endpointEnv = "PSTEST_ETCD"

// shortTTL is the lease TTL of the tests that wait for a death: etcd raises
// anything shorter to about 2 s with its default election timing.
const shortTTL = time.Second

func session(t testing.TB, cli *clientv3.Client, ttl time.Duration, prefix string) *cluster.Session {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := cluster.NewSession(ctx, cli, &cluster.Options{TTL: ttl, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// prefix returns a key prefix of the test's own.
func prefix(t testing.TB) string {
	return "/pstest/" + strings.ReplaceAll(t.Name(), "/", "_") + "/"
}

// setup starts a single-node etcd (or, in a child, joins its parent's) and
// returns a client and a session on it.
func setup(t testing.TB, ttl time.Duration) (*clientv3.Client, *cluster.Session) {
	t.Helper()
	ep := os.Getenv(endpointEnv)
	if ep == "" {
		ep = etcdtest.Single(t)
		t.Setenv(endpointEnv, ep)
	}
	cli := etcdtest.Client(t, strings.Split(ep, ",")...)
	return cli, session(t, cli, ttl, prefix(t))
}

func mutex(t testing.TB, s *cluster.Session, name string) *cluster.Mutex {
	t.Helper()
	m, err := cluster.NewMutex(s, name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// mustBlock asserts that the call that ends by sending on done is still
// waiting after a moment.
func mustBlock(t testing.TB, what string, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("%s returned (%v) while it should wait", what, err)
	case <-time.After(300 * time.Millisecond):
	}
}

// await returns what done delivers, failing the test after d.
func await(t testing.TB, what string, done <-chan error, d time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("%s still waits after %v", what, d)
		return nil
	}
}

// fencedPut writes value to the resource res only if token is above the
// last token res accepted: the check a fenced resource makes. res/token
// holds that token, zero-padded so that etcd's byte comparison orders it.
func fencedPut(ctx context.Context, cli *clientv3.Client, res string, token int64, value string) (bool, error) {
	tok := fmt.Sprintf("%020d", token)
	resp, err := cli.Txn(ctx).If(
		clientv3.Compare(clientv3.Value(res+"/token"), "<", tok),
	).Then(
		clientv3.OpPut(res+"/token", tok),
		clientv3.OpPut(res+"/value", value),
	).Commit()
	if err != nil {
		return false, err
	}
	return resp.Succeeded, nil
}

// initResource creates the fenced resource res, accepting any token.
func initResource(t testing.TB, cli *clientv3.Client, res string) {
	t.Helper()
	if _, err := cli.Put(context.Background(), res+"/token", fmt.Sprintf("%020d", 0)); err != nil {
		t.Fatal(err)
	}
}

// child starts the test binary as a child process running test with role,
// and returns its standard output line by line.
func child(t *testing.T, role string, env ...string) (*exec.Cmd, <-chan string) {
	t.Helper()
	cmd := childtest.Command(t, t.Name(), role, env...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	childtest.Start(t, cmd)
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	return cmd, lines
}

// expect returns the next line of a child's output that starts with
// prefix, failing the test if the child ends first or takes longer than d.
func expect(t *testing.T, lines <-chan string, prefix string, d time.Duration) string {
	t.Helper()
	timeout := time.After(d)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("child ended before printing %q", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(strings.TrimPrefix(l, prefix))
			}
		case <-timeout:
			t.Fatalf("child did not print %q within %v", prefix, d)
		}
	}
}
