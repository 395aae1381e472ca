//go:build darwin || freebsd || linux

package pshared

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestSendRecvPipe: 10,000 lines piped through pshared send in one shell
// and pshared recv in another arrive whole and in order; pshared close ends
// recv with status 0. The same with NUL-separated messages (-0), some of
// which hold newlines.
func TestSendRecvPipe(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	var in strings.Builder
	for i := range 10000 {
		in.WriteString("line " + strconv.Itoa(i) + strings.Repeat(".", i%50) + "\n")
	}
	if err := os.WriteFile(filepath.Join(dir, "in"), []byte(in.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	sh(t, dir, env, `
		pshared recv Q > out &
		pshared send Q < in && pshared close Q
		wait $!
	`).want(t, "send | recv", exitOK, "^$")
	out, err := os.ReadFile(filepath.Join(dir, "out"))
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != in.String() {
		t.Fatalf("recv wrote %d bytes, send read %d: they differ", len(out), in.Len())
	}

	nul := "one\x00two\nlines\x00\x00three\x00"
	os.WriteFile(filepath.Join(dir, "nul"), []byte(nul), 0o600)
	sh(t, dir, env, `
		pshared recv -0 Z > zout &
		pshared send -0 Z < nul && pshared close Z
		wait $!
	`).want(t, "send -0 | recv -0", exitOK, "^$")
	if zout, _ := os.ReadFile(filepath.Join(dir, "zout")); string(zout) != nul {
		t.Fatalf("recv -0 wrote %q, want %q", zout, nul)
	}
}

// TestRecvCountTimeout: recv -n stops at COUNT with status 0, -w gives up
// with status 1 after writing what it got; send -n on a full queue gives 1;
// after close, send fails with 3 and recv drains, then exits 0; a message
// longer than the maximum, or a queue opened with another size, gives 3.
func TestRecvCountTimeout(t *testing.T) {
	_, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared send -c 3 -m 16 Q a b c").want(t, "send a b c", exitOK, "^$")
	if r := sh(t, dir, env, "pshared recv -c 3 -m 16 -n 2 Q"); r.code != exitOK || r.stdout != "a\nb\n" {
		t.Errorf("recv -n 2: %d %q %q", r.code, r.stdout, r.stderr)
	}
	sh(t, dir, env, "pshared send -c 3 -m 16 Q d e").want(t, "send d e", exitOK, "^$")
	sh(t, dir, env, "pshared send -c 3 -m 16 -n Q f").want(t, "send -n on a full queue", exitConflict, "^$")
	sh(t, dir, env, "pshared send -c 3 -m 16 -w 0.1 Q f").want(t, "send -w on a full queue", exitConflict, "^$")
	if r := sh(t, dir, env, "pshared recv -c 3 -m 16 -n 5 -w 0.2 Q"); r.code != exitConflict || r.stdout != "c\nd\ne\n" {
		t.Errorf("recv -n 5 -w 0.2 of 3: %d %q %q", r.code, r.stdout, r.stderr)
	}
	sh(t, dir, env, "pshared send -c 3 -m 16 Q 01234567890123456").want(t, "send of 17 bytes", exitError, "too large")
	sh(t, dir, env, "pshared send -c 4 -m 16 Q x").want(t, "send with another -c", exitError, "same -c and -m")
	sh(t, dir, env, "pshared send -c 3 -m 16 Q last").want(t, "send last", exitOK, "^$")
	sh(t, dir, env, "pshared close -c 3 -m 16 Q").want(t, "close", exitOK, "^$")
	sh(t, dir, env, "pshared close -c 3 -m 16 Q").want(t, "close again", exitOK, "^$")
	sh(t, dir, env, "pshared send -c 3 -m 16 Q late").want(t, "send after close", exitError, "queue is closed")
	if r := sh(t, dir, env, "pshared recv -c 3 -m 16 Q"); r.code != exitOK || r.stdout != "last\n" {
		t.Errorf("recv after close: %d %q %q", r.code, r.stdout, r.stderr)
	}
	sh(t, dir, env, "pshared recv Q extra").want(t, "recv with an argument", exitUsage, "unexpected arguments")
}

// TestQueueInspectCLI: inspect shows a queue's length, capacity and the
// receivers blocked on it, as text and as JSON.
func TestQueueInspectCLI(t *testing.T) {
	seg, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared send Q a b").want(t, "send", exitOK, "^$")
	// Poll (up to 60 s, for a loaded machine) until both receivers block.
	sh(t, dir, env, `
		pshared recv -n 2 E & pshared recv -n 2 E &
		for i in $(seq 600); do
			pshared inspect --json `+seg+` > json
			grep -q '"blocked_receivers": 2' json && break
			sleep 0.1
		done
		pshared inspect `+seg+` > text
		pshared send E 1 2 3 4
		wait`).want(t, "inspect with blocked receivers", exitOK, "^$")
	text, _ := os.ReadFile(filepath.Join(dir, "text"))
	if !strings.Contains(string(text), "2 of 64 queued (messages up to 4096 bytes)") {
		t.Errorf("inspect does not show Q's length and capacity:\n%s", text)
	}
	var js jsonSegment
	raw, _ := os.ReadFile(filepath.Join(dir, "json"))
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatalf("inspect --json: %v\n%s", err, raw)
	}
	for _, o := range js.Objects {
		if o.Name == "E" && (o.Queue == nil || o.Queue.Receivers != 2 || o.Queue.Len != 0) {
			t.Errorf("E: %+v, want 2 blocked receivers", o.Queue)
		}
	}
}

// TestStaleKeepsQueued: a segment whose queue holds messages, with no
// process attached, is not stale: ls says it is kept, rm --stale leaves it
// and its messages alone. Once drained it is stale, and rm --stale removes
// it.
func TestStaleKeepsQueued(t *testing.T) {
	name, env := segEnv(t)
	dir := t.TempDir()
	sh(t, dir, env, "pshared send Q a b").want(t, "send a b", exitOK, "^$")
	r := sh(t, dir, nil, "pshared ls "+name)
	r.want(t, "ls", exitOK, "")
	if !strings.Contains(r.stdout, "kept: 2 messages queued, no live process") {
		t.Errorf("ls of a segment holding 2 messages:\n%s", r.stdout)
	}
	r = sh(t, dir, nil, "pshared ls --json "+name)
	var segs []struct {
		Stale  bool `json:"stale"`
		Queued int  `json:"queued"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &segs); err != nil || len(segs) != 1 || segs[0].Stale || segs[0].Queued != 2 {
		t.Errorf("ls --json: %+v, %v; want one segment, not stale, 2 queued", segs, err)
	}
	sh(t, dir, nil, "pshared rm --stale "+name).want(t, "rm --stale of a segment holding messages", exitOK, "^$")
	if r := sh(t, dir, env, "pshared recv -n 2 Q"); r.code != exitOK || r.stdout != "a\nb\n" {
		t.Fatalf("recv after rm --stale: %d %q %q: the messages were lost", r.code, r.stdout, r.stderr)
	}
	r = sh(t, dir, nil, "pshared ls "+name)
	if !strings.Contains(r.stdout, "stale: ") {
		t.Errorf("ls of the drained segment, nobody attached:\n%s", r.stdout)
	}
	r = sh(t, dir, nil, "pshared rm --stale "+name)
	if r.code != exitOK || strings.TrimSpace(r.stdout) != name {
		t.Errorf("rm --stale of the drained segment: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
