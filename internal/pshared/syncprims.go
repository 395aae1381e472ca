package pshared

import (
	"fmt"
	"strings"

	ps "github.com/processshared/processshared"
)

// The words and JSON of ls and inspect for Event, Barrier, WaitGroup and
// Once.

type jsonEvent struct {
	Set       bool `json:"set"`
	AutoReset bool `json:"auto_reset"`
	Sleepers  bool `json:"sleepers"`
}

type jsonBarrier struct {
	Parties    int    `json:"parties"`
	Joined     int    `json:"joined"`
	Dead       int    `json:"dead"`
	Arrived    int    `json:"arrived"`
	Generation uint32 `json:"generation"`
	Broken     bool   `json:"broken"`
}

type jsonWaitGroup struct {
	Count   int          `json:"count"`
	Broken  bool         `json:"broken"`
	Dropped int          `json:"dropped"`
	Deaths  int          `json:"deaths"`
	Holders []jsonHolder `json:"holders"`
}

type jsonOnce struct {
	Done        bool `json:"done"`
	Running     bool `json:"running"`
	RunnerPID   int  `json:"runner_pid"`
	RunnerAlive bool `json:"runner_alive"`
	Failures    int  `json:"failures"`
}

func syncJSON(jo *jsonObject, o ps.ObjectState) {
	if e := o.Event; e != nil {
		je := jsonEvent(*e)
		jo.Event = &je
	}
	if b := o.Barrier; b != nil {
		jb := jsonBarrier(*b)
		jo.Barrier = &jb
	}
	if g := o.WaitGroup; g != nil {
		jo.WaitGroup = &jsonWaitGroup{Count: g.Count, Broken: g.Broken, Dropped: g.Dropped, Deaths: g.Deaths, Holders: []jsonHolder{}}
		for _, h := range g.Holders {
			jo.WaitGroup.Holders = append(jo.WaitGroup.Holders, jsonHolder(h))
		}
	}
	if n := o.Once; n != nil {
		jn := jsonOnce(*n)
		jo.Once = &jn
	}
}

func syncStateWords(o ps.ObjectState) string {
	switch {
	case o.Event != nil:
		e := o.Event
		kind := "manual-reset"
		if e.AutoReset {
			kind = "auto-reset"
		}
		state := "clear"
		if e.Set {
			state = "set"
		}
		if e.Sleepers {
			state += ", waiters asleep"
		}
		return fmt.Sprintf("%s (%s)", state, kind)
	case o.Barrier != nil:
		b := o.Barrier
		str := fmt.Sprintf("%d of %d arrived; %d joined", b.Arrived, b.Parties, b.Joined)
		if b.Dead > 0 {
			str += fmt.Sprintf(", %d dead", b.Dead)
		}
		if b.Broken {
			str += "; broken"
		}
		return str
	case o.WaitGroup != nil:
		g := o.WaitGroup
		str := fmt.Sprintf("%d outstanding", g.Count)
		if len(g.Holders) > 0 {
			var hs []string
			for _, h := range g.Holders {
				hs = append(hs, fmt.Sprintf("%s ×%d (%s)", pidText(h.PID, h.PIDNamespace), h.Count, aliveWord(h.Alive, "alive", "dead")))
			}
			str += "; added by " + strings.Join(hs, ", ")
		}
		if g.Broken {
			str += fmt.Sprintf("; broken: %s died holding Adds", plural(g.Deaths, "process", "processes"))
		}
		return str
	case o.Once != nil:
		n := o.Once
		switch {
		case n.Done:
			return "done"
		case n.Running:
			return fmt.Sprintf("running in %s (%s)", pidText(n.RunnerPID, 0), aliveWord(n.RunnerAlive, "alive", "dead"))
		case n.Failures > 0:
			return fmt.Sprintf("not done; %s failed", plural(n.Failures, "run", "runs"))
		}
		return "not done"
	}
	return ""
}
