//go:build darwin || freebsd || linux

package pshared

import "testing"

// TestEtcdFlag: this build has no etcd backend. lock and sem --etcd exit 2
// (usage), run nothing, and name the build to install.
func TestEtcdFlag(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	for _, c := range []string{"lock", "sem -j 2"} {
		r := sh(t, dir, env, "pshared "+c+" --etcd 127.0.0.1:2379 L -- echo ran")
		r.want(t, c+" --etcd", exitUsage, `cluster && go install \./cmd/pshared`)
		if r.stdout != "" {
			t.Errorf("%s --etcd ran the command: %q", c, r.stdout)
		}
	}
}
