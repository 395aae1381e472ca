// Command etcd-dev runs a single-node etcd, embedded, for trying the
// cluster module's locks without installing etcd:
//
//	go run ./cmd/etcd-dev              # in the cluster module
//	go run ./cmd/etcd-dev -listen 127.0.0.1:12379 -data-dir /tmp/etcd-dev
//
// It serves clients on -listen until interrupted (Ctrl-C, SIGTERM). Its
// data lives in -data-dir, by default a temporary directory removed at
// exit. It is for development: one node, no TLS, no auth, no fsync.
package main

import (
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/zap"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:2379", "address to serve etcd clients on")
	peer := flag.String("peer", "127.0.0.1:2380", "address for etcd's peer traffic (unused by a single node, but bound)")
	dir := flag.String("data-dir", "", "data directory (default: a temporary one, removed at exit)")
	flag.Parse()
	os.Exit(run(*listen, *peer, *dir))
}

func run(listen, peer, dir string) int {
	if dir == "" {
		d, err := os.MkdirTemp("", "etcd-dev-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "etcd-dev:", err)
			return 1
		}
		defer os.RemoveAll(d)
		dir = d
	}
	cfg := embed.NewConfig()
	cfg.Name = "etcd-dev"
	cfg.Dir = dir
	cu := url.URL{Scheme: "http", Host: listen}
	pu := url.URL{Scheme: "http", Host: peer}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.LogLevel = "error"
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(zap.NewNop())
	cfg.UnsafeNoFsync = true
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "etcd-dev:", err)
		return 1
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd-dev:", err)
		return 1
	case <-time.After(time.Minute):
		fmt.Fprintln(os.Stderr, "etcd-dev: not ready after a minute")
		return 1
	}
	fmt.Fprintf(os.Stderr, "etcd-dev: serving etcd clients on %s (data in %s); Ctrl-C stops it\n", cu.String(), dir)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case <-sigs:
		return 0
	case err := <-e.Err():
		fmt.Fprintln(os.Stderr, "etcd-dev:", err)
		return 1
	}
}
