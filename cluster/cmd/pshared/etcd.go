package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/processshared/processshared/cluster"
	"github.com/processshared/processshared/internal/cli"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// etcdHelp documents the options of etcdFlags, for lock's and sem's -h.
const etcdHelp = `  -etcd ENDPOINTS        etcd's client URLs, comma-separated (host:port or
                         http[s]://host:port); required
  -prefix PREFIX         key prefix of the names (default /processshared/);
                         processes that should meet must use the same one
  -ttl SECONDS           lease TTL (default 10, at least 1; etcd raises
                         values below about 2): a pshared that is killed
                         or cut off frees its lock after about this long
  -dial-timeout SECONDS  give up connecting to etcd after this (default 5)
  -cacert FILE           verify etcd's certificate with this CA bundle
  -cert FILE, -key FILE  client certificate and key (TLS client auth)
  -insecure-skip-tls-verify
                         do not verify etcd's certificate
  -user NAME[:PASSWORD]  authenticate as NAME
  -password PASSWORD     NAME's password, if -user has none
`

// command is lock or sem: its name and the text of its -h.
type command struct {
	name string
	help string
}

// etcdFlags are the connection options, as etcdctl spells them.
type etcdFlags struct {
	endpoints, prefix  string
	ttl, dialTimeout   cli.Seconds
	cacert, cert, key  string
	insecureSkipVerify bool
	user, password     string
}

func (e *etcdFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&e.endpoints, "etcd", "", "")
	fs.String("segment", "", "") // the local forms' option, parsed here too
	fs.StringVar(&e.prefix, "prefix", cluster.DefaultPrefix, "")
	e.ttl = cli.Seconds(cluster.DefaultTTL.Seconds())
	fs.Var(&e.ttl, "ttl", "")
	e.dialTimeout = 5
	fs.Var(&e.dialTimeout, "dial-timeout", "")
	fs.StringVar(&e.cacert, "cacert", "", "")
	fs.StringVar(&e.cert, "cert", "", "")
	fs.StringVar(&e.key, "key", "", "")
	fs.BoolVar(&e.insecureSkipVerify, "insecure-skip-tls-verify", false, "")
	fs.StringVar(&e.user, "user", "", "")
	fs.StringVar(&e.password, "password", "", "")
}

// check returns a usage error for options that cannot work.
func (e *etcdFlags) check() error {
	switch {
	case e.ttl < 1:
		return fmt.Errorf("--ttl %v: want at least 1 second", e.ttl.String())
	case (e.cert == "") != (e.key == ""):
		return errors.New("--cert and --key go together")
	}
	return nil
}

// connect opens a client and a session.
func (e *etcdFlags) connect() (*clientv3.Client, *cluster.Session, error) {
	cfg := clientv3.Config{
		Endpoints:   strings.Split(e.endpoints, ","),
		DialTimeout: time.Duration(float64(e.dialTimeout) * float64(time.Second)),
		Logger:      zap.NewNop(),
	}
	secure := e.cacert != "" || e.cert != "" || e.insecureSkipVerify
	for _, ep := range cfg.Endpoints {
		if strings.HasPrefix(ep, "https://") {
			secure = true
		}
	}
	if secure {
		tc := &tls.Config{InsecureSkipVerify: e.insecureSkipVerify}
		if e.cacert != "" {
			pem, err := os.ReadFile(e.cacert)
			if err != nil {
				return nil, nil, err
			}
			tc.RootCAs = x509.NewCertPool()
			if !tc.RootCAs.AppendCertsFromPEM(pem) {
				return nil, nil, fmt.Errorf("%s: no certificate found", e.cacert)
			}
		}
		if e.cert != "" {
			c, err := tls.LoadX509KeyPair(e.cert, e.key)
			if err != nil {
				return nil, nil, err
			}
			tc.Certificates = []tls.Certificate{c}
		}
		cfg.TLS = tc
	}
	if e.user != "" {
		cfg.Username, cfg.Password, _ = strings.Cut(e.user, ":")
		if e.password != "" {
			cfg.Password = e.password
		}
	}
	cli, err := clientv3.New(cfg)
	if err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.DialTimeout)
	defer cancel()
	s, err := cluster.NewSession(ctx, cli, &cluster.Options{
		TTL:    time.Duration(float64(e.ttl) * float64(time.Second)),
		Prefix: e.prefix,
	})
	if err != nil {
		cli.Close()
		return nil, nil, fmt.Errorf("%s: %w", e.endpoints, err)
	}
	return cli, s, nil
}

// waitContext returns the context of a wait: it ends at g's deadline, and
// at SIGINT, SIGTERM or SIGHUP, so that a pshared interrupted while it
// waits leaves the queue at once rather than after the TTL. interrupted
// returns the signal's exit status (128+N), or 0.
func waitContext(g *cli.Guard) (ctx context.Context, interrupted func() int, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	if d, ok := g.Deadline(); ok {
		ctx, cancel = context.WithDeadline(context.Background(), d)
	}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	var got os.Signal
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case got = <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	stop = func() {
		signal.Stop(sigs)
		cancel()
		<-done
	}
	interrupted = func() int {
		if s, ok := got.(syscall.Signal); ok {
			return 128 + int(s)
		}
		return 0
	}
	return ctx, interrupted, stop
}

// checkName reports whether name can name a lock or semaphore.
func checkName(name string) error {
	if name == "" || len(name) > 1024 || strings.ContainsRune(name, 0) {
		return fmt.Errorf("bad NAME %q: want 1 to 1024 bytes", name)
	}
	return nil
}
