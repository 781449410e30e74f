package metrics

import (
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// gather collects c once through a pedantic registry, which checks every
// metric against its description and rejects duplicate series.
func gather(tb testing.TB, reg *prometheus.Registry) map[string]*dto.MetricFamily {
	tb.Helper()
	fams, err := reg.Gather()
	if err != nil {
		tb.Fatal(err)
	}
	out := make(map[string]*dto.MetricFamily)
	for _, f := range fams {
		out[f.GetName()] = f
	}
	return out
}

func pedantic(tb testing.TB, c *Collector) *prometheus.Registry {
	tb.Helper()
	reg := prometheus.NewPedanticRegistry()
	if err := reg.Register(c); err != nil {
		tb.Fatal(err)
	}
	return reg
}

func labelsOf(m *dto.Metric) string {
	var parts []string
	for _, l := range m.Label {
		parts = append(parts, l.GetName()+"="+fmt.Sprintf("%q", l.GetValue()))
	}
	return "{" + strings.Join(parts, ",") + "}"
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.Label {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// cumulative flattens the counters and histograms (what must never go
// down) into series → value.
func cumulative(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for name, f := range fams {
		for _, m := range f.Metric {
			k := name + labelsOf(m)
			switch f.GetType() {
			case dto.MetricType_COUNTER:
				out[k] = m.Counter.GetValue()
			case dto.MetricType_HISTOGRAM:
				h := m.Histogram
				out[k+"_count"] = float64(h.GetSampleCount())
				out[k+"_sum"] = h.GetSampleSum()
				for _, b := range h.Bucket {
					out[fmt.Sprintf("%s_bucket{le=%g}", k, b.GetUpperBound())] = float64(b.GetCumulativeCount())
				}
			}
		}
	}
	return out
}

func sum(f *dto.MetricFamily) float64 {
	var s float64
	if f == nil {
		return 0
	}
	for _, m := range f.Metric {
		switch {
		case m.Counter != nil:
			s += m.Counter.GetValue()
		case m.Gauge != nil:
			s += m.Gauge.GetValue()
		}
	}
	return s
}

// TestMonotonic scrapes a capture replayed in steps, as a live capture
// would be scraped, with the analyzer keeping only 2 closed connections:
// the others vanish from the reports as they close. No counter, histogram
// count, sum or bucket may ever go down, and at the end every connection
// has been counted up to its last report.
func TestMonotonic(t *testing.T) {
	cfg := analyze.DefaultConfig()
	cfg.MaxClosed = 2
	reports := reportsOf(t, pcap("gocql-1.7.0-v4-unbuffered-c64-20conns.pcap"), 16, cfg)
	seq := &sequence{reports: reports}
	c := NewCollector(Config{}, seq)
	reg := pedantic(t, c)
	var prev map[string]float64
	lastSeen := make(map[uint64]uint64) // connection id → requests in its last report
	var vanished int
	for i, r := range reports {
		fams := gather(t, reg)
		cur := cumulative(fams)
		for k, v := range prev {
			now, ok := cur[k]
			if !ok {
				t.Errorf("step %d: series %s disappeared", i, k)
			} else if now < v {
				t.Errorf("step %d: %s went down from %g to %g", i, k, v, now)
			}
		}
		prev = cur
		seen := make(map[uint64]bool)
		open := 0
		for _, cr := range r.Connections {
			lastSeen[cr.ID] = cr.Requests
			seen[cr.ID] = true
			if cr.Closed == "open" {
				open++
			}
		}
		for id := range lastSeen {
			if !seen[id] {
				vanished++
			}
		}
		var want uint64
		for _, n := range lastSeen {
			want += n
		}
		if got := sum(fams["cqlsniff_requests_total"]); got != float64(want) {
			t.Errorf("step %d: requests %g, want %d (every connection up to its last report)", i, got, want)
		}
		var stmts uint64
		for _, s := range r.Statements {
			stmts += s.Count
		}
		if got := sum(fams["cqlsniff_statement_requests_total"]); got != float64(stmts) {
			t.Errorf("step %d: statement requests %g, want %d", i, got, stmts)
		}
		if got := sum(fams["cqlsniff_open_connections"]); got != float64(open) {
			t.Errorf("step %d: open connections %g, want %d", i, got, open)
		}
	}
	if vanished == 0 {
		t.Fatal("no connection left the reports: the test does not test what it says")
	}
	last := reports[len(reports)-1]
	t.Logf("%d reports, %d connections, %d in the last report; %d requests in all, %d counted",
		len(reports), len(lastSeen), len(last.Connections), last.Totals.Requests, uint64(sum(gather(t, reg)["cqlsniff_requests_total"])))
}

// TestCaps feeds 10,000 connections (each from its own client address, to
// one of 1,000 servers, with one of 500 driver names, some of them not
// UTF-8) and 10,000 statements (some huge, some not UTF-8, one spelled
// "other"): every label stays within its cap, no series is duplicated
// (the pedantic registry checks), and nothing is lost: the "other" series
// carry the rest.
func TestCaps(t *testing.T) {
	cfg := Config{MaxStatements: 50, MaxClients: 200}
	r1 := syntheticReport(10_000, 10_000, 1)
	r2 := syntheticReport(10_000, 10_000, 2)
	seq := &sequence{reports: []*analyze.Report{r1, r2}}
	c := NewCollector(cfg, seq)
	reg := pedantic(t, c)
	for step, r := range seq.reports {
		fams := gather(t, reg)
		values := func(fam, name string) map[string]bool {
			out := make(map[string]bool)
			for _, m := range fams[fam].Metric {
				v := label(m, name)
				if !utf8.ValidString(v) {
					t.Errorf("%s: %s=%q is not UTF-8", fam, name, v)
				}
				out[v] = true
			}
			return out
		}
		clients := values("cqlsniff_requests_total", "client")
		servers := values("cqlsniff_requests_total", "server")
		drivers := values("cqlsniff_requests_total", "driver")
		groups := len(fams["cqlsniff_requests_total"].Metric)
		stmts := len(fams["cqlsniff_statement_requests_total"].Metric)
		opcodes := values("cqlsniff_statement_requests_total", "opcode")
		t.Logf("step %d: %d client values, %d servers, %d drivers, %d groups, %d statement series", step, len(clients), len(servers), len(drivers), groups, stmts)
		if len(clients) > cfg.MaxClients+1 {
			t.Errorf("%d client label values, cap %d + other", len(clients), cfg.MaxClients)
		}
		if len(servers) > maxServers+1 {
			t.Errorf("%d server label values, cap %d + other", len(servers), maxServers)
		}
		if len(drivers) > maxDrivers+2 {
			t.Errorf("%d driver label values, cap %d + unknown + other", len(drivers), maxDrivers)
		}
		if groups > groupsPerClient*cfg.MaxClients+1 {
			t.Errorf("%d groups, cap %d + other", groups, groupsPerClient*cfg.MaxClients)
		}
		if stmts > cfg.MaxStatements+len(opcodes) {
			t.Errorf("%d statement series, cap %d + one other per opcode", stmts, cfg.MaxStatements)
		}
		for v := range values("cqlsniff_statement_requests_total", "statement") {
			if len(v) > maxStatementLabel {
				t.Errorf("statement label of %d bytes", len(v))
			}
		}
		var reqs, stmtReqs uint64
		for _, cr := range r.Connections {
			reqs += cr.Requests
		}
		for _, s := range r.Statements {
			stmtReqs += s.Count
		}
		if got := sum(fams["cqlsniff_requests_total"]); got != float64(reqs) {
			t.Errorf("step %d: requests %g, want %d", step, got, reqs)
		}
		if got := sum(fams["cqlsniff_statement_requests_total"]); got != float64(stmtReqs) {
			t.Errorf("step %d: statement requests %g, want %d", step, got, stmtReqs)
		}
		var series int
		for _, f := range fams {
			for _, m := range f.Metric {
				series++
				if m.Histogram != nil {
					series += len(m.Histogram.Bucket) + 2
				}
			}
		}
		t.Logf("step %d: %d series in the text exposition", step, series)
	}
}

// syntheticReport makes a report of n live connections and s statements;
// scale multiplies every count (a later report of the same traffic).
func syntheticReport(n, s int, scale uint64) *analyze.Report {
	r := &analyze.Report{Source: "synthetic", Packets: 1000 * scale}
	ops := []string{"QUERY", "EXECUTE", "BATCH", "PREPARE"}
	for i := 0; i < n; i++ {
		driver := fmt.Sprintf("driver-%d", i%500)
		if i%97 == 0 {
			driver = "bad\xff\xfe-" + driver // not UTF-8
		}
		cr := &analyze.ConnReport{
			ID:            uint64(i + 1),
			Client:        fmt.Sprintf("10.%d.%d.%d:%d", i>>16&255, i>>8&255, i&255, 40000+i%20000),
			Server:        fmt.Sprintf("192.168.%d.%d:9042", i%1000/250, i%250),
			Driver:        driver,
			DriverVersion: "1.0",
			Requests:      10 * scale,
			Responses:     10 * scale,
			Errors:        scale,
			InFlight:      analyze.InFlight{Mean: 2, Max: 4},
			Latency: analyze.Latency{
				Count: 10 * scale, Mean: 300,
				Histogram: []analyze.Bar{{UpToUS: 256, Count: int64(5 * scale)}, {UpToUS: 512, Count: int64(5 * scale)}},
			},
			ClientSegments: analyze.SegmentStats{Frames: 10 * scale, Segments: 10 * scale,
				Distribution: map[string]uint64{"0": 0, "1": 10 * scale, "2-3": 0, "4-7": 0, "8-15": 0, "16+": 0}},
			ServerSegments: analyze.SegmentStats{Frames: 10 * scale, Segments: 5 * scale,
				Distribution: map[string]uint64{"0": 0, "1": 0, "2-3": 5 * scale, "4-7": 0, "8-15": 0, "16+": 0}},
			Start:  "2026-01-01T00:00:00Z",
			Closed: "open",
		}
		if i%10 == 0 {
			cr.DiagnosisCodes = []string{analyze.CodeClientUnbuffered}
		}
		r.Connections = append(r.Connections, cr)
	}
	for i := 0; i < s; i++ {
		text := fmt.Sprintf("SELECT c%d FROM t WHERE k = ?", i)
		switch {
		case i == 7:
			text = "other"
		case i%101 == 0:
			text = strings.Repeat("SELECT a_very_long_column_name, ", 50) + text
		case i%103 == 0:
			text = "SELECT '\xc3\x28' FROM t" + text // not UTF-8
		}
		r.Statements = append(r.Statements, analyze.StmtReport{
			Statement: text, Opcode: ops[i%len(ops)], Count: uint64(1+i%7) * scale, Errors: 0,
			TotalMS: float64(s-i) * float64(scale),
			Latency: analyze.Latency{Count: uint64(1+i%7) * scale, Histogram: []analyze.Bar{{UpToUS: 1024, Count: int64(1+i%7) * int64(scale)}}},
		})
	}
	sort.SliceStable(r.Statements, func(i, j int) bool { return r.Statements[i].TotalMS > r.Statements[j].TotalMS })
	return r
}

// clock is a settable wall clock for the idle rules.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func conn(id uint64, client string, requests uint64, closed string) *analyze.ConnReport {
	return &analyze.ConnReport{ID: id, Client: client, Server: "10.0.0.1:9042", Driver: "gocql", DriverVersion: "v1",
		Requests: requests, Responses: requests, Start: "2026-01-01T00:00:00Z", Closed: closed,
		ClientSegments: analyze.SegmentStats{Distribution: map[string]uint64{}}, ServerSegments: analyze.SegmentStats{Distribution: map[string]uint64{}}}
}

func requestsByClient(tb testing.TB, reg *prometheus.Registry) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range gather(tb, reg)["cqlsniff_requests_total"].GetMetric() {
		out[label(m, "client")] += m.Counter.GetValue()
	}
	return out
}

// TestReclaim: with the client cap full, a newcomer shares "other" until a
// labelled client has been idle for reclaimAfter; then it takes that
// client's place, the idle client's series go, and a connection counted
// under "other" so far goes on under its own label without "other" going
// down.
func TestReclaim(t *testing.T) {
	clk := &clock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	a := conn(1, "10.0.0.2:5000", 10, "open")
	b := conn(2, "10.0.0.3:5000", 10, "open")
	seq := &sequence{reports: []*analyze.Report{{Source: "x", Connections: []*analyze.ConnReport{a, b}}}}
	c := NewCollector(Config{MaxClients: 2}, seq)
	c.now = clk.now
	reg := pedantic(t, c)
	if got := requestsByClient(t, reg); got["10.0.0.2"] != 10 || got["10.0.0.3"] != 10 {
		t.Fatalf("first scrape: %v", got)
	}
	// b closes; c arrives: no room, and a and b are not idle yet.
	a2 := conn(1, "10.0.0.2:5000", 20, "open")
	b2 := conn(2, "10.0.0.3:5000", 15, "rst")
	c1 := conn(3, "10.0.0.4:5000", 7, "open")
	seq.reports = append(seq.reports, &analyze.Report{Source: "x", Connections: []*analyze.ConnReport{a2, b2, c1}})
	clk.t = clk.t.Add(time.Minute)
	got := requestsByClient(t, reg)
	if got["10.0.0.2"] != 20 || got["10.0.0.3"] != 15 || got["other"] != 7 {
		t.Fatalf("full cap: %v", got)
	}
	// 30 minutes on, b has been idle long enough: c takes its place.
	a3 := conn(1, "10.0.0.2:5000", 30, "open")
	c2 := conn(3, "10.0.0.4:5000", 9, "open")
	seq.reports = append(seq.reports, &analyze.Report{Source: "x", Connections: []*analyze.ConnReport{a3, b2, c2}})
	clk.t = clk.t.Add(30 * time.Minute)
	got = requestsByClient(t, reg)
	if _, ok := got["10.0.0.3"]; ok {
		t.Errorf("the idle client's series are still there: %v", got)
	}
	if got["10.0.0.2"] != 30 || got["10.0.0.4"] != 2 || got["other"] != 7 {
		t.Errorf("after reclaim: %v, want a 30, c 2 (its growth since it got a label), other 7", got)
	}
}

// TestStatementRanking: the labelled statements are the top ones by total
// time, with hysteresis; a statement that gets a label starts its series
// from zero, one that loses it goes on counting under "other", which never
// goes down.
func TestStatementRanking(t *testing.T) {
	stmt := func(text string, count uint64, totalMS float64) analyze.StmtReport {
		return analyze.StmtReport{Statement: text, Opcode: "EXECUTE", Count: count, TotalMS: totalMS}
	}
	rep := func(s ...analyze.StmtReport) *analyze.Report {
		sort.SliceStable(s, func(i, j int) bool { return s[i].TotalMS > s[j].TotalMS })
		return &analyze.Report{Source: "x", Statements: s}
	}
	seq := &sequence{reports: []*analyze.Report{
		rep(stmt("s1", 10, 100), stmt("s2", 10, 50), stmt("s3", 10, 10)),
		rep(stmt("s1", 20, 110), stmt("s2", 20, 55), stmt("s3", 20, 70)), // 70 < 1.5 × 55: no swap
		rep(stmt("s1", 30, 120), stmt("s2", 30, 56), stmt("s3", 30, 90)), // 90 > 1.5 × 56: s3 in, s2 out
	}}
	c := NewCollector(Config{MaxStatements: 2}, seq)
	reg := pedantic(t, c)
	want := []map[string]float64{
		{"s1": 10, "s2": 10, "other": 10},
		{"s1": 20, "s2": 20, "other": 20},
		{"s1": 30, "s3": 10, "other": 30}, // s2's series goes; its growth now counts in "other"
	}
	for i, w := range want {
		got := make(map[string]float64)
		for _, m := range gather(t, reg)["cqlsniff_statement_requests_total"].GetMetric() {
			got[label(m, "statement")] = m.Counter.GetValue()
		}
		if fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("scrape %d: %v, want %v", i, got, w)
		}
	}
}

// TestRestart: a report from another pipeline (counts from zero) adds to
// the series instead of resetting them.
func TestRestart(t *testing.T) {
	r := reportOf(t, pcap("gocql-1.7.0-v4-c1.pcap"))
	again := reportOf(t, pcap("gocql-1.7.0-v4-c1.pcap"))
	again.Source = "second run"
	seq := &sequence{reports: []*analyze.Report{r, again}}
	reg := pedantic(t, NewCollector(Config{}, seq))
	first := sum(gather(t, reg)["cqlsniff_requests_total"])
	second := sum(gather(t, reg)["cqlsniff_requests_total"])
	if first != float64(r.Totals.Requests) || second != 2*first {
		t.Errorf("requests %g then %g, want %d then twice that", first, second, r.Totals.Requests)
	}
}

// TestNative checks the native half of the latency histograms: schema 0,
// bar 2^k µs in bucket k-20, counts equal to the classic ones.
func TestNative(t *testing.T) {
	r := reportOf(t, pcap(goldenCapture))
	fams := gather(t, pedantic(t, NewCollector(Config{}, fixed{r})))
	var bars [nLat]uint64
	for _, cr := range r.Connections {
		fillBars(&bars, cr.Latency.Histogram)
	}
	f := fams["cqlsniff_request_duration_seconds"]
	if len(f.GetMetric()) != 1 {
		t.Fatalf("%d latency series, want 1", len(f.GetMetric()))
	}
	h := f.Metric[0].Histogram
	if h.GetSchema() != 0 || h.GetZeroThreshold() != prometheus.DefNativeHistogramZeroThreshold || h.GetZeroCount() != 0 {
		t.Errorf("schema %d, zero threshold %g, zero count %d", h.GetSchema(), h.GetZeroThreshold(), h.GetZeroCount())
	}
	native := make(map[int32]int64)
	idx, count := int32(0), int64(0)
	d := 0
	for _, sp := range h.PositiveSpan {
		idx += sp.GetOffset()
		for range sp.GetLength() {
			count += h.PositiveDelta[d]
			d++
			if count != 0 {
				native[idx] = count
			}
			idx++
		}
	}
	for k, n := range bars {
		if got := native[int32(k-nativeShift)]; got != int64(n) {
			t.Errorf("bar 2^%d µs: native bucket %d has %d, want %d", k, k-nativeShift, got, n)
		}
		// Native bucket i holds (2^(i-1), 2^i] s.
		if n > 0 {
			upper := math.Ldexp(1, k-nativeShift)
			if bar := math.Ldexp(1, k) / 1e6; bar < upper*0.95 || bar > upper*1.05 {
				t.Errorf("bar 2^%d µs = %g s lands in the bucket up to %g s", k, bar, upper)
			}
		}
	}
	if len(h.Bucket) != latMaxExp-latMinExp+1 {
		t.Errorf("%d classic buckets, want %d", len(h.Bucket), latMaxExp-latMinExp+1)
	}
	if h.GetSampleCount() != r.Totals.Responses {
		t.Errorf("count %d, want %d responses", h.GetSampleCount(), r.Totals.Responses)
	}
}

// scripted serves the reports of a list in its order, one per scrape:
// what two overlapping scrapes can see, the later one taking the newer
// report before the earlier one folds the older.
type scripted struct {
	mu      sync.Mutex
	reports []*analyze.Report
}

func (s *scripted) Request() {}

func (s *scripted) Latest() *analyze.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := s.reports[0]
	if len(s.reports) > 1 {
		s.reports = s.reports[1:]
	}
	return r
}

// TestOlderReport folds the snapshots of one pipeline out of order: an
// older one after a newer one must change nothing (it is not a restart of
// the pipeline, though it has fewer packets), and the counters must end
// at the newest report's figures, each request counted once.
func TestOlderReport(t *testing.T) {
	reports := reportsOf(t, pcap("gocql-1.7.0-v4-unbuffered-c64-20conns.pcap"), 4, analyze.DefaultConfig())
	order := []int{0, 2, 1, 3, 2}
	var script []*analyze.Report
	for _, i := range order {
		script = append(script, reports[i])
	}
	reg := pedantic(t, NewCollector(Config{}, &scripted{reports: script}))
	var prev float64
	for step, i := range order {
		got := sum(gather(t, reg)["cqlsniff_requests_total"])
		newest := slices.Max(order[:step+1])
		if want := float64(reports[newest].Totals.Requests); got != want {
			t.Errorf("scrape %d (report %d, newest so far %d): %g requests, want %g", step, i, newest, got, want)
		}
		if got < prev {
			t.Errorf("scrape %d: requests went down from %g to %g", step, prev, got)
		}
		prev = got
	}
}

// TestRestartSameSource: another pipeline over the same source, whose
// report has as many packets as the last one folded (the source/packets
// rule would not see the restart), starts the connections again, because
// the reports say which pipeline made them.
func TestRestartSameSource(t *testing.T) {
	r := reportOf(t, pcap("gocql-1.7.0-v4-c1.pcap"))
	again := reportOf(t, pcap("gocql-1.7.0-v4-c1.pcap"))
	if again.Source != r.Source || again.Packets != r.Packets {
		t.Fatalf("the two runs differ: %s/%d, %s/%d", r.Source, r.Packets, again.Source, again.Packets)
	}
	reg := pedantic(t, NewCollector(Config{}, &sequence{reports: []*analyze.Report{r, again}}))
	first := sum(gather(t, reg)["cqlsniff_requests_total"])
	second := sum(gather(t, reg)["cqlsniff_requests_total"])
	if first != float64(r.Totals.Requests) || second != 2*first {
		t.Errorf("requests %g then %g, want %d then twice that", first, second, r.Totals.Requests)
	}
}
