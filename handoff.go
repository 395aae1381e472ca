package processshared

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
)

// InheritEnv is the environment variable through which Pass tells a child
// process which of its file descriptors hold which segments. Its value is a
// comma-separated list of fd=name pairs, names query-escaped.
const InheritEnv = "PROCESSSHARED_FDS"

// Pass arranges for the process that cmd starts to inherit segs, named or
// anonymous: it appends each segment's file to cmd.ExtraFiles and records in
// cmd.Env (InheritEnv) which descriptor carries which segment. The child
// attaches with Inherit(name). Call Pass before cmd.Start, and keep the
// segments open until Start returns. Pass may be called more than once for
// the same cmd.
//
// Descriptors: the child receives segment i of cmd.ExtraFiles as fd 3+i. The
// parent's descriptors stay owned by its Segments (closed by their Close);
// the child's copies are owned by the child (see Inherit).
func Pass(cmd *exec.Cmd, segs ...*Segment) error {
	var pairs []string
	for _, s := range segs {
		if s.isClosed() {
			return fmt.Errorf("processshared: pass %v: %w", s, ErrClosed)
		}
		fd := 3 + len(cmd.ExtraFiles)
		cmd.ExtraFiles = append(cmd.ExtraFiles, s.file)
		pairs = append(pairs, strconv.Itoa(fd)+"="+url.QueryEscape(s.name))
	}
	prefix := InheritEnv + "="
	if cmd.Env == nil {
		// Our own inherited list names our descriptors, not the child's.
		for _, kv := range os.Environ() {
			if !strings.HasPrefix(kv, prefix) {
				cmd.Env = append(cmd.Env, kv)
			}
		}
	}
	for i, kv := range cmd.Env {
		if old, ok := strings.CutPrefix(kv, prefix); ok {
			if old != "" {
				pairs = append([]string{old}, pairs...)
			}
			cmd.Env[i] = prefix + strings.Join(pairs, ",")
			return nil
		}
	}
	cmd.Env = append(cmd.Env, prefix+strings.Join(pairs, ","))
	return nil
}

// inherited parses InheritEnv once. The descriptors it names are marked
// close-on-exec, so they do not leak to this process's own children unless
// passed on with Pass.
var inherited = sync.OnceValue(func() map[string]int {
	m := make(map[string]int)
	for _, pair := range strings.Split(os.Getenv(InheritEnv), ",") {
		fdText, name, ok := strings.Cut(pair, "=")
		if !ok {
			continue
		}
		fd, err := strconv.Atoi(fdText)
		if err != nil || fd < 3 {
			continue
		}
		if name, err = url.QueryUnescape(name); err != nil {
			continue
		}
		setCloexec(fd)
		m[name] = fd
	}
	return m
})

// Inherit attaches to the segment called name that the parent process handed
// over with Pass. It returns an error matching ErrNotInherited if there is no
// such segment. Each call returns a new Segment with its own duplicate of the
// inherited descriptor, which its Close closes; the inherited descriptor
// itself stays open for the life of the process.
func Inherit(name string) (*Segment, error) {
	if shmDir == "" { // this system has no segments (segment_other.go)
		return nil, fmt.Errorf("processshared: inherit %q: shared memory segments are not supported on %s: %w", name, runtime.GOOS, errors.ErrUnsupported)
	}
	fd, ok := inherited()[name]
	if !ok {
		return nil, fmt.Errorf("%w: %q (%s=%q)", ErrNotInherited, name, InheritEnv, os.Getenv(InheritEnv))
	}
	return inheritFd(name, fd)
}
