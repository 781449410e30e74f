package analyze

import (
	"fmt"
	"sort"
)

// ProcessCPU is what was measured of one process at an end of CQL
// connections, since the sampler first saw it (package procstat reads it
// from /proc at the report cadence; the process ids come from the kernel's
// socket counts). CPU times are user plus system time, in nanoseconds.
type ProcessCPU struct {
	PID  uint32
	Comm string
	// Since and At are the wall-clock times (Unix ns) of the first reading
	// and of this one: the window the CPU figures cover.
	Since, At int64
	// CPU is the CPU time of all the process's threads in the window.
	CPU int64
	// BusiestThread is the CPU time, in the window, of the thread that used
	// the most of it, and BusiestThreadName that thread's name.
	BusiestThread     int64
	BusiestThreadName string
	// Wait is the time its threads were runnable but waiting for a CPU in
	// the window (schedstat): CPU it wanted and did not get, on a loaded
	// host. BusiestThreadWait is the busiest thread's.
	Wait, BusiestThreadWait int64
	Threads                 int
	// Sockets counts the process's open sockets at this reading (all kinds,
	// not only CQL connections): more than its CQL connections means it
	// also talks to something else, and its CPU is not all CQL work.
	Sockets int
	// Gone: the process has exited; the figures are its last reading.
	Gone bool
}

// ProcessReport is an end's process, measured while the capture ran: its
// CPU per request over the requests its CQL connections sent (a client) or
// received (a server) in the same window.
type ProcessReport struct {
	PID         uint32  `json:"pid"`
	Comm        string  `json:"comm"`
	WindowS     float64 `json:"window_s"` // the span measured
	CPUS        float64 `json:"cpu_s"`    // CPU time used in it (user + system, all threads)
	Cores       float64 `json:"cores"`    // cpu_s / window_s
	Requests    uint64  `json:"requests"` // requests of its CQL connections in the window
	CPUPerReqUS float64 `json:"cpu_us_per_request,omitempty"`
	// BusiestThreadShare is the busiest thread's CPU time over the window:
	// near 1 means that thread was never idle (one core's worth, the most a
	// single event loop or one task can get).
	BusiestThreadShare float64 `json:"busiest_thread_share"`
	BusiestThread      string  `json:"busiest_thread"`
	// RunQueueWaitS is the time its threads were ready to run but waited
	// for a CPU; Demand (cores) and BusiestThreadDemand add it to the CPU
	// time: what the process would have used on an idle host. A client
	// starved of CPU by its neighbours shows little CPU but a high demand.
	RunQueueWaitS       float64 `json:"runqueue_wait_s"`
	Demand              float64 `json:"demand_cores"`
	BusiestThreadDemand float64 `json:"busiest_thread_demand"`
	Threads             int     `json:"threads"`
	CQLConnections      int     `json:"cql_connections"`
	// OtherSockets counts open sockets beyond its CQL connections: when
	// there are any, its CPU time is not all spent on CQL.
	OtherSockets int  `json:"other_sockets"`
	Exited       bool `json:"exited,omitempty"`
}

// minProcWindow is the shortest window a CPU figure is given for: below a
// second the clock-tick granularity of /proc (10 ms) is too coarse.
const minProcWindow = 1e9

// SetProcesses hands the analyzer the newest reading of the processes at
// the ends of CQL connections (a copy it may keep). Call it from the
// goroutine that runs the pipeline, after SetSyscalls: the processes are
// joined to connections by the pids the kernel's counts name.
func (a *Analyzer) SetProcesses(ps []ProcessCPU) { a.rep.setProcesses(ps) }

func (m *merger) setProcesses(ps []ProcessCPU) {
	if m.procs == nil {
		m.procs = make(map[uint32]*procState)
	}
	for _, p := range ps {
		s := m.procs[p.PID]
		if s == nil {
			if len(m.procs) >= maxProcs {
				continue
			}
			s = &procState{baseReq: -1}
			m.procs[p.PID] = s
		}
		s.last = p
	}
}

// maxProcs bounds the processes followed (a host with thousands of short
// client processes).
const maxProcs = 4096

type procState struct {
	last ProcessCPU
	// baseReq is the requests its connections had counted when the sampler
	// first saw it (-1 until the first report after that): the CPU window
	// starts there, so only later requests are divided into it.
	baseReq int64
	since   int64 // the window baseReq belongs to
}

// procJoinSlack is how long before a process was first sampled a
// connection of its pid may have ended and still be its own: the sampler
// reads /proc at the report cadence, after the kernel's counts named it.
const procJoinSlack = 5 * 1e9

// withProcesses fills each connection end's process figures from the
// newest readings. The report's connections are copies it may modify.
func (m *merger) withProcesses(conns []*ConnReport) {
	if len(m.procs) == 0 {
		return
	}
	type agg struct {
		reqs  uint64
		conns int
		open  int // of them open at the process's latest reading: its socket count holds only these
	}
	by := make(map[uint32]*agg)
	add := func(s *SyscallReport, c *ConnReport) {
		if s == nil || s.PID == 0 {
			return
		}
		if p := m.procs[s.PID]; p != nil && c.lastTS < p.last.Since-int64(procJoinSlack) {
			return // over before the process was first seen: an earlier process with the same pid
		}
		g := by[s.PID]
		if g == nil {
			g = &agg{}
			by[s.PID] = g
		}
		g.reqs += c.Requests
		g.conns++
		if p := m.procs[s.PID]; c.Closed == "open" || p != nil && c.lastTS >= p.last.At-int64(procJoinSlack) {
			g.open++ // open when the process's sockets were last counted, as far as can be told
		}
	}
	for _, c := range conns {
		add(c.ClientSyscalls, c)
		if c.ClientSyscalls == nil || c.ServerSyscalls == nil || c.ServerSyscalls.PID != c.ClientSyscalls.PID {
			add(c.ServerSyscalls, c) // (a process at both ends counts its requests once)
		}
	}
	reports := make(map[uint32]*ProcessReport, len(by))
	for pid, g := range by {
		s := m.procs[pid]
		if s == nil {
			continue
		}
		if s.baseReq < 0 || s.since != s.last.Since {
			// First seen, or the sampler started a new window (a new
			// process under a reused pid).
			s.baseReq, s.since = int64(g.reqs), s.last.Since
		}
		reports[pid] = s.report(g.reqs, g.conns, g.open)
	}
	joined := func(s *SyscallReport, c *ConnReport) *ProcessReport {
		if s == nil {
			return nil
		}
		if p := m.procs[s.PID]; p == nil || c.lastTS < p.last.Since-int64(procJoinSlack) {
			return nil
		}
		return reports[s.PID]
	}
	for i, c := range conns {
		cp, changed := *c, false
		if p := joined(c.ClientSyscalls, c); p != nil {
			cp.ClientProcess, changed = p, true
		}
		if p := joined(c.ServerSyscalls, c); p != nil {
			cp.ServerProcess, changed = p, true
		}
		if changed {
			cp.diagnoses = processDiagnoses(&cp, cp.diagnoses)
			cp.DiagnosisCodes = codes(cp.diagnoses)
			conns[i] = &cp
		}
	}
}

func (s *procState) report(reqs uint64, conns, open int) *ProcessReport {
	p := &s.last
	r := &ProcessReport{PID: p.PID, Comm: p.Comm, Threads: p.Threads, CQLConnections: conns,
		OtherSockets: max(p.Sockets-open, 0), Exited: p.Gone, BusiestThread: p.BusiestThreadName}
	win := p.At - p.Since
	r.WindowS = round3(float64(win) / 1e9)
	r.CPUS = round3(float64(p.CPU) / 1e9)
	r.RunQueueWaitS = round3(float64(p.Wait) / 1e9)
	if int64(reqs) > s.baseReq {
		r.Requests = reqs - uint64(s.baseReq)
	}
	if win >= minProcWindow {
		r.Cores = round2(float64(p.CPU) / float64(win))
		r.BusiestThreadShare = round2(float64(p.BusiestThread) / float64(win))
		r.Demand = round2(float64(p.CPU+p.Wait) / float64(win))
		r.BusiestThreadDemand = round2(float64(p.BusiestThread+p.BusiestThreadWait) / float64(win))
		if r.Requests > 0 {
			r.CPUPerReqUS = round2(float64(p.CPU) / 1e3 / float64(r.Requests))
		}
	}
	return r
}

func round3(f float64) float64 { return float64(int64(f*1000+0.5)) / 1000 }

// describe is the process in a few words, for diagnosis messages.
func (r *ProcessReport) describe() string {
	s := fmt.Sprintf("%s (pid %d) used %.2f cores", r.Comm, r.PID, r.Cores)
	if r.CPUPerReqUS > 0 {
		s += fmt.Sprintf(", %.1f µs of CPU per request", r.CPUPerReqUS)
	}
	s += fmt.Sprintf(", its busiest thread %s %.0f%% of one core", r.BusiestThread, 100*r.BusiestThreadShare)
	if r.RunQueueWaitS > 0.1*r.WindowS {
		s += fmt.Sprintf("; its threads also waited %.1f s for a CPU (%.2f cores wanted in all)", r.RunQueueWaitS, r.Demand)
	}
	if r.OtherSockets > 0 {
		s += fmt.Sprintf(" (it has %d other sockets open: not all of that CPU is CQL work)", r.OtherSockets)
	}
	return s
}

// processList is the processes of a report, busiest first, for the text
// report.
func processList(conns []*ConnReport) []*ProcessReport {
	seen := map[uint32]*ProcessReport{}
	for _, c := range conns {
		for _, p := range []*ProcessReport{c.ClientProcess, c.ServerProcess} {
			if p != nil {
				seen[p.PID] = p
			}
		}
	}
	out := make([]*ProcessReport, 0, len(seen))
	for _, p := range seen {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].CPUS > out[j].CPUS })
	return out
}
