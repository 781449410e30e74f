package analyze

import (
	"fmt"
	"strings"
)

// CodeClientBound: the client, not the server, limits the connection.
const CodeClientBound = "client-bound"

// The client-bound diagnosis. A server that is the bottleneck keeps work
// waiting: requests pile up and the connection is never empty. A client
// that is the bottleneck leaves the server waiting for it: the connection
// often has nothing outstanding although the client has shown that it
// keeps many requests in flight at once. So a connection is called
// client-bound when
//   - it keeps real concurrency: 8 or more requests outstanding at least
//     minBoundConcurrent of its span, not in one burst (a client at one
//     request in flight that simply waits has chosen its pace: that is not
//     this finding);
//   - it was empty at least minBoundIdle of its span while busy at least
//     minBoundBusy of it (a connection that is almost always empty carries
//     no load to be limited: the client has nothing to ask);
//   - it kept on average at most maxBoundKept of its peak outstanding;
//   - and it carried enough requests over a long enough span;
//   - and the idle gaps are the client's own time, not the round trip to
//     a distant client (a capture on the server's host sees every answer
//     leave and the next request arrive a round trip later).
//
// With the client's process measured (live), the CPU it used and the CPU
// it waited for (its demand: on a loaded host a client starved of CPU uses
// little but wants much) sharpen the finding both ways:
//   - a process that wanted less than maxIdleDemand of a core in all and in
//     its busiest thread was not slow: it had nothing more to ask, and the
//     wire's finding is withdrawn;
//   - a process whose busiest thread wanted at least minSaturatedThread of
//     a core (one event loop, or one task holding every future, can never
//     use more than one core) is saturated, and then weaker wire evidence
//     suffices: some idle time (minBoundIdleCPU) and a mean outstanding at
//     most maxBoundKeptCPU of the peak.
const (
	minBoundConcurrent = 0.10
	minBoundIdle       = 0.25
	minBoundBusy       = 0.10
	maxBoundKept       = 0.50
	minBoundRequests   = 500
	minBoundSpan       = 0.2 // s
	maxIdleDemand      = 0.25
	// maxPathShare: the finding is withheld when the path to the client
	// (seen from where the capture is taken) makes up half the mean idle
	// gap or more.
	maxPathShare       = 2
	minSaturatedThread = 0.90
	minBoundIdleCPU    = 0.05
	maxBoundKeptCPU    = 0.50
)

// How much of the wire's evidence clientBound asks for.
const (
	wireEvidence = iota
	// cpuEvidence: the client's process is known to be saturated, so a
	// smaller idle share suffices and its mean may come closer to its peak.
	cpuEvidence
)

// clientBound is the evidence that the client limits the connection, nil
// when it does not hold.
func clientBound(r *ConnReport, level int) *Diagnosis {
	t := r.Timing
	if t == nil || r.Requests < minBoundRequests || t.SpanS < minBoundSpan || t.atLeast8 < minBoundConcurrent {
		return nil
	}
	idle, kept := minBoundIdle, maxBoundKept
	if level == cpuEvidence {
		idle, kept = minBoundIdleCPU, maxBoundKeptCPU
	}
	if t.IdleShare < idle || 1-t.IdleShare < minBoundBusy {
		return nil
	}
	if t.OutstandingMean > kept*float64(t.OutstandingPeak) {
		return nil
	}
	if t.PathToClientUS > 0 && t.PathToClientUS*maxPathShare >= t.IdleGaps.MeanUS {
		// Taken far from the client (on the server's host): the idle gaps
		// are mostly the round trip to it, not the client's own time.
		return nil
	}
	kept = t.OutstandingMean / float64(t.OutstandingPeak)
	var b strings.Builder
	fmt.Fprintf(&b, "client %s, not its server, limits this connection: it had up to %d requests outstanding at once but kept %.1f on average (%.0f%%), "+
		"and the server had nothing to do for it %.0f%% of the time (%d gaps, %s on average) while it answered in %s on average; "+
		"the client sent its next request %s after a response reached it, on average.",
		r.Client, t.OutstandingPeak, t.OutstandingMean, 100*kept, 100*t.IdleShare, t.IdleGaps.Count, fmtUS(t.IdleGaps.MeanUS),
		fmtUS(t.ServerTimeUS), fmtUS(t.ClientReaction.MeanUS))
	return &Diagnosis{Code: CodeClientBound, Client: r.Client, Server: r.Server, Message: b.String()}
}

const clientBoundAdvice = " Raising its concurrency will not help: look at the client — its CPU (one busy thread or event loop), how it waits on " +
	"many requests (a futures::FuturesUnordered polled from one task walked its whole ready list on every poll up to futures 0.3.18), a limit or pacing of its own."

// idleProcess reports whether a measured client process was mostly idle.
func idleProcess(p *ProcessReport) bool {
	return p.Demand < maxIdleDemand && p.BusiestThreadDemand < maxIdleDemand
}

func saturated(p *ProcessReport) bool { return p.BusiestThreadDemand >= minSaturatedThread }

// processDiagnoses revisits a connection's diagnoses with its ends'
// measured CPU: a client-bound finding gets the client's CPU as evidence,
// or is withdrawn when the client's process was idle.
func processDiagnoses(r *ConnReport, ds []Diagnosis) []Diagnosis {
	p := r.ClientProcess
	if p == nil || p.WindowS*1e9 < minProcWindow {
		return ds
	}
	out := ds[:0:0]
	found := false
	for _, d := range ds {
		if d.Code != CodeClientBound {
			out = append(out, d)
		}
	}
	if saturated(p) {
		if d := clientBound(r, cpuEvidence); d != nil {
			out = append(out, withCPU(*d, p))
			found = true
		}
	}
	if !found && !idleProcess(p) {
		if d := clientBound(r, wireEvidence); d != nil {
			out = append(out, withCPU(*d, p))
		}
	}
	// Otherwise the client's process was mostly idle: it was not slow, it
	// had nothing more to ask, whatever the wire suggests.
	return out
}

func withCPU(d Diagnosis, p *ProcessReport) Diagnosis {
	d.Message += " Its process " + p.describe() + "." + clientBoundAdvice
	d.Mechanism = "cpu"
	return d
}

func fmtUS(us float64) string {
	switch {
	case us >= 1e6:
		return fmt.Sprintf("%.2f s", us/1e6)
	case us >= 1e3:
		return fmt.Sprintf("%.1f ms", us/1e3)
	}
	return fmt.Sprintf("%.0f µs", us)
}
