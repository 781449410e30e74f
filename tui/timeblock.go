package tui

import (
	"fmt"
	"strings"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// timeBlock writes where a connection's time went: outstanding requests
// over time and when the connection sat empty, the server's time against
// the client's reaction, the processes' CPU when measured, and sparklines
// of throughput and outstanding requests (the concurrency/throughput
// curve).
func timeBlock(b *strings.Builder, c *analyze.ConnReport, width int) {
	t := c.Timing
	if t == nil {
		return
	}
	b.WriteString("\n[::b]Where the time went[::B] (outstanding = sent, not yet answered; idle = nothing outstanding)\n")
	fmt.Fprintf(b, "  outstanding %.1f mean (time-weighted), %d peak   idle %.0f%% of %.2f s in %d gaps (mean %s)\n",
		t.OutstandingMean, t.OutstandingPeak, 100*t.IdleShare, t.SpanS, t.IdleGaps.Count, fmtUS(t.IdleGaps.MeanUS))
	fmt.Fprintf(b, "  server time %s mean   client reaction %s mean (response → its next request)\n",
		fmtUS(t.ServerTimeUS), fmtUS(t.ClientReaction.MeanUS))
	for _, p := range []struct {
		side string
		p    *analyze.ProcessReport
	}{{"client", c.ClientProcess}, {"server", c.ServerProcess}} {
		if p.p == nil || p.p.WindowS < 1 {
			continue
		}
		fmt.Fprintf(b, "  %s process %s[%d]: %.2f cores, %.1f µs CPU per request, busiest thread %s %.0f%%",
			p.side, escape(p.p.Comm), p.p.PID, p.p.Cores, p.p.CPUPerReqUS, escape(p.p.BusiestThread), 100*p.p.BusiestThreadShare)
		if p.p.OtherSockets > 0 {
			fmt.Fprintf(b, " [yellow](%d other sockets: not all CQL work)[-]", p.p.OtherSockets)
		}
		b.WriteByte('\n')
	}
	s := t.Series
	if s == nil || len(s.Responses) < 2 {
		return
	}
	// The newest bins that fit.
	from := max(0, len(s.Responses)-width)
	fmt.Fprintf(b, "  answers/s   %s  max %s (bins of %s)\n", spark(s.Responses[from:]), fmtRate(maxOf(s.Responses[from:])), fmtUS(s.BinMS*1e3))
	fmt.Fprintf(b, "  outstanding %s  max %.0f\n", spark(s.Outstanding[from:]), maxOf(s.Outstanding[from:]))
	fmt.Fprintf(b, "  idle        %s  max %.0f%%\n", spark(s.Idle[from:]), 100*maxOf(s.Idle[from:]))
}

var sparkRunes = []rune("▁▂▃▄▅▆▇█")

// spark draws vs as a sparkline scaled to its maximum.
func spark(vs []float64) string {
	top := maxOf(vs)
	var b strings.Builder
	b.WriteString("[aqua]")
	for _, v := range vs {
		i := 0
		if top > 0 {
			i = int(v / top * float64(len(sparkRunes)-1))
		}
		b.WriteRune(sparkRunes[min(max(i, 0), len(sparkRunes)-1)])
	}
	b.WriteString("[-]")
	return b.String()
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = max(m, v)
	}
	return m
}
