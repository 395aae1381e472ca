package main

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// The Queue issue's table: every one-way peer at every size, each with its
// speed relative to the socketpair of the same run, and the issue's
// targets, judged from the figures.

// queuePeers are the columns of the one-way table: figure prefixes.
var queuePeers = []struct{ prefix, title string }{
	{"ps_queue_oneway_", "Queue"},
	{"ps_slot_oneway_", "Slot + 2 Semaphores"},
	{"goipc_mq_oneway_", "go-ipc FastMq"},
	{"sock_oneway_", "socketpair"},
	{"pipe_oneway_", "pipe"},
	{"c_mq_oneway_", "POSIX mq (C)"},
	{"go_chan_oneway_", "Go channel (1 process)"},
	{"memmove_", "memmove (1 copy)"},
}

// A queueTarget is met if scale·peer ÷ ours is at least min (more than
// min if strict): a speed-up over the peer.
type queueTarget struct {
	what     string
	ours, of string
	scale    float64
	min      float64
	strict   bool
}

func queueTargets() []queueTarget {
	var ts []queueTarget
	for _, s := range []struct {
		size string
		min  float64
	}{{"64b", 3}, {"4k", 2}, {"64k", 2}, {"1m", 3}, {"4m", 3}, {"64m", 1.5}} {
		ts = append(ts, queueTarget{fmt.Sprintf("one-way %s ≥ %.1f× the socketpair", s.size, s.min), "ps_queue_oneway_" + s.size, "sock_oneway_" + s.size, 1, s.min, false})
	}
	return append(ts,
		queueTarget{"64 B latency (half a round trip, receiver blocking) below the socketpair's", "ps_queue_pingpong_64b", "sock_pingpong_64b", 1, 1, true},
		queueTarget{"64 B latency (half a round trip, receiver blocking) below POSIX mq's", "ps_queue_pingpong_64b", "c_mq_pingpong_64b", 1, 1, true},
		queueTarget{"64 B one-way, polling receiver, within 2× of half c_spin_pingpong_pinned", "ps_queue_oneway_poll_64b", "c_spin_pingpong_pinned", 0.5, 0.5, false},
	)
}

// speedup returns scale·peer ÷ ours, the median of the per-run values when
// both lines have them, and the per-run values as text.
func speedup(ours, peer line, scale float64) (float64, string) {
	r := scale * peer.value / ours.value
	vo, vp := runValues(ours), runValues(peer)
	if len(vo) < 2 || len(vo) != len(vp) {
		return r, ""
	}
	var rs []float64
	var each []string
	for i := range vo {
		rs = append(rs, scale*vp[i]/vo[i])
		each = append(each, fmt.Sprintf("%.2f", scale*vp[i]/vo[i]))
	}
	slices.Sort(rs)
	return rs[(len(rs)-1)/2], " (runs: " + strings.Join(each, ", ") + ")"
}

func (t queueTarget) evaluate(by map[string]line) (ratio, verdict string) {
	a, okA := by[t.ours]
	b, okB := by[t.of]
	switch {
	case !okA || !okB:
		missing := t.ours
		if okA {
			missing = t.of
		}
		return "—", "not measured (" + missing + " missing from this run)"
	case !a.ok || math.IsNaN(a.value) || a.value <= 0:
		return "—", "**not met**: " + t.ours + " failed its self-check (correct=no)"
	case !b.ok || math.IsNaN(b.value) || b.value <= 0:
		return "—", "unknown: " + t.of + " failed its self-check"
	}
	r, runs := speedup(a, b, t.scale)
	ratio = fmt.Sprintf("%.2f×%s", r, runs)
	if r > t.min || !t.strict && r == t.min {
		return ratio, "met"
	}
	return ratio, "**not met**"
}

// queueReport returns the Queue section of the report, or "" if the run
// has no Queue figure.
func queueReport(by map[string]line) string {
	if _, ok := by["ps_queue_oneway_64b"]; !ok {
		if _, ok := by["ps_queue_pingpong_64b"]; !ok {
			return ""
		}
	}
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("\n## Queue\n\n")
	w("One-way, process A to process B, end to end (A's Go slice to B's, checked), back to back;\n")
	w("ns per message, and in brackets the speed relative to the socketpair of the same size\n")
	w("(socketpair ÷ figure: above 1× is faster than the socketpair).\n\n")
	w("| size |")
	for _, p := range queuePeers {
		w(" %s |", p.title)
	}
	w("\n|---|")
	for range queuePeers {
		w("---|")
	}
	w("\n")
	for _, s := range onewaySizes {
		sock, sockOK := by["sock_oneway_"+s.name]
		w("| %s |", s.name)
		for _, p := range queuePeers {
			l, ok := by[p.prefix+s.name]
			switch {
			case !ok:
				w(" not run |")
			case !l.ok || math.IsNaN(l.value):
				w(" — (failed or not run) |")
			case sockOK && sock.ok && p.prefix != "sock_oneway_":
				r, _ := speedup(l, sock, 1)
				w(" %s (%.2f×) |", human(l.value, "ns"), r)
			default:
				w(" %s |", human(l.value, "ns"))
			}
		}
		w("\n")
	}
	w("\nColumns: `ps_queue_oneway_*`, `ps_slot_oneway_*`, `goipc_mq_oneway_*`, `sock_oneway_*`,\n")
	w("`pipe_oneway_*`, `c_mq_oneway_*` (at the sizes the system's mq limits allow), `go_chan_oneway_*`,\n")
	w("`memmove_*`.")
	if l, ok := by["ps_queue_oneway_poll_64b"]; ok {
		w(" With a polling receiver (`ps_queue_oneway_poll_64b`), 64 B: %s.", human(l.value, "ns"))
	}
	w("\n\n64 B latency, half a round trip through two queues, receiver blocking (spin allowed):\n\n")
	w("| figure | half round trip |\n|---|---|\n")
	for _, n := range []string{"ps_queue_pingpong_64b", "sock_pingpong_64b", "c_mq_pingpong_64b", "c_spin_pingpong_pinned"} {
		if l, ok := by[n]; ok && l.ok {
			w("| `%s` | %s |\n", n, human(l.value/2, "ns"))
		} else {
			w("| `%s` | — |\n", n)
		}
	}
	w("\nTargets of the Queue issue; the ratio is the speed-up (peer ÷ ours, scaled as the target\n")
	w("says), the median of the per-run ratios with several runs.\n\n")
	w("| target | ours | peer | speed-up | verdict |\n|---|---|---|---|---|\n")
	for _, t := range queueTargets() {
		ratio, verdict := t.evaluate(by)
		w("| %s | `%s` %s | `%s` %s | %s | %s |\n", t.what, t.ours, human(by[t.ours].value, "ns"), t.of, human(by[t.of].value, "ns"), ratio, verdict)
	}
	return b.String()
}
