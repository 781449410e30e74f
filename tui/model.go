package tui

import (
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// This file turns a report into what the views show: cells, sort orders,
// filters and the header's whole-capture figures. It knows nothing of tview,
// so it is tested with plain values.

// column is one column of a table over rows of type T.
type column[T any] struct {
	name string
	left bool // text, aligned left and sorted ascending first; numbers are right-aligned, descending first
	cell func(T) string
	less func(a, b T) bool
}

// sortState is a table's sort column (an index into its columns) and
// direction.
type sortState struct {
	col  int
	desc bool
}

// next moves to the following column in display order, with that column's
// natural direction.
func nextSort[T any](cols []column[T], s sortState) sortState {
	c := (s.col + 1) % len(cols)
	return sortState{col: c, desc: !cols[c].left}
}

// sortRows sorts rows by s; tie stays in report order (stable).
func sortRows[T any](rows []T, cols []column[T], s sortState) {
	less := cols[s.col].less
	slices.SortStableFunc(rows, func(a, b T) int {
		x, y := a, b
		if s.desc {
			x, y = b, a
		}
		switch {
		case less(x, y):
			return -1
		case less(y, x):
			return 1
		}
		return 0
	})
}

// header returns the column titles with the sort marker on the sort column.
func header[T any](cols []column[T], s sortState) []string {
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.name
		if i == s.col {
			if s.desc {
				out[i] += "▼"
			} else {
				out[i] += "▲"
			}
		}
	}
	return out
}

// Connection columns, in display order. The most useful come first: on a
// narrow terminal the table shows the leading ones and ←/→ scroll the rest.
const (
	colClient = iota
	colServer
	colDiag
	colReqs
	colInFlight
	colClientFPSeg
	colServerFPSeg
	colClientFPSend // kernel-counted: shown only when some connection has syscall counts
	colServerFPSend
	colP50
	colP99
	colErrors
	colMax
	colDriver
	colVersion
	colCompression
	colState
)

var connColumns = []column[*analyze.ConnReport]{
	colClient: {name: "client", left: true, cell: func(c *analyze.ConnReport) string { return c.Client },
		less: func(a, b *analyze.ConnReport) bool { return addrLess(a.Client, b.Client) }},
	colServer: {name: "server", left: true, cell: func(c *analyze.ConnReport) string { return c.Server },
		less: func(a, b *analyze.ConnReport) bool { return addrLess(a.Server, b.Server) }},
	colDiag: {name: "diagnosis", left: true, cell: func(c *analyze.ConnReport) string { return badgeLine(c.DiagnosisCodes, true) },
		less: func(a, b *analyze.ConnReport) bool {
			// Diagnosed connections first when ascending.
			if len(a.DiagnosisCodes) != len(b.DiagnosisCodes) {
				return len(a.DiagnosisCodes) > len(b.DiagnosisCodes)
			}
			return strings.Join(a.DiagnosisCodes, ",") < strings.Join(b.DiagnosisCodes, ",")
		}},
	colReqs: {name: "req/s", cell: func(c *analyze.ConnReport) string { return fmtRate(c.RequestsPerSec) },
		less: func(a, b *analyze.ConnReport) bool { return a.RequestsPerSec < b.RequestsPerSec }},
	colInFlight: {name: "infl", cell: func(c *analyze.ConnReport) string {
		if c.Requests == 0 {
			return "-"
		}
		return fmt.Sprintf("%s/%d", strconv.FormatFloat(c.InFlight.Mean, 'f', 1, 64), c.InFlight.Max)
	}, less: func(a, b *analyze.ConnReport) bool {
		return a.InFlight.Mean < b.InFlight.Mean || a.InFlight.Mean == b.InFlight.Mean && a.InFlight.Max < b.InFlight.Max
	}},
	colClientFPSeg: {name: "cli f/seg", cell: func(c *analyze.ConnReport) string { return fmtFPSeg(c.ClientSegments) },
		less: func(a, b *analyze.ConnReport) bool {
			return a.ClientSegments.FramesPerSegment < b.ClientSegments.FramesPerSegment
		}},
	colServerFPSeg: {name: "srv f/seg", cell: func(c *analyze.ConnReport) string { return fmtFPSeg(c.ServerSegments) },
		less: func(a, b *analyze.ConnReport) bool {
			return a.ServerSegments.FramesPerSegment < b.ServerSegments.FramesPerSegment
		}},
	colClientFPSend: {name: "cli f/send", cell: func(c *analyze.ConnReport) string { return fmtPerCall(c.ClientSyscalls, true) },
		less: func(a, b *analyze.ConnReport) bool {
			return perCall(a.ClientSyscalls, true) < perCall(b.ClientSyscalls, true)
		}},
	colServerFPSend: {name: "srv f/send", cell: func(c *analyze.ConnReport) string { return fmtPerCall(c.ServerSyscalls, true) },
		less: func(a, b *analyze.ConnReport) bool {
			return perCall(a.ServerSyscalls, true) < perCall(b.ServerSyscalls, true)
		}},
	colP50: {name: "p50", cell: func(c *analyze.ConnReport) string { return fmtLat(c.Latency, c.Latency.P50) },
		less: func(a, b *analyze.ConnReport) bool { return a.Latency.P50 < b.Latency.P50 }},
	colP99: {name: "p99", cell: func(c *analyze.ConnReport) string { return fmtLat(c.Latency, c.Latency.P99) },
		less: func(a, b *analyze.ConnReport) bool { return a.Latency.P99 < b.Latency.P99 }},
	colErrors: {name: "err", cell: func(c *analyze.ConnReport) string { return strconv.FormatUint(c.Errors, 10) },
		less: func(a, b *analyze.ConnReport) bool { return a.Errors < b.Errors }},
	colMax: {name: "max", cell: func(c *analyze.ConnReport) string { return fmtLat(c.Latency, c.Latency.Max) },
		less: func(a, b *analyze.ConnReport) bool { return a.Latency.Max < b.Latency.Max }},
	colDriver: {name: "driver", left: true, cell: shortDriver,
		less: func(a, b *analyze.ConnReport) bool { return shortDriver(a) < shortDriver(b) }},
	colVersion: {name: "v", cell: func(c *analyze.ConnReport) string {
		if c.ProtocolVersion == 0 {
			return "-"
		}
		return strconv.Itoa(c.ProtocolVersion)
	}, less: func(a, b *analyze.ConnReport) bool { return a.ProtocolVersion < b.ProtocolVersion }},
	colCompression: {name: "comp", left: true, cell: func(c *analyze.ConnReport) string {
		if c.CompressionInferred {
			return c.Compression + "?"
		}
		return c.Compression
	}, less: func(a, b *analyze.ConnReport) bool { return a.Compression < b.Compression }},
	colState: {name: "state", left: true, cell: func(c *analyze.ConnReport) string { return c.Closed },
		less: func(a, b *analyze.ConnReport) bool { return a.Closed < b.Closed }},
}

// defaultConnSort puts the busiest connections first.
var defaultConnSort = sortState{col: colReqs, desc: true}

// Statement columns, in display order.
const (
	colStmtTotal = iota
	colStmtCount
	colStmtP50
	colStmtP99
	colStmtErrors
	colStmtOpcode
	colStmtText
)

var stmtColumns = []column[*analyze.StmtReport]{
	colStmtTotal: {name: "total", cell: func(s *analyze.StmtReport) string { return fmtUS(s.TotalMS * 1e3) },
		less: func(a, b *analyze.StmtReport) bool { return a.TotalMS < b.TotalMS }},
	colStmtCount: {name: "count", cell: func(s *analyze.StmtReport) string { return strconv.FormatUint(s.Count, 10) },
		less: func(a, b *analyze.StmtReport) bool { return a.Count < b.Count }},
	colStmtP50: {name: "p50", cell: func(s *analyze.StmtReport) string { return fmtLat(s.Latency, s.Latency.P50) },
		less: func(a, b *analyze.StmtReport) bool { return a.Latency.P50 < b.Latency.P50 }},
	colStmtP99: {name: "p99", cell: func(s *analyze.StmtReport) string { return fmtLat(s.Latency, s.Latency.P99) },
		less: func(a, b *analyze.StmtReport) bool { return a.Latency.P99 < b.Latency.P99 }},
	colStmtErrors: {name: "err", cell: func(s *analyze.StmtReport) string { return strconv.FormatUint(s.Errors, 10) },
		less: func(a, b *analyze.StmtReport) bool { return a.Errors < b.Errors }},
	colStmtOpcode: {name: "opcode", left: true, cell: func(s *analyze.StmtReport) string { return s.Opcode },
		less: func(a, b *analyze.StmtReport) bool { return a.Opcode < b.Opcode }},
	colStmtText: {name: "statement", left: true, cell: func(s *analyze.StmtReport) string { return oneLine(s.Statement) },
		less: func(a, b *analyze.StmtReport) bool { return a.Statement < b.Statement }},
}

// defaultStmtSort ranks statements by total time, as pt-query-digest does.
var defaultStmtSort = sortState{col: colStmtTotal, desc: true}

// stmtKey identifies a statement across snapshots.
type stmtKey struct{ text, opcode string }

func keyOf(s *analyze.StmtReport) stmtKey { return stmtKey{s.Statement, s.Opcode} }

// matchConn reports whether the filter (lower case) matches a connection's
// client, server or driver.
func matchConn(c *analyze.ConnReport, f string) bool {
	return f == "" || containsFold(c.Client, f) || containsFold(c.Server, f) || containsFold(driverText(c), f)
}

// matchStmt reports whether the filter (lower case) matches a statement.
func matchStmt(s *analyze.StmtReport, f string) bool {
	return f == "" || containsFold(s.Statement, f)
}

// matchDiag reports whether the filter (lower case) matches a diagnosis'
// connection: its client, server, or the driver of a connection between the
// two.
func matchDiag(d *analyze.Diagnosis, conns []*analyze.ConnReport, f string) bool {
	if f == "" || containsFold(d.Client, f) || containsFold(d.Server, f) {
		return true
	}
	for _, c := range conns {
		if c.Client == d.Client && c.Server == d.Server && matchConn(c, f) {
			return true
		}
	}
	return false
}

func containsFold(s, lowerSub string) bool { return strings.Contains(strings.ToLower(s), lowerSub) }

// addrLess orders "ip:port" strings by address, then port; anything else
// by text.
func addrLess(a, b string) bool {
	x, errx := netip.ParseAddrPort(a)
	y, erry := netip.ParseAddrPort(b)
	if errx != nil || erry != nil {
		return a < b
	}
	return x.Compare(y) < 0
}

// shortDriver is driverText without the driver name's path
// (github.com/apache/cassandra-gocql-driver → cassandra-gocql-driver).
func shortDriver(c *analyze.ConnReport) string {
	d := driverText(c)
	if i := strings.LastIndexByte(c.Driver, '/'); i >= 0 {
		d = d[i+1:]
	}
	return d
}

// driverText is the driver's name and version as the STARTUP message gave
// them.
func driverText(c *analyze.ConnReport) string {
	d := c.Driver
	if d == "" {
		d = "?"
		if c.Encrypted {
			d = "(TLS)"
		}
	}
	if c.DriverVersion != "" {
		d += " v" + strings.TrimPrefix(c.DriverVersion, "v")
	}
	return d
}

// badge is how a diagnosis code shows in the connections table.
type badge struct {
	text, color string
}

var badgeOf = map[string]badge{
	analyze.CodeClientUnbuffered:      {"⚠ UNBUFFERED", "red"},
	analyze.CodeClientNagle:           {"⚠ NAGLE", "orange"},
	analyze.CodeServerUnbuffered:      {"⚠ SRV-UNBUF", "fuchsia"},
	analyze.CodeClientUnbufferedReads: {"⚠ SMALL-READS", "yellow"},
	analyze.CodeServerUnbufferedReads: {"⚠ SRV-SMALL-READS", "yellow"},
	analyze.CodeClientBound:           {"⚠ CLIENT-BOUND", "purple"},
}

// perCall is an end's frames per send call (sends) or receive calls per
// frame (!sends) as the kernel counted them; -1 when not measured, so
// unmeasured rows sort last when descending.
func perCall(s *analyze.SyscallReport, sends bool) float64 {
	if s == nil {
		return -1
	}
	v := s.RecvsPerFrame
	if sends {
		v = s.FramesPerSend
	}
	if v == nil {
		return -1
	}
	return *v
}

// fmtPerCall marks a ratio scaled from partial counts with "~".
func fmtPerCall(s *analyze.SyscallReport, sends bool) string {
	v := fmtRatio(perCall(s, sends))
	if s != nil && s.Partial && v != "-" {
		v = "~" + v
	}
	return v
}

// hasSyscalls reports whether any connection carries the kernel's counts.
func hasSyscalls(conns []*analyze.ConnReport) bool {
	return slices.ContainsFunc(conns, func(c *analyze.ConnReport) bool {
		return c.ClientSyscalls != nil || c.ServerSyscalls != nil
	})
}

// badgeFor returns the badge of a diagnosis code; a code this package does
// not know still shows.
func badgeFor(code string) badge {
	if b, ok := badgeOf[code]; ok {
		return b
	}
	return badge{"⚠ " + strings.ToUpper(code), "yellow"}
}

// badgeLine renders diagnosis codes as badges, colored with style tags when
// tagged is set.
func badgeLine(codes []string, tagged bool) string {
	var b strings.Builder
	for i, code := range codes {
		if i > 0 {
			b.WriteByte(' ')
		}
		bd := badgeFor(code)
		if tagged {
			fmt.Fprintf(&b, "[%s::b]%s[-::B]", bd.color, bd.text)
		} else {
			b.WriteString(bd.text)
		}
	}
	return b.String()
}

// overall is the header's whole-capture figures.
type overall struct {
	reqRate                 float64 // requests per second of capture time
	p50, p99                float64 // µs
	latOK                   bool    // some request was answered
	clientFPSeg, srvFPSeg   float64 // frames per TCP segment, -1 when no segment was seen
	clientFPSend, srvFPSend float64 // frames per send call where the kernel counted them, -1 elsewhere
}

func summarize(r *analyze.Report) overall {
	o := overall{clientFPSeg: -1, srvFPSeg: -1, clientFPSend: -1, srvFPSend: -1}
	if r.DurationS > 0 {
		o.reqRate = float64(r.Totals.Requests) / r.DurationS
	}
	o.p50, o.p99, o.latOK = r.Latency.P50, r.Latency.P99, r.Latency.Count > 0
	t := &r.Totals // over the whole capture, not only the connections listed
	o.clientFPSeg, o.srvFPSeg = ratio(t.ClientFrames, t.ClientSegments), ratio(t.ServerFrames, t.ServerSegments)
	o.clientFPSend, o.srvFPSend = ratio(t.ClientSendFrames, t.ClientSendCalls), ratio(t.ServerSendFrames, t.ServerSendCalls)
	return o
}

// ratio is n/d, or -1 when d is 0.
func ratio(n, d uint64) float64 {
	if d == 0 {
		return -1
	}
	return float64(n) / float64(d)
}

// fmtUS formats microseconds with a unit, in at most 6 cells.
func fmtUS(us float64) string {
	switch {
	case us < 1000:
		return strconv.FormatFloat(us, 'f', 0, 64) + "µs"
	case us < 10_000:
		return strconv.FormatFloat(us/1e3, 'f', 2, 64) + "ms"
	case us < 100_000:
		return strconv.FormatFloat(us/1e3, 'f', 1, 64) + "ms"
	case us < 1e6:
		return strconv.FormatFloat(us/1e3, 'f', 0, 64) + "ms"
	case us < 100e6:
		return strconv.FormatFloat(us/1e6, 'f', 2, 64) + "s"
	}
	return strconv.FormatFloat(us/1e6, 'f', 0, 64) + "s"
}

// fmtLat formats one figure of l, or "-" when l is empty.
func fmtLat(l analyze.Latency, us float64) string {
	if l.Count == 0 {
		return "-"
	}
	return fmtUS(us)
}

func fmtRate(r float64) string {
	switch {
	case r == 0:
		return "0"
	case r < 10:
		return strconv.FormatFloat(r, 'f', 1, 64)
	case r < 1e6:
		return strconv.FormatFloat(r, 'f', 0, 64)
	}
	return strconv.FormatFloat(r/1e6, 'f', 1, 64) + "M"
}

func fmtFPSeg(w analyze.SegmentStats) string {
	if w.Segments == 0 {
		return "-"
	}
	return strconv.FormatFloat(w.FramesPerSegment, 'f', 2, 64)
}

// fmtElapsed formats seconds of capture time.
func fmtElapsed(s float64) string {
	switch {
	case s < 60:
		return strconv.FormatFloat(s, 'f', 2, 64) + "s"
	case s < 3600:
		m := int(s / 60)
		return fmt.Sprintf("%dm%02ds", m, int(s)-60*m)
	}
	h := int(s / 3600)
	m := (int(s) - 3600*h) / 60
	return fmt.Sprintf("%dh%02dm%02ds", h, m, int(s)-3600*h-60*m)
}

// Replay pace steps: '+' doubles up to maxPace and then goes to "as fast as
// possible" (0); '-' halves down to minPace, and from "as fast as possible"
// drops to real time (1x), the pace one most often wants to watch at.
const (
	maxPace = 64
	minPace = 1.0 / 16
)

func faster(pace float64) float64 {
	if pace <= 0 {
		return 0
	}
	if pace*2 > maxPace {
		return 0
	}
	return pace * 2
}

func slower(pace float64) float64 {
	if pace <= 0 {
		return 1
	}
	return max(pace/2, minPace)
}

func fmtPace(pace float64) string {
	if pace <= 0 {
		return "max"
	}
	return strconv.FormatFloat(pace, 'f', -1, 64) + "x"
}

// oneLine makes text fit one table row: control characters become spaces.
func oneLine(s string) string {
	if strings.IndexFunc(s, isControl) < 0 {
		return s
	}
	return strings.Map(func(r rune) rune {
		if isControl(r) {
			return ' '
		}
		return r
	}, s)
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
