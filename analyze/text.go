package analyze

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// WriteText renders r for humans: summary, diagnoses, connections, top
// statements and opcodes. topN bounds the statement list (0 = 20).
func (r *Report) WriteText(w io.Writer, topN int) error {
	if topN <= 0 {
		topN = 20
	}
	ew := &errWriter{w: w}
	t := r.Totals
	fmt.Fprintf(ew, "cqlsniff report: %s\n", r.Source)
	fmt.Fprintf(ew, "  %d packets, %s, %.3f s", r.Packets, human(r.Bytes), r.DurationS)
	if r.Start != "" {
		fmt.Fprintf(ew, " from %s", r.Start)
	}
	fmt.Fprintf(ew, ", %d dropped by the kernel\n", r.Dropped)
	fmt.Fprintf(ew, "  %d CQL connections", t.Connections-t.Encrypted+t.Decrypted)
	if t.Decrypted > 0 {
		fmt.Fprintf(ew, " (%d of them TLS, decrypted)", t.Decrypted)
	}
	if n := t.Encrypted - t.Decrypted; n > 0 {
		fmt.Fprintf(ew, " and %d encrypted (TLS) not decrypted", n)
	}
	fmt.Fprintf(ew, ", %d requests, %d responses, %d unanswered, %d errors, %d events",
		t.Requests, t.Responses, t.Unanswered, t.Errors, t.Events)
	if t.OrphanResponses > 0 {
		fmt.Fprintf(ew, ", %d answers to requests sent before the capture", t.OrphanResponses)
	}
	fmt.Fprintln(ew)
	c := r.Capture
	if c.Retransmits+c.Gaps+c.SkippedBytes+c.Desyncs+c.DecompressErr > 0 || c.Truncated {
		fmt.Fprintf(ew, "  capture: %d retransmissions, %d out of order, %d gaps (%d bytes lost), %d bytes skipped to find frames, %d desyncs, %d decompression errors",
			c.Retransmits, c.OutOfOrder, c.Gaps, c.GapBytes, c.SkippedBytes, c.Desyncs, c.DecompressErr)
		if c.Truncated {
			fmt.Fprint(ew, "; the file is truncated")
		}
		fmt.Fprintln(ew)
	}
	for _, s := range r.Warnings {
		fmt.Fprintf(ew, "  warning: %s\n", s)
	}

	fmt.Fprintf(ew, "\nDiagnoses\n")
	if len(r.Diagnoses) == 0 {
		fmt.Fprintf(ew, "  %s\n", r.noDiagnosis())
	}
	// A pool of connections from one client usually shares its fate: show
	// the first connection's message and list the others.
	type group struct {
		d     Diagnosis
		ports []string
	}
	var groups []*group
	seen := map[string]*group{}
	for _, d := range r.Diagnoses {
		host := d.Client
		if i := strings.LastIndexByte(host, ':'); i > 0 {
			host = host[:i]
		}
		k := d.Code + "|" + host + "|" + d.Server
		if g := seen[k]; g != nil {
			g.ports = append(g.ports, d.Client[len(host)+1:])
			continue
		}
		g := &group{d: d}
		seen[k] = g
		groups = append(groups, g)
	}
	for _, g := range groups {
		d := g.d
		fmt.Fprintf(ew, "  [%s] %s -> %s\n", d.Code, d.Client, d.Server)
		for _, line := range wrap(d.Message, 100) {
			fmt.Fprintf(ew, "      %s\n", line)
		}
		if len(g.ports) > 0 {
			for _, line := range wrap(fmt.Sprintf("The same holds for %d more connections from this client (ports %s).", len(g.ports), strings.Join(g.ports, ", ")), 100) {
				fmt.Fprintf(ew, "      %s\n", line)
			}
		}
	}

	fmt.Fprintf(ew, "\nConnections (latency in µs; frames/seg = CQL frames per data-bearing TCP segment)\n")
	tw := tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "client\t server\t driver\t v\t comp\t requests\t req/s\t in-flight\t client frames/seg\t server frames/seg\t p50\t p99\t max\t errors\t diagnosis\t\n")
	for _, cr := range r.Connections {
		drv := cr.Driver
		if i := strings.LastIndexByte(drv, '/'); i >= 0 {
			drv = drv[i+1:] // github.com/apache/cassandra-gocql-driver → cassandra-gocql-driver
		}
		if cr.DriverVersion != "" {
			drv += " " + cr.DriverVersion
		}
		if drv == "" {
			drv = "-"
		}
		if cr.Encrypted && (cr.TLS == nil || !cr.TLS.Decrypted) {
			what := "TLS (encrypted: TCP and record figures only)"
			if cr.TLS != nil && cr.TLS.Status != "no key log" {
				what = "TLS, not decrypted: " + cr.TLS.Status
			}
			diag := strings.Join(cr.DiagnosisCodes, ",")
			if diag == "" {
				diag = "-"
			}
			fmt.Fprintf(tw, "%s\t %s\t %s\t \t \t \t \t \t %s\t %s\t \t \t \t \t %s\t\n", cr.Client, cr.Server, what,
				recordsPerSeg(cr.ClientSegments.TLS), recordsPerSeg(cr.ServerSegments.TLS), diag)
			continue
		}
		if cr.TLS != nil {
			if cr.TLS.Status != "decrypting" {
				drv += " [" + cr.TLS.Version + ", stopped: " + cr.TLS.Status + "]"
			} else {
				drv += " [" + cr.TLS.Version + "]"
			}
		}
		diag := strings.Join(cr.DiagnosisCodes, ",")
		if diag == "" {
			diag = "-"
		}
		fmt.Fprintf(tw, "%s\t %s\t %s\t %d\t %s\t %d\t %.0f\t %.1f/%d\t %.2f\t %.2f\t %.0f\t %.0f\t %.0f\t %d\t %s\t\n",
			cr.Client, cr.Server, drv, cr.ProtocolVersion, cr.Compression, cr.Requests, cr.RequestsPerSec,
			cr.InFlight.Mean, cr.InFlight.Max, cr.ClientSegments.FramesPerSegment, cr.ServerSegments.FramesPerSegment,
			cr.Latency.P50, cr.Latency.P99, cr.Latency.Max, cr.Errors, diag)
	}
	tw.Flush()
	r.writeTime(ew)

	var sys []*ConnReport
	for _, cr := range r.Connections {
		if cr.ClientSyscalls != nil || cr.ServerSyscalls != nil {
			sys = append(sys, cr)
		}
	}
	if len(sys) > 0 {
		fmt.Fprintf(ew, "\nSocket calls counted by the kernel (eBPF)\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "client\t server\t client process\t sends\t frames/send\t recvs/frame\t server process\t sends\t frames/send\t recvs/frame\t\n")
		side := func(s *SyscallReport) string {
			if s == nil {
				return "-\t -\t -\t -"
			}
			f := func(v *float64) string {
				if v == nil {
					return "-"
				}
				return fmt.Sprintf("%.2f", *v)
			}
			return fmt.Sprintf("%s[%d]\t %d\t %s\t %s", s.Comm, s.PID, s.Sends, f(s.FramesPerSend), f(s.RecvsPerFrame))
		}
		for _, cr := range sys {
			fmt.Fprintf(tw, "%s\t %s\t %s\t %s\t\n", cr.Client, cr.Server, side(cr.ClientSyscalls), side(cr.ServerSyscalls))
		}
		tw.Flush()
	}

	var scylla []*ConnReport
	for _, cr := range r.Connections {
		if cr.Scylla != nil {
			scylla = append(scylla, cr)
		}
	}
	if len(scylla) > 0 {
		fmt.Fprintf(ew, "\nScyllaDB shards\n")
		tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "client\t server\t shard\t shards\t chosen by\t algorithm\t tablet hints\t\n")
		for _, cr := range scylla {
			sc := cr.Scylla
			shard, by := "?", "the node"
			if sc.Shard >= 0 {
				shard = fmt.Sprint(sc.Shard)
			}
			if sc.ShardAwarePort {
				by = "source port"
			}
			if sc.FromNode {
				by += " (node info from another connection)"
			}
			alg := sc.ShardingAlgorithm
			if alg == "" {
				alg = "-"
			}
			fmt.Fprintf(tw, "%s\t %s\t %s\t %d\t %s\t %s\t %d\t\n", cr.Client, cr.Server, shard, sc.Shards, by, alg, sc.TabletRoutingHints)
		}
		tw.Flush()
	}

	fmt.Fprintf(ew, "\nTop statements by total time\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "total ms\tcount\tp50 µs\tp99 µs\terrors\topcode\tstatement\n")
	for i, s := range r.Statements {
		if i == topN {
			fmt.Fprintf(tw, "\t\t\t\t\t\t(%d more)\n", len(r.Statements)-topN)
			break
		}
		text := clip(s.Statement, 100)
		if s.LWT {
			text = "[LWT] " + text
		}
		fmt.Fprintf(tw, "%.1f\t%d\t%.0f\t%.0f\t%d\t%s\t%s\n", s.TotalMS, s.Count, s.Latency.P50, s.Latency.P99, s.Errors, s.Opcode, text)
	}
	tw.Flush()

	fmt.Fprintf(ew, "\nOpcodes\n")
	tw = tabwriter.NewWriter(ew, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "opcode\tcount\terrors\tp50 µs\tp99 µs\tmax µs\n")
	for _, o := range r.Opcodes {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.0f\n", o.Opcode, o.Count, o.Errors, o.Latency.P50, o.Latency.P99, o.Latency.Max)
	}
	tw.Flush()
	return ew.err
}

// recordsPerSeg is a TLS direction's records per TCP segment, for the
// frames/seg columns of a connection that could not be decrypted.
func recordsPerSeg(w *TLSRecordStats) string {
	if w == nil {
		return ""
	}
	return fmt.Sprintf("%.2f rec", w.RecordsPerSegment)
}

// noDiagnosis says what was checked when nothing was found: only
// connections whose CQL could be read were.
func (r *Report) noDiagnosis() string {
	t := r.Totals
	plain := t.Connections - t.Encrypted + t.Decrypted
	switch {
	case plain == 0 && t.Encrypted > 0:
		if t.Encrypted == 1 {
			return "none: the connection is encrypted (TLS) and was not decrypted, so only its TCP segments and TLS records were examined"
		}
		return fmt.Sprintf("none: the %d connections are encrypted (TLS) and were not decrypted, so only their TCP segments and TLS records were examined", t.Encrypted)
	case plain == 0:
		return "none: no CQL connection"
	}
	s := "none: on the CQL connections no side sent frames one write at a time while it had several to send"
	kept := 0 // connections that kept real concurrency long enough to judge client-bound
	for _, c := range r.Connections {
		if t := c.Timing; t != nil && c.Requests >= minBoundRequests && t.SpanS >= minBoundSpan && t.atLeast8 >= minBoundConcurrent {
			kept++
		}
	}
	switch {
	case kept == 1:
		s += ", and the one connection that kept 8 or more requests outstanding was not left waiting by its client"
	case kept > 1:
		s += fmt.Sprintf(", and none of the %d connections that kept 8 or more requests outstanding was left waiting by its client", kept)
	}
	if n := t.Encrypted - t.Decrypted; n > 0 {
		s += fmt.Sprintf("; the %d encrypted (TLS) connections not decrypted were examined by their records only", n)
	}
	return s
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

func human(n uint64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

func clip(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}
