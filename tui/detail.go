package tui

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// The detail view's text, with tview style tags.

// distKeys are the buckets of SegmentStats.Distribution, in order.
var distKeys = []string{"0", "1", "2-3", "4-7", "8-15", "16+"}

func connDetail(c *analyze.ConnReport, diags []analyze.Diagnosis, barW int) string {
	var b strings.Builder
	comp := c.Compression
	if c.CompressionInferred {
		comp += " (inferred)"
	}
	proto := "?"
	if c.ProtocolVersion > 0 {
		proto = "v" + strconv.Itoa(c.ProtocolVersion)
	}
	fmt.Fprintf(&b, "driver %s\n", escape(driverText(c)))
	fmt.Fprintf(&b, "protocol %s   compression %s", proto, escape(comp))
	if c.Keyspace != "" {
		fmt.Fprintf(&b, "   keyspace %s", escape(c.Keyspace))
	}
	fmt.Fprintf(&b, "   state %s   seen %s", escape(c.Closed), fmtElapsed(c.DurationS))
	if c.Encrypted {
		b.WriteString("   [red]encrypted (TLS)[-]")
	}
	fmt.Fprintf(&b, "\nrequests %d   responses %d   errors %s   unanswered %d   events %d",
		c.Requests, c.Responses, redIf(c.Errors), c.Unanswered, c.Events)
	if c.StreamReuse > 0 {
		fmt.Fprintf(&b, "   stream ids reused %d", c.StreamReuse)
	}
	if c.OrphanResponses > 0 {
		fmt.Fprintf(&b, "   answers to earlier requests %d", c.OrphanResponses)
	}
	fmt.Fprintf(&b, "\n%s req/s   in flight %.1f mean, %d max", fmtRate(c.RequestsPerSec), c.InFlight.Mean, c.InFlight.Max)
	if len(c.DiagnosisCodes) > 0 {
		b.WriteString("   " + badgeLine(c.DiagnosisCodes, true))
	}
	b.WriteString("\n\n")
	latencyBlock(&b, c.Latency, barW)
	timeBlock(&b, c, 2*barW)

	b.WriteString("\n[::b]Frames per segment[::B] (CQL frames per data-bearing TCP segment)\n")
	segmentsTable(&b, c.ClientSegments, c.ServerSegments)
	if c.ClientSyscalls != nil || c.ServerSyscalls != nil {
		b.WriteString("\n[::b]System calls[::B] (each end's socket calls, counted in the kernel)\n")
		syscallsTable(&b, c.ClientSyscalls, c.ServerSyscalls)
	}
	for _, side := range []struct {
		name string
		w    analyze.SegmentStats
	}{{"client", c.ClientSegments}, {"server", c.ServerSegments}} {
		fmt.Fprintf(&b, "\n[::b]%s segments by frames starting in them[::B]\n", side.name)
		distBars(&b, side.w.Distribution, barW)
	}

	for _, d := range diags {
		if d.Client != c.Client || d.Server != c.Server {
			continue
		}
		fmt.Fprintf(&b, "\n%s %s", badgeLine([]string{d.Code}, true), escape(d.Code))
		if d.Mechanism != "" {
			fmt.Fprintf(&b, " (seen through %s)", escape(d.Mechanism))
		}
		fmt.Fprintf(&b, "\n%s\n", escape(d.Message))
	}
	return b.String()
}

func stmtDetail(s *analyze.StmtReport, barW int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "[yellow::b]%s[-::B]\n\n", escape(s.Statement))
	fmt.Fprintf(&b, "opcode %s   count %d   errors %s   total %s\n\n", escape(s.Opcode), s.Count, redIf(s.Errors), fmtUS(s.TotalMS*1e3))
	latencyBlock(&b, s.Latency, barW)
	return b.String()
}

func redIf(n uint64) string {
	if n > 0 {
		return "[red::b]" + strconv.FormatUint(n, 10) + "[-::B]"
	}
	return "0"
}

// latencyBlock writes the latency figures and the histogram as text bars,
// one per power-of-two bucket of microseconds.
func latencyBlock(b *strings.Builder, l analyze.Latency, barW int) {
	b.WriteString("[::b]Latency[::B]")
	if l.Count == 0 {
		b.WriteString(": no answered request yet\n")
		return
	}
	fmt.Fprintf(b, "   count %d   p50 %s   p90 %s   p99 %s   p99.9 %s   max %s   mean %s\n",
		l.Count, fmtUS(l.P50), fmtUS(l.P90), fmtUS(l.P99), fmtUS(l.P999), fmtUS(l.Max), fmtUS(l.Mean))
	var top, total int64
	for _, bar := range l.Histogram {
		top = max(top, bar.Count)
		total += bar.Count
	}
	for _, bar := range l.Histogram {
		fmt.Fprintf(b, "  ≤ %9d µs │[green]%-*s[-] %8d %5.1f%%\n",
			bar.UpToUS, barW, hbar(bar.Count, top, barW), bar.Count, pct(bar.Count, total))
	}
}

// segmentsTable lays the batching evidence of both directions side by side.
func segmentsTable(b *strings.Builder, cw, sw analyze.SegmentStats) {
	row := func(name string, c, s string) {
		fmt.Fprintf(b, "  %-46s %12s %12s\n", name, c, s)
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	row("", "client", "server")
	row("frames", u(cw.Frames), u(sw.Frames))
	row("data-bearing segments", u(cw.Segments), u(sw.Segments))
	row("frames per segment", fmtFPSeg(cw), fmtFPSeg(sw))
	row("frames spanning several segments", u(cw.SpanningFrames), u(sw.SpanningFrames))
	row("segments starting a frame", u(cw.FrameStartSegments), u(sw.FrameStartSegments))
	row("back to back (could have joined the previous)", u(cw.BackToBack), u(sw.BackToBack))
	row("  of which carrying a single frame", u(cw.BackToBackSingle), u(sw.BackToBackSingle))
	row("sent with earlier data unacknowledged", u(cw.SentUnacked), u(sw.SentUnacked))
	row("sent with all earlier data acknowledged", u(cw.SentAcked), u(sw.SentAcked))
	row("  of which right after the releasing ACK", u(cw.AckClocked), u(sw.AckClocked))
	row("retransmissions", u(cw.Retransmits), u(sw.Retransmits))
	row("bytes", u(cw.Bytes), u(sw.Bytes))
	if cw.V5 != nil || sw.V5 != nil {
		v5 := func(w analyze.SegmentStats, f func(*analyze.V5SegmentStats) string) string {
			if w.V5 == nil {
				return "-"
			}
			return f(w.V5)
		}
		row("v5 segments", v5(cw, func(v *analyze.V5SegmentStats) string { return u(v.Segments) }),
			v5(sw, func(v *analyze.V5SegmentStats) string { return u(v.Segments) }))
		row("frames per v5 segment", v5(cw, func(v *analyze.V5SegmentStats) string { return fmtRatio(v.FramesPerV5Segment) }),
			v5(sw, func(v *analyze.V5SegmentStats) string { return fmtRatio(v.FramesPerV5Segment) }))
		row("v5 segments per TCP segment", v5(cw, func(v *analyze.V5SegmentStats) string { return fmtRatio(v.V5SegmentsPerSegment) }),
			v5(sw, func(v *analyze.V5SegmentStats) string { return fmtRatio(v.V5SegmentsPerSegment) }))
	}
}

// syscallsTable lays the kernel's counts of both ends side by side; an end
// that was not measured (it runs on another host) shows "-".
func syscallsTable(b *strings.Builder, cs, ss *analyze.SyscallReport) {
	row := func(name string, f func(*analyze.SyscallReport) string) {
		cell := func(s *analyze.SyscallReport) string {
			if s == nil {
				return "-"
			}
			return f(s)
		}
		// Wider than the segments table: "comm[pid]" takes up to 24 cells.
		fmt.Fprintf(b, "  %-36s %24s %24s\n", name, cell(cs), cell(ss))
	}
	u := func(v uint64) string { return strconv.FormatUint(v, 10) }
	fmt.Fprintf(b, "  %-36s %24s %24s\n", "", "client", "server")
	row("process", func(s *analyze.SyscallReport) string { return escape(fmt.Sprintf("%s[%d]", s.Comm, s.PID)) })
	row("send calls", func(s *analyze.SyscallReport) string { return u(s.Sends) })
	row("frames per send call", func(s *analyze.SyscallReport) string { return fmtPerCall(s, true) })
	row("receive calls", func(s *analyze.SyscallReport) string { return u(s.Recvs) })
	row("receive calls per frame received", func(s *analyze.SyscallReport) string { return fmtPerCall(s, false) })
	row("bytes sent", func(s *analyze.SyscallReport) string { return u(s.SendBytes) })
	row("bytes received", func(s *analyze.SyscallReport) string { return u(s.RecvBytes) })
}

// distBars draws a frames-per-segment distribution: one bar per bucket.
func distBars(b *strings.Builder, dist map[string]uint64, barW int) {
	var top, total int64
	for _, k := range distKeys {
		top = max(top, int64(dist[k]))
		total += int64(dist[k])
	}
	if total == 0 {
		b.WriteString("  no data-bearing segment yet\n")
		return
	}
	for _, k := range distKeys {
		n := int64(dist[k])
		fmt.Fprintf(b, "  %4s frames │[aqua]%-*s[-] %8d %5.1f%%\n", k, barW, hbar(n, top, barW), n, pct(n, total))
	}
}

// eighths are the partial block characters, from one eighth to seven.
var eighths = []rune("▏▎▍▌▋▊▉")

// hbar draws n out of top as a bar of at most width cells, in eighths of a
// cell; any non-zero n shows at least a sliver.
func hbar(n, top int64, width int) string {
	if n <= 0 || top <= 0 || width <= 0 {
		return ""
	}
	e := int(n * int64(width) * 8 / top)
	if e == 0 {
		e = 1
	}
	s := strings.Repeat("█", e/8)
	if e%8 > 0 {
		s += string(eighths[e%8-1])
	}
	return s
}

func pct(n, total int64) float64 {
	if total == 0 {
		return 0
	}
	return 100 * float64(n) / float64(total)
}
