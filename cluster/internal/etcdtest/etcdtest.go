// Package etcdtest starts embedded etcd servers for the cluster module's
// tests, benchmarks and its etcd-dev command: a single node, or the members
// of a cluster on loopback, each member in a process of its own so that a
// test can SIGKILL one.
package etcdtest

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

// Member describes one etcd member: its name, data directory, the URL
// clients use and the URL its peers use.
type Member struct {
	Name   string
	Dir    string
	Client string // http://127.0.0.1:PORT
	Peer   string // http://127.0.0.1:PORT
}

// Config returns the embed configuration of m, a member of the cluster
// initial ("name=peerURL,..."). NoFsync skips fsync, for tests: they do not
// survive power loss, and need not.
func (m Member) Config(initial string, noFsync bool) (*embed.Config, error) {
	cu, err := url.Parse(m.Client)
	if err != nil {
		return nil, err
	}
	pu, err := url.Parse(m.Peer)
	if err != nil {
		return nil, err
	}
	cfg := embed.NewConfig()
	cfg.Name = m.Name
	cfg.Dir = m.Dir
	cfg.ListenClientUrls = []url.URL{*cu}
	cfg.AdvertiseClientUrls = []url.URL{*cu}
	cfg.ListenPeerUrls = []url.URL{*pu}
	cfg.AdvertisePeerUrls = []url.URL{*pu}
	cfg.InitialCluster = initial
	cfg.InitialClusterToken = "processshared-test"
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = noFsync
	cfg.BcryptCost = 4 // bcrypt.MinCost: tests that turn auth on need no strong hashes, and -race makes them slow
	return cfg, nil
}

// Start starts m and waits until it serves clients (for a member of a
// cluster: until the cluster has a leader), or ctx is done.
func (m Member) Start(ctx context.Context, initial string, noFsync bool) (*embed.Etcd, error) {
	cfg, err := m.Config(initial, noFsync)
	if err != nil {
		return nil, err
	}
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-ctx.Done():
		e.Close()
		return nil, fmt.Errorf("etcd member %s not ready: %w", m.Name, ctx.Err())
	}
}

// FreeURLs returns n http URLs on loopback ports that were free a moment
// ago.
func FreeURLs(n int) ([]string, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var urls []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		urls = append(urls, "http://"+l.Addr().String())
	}
	return urls, nil
}

// Members returns n members with fresh ports and data directories under
// dir, and their initial-cluster string.
func Members(dir string, n int) ([]Member, string, error) {
	urls, err := FreeURLs(2 * n)
	if err != nil {
		return nil, "", err
	}
	var ms []Member
	var initial []string
	for i := range n {
		m := Member{
			Name:   fmt.Sprintf("m%d", i),
			Dir:    fmt.Sprintf("%s/m%d", dir, i),
			Client: urls[2*i],
			Peer:   urls[2*i+1],
		}
		ms = append(ms, m)
		initial = append(initial, m.Name+"="+m.Peer)
	}
	return ms, strings.Join(initial, ","), nil
}

// Single starts a single-node etcd in a temporary directory for the test,
// stopped and removed at cleanup, and returns its client URL. It does not
// fsync (see SingleFsync).
func Single(t testing.TB) string {
	t.Helper()
	return single(t, true)
}

// SingleFsync is Single with fsync, as etcd runs in production: for
// benchmarks.
func SingleFsync(t testing.TB) string {
	t.Helper()
	return single(t, false)
}

func single(t testing.TB, noFsync bool) string {
	t.Helper()
	ms, initial, err := Members(t.TempDir(), 1)
	if err != nil {
		t.Fatal(err)
	}
	var e *embed.Etcd
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		e, err = ms[0].Start(ctx, initial, noFsync)
		cancel()
		if err == nil {
			break
		}
		if attempt == 2 {
			t.Fatal(err)
		}
		// A port taken between FreeURLs and the listen: try others.
		os.RemoveAll(ms[0].Dir)
		if ms, initial, err = Members(t.TempDir(), 1); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(e.Close)
	return ms[0].Client
}

// Client returns a client of endpoints, closed at cleanup.
func Client(t testing.TB, endpoints ...string) *clientv3.Client {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{
		Endpoints:   endpoints,
		DialTimeout: 5 * time.Second,
		Logger:      zap.NewNop(),
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	return cli
}
