package main

import (
	"fmt"
	"html"
	"math"
	"strings"
)

// Chart geometry, in SVG user units (pixels).
const (
	chartWidth  = 1000
	labelWidth  = 300 // figure names, right-aligned
	barLeft     = labelWidth + 10
	barWidth    = 540
	barHeight   = 14
	rowHeight   = 19
	groupHeader = 44 // title + unit line
	axisHeight  = 22
	legendTop   = 52
)

// family returns a figure's colour and legend name.
func family(name string) (color, label string) {
	switch {
	case ours(name):
		return "#e8590c", "processshared"
	case strings.HasPrefix(name, "c_"):
		return "#1c7ed6", "C: glibc pthread / sem / futex"
	case strings.HasPrefix(name, "goipc_"):
		return "#7048e8", "go-ipc v0.6.1"
	case strings.HasPrefix(name, "go_"):
		return "#37b24d", "Go runtime / raw futex"
	case strings.HasPrefix(name, "gofrs_"), strings.HasPrefix(name, "flock_"):
		return "#868e96", "file locks: flock(2), gofrs/flock"
	case strings.HasPrefix(name, "py_"):
		return "#f59f00", "Python multiprocessing"
	case strings.HasPrefix(name, "rb_"):
		return "#c2255c", "Ruby process_shared"
	case strings.HasPrefix(name, "sock_"):
		return "#15aabf", "unix socketpair"
	}
	return "#adb5bd", "other"
}

var legendOrder = []string{"processshared", "C: glibc pthread / sem / futex", "Go runtime / raw futex", "go-ipc v0.6.1",
	"file locks: flock(2), gofrs/flock", "Python multiprocessing", "Ruby process_shared", "unix socketpair", "other"}

// chartSVG draws one block of horizontal bars per group, each on its own
// logarithmic scale spanning whole decades.
func chartSVG(grouped [][]line) string {
	used := map[string]string{}
	for _, ls := range grouped {
		for _, l := range ls {
			color, fam := family(l.name)
			used[fam] = color
		}
	}
	var legend strings.Builder
	lx, ly := 10, legendTop
	for _, fam := range legendOrder {
		color, ok := used[fam]
		if !ok {
			continue
		}
		if lx+30+6*len(fam) > chartWidth {
			lx, ly = 10, ly+18
		}
		fmt.Fprintf(&legend, `<rect x="%d" y="%d" width="12" height="12" fill="%s"/><text x="%d" y="%d" class="legend">%s</text>`+"\n",
			lx, ly, color, lx+16, ly+10, esc(fam))
		lx += 30 + 6*len(fam)
	}

	var body strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&body, format, args...) }
	y := ly + 30
	for i, ls := range grouped {
		if len(ls) == 0 {
			continue
		}
		g := groups[i]
		w(`<text x="10" y="%d" class="title">%s</text>`+"\n", y+18, esc(g.title))
		w(`<text x="10" y="%d" class="unit">%s — lower is better</text>`+"\n", y+34, esc(g.unit))
		y += groupHeader
		lo, hi := math.Inf(1), math.Inf(-1)
		for _, l := range ls {
			if l.value > 0 && !math.IsNaN(l.value) {
				lo, hi = math.Min(lo, l.value), math.Max(hi, l.value)
			}
		}
		if math.IsInf(lo, 1) {
			lo, hi = 1, 10
		}
		d0, d1 := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
		if d1 <= d0 {
			d1 = d0 + 1
		}
		x := func(v float64) float64 {
			return barLeft + barWidth*(math.Log10(v)-d0)/(d1-d0)
		}
		top := y
		bottom := y + rowHeight*len(ls)
		for d := d0; d <= d1; d++ {
			xd := x(math.Pow(10, d))
			w(`<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" class="grid"/>`+"\n", xd, top-4, xd, bottom)
			w(`<text x="%.1f" y="%d" class="tick">%s</text>`+"\n", xd, bottom+14, esc(tickLabel(math.Pow(10, d), unitOf(ls[0].name))))
		}
		for _, l := range ls {
			color, _ := family(l.name)
			cls := "name"
			if ours(l.name) {
				cls = "name ours"
			}
			w(`<text x="%d" y="%d" class="%s">%s</text>`+"\n", labelWidth, y+barHeight-3, cls, esc(l.name))
			switch {
			case math.IsNaN(l.value) || l.value <= 0:
				w(`<text x="%d" y="%d" class="fail">no value: failed its self-check</text>`+"\n", barLeft+4, y+barHeight-3)
			default:
				bw := math.Max(1, x(math.Max(l.value, math.Pow(10, d0)))-barLeft)
				extra := ""
				if !l.ok {
					extra = ` stroke="#e03131" stroke-width="2" fill-opacity="0.35"`
				}
				w(`<rect x="%d" y="%d" width="%.1f" height="%d" fill="%s"%s><title>%s</title></rect>`+"\n",
					barLeft, y, bw, barHeight, color, extra, esc(l.String()))
				label := human(l.value, unitOf(l.name))
				if !l.ok {
					label += " (correct=no)"
				}
				w(`<text x="%.1f" y="%d" class="val">%s</text>`+"\n", barLeft+bw+5, y+barHeight-3, esc(label))
			}
			y += rowHeight
		}
		y += axisHeight + 12
	}
	height := y + 10

	var out strings.Builder
	fmt.Fprintf(&out, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="Helvetica, Arial, sans-serif">`+"\n",
		chartWidth, height, chartWidth, height)
	out.WriteString(`<style>
.title { font-size: 15px; font-weight: bold; fill: #212529; }
.unit { font-size: 11px; fill: #495057; }
.name { font-size: 11px; fill: #343a40; text-anchor: end; font-family: Menlo, Consolas, monospace; }
.ours { font-weight: bold; fill: #d9480f; }
.val { font-size: 10px; fill: #343a40; }
.tick { font-size: 10px; fill: #868e96; text-anchor: middle; }
.grid { stroke: #dee2e6; stroke-width: 1; }
.fail { font-size: 11px; fill: #e03131; font-style: italic; }
.legend { font-size: 11px; fill: #343a40; }
.head { font-size: 20px; font-weight: bold; fill: #212529; }
</style>
<rect width="100%" height="100%" fill="#ffffff"/>
`)
	fmt.Fprintf(&out, `<text x="10" y="30" class="head">processshared against its peers</text>`+"\n")
	out.WriteString(legend.String())
	out.WriteString(body.String())
	out.WriteString("</svg>\n")
	return out.String()
}

// tickLabel labels a decade.
func tickLabel(v float64, unit string) string {
	if unit == "threads" {
		return fmt.Sprintf("%g", v)
	}
	switch {
	case v >= 1e9:
		return fmt.Sprintf("%gs", v/1e9)
	case v >= 1e6:
		return fmt.Sprintf("%gms", v/1e6)
	case v >= 1e3:
		return fmt.Sprintf("%gµs", v/1e3)
	default:
		return fmt.Sprintf("%gns", v)
	}
}

func esc(s string) string { return html.EscapeString(s) }
