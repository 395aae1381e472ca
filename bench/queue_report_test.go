package main

import (
	"math"
	"strings"
	"testing"
)

// TestQueueTargets: the Queue targets are judged from the figures: the
// median of the per-run speed-ups against the threshold, strictly where
// the target says so, with a scale (half a round trip) where it has one;
// a missing or failed figure is never "met".
func TestQueueTargets(t *testing.T) {
	med := func(name string, v float64, runs string) line {
		return line{name, v, true, "median of 3 runs (" + runs + "); x"}
	}
	by := map[string]line{
		// speed-ups per run 4, 2, 3: median 3, met at ≥ 3
		"ps_queue_oneway_64b": med("ps_queue_oneway_64b", 100, "100, 100, 100"),
		"sock_oneway_64b":     med("sock_oneway_64b", 300, "400, 200, 300"),
		// median 1.9: not met at ≥ 2
		"ps_queue_oneway_4k": med("ps_queue_oneway_4k", 100, "100, 100, 100"),
		"sock_oneway_4k":     med("sock_oneway_4k", 190, "190, 500, 100"),
		// equal: not met where strict
		"ps_queue_pingpong_64b": {"ps_queue_pingpong_64b", 50, true, "x"},
		"sock_pingpong_64b":     {"sock_pingpong_64b", 50, true, "x"},
		"c_mq_pingpong_64b":     {"c_mq_pingpong_64b", 51, true, "x"},
		// 0.5·200 / 100 = 1 ≥ 0.5: met
		"ps_queue_oneway_poll_64b": {"ps_queue_oneway_poll_64b", 100, true, "x"},
		"c_spin_pingpong_pinned":   {"c_spin_pingpong_pinned", 200, true, "x"},
		// ours failed
		"ps_queue_oneway_64k": {"ps_queue_oneway_64k", math.NaN(), false, "error"},
		"sock_oneway_64k":     {"sock_oneway_64k", 10, true, "x"},
	}
	want := map[string]string{
		"ps_queue_oneway_64b":      "met",
		"ps_queue_oneway_4k":       "**not met**",
		"ps_queue_oneway_64k":      "**not met**: ps_queue_oneway_64k failed its self-check (correct=no)",
		"ps_queue_oneway_1m":       "not measured (ps_queue_oneway_1m missing from this run)",
		"ps_queue_oneway_poll_64b": "met",
	}
	seen := 0
	for _, tg := range queueTargets() {
		ratio, verdict := tg.evaluate(by)
		if w, ok := want[tg.ours]; ok {
			seen++
			if verdict != w {
				t.Errorf("%s: verdict %q (ratio %s), want %q", tg.what, verdict, ratio, w)
			}
		}
		if tg.ours == "ps_queue_pingpong_64b" {
			w := map[string]string{"sock_pingpong_64b": "**not met**", "c_mq_pingpong_64b": "met"}[tg.of]
			if verdict != w {
				t.Errorf("%s: verdict %q (ratio %s), want %q", tg.what, verdict, ratio, w)
			}
		}
		if tg.ours == "ps_queue_oneway_64b" && !strings.HasPrefix(ratio, "3.00× (runs: 4.00, 2.00, 3.00)") {
			t.Errorf("%s: ratio %q, want the median of 4, 2, 3", tg.what, ratio)
		}
	}
	if seen != len(want) {
		t.Errorf("%d of the %d targets checked were found", seen, len(want))
	}
	if r := queueReport(by); !strings.Contains(r, "| 64b | 100.0 ns (3.00×) |") {
		t.Errorf("the one-way table's 64b row is missing or wrong:\n%s", r)
	}
}
