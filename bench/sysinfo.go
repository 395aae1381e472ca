package main

import (
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// machineInfo describes the machine a run was made on.
type machineInfo struct {
	date      string
	kernel    string
	nproc     int
	cpu       string
	goVersion string
}

func machine() machineInfo {
	m := machineInfo{
		date:      time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		nproc:     runtime.NumCPU(),
		goVersion: runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		cpu:       "unknown CPU",
	}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		m.kernel = "Linux " + unix.ByteSliceToString(u.Release[:])
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	return m
}

// loadavg returns the three load averages.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// revision describes the library's source in the repository at root: the
// commit, and whether files outside bench/ differ from it.
func revision(root string) string {
	out, err := exec.Command("git", "-C", root, "rev-parse", "--short", "HEAD").Output()
	if err != nil {
		return "unknown (not a git checkout)"
	}
	rev := strings.TrimSpace(string(out))
	st, err := exec.Command("git", "-C", root, "status", "--porcelain", "--", ".", ":!bench", ":!BENCHMARKS.md").Output()
	if err == nil && len(strings.TrimSpace(string(st))) > 0 {
		n := len(strings.Split(strings.TrimSpace(string(st)), "\n"))
		rev += " + uncommitted changes in " + strconv.Itoa(n) + " files"
	}
	return rev
}

// busy reports whether the 1-minute load average is at least half the CPU
// count: other work on the machine then skews every figure.
func busy() bool {
	f := strings.Fields(loadavg())
	if len(f) == 0 {
		return false
	}
	l, err := strconv.ParseFloat(f[0], 64)
	return err == nil && l >= float64(runtime.NumCPU())/2
}
