//go:build linux

package pshared

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestOldLayout: a /dev/shm segment written by a pshared of layout version 1
// (the thread-id identities) is refused, and the error names the fix; rm
// --stale removes it once nobody has it open.
func TestOldLayout(t *testing.T) {
	name, env := segEnv(t)
	p := filepath.Join("/dev/shm", name)
	hdr := make([]byte, 4096)
	binary.NativeEndian.PutUint64(hdr[0:], 0x3147455348535350) // the segment magic number
	binary.NativeEndian.PutUint32(hdr[8:], 1)                  // layout version 1
	binary.NativeEndian.PutUint32(hdr[12:], 256)
	if err := os.WriteFile(p, hdr, 0o600); err != nil {
		t.Fatal(err)
	}
	r := sh(t, t.TempDir(), env, "pshared lock oldname true")
	if r.code == 0 || !strings.Contains(r.stderr, "version 1") ||
		!strings.Contains(r.stderr, "pshared rm --stale "+name) || !strings.Contains(r.stderr, "rm -f /dev/shm/"+name) {
		t.Fatalf("lock on an old-layout segment: exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := sh(t, t.TempDir(), env, "pshared rm --stale "+name); r.code != 0 {
		t.Fatalf("rm --stale: exit %d\n%s%s", r.code, r.stdout, r.stderr)
	}
	if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Fatalf("old-layout segment not removed by rm --stale: %v", err)
	}
}
