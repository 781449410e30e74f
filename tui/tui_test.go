package tui

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// The screen tests run the real application on a tcell simulation screen.
// Refreshes are driven by hand through the tick channel and acknowledged on
// u.applied; keys travel the real path (screen → tview → onKey). Waits poll
// the screen for a condition that a single frame shows whole, so they are
// deterministic; no test sleeps.

// fakeSnapshots stands in for analyze.Snapshots.
type fakeSnapshots struct {
	mu       sync.Mutex
	rep      *analyze.Report
	requests int
}

func (f *fakeSnapshots) Request() { f.mu.Lock(); f.requests++; f.mu.Unlock() }

func (f *fakeSnapshots) Latest() *analyze.Report {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.rep
}

func (f *fakeSnapshots) set(r *analyze.Report) { f.mu.Lock(); f.rep = r; f.mu.Unlock() }

type harness struct {
	t      *testing.T
	screen tcell.SimulationScreen
	snaps  *fakeSnapshots
	u      *ui
	tick   chan time.Time
	done   chan error
	cancel context.CancelFunc
	ended  bool
}

// start runs the UI on a w×h simulation screen showing rep after a first
// refresh.
func start(t *testing.T, w, h int, rep *analyze.Report, replay *Replay) *harness {
	t.Helper()
	screen := tcell.NewSimulationScreen("UTF-8")
	snaps := &fakeSnapshots{rep: rep}
	u := newUI(Config{Source: "test.pcap", Interval: time.Hour, Snapshots: snaps, Replay: replay, Screen: screen})
	screen.SetSize(w, h)
	u.applied = make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	hs := &harness{t: t, screen: screen, snaps: snaps, u: u, tick: make(chan time.Time), done: make(chan error, 1), cancel: cancel}
	go func() { hs.done <- u.run(ctx, hs.tick) }()
	t.Cleanup(func() {
		if !hs.ended {
			cancel()
			hs.wait()
		}
	})
	hs.refresh()
	return hs
}

// refresh makes the refresher take the current snapshot and waits until
// it is drawn.
func (h *harness) refresh() {
	h.t.Helper()
	select {
	case h.tick <- time.Time{}:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the refresher did not take the tick")
	}
	select {
	case <-h.u.applied:
	case <-time.After(5 * time.Second):
		h.t.Fatal("the refresh was not drawn")
	}
}

// wait waits for Run to return.
func (h *harness) wait() error {
	h.t.Helper()
	select {
	case err := <-h.done:
		h.ended = true
		return err
	case <-time.After(5 * time.Second):
		h.t.Fatal("Run did not return")
	}
	return nil
}

func (h *harness) key(k tcell.Key) { h.screen.InjectKey(k, 0, tcell.ModNone) }

func (h *harness) keys(s string) { h.screen.InjectKeyBytes([]byte(s)) }

// lines returns the screen as text, one string per row (read on the event
// loop, between two draws).
func (h *harness) lines() []string {
	var out []string
	h.u.app.QueueUpdate(func() { out = screenLines(h.screen) })
	return out
}

func screenLines(s tcell.SimulationScreen) []string {
	cells, w, ht := s.GetContents()
	out := make([]string, ht)
	for y := range ht {
		var b strings.Builder
		for x := range w {
			c := cells[y*w+x]
			if len(c.Runes) == 0 {
				b.WriteByte(' ')
				continue
			}
			b.WriteString(string(c.Runes))
		}
		out[y] = strings.TrimRight(b.String(), " ")
	}
	return out
}

// waitFor polls the screen until cond holds and returns its lines.
func (h *harness) waitFor(what string, cond func(screen string, lines []string) bool) []string {
	h.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		lines := h.lines()
		if cond(strings.Join(lines, "\n"), lines) {
			return lines
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("waiting for %s; the screen shows:\n%s", what, strings.Join(lines, "\n"))
		}
		time.Sleep(time.Millisecond)
	}
}

func (h *harness) waitText(s string) []string {
	h.t.Helper()
	return h.waitFor(quote(s), func(screen string, _ []string) bool { return strings.Contains(screen, s) })
}

func quote(s string) string { return `"` + s + `"` }

// line returns the first screen line containing s, "" if none.
func line(lines []string, s string) string {
	for _, l := range lines {
		if strings.Contains(l, s) {
			return l
		}
	}
	return ""
}

// index returns the number of the first line containing s, -1 if none.
func index(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i
		}
	}
	return -1
}

// findCell returns the style of the first cell of s on screen.
func (h *harness) findCell(s string) (tcell.Style, bool) {
	var st tcell.Style
	found := false
	h.u.app.QueueUpdate(func() {
		cells, w, _ := h.screen.GetContents()
		for y, l := range screenLines(h.screen) {
			if i := strings.Index(l, s); i >= 0 {
				x := len([]rune(l[:i]))
				st, found = cells[y*w+x].Style, true
				return
			}
		}
	})
	return st, found
}

func bars(counts ...int64) []analyze.Bar {
	var out []analyze.Bar
	up := int64(256)
	for _, c := range counts {
		if c > 0 {
			out = append(out, analyze.Bar{UpToUS: up, Count: c})
		}
		up *= 2
	}
	return out
}

func writes(frames, segments uint64, dist ...uint64) analyze.Writes {
	w := analyze.Writes{Frames: frames, Segments: segments, Distribution: map[string]uint64{}}
	if segments > 0 {
		w.FramesPerSegment = math.Round(float64(frames)/float64(segments)*100) / 100
	}
	for i, k := range distKeys {
		if i < len(dist) {
			w.Distribution[k] = dist[i]
		}
	}
	return w
}

// handReport is a small capture: an unbuffered client at 38 in flight, a
// Nagle client that also meets an unbuffered server, a quiet client with
// errors.
func handReport() *analyze.Report {
	unbuf := &analyze.ConnReport{
		ID: 1, Client: "10.0.0.1:59482", Server: "10.0.0.100:9042", ProtocolVersion: 4, Compression: "none",
		Driver: "github.com/apache/cassandra-gocql-driver", DriverVersion: "v1.7.0",
		Requests: 5005, Responses: 5005, RequestsPerSec: 7721, InFlight: analyze.InFlight{Mean: 38.4, Max: 64},
		Latency: analyze.Latency{Count: 5005, P50: 5311, P90: 9790, P99: 16767, P999: 24400, Max: 31413, Mean: 5740,
			Histogram: bars(1, 12, 37, 168, 1418, 2648, 667, 54)},
		ClientWrites: writes(5005, 4283, 0, 4243, 4, 5, 8, 24), ServerWrites: writes(5005, 462, 0, 190, 85, 41, 35, 111),
		DiagnosisCodes: []string{analyze.CodeClientUnbuffered}, Closed: "open",
	}
	unbuf.ClientWrites.BackToBack, unbuf.ClientWrites.BackToBackOne = 3911, 3909
	nagle := &analyze.ConnReport{
		ID: 2, Client: "10.0.0.2:40000", Server: "10.0.0.101:9042", ProtocolVersion: 5, Compression: "lz4",
		Driver: "DataStax Python Driver", DriverVersion: "3.30.1",
		Requests: 4000, Responses: 4000, RequestsPerSec: 3000, InFlight: analyze.InFlight{Mean: 30.1, Max: 32},
		Latency:      analyze.Latency{Count: 4000, P50: 2100, P99: 45000, Max: 52000, Histogram: bars(0, 0, 100, 3000, 800, 100)},
		ClientWrites: writes(4000, 408, 0, 20, 100, 200, 88), ServerWrites: writes(4000, 3900, 0, 3800, 100),
		DiagnosisCodes: []string{analyze.CodeClientNagle, analyze.CodeServerUnbuffered}, Closed: "open",
	}
	quiet := &analyze.ConnReport{
		ID: 3, Client: "10.0.0.3:33333", Server: "10.0.0.100:9042", ProtocolVersion: 4, Compression: "none",
		Driver: "nodejs-driver", DriverVersion: "4.10.0",
		Requests: 60, Responses: 60, Errors: 7, RequestsPerSec: 12, InFlight: analyze.InFlight{Mean: 1, Max: 1},
		Latency:      analyze.Latency{Count: 60, P50: 900, P99: 1800, Max: 1900, Histogram: bars(0, 10, 40, 10)},
		ClientWrites: writes(60, 60, 0, 60), ServerWrites: writes(60, 60, 0, 60),
		DiagnosisCodes: []string{}, Closed: "fin",
	}
	return &analyze.Report{
		Source: "test.pcap", Packets: 24680, Bytes: 1 << 20, Dropped: 3, DurationS: 1.5,
		Totals:      analyze.Totals{Connections: 3, Requests: 9065, Responses: 9065, Errors: 7},
		Latency:     analyze.Latency{Count: 9065, P50: 1800, P99: 16000, Max: 52000},
		Connections: []*analyze.ConnReport{unbuf, nagle, quiet},
		Statements: []analyze.StmtReport{
			{Statement: "INSERT INTO kv (k, c, v) VALUES (?, ?, ?)", Opcode: "EXECUTE", Count: 2499, TotalMS: 14292.5,
				Latency: analyze.Latency{Count: 2499, P50: 5247, P99: 16767, Max: 20000, Histogram: bars(0, 0, 0, 100, 700, 1500, 199)}},
			{Statement: "SELECT v FROM kv WHERE k = ? AND c = ?", Opcode: "EXECUTE", Count: 6000, Errors: 7, TotalMS: 9000,
				Latency: analyze.Latency{Count: 6000, P50: 1500, P99: 9000, Max: 12000, Histogram: bars(0, 0, 1000, 4000, 900, 100)}},
			{Statement: "SELECT * FROM system.local WHERE key=?", Opcode: "QUERY", Count: 2, TotalMS: 2.5,
				Latency: analyze.Latency{Count: 2, P50: 1000, P99: 1500, Max: 1500, Histogram: bars(0, 0, 1, 1)}},
		},
		Opcodes: []analyze.OpReport{
			{Opcode: "EXECUTE", Count: 8499, Latency: analyze.Latency{Count: 8499, P50: 2000, P99: 16000, Max: 52000,
				Histogram: bars(0, 0, 1000, 4100, 1600, 1600, 199)}},
			{Opcode: "QUERY", Count: 566, Latency: analyze.Latency{Count: 566, P50: 1000, P99: 1500, Max: 1500,
				Histogram: bars(0, 10, 500, 56)}},
		},
		Diagnoses: []analyze.Diagnosis{
			{Code: analyze.CodeClientUnbuffered, Client: "10.0.0.1:59482", Server: "10.0.0.100:9042",
				Message: "client 10.0.0.1:59482 sends each request in its own write: with 38.4 requests in flight on average, 3911 of its 4283 segments left back to back."},
			{Code: analyze.CodeClientNagle, Client: "10.0.0.2:40000", Server: "10.0.0.101:9042",
				Message: "client 10.0.0.2:40000 has Nagle's algorithm on (TCP_NODELAY off)."},
			{Code: analyze.CodeServerUnbuffered, Client: "10.0.0.2:40000", Server: "10.0.0.101:9042",
				Message: "server 10.0.0.101:9042 sends each response in its own write."},
		},
	}
}

// TestScreen: the header, the three tables and the diagnoses of a report.
func TestScreen(t *testing.T) {
	h := start(t, 140, 40, handReport(), nil)
	lines := h.waitText("10.0.0.1:59482")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{
		"cqlsniff test.pcap", "elapsed 1.50s", "24680 pkts", "3 dropped", "6043 req/s",
		"frames/write client 1.91 server 2.05", // 9065 frames in 4283+408+60 and 462+3900+60 segments
		"Connections 3", "Statements 3", "Diagnoses 3",
		"q quit", "? help",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	// The whole capture's p50/p99 (the report's, from every response).
	if l := line(lines, "p50 1.80ms"); !strings.Contains(l, "p99 16.0ms") {
		t.Errorf("header without the capture's percentiles: %q", l)
	}
	// Kernel drops on red.
	if st, ok := h.findCell("3 dropped"); !ok {
		t.Error("no drop count")
	} else if _, bg, _ := st.Decompose(); bg != tcell.ColorRed {
		t.Errorf("drops shown on %v, want red", bg)
	}

	// Rows: numbers and badges (sorted by req/s, descending).
	for _, tc := range []struct{ client, want []string }{
		{[]string{"10.0.0.1:59482"}, []string{"10.0.0.100:9042", "⚠ UNBUFFERED", "7721", "38.4/64", "1.17", "10.83", "5.31ms", "16.8ms", "31.4ms", "cassandra-gocql-driver v1.7.0"}},
		{[]string{"10.0.0.2:40000"}, []string{"⚠ NAGLE ⚠ SRV-UNBUF", "3000", "30.1/32", "9.80", "1.03", "2.10ms", "45.0ms", "DataStax Python Driver v3.30.1"}},
		{[]string{"10.0.0.3:33333"}, []string{"12", "1.0/1", "900µs", " 7 ", "nodejs-driver v4.10.0"}},
	} {
		l := line(lines, tc.client[0])
		for _, w := range tc.want {
			if !strings.Contains(l, w) {
				t.Errorf("row %s lacks %q: %q", tc.client[0], w, l)
			}
		}
	}
	if !(index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.2:40000") && index(lines, "10.0.0.2:40000") < index(lines, "10.0.0.3:33333")) {
		t.Errorf("rows not by req/s:\n%s", screen)
	}
	if l := line(lines, "diagnosis"); !strings.Contains(l, "req/s▼") {
		t.Errorf("the header row does not mark the sort column: %q", l)
	}
	// Badge colors (on an unselected row: the selection is drawn reversed).
	for badge, want := range map[string]tcell.Color{"⚠ NAGLE": tcell.ColorOrange, "⚠ SRV-UNBUF": tcell.ColorFuchsia} {
		st, _ := h.findCell(badge)
		if fg, _, _ := st.Decompose(); fg != want {
			t.Errorf("%s badge in %v, want %v", badge, fg, want)
		}
	}

	// Statements by total time.
	ins, sel := index(lines, "INSERT INTO kv"), index(lines, "SELECT v FROM kv")
	if ins < 0 || sel < 0 || ins > sel {
		t.Errorf("statements not ranked by total time:\n%s", screen)
	}
	for _, w := range []string{"14.29s", "2499", "5.25ms", "16.8ms", "EXECUTE"} {
		if !strings.Contains(lines[ins], w) {
			t.Errorf("statement row lacks %q: %q", w, lines[ins])
		}
	}

	// Diagnoses: the messages, the last one first (all seen in one snapshot).
	srv, nag, unb := index(lines, "server 10.0.0.101:9042 sends each"), index(lines, "Nagle's algorithm"), index(lines, "sends each request")
	if srv < 0 || nag < 0 || unb < 0 || !(srv < nag && nag < unb) {
		t.Errorf("diagnoses not newest first:\n%s", screen)
	}
}

// TestSortKeys: s moves the sort to the next column, S reverses it.
func TestSortKeys(t *testing.T) {
	h := start(t, 140, 40, handReport(), nil)
	h.waitText("req/s▼")
	h.keys("s")
	lines := h.waitText("infl▼")
	// In flight: 38.4 > 30.1 > 1.0.
	if !(index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.2:40000") && index(lines, "10.0.0.2:40000") < index(lines, "10.0.0.3:33333")) {
		t.Errorf("not sorted by in-flight:\n%s", strings.Join(lines, "\n"))
	}
	h.keys("s")
	lines = h.waitText("cli f/w▼")
	// Client frames per write: 9.80 > 1.17 > 1.00.
	if !(index(lines, "10.0.0.2:40000") < index(lines, "10.0.0.1:59482") && index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.3:33333")) {
		t.Errorf("not sorted by client frames per write:\n%s", strings.Join(lines, "\n"))
	}
	h.keys("S")
	lines = h.waitText("cli f/w▲")
	if !(index(lines, "10.0.0.3:33333") < index(lines, "10.0.0.1:59482") && index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.2:40000")) {
		t.Errorf("not reversed:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(line(lines, "Connections"), "sort cli f/w▲") {
		t.Errorf("title: %q", line(lines, "Connections"))
	}

	// Statements: Tab, then s sorts them by count.
	h.key(tcell.KeyTab)
	h.waitText("▶ Statements")
	h.keys("s")
	lines = h.waitText("count▼")
	if index(lines, "SELECT v FROM kv") > index(lines, "INSERT INTO kv") {
		t.Errorf("statements not sorted by count:\n%s", strings.Join(lines, "\n"))
	}
}

// TestFilter: / narrows every pane; Esc clears.
func TestFilter(t *testing.T) {
	h := start(t, 140, 40, handReport(), nil)
	h.waitText("10.0.0.3:33333")
	h.keys("/")
	h.waitText("filter (client, server, driver, statement):")
	h.keys("gocql")
	h.key(tcell.KeyEnter)
	lines := h.waitText(`filter "gocql"`)
	screen := strings.Join(lines, "\n")
	if !strings.Contains(screen, "10.0.0.1:59482") || strings.Contains(screen, "10.0.0.2:40000") || strings.Contains(screen, "10.0.0.3:33333") {
		t.Errorf("filter gocql:\n%s", screen)
	}
	if !strings.Contains(screen, "Connections 1 of 3") || !strings.Contains(screen, "no statement matches the filter") {
		t.Errorf("filter counts:\n%s", screen)
	}
	if strings.Contains(screen, "Nagle's algorithm") || !strings.Contains(screen, "sends each request") {
		t.Errorf("diagnoses not filtered:\n%s", screen)
	}

	// A statement filter.
	h.keys("/")
	h.waitText("filter (client")
	for range len("gocql") {
		h.key(tcell.KeyBackspace2)
	}
	h.keys("INSERT")
	h.key(tcell.KeyEnter)
	lines = h.waitText(`filter "insert"`)
	if index(lines, "INSERT INTO kv") < 0 || index(lines, "SELECT v FROM kv") >= 0 {
		t.Errorf("filter insert:\n%s", strings.Join(lines, "\n"))
	}

	h.key(tcell.KeyEscape)
	lines = h.waitFor("no filter", func(s string, _ []string) bool { return !strings.Contains(s, "filter \"") })
	if index(lines, "10.0.0.3:33333") < 0 || index(lines, "SELECT v FROM kv") < 0 {
		t.Errorf("Esc did not clear the filter:\n%s", strings.Join(lines, "\n"))
	}
}

// TestDetail: Enter opens the selected connection with its histogram and
// frames-per-write distributions; Esc goes back.
func TestDetail(t *testing.T) {
	h := start(t, 120, 60, handReport(), nil)
	h.waitText("10.0.0.1:59482")
	h.key(tcell.KeyEnter)
	lines := h.waitText("▶ Connection 10.0.0.1:59482 → 10.0.0.100:9042")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{
		"driver github.com/apache/cassandra-gocql-driver v1.7.0", "protocol v4",
		"in flight 38.4 mean, 64 max",
		"⚠ UNBUFFERED client-unbuffered-writes", "sends each request in its own write",
		"count 5005", "p50 5.31ms", "p99 16.8ms", "max 31.4ms",
		"segments (data-bearing, ≈ writes)", "back to back (could have joined the previous)",
		"client segments by frames starting in them",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("the detail lacks %q:\n%s", want, screen)
		}
	}
	// The tallest latency bar: 2648 values up to 8192µs, full width.
	if l := line(lines, "≤      8192 µs"); !strings.Contains(l, strings.Repeat("█", 20)) || !strings.Contains(l, "2648") || !strings.Contains(l, "52.9%") {
		t.Errorf("latency bar: %q", l)
	}
	// The smallest one still shows.
	if l := line(lines, "≤       256 µs"); !strings.Contains(l, "│▏") {
		t.Errorf("sliver bar: %q", l)
	}
	// Distribution: 4243 one-frame segments of 4284.
	if l := line(lines, "     1 frames"); !strings.Contains(l, "█") || !strings.Contains(l, "4243") || !strings.Contains(l, "99.0%") {
		t.Errorf("distribution bar: %q", l)
	}
	if l := line(lines, "  back to back"); !strings.Contains(l, "3911") {
		t.Errorf("evidence row: %q", l)
	}
	h.key(tcell.KeyEscape)
	h.waitFor("the main view", func(s string, _ []string) bool {
		return strings.Contains(s, "▶ Connections") && !strings.Contains(s, "▶ Connection 10")
	})
}

// TestStatementDetail: Tab to the statements, Enter on one.
func TestStatementDetail(t *testing.T) {
	h := start(t, 100, 40, handReport(), nil)
	h.waitText("INSERT INTO kv")
	h.key(tcell.KeyTab)
	h.waitText("▶ Statements")
	h.key(tcell.KeyDown)
	h.key(tcell.KeyEnter)
	lines := h.waitText("▶ Statement EXECUTE")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{"SELECT v FROM kv WHERE k = ? AND c = ?", "count 6000", "errors 7", "total 9.00s", "≤      2048 µs"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the statement detail lacks %q:\n%s", want, screen)
		}
	}
}

// TestHelp: ? shows every key; Esc closes.
func TestHelp(t *testing.T) {
	h := start(t, 80, 24, handReport(), &Replay{Speed: func() float64 { return 1 }, SetSpeed: func(float64) {}, Done: func() bool { return false }})
	h.waitText("q quit")
	h.keys("?")
	lines := h.waitText("cqlsniff keys")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{"quit", "next / previous pane", "detail of the selected row", "reverse the sort",
		"filter by client, server, driver", "pause the screen", "replay twice as fast", "replay half as fast"} {
		if !strings.Contains(screen, want) {
			t.Errorf("help lacks %q:\n%s", want, screen)
		}
	}
	h.key(tcell.KeyEscape)
	h.waitFor("help closed", func(s string, _ []string) bool { return !strings.Contains(s, "cqlsniff keys") })
}

// TestPause: p freezes the screen while snapshots keep coming; p again
// shows the newest.
func TestPause(t *testing.T) {
	h := start(t, 120, 40, handReport(), nil)
	h.waitText("24680 pkts")
	h.keys("p")
	h.waitText("PAUSED")
	next := handReport()
	next.Packets = 99999
	next.Connections[2].Client = "10.0.0.4:44444"
	h.snaps.set(next)
	h.refresh()
	lines := h.lines()
	screen := strings.Join(lines, "\n")
	if !strings.Contains(screen, "24680 pkts") || strings.Contains(screen, "99999") || strings.Contains(screen, "10.0.0.4:44444") {
		t.Errorf("paused, yet the screen changed:\n%s", screen)
	}
	h.keys("p")
	lines = h.waitText("99999 pkts")
	if strings.Contains(strings.Join(lines, "\n"), "PAUSED") || index(lines, "10.0.0.4:44444") < 0 {
		t.Errorf("resumed:\n%s", strings.Join(lines, "\n"))
	}
}

// TestReplay: + and - change the pace; the end of the file shows.
func TestReplay(t *testing.T) {
	var pace atomic.Uint64
	pace.Store(math.Float64bits(1))
	var done atomic.Bool
	rp := &Replay{
		Speed:    func() float64 { return math.Float64frombits(pace.Load()) },
		SetSpeed: func(f float64) { pace.Store(math.Float64bits(f)) },
		Done:     done.Load,
	}
	h := start(t, 120, 30, handReport(), rp)
	h.waitText("replay 1x")
	h.keys("+")
	h.waitText("replay 2x")
	h.keys("--")
	h.waitText("replay 0.5x")
	rp.SetSpeed(64)
	h.keys("+")
	h.waitText("replay max")
	h.keys("-")
	h.waitText("replay 1x")
	if strings.Contains(strings.Join(h.lines(), "\n"), "ENDED") {
		t.Error("ENDED before the end")
	}
	done.Store(true)
	h.refresh()
	h.waitText("ENDED")
}

// TestQuit: q, Ctrl-C and the context each end Run.
func TestQuit(t *testing.T) {
	for _, tc := range []struct {
		name string
		quit func(h *harness)
	}{
		{"q", func(h *harness) { h.keys("q") }},
		{"ctrl-c", func(h *harness) { h.key(tcell.KeyCtrlC) }},
		{"q in the help", func(h *harness) { h.keys("?"); h.waitText("cqlsniff keys"); h.keys("q") }},
		{"context", func(h *harness) { h.cancel() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := start(t, 80, 24, handReport(), nil)
			h.waitText("q quit")
			tc.quit(h)
			if err := h.wait(); err != nil {
				t.Fatalf("Run: %v", err)
			}
		})
	}
}

// TestQuitWhileRefreshing: quitting while the refresher waits on the event
// loop still ends Run.
func TestQuitWhileRefreshing(t *testing.T) {
	h := start(t, 80, 24, handReport(), nil)
	h.keys("q")
	// The refresher may take this tick or see the quit first.
	select {
	case h.tick <- time.Time{}:
		select {
		case <-h.u.applied:
		case <-h.done:
			h.ended = true
			return
		}
	case <-h.done:
		h.ended = true
		return
	}
	if err := h.wait(); err != nil {
		t.Fatal(err)
	}
}

func TestWaitingForFirstSnapshot(t *testing.T) {
	h := start(t, 80, 24, nil, nil)
	h.waitText("waiting for the first snapshot")
	h.snaps.set(handReport())
	h.refresh()
	h.waitText("24680 pkts")
	if h.snaps.requests < 2 {
		t.Errorf("%d requests", h.snaps.requests)
	}
}

// TestColumnsScroll: on 80 columns the connections table shows whole
// columns only; → brings the others in.
func TestColumnsScroll(t *testing.T) {
	h := start(t, 80, 24, handReport(), nil)
	lines := h.waitText("more columns →")
	if index(lines, "driver") >= 0 {
		t.Errorf("the driver column fits on 80 columns?\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "…") && strings.Contains(l, "10.0.0.") {
			t.Errorf("a column is cut: %q", l)
		}
	}
	for range 12 {
		h.key(tcell.KeyRight)
	}
	lines = h.waitFor("the last columns", func(_ string, lines []string) bool {
		l := line(lines, "Connections")
		return strings.Contains(l, "hidden columns") && !strings.Contains(l, "more")
	})
	if l := line(lines, "10.0.0.3:33333"); !strings.Contains(l, "nodejs-driver v4.10.0") {
		t.Errorf("scrolled row: %q", l)
	}
	h.key(tcell.KeyLeft)
	for range 12 {
		h.key(tcell.KeyLeft)
	}
	h.waitFor("scrolled back", func(s string, _ []string) bool { return !strings.Contains(s, "hidden columns") })

	// Sorting by a column out of view scrolls to it (the two syscall
	// columns are not shown without counts, so s skips them).
	for range colDriver - colReqs - 2 {
		h.keys("s")
	}
	lines = h.waitText("driver▲")
	if l := line(lines, "Connections"); !strings.Contains(l, "sort driver▲") || !strings.Contains(l, "hidden columns") {
		t.Errorf("title: %q", l)
	}
}

func TestConfigErrors(t *testing.T) {
	if err := Run(context.Background(), Config{}); err == nil {
		t.Error("Run without Snapshots: no error")
	}
}

// TestRealCapture: a report from a real unbuffered gocql capture, on
// 80×24.
func TestRealCapture(t *testing.T) {
	path := filepath.Join("..", "pcaps", "gocql-1.7.0-v4-unbuffered-c64.pcap")
	src, err := capture.OpenFile(path)
	if err != nil {
		t.Skip(err)
	}
	defer src.Close()
	p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 0); err != nil && !errors.Is(err, context.Canceled) {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	rep := p.Report(path)

	h := start(t, 80, 24, rep, nil)
	lines := h.waitText("127.0.0.1:59482")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{"5131 pkts", "0 dropped", "Connections 5 to 127.0.0.1:9042", "Statements", "Diagnoses 1",
		"sends requests in separate writes", "q quit"} {
		if !strings.Contains(screen, want) {
			t.Errorf("the screen lacks %q:\n%s", want, screen)
		}
	}
	if l := line(lines, "127.0.0.1:59482 "); !strings.Contains(l, "⚠ UNBUFFERED") || !strings.Contains(l, "38.4/64") || !strings.Contains(l, "1.17") {
		t.Errorf("the unbuffered connection: %q", l)
	}
	if l := line(lines, "127.0.0.1:59460 "); strings.Contains(l, "⚠") {
		t.Errorf("a one-in-flight connection with a badge: %q", l)
	}
	if l := line(lines, "INSERT INTO kv"); !strings.Contains(l, "2499") {
		t.Errorf("top statement: %q\n%s", l, screen)
	}
	if len(lines) != 24 {
		t.Errorf("%d lines", len(lines))
	}
}

// TestSmallAndResize: a tiny terminal still works; growing it to a wide one
// puts the statements and the diagnoses side by side.
func TestSmallAndResize(t *testing.T) {
	h := start(t, 30, 8, handReport(), nil)
	h.waitText("cqlsniff")
	h.keys("?")
	h.waitText("q  Ctrl-C")
	h.keys("?")
	h.waitFor("help closed", func(s string, _ []string) bool { return !strings.Contains(s, "Ctrl-C") })
	h.screen.SetSize(200, 50)
	if err := h.screen.PostEvent(tcell.NewEventResize(200, 50)); err != nil {
		t.Fatal(err)
	}
	lines := h.waitFor("the wide layout", func(_ string, lines []string) bool {
		l := line(lines, "Statements")
		return strings.Contains(l, "Diagnoses")
	})
	if l := line(lines, "10.0.0.1:59482 "); !strings.Contains(l, "10.0.0.100:9042") || !strings.Contains(l, "open") {
		t.Errorf("every column on a wide terminal: %q", l)
	}
}

// TestDiagnosesNewestFirst: a diagnosis that appears later shows above the
// older ones, wherever the report lists it.
func TestDiagnosesNewestFirst(t *testing.T) {
	first := handReport()
	first.Diagnoses = first.Diagnoses[2:] // only the server one
	h := start(t, 120, 40, first, nil)
	h.waitText("Diagnoses 1")
	h.snaps.set(handReport()) // the two client ones come first in the report
	h.refresh()
	lines := h.waitText("Diagnoses 3")
	unb, nag, srv := index(lines, "sends each request"), index(lines, "Nagle's algorithm"), index(lines, "sends each response")
	if !(nag < unb && unb < srv) {
		t.Errorf("not newest first:\n%s", strings.Join(lines, "\n"))
	}
}

// TestSyscalls: with the kernel's counts (live, --syscalls) the header
// gives frames per send call, the connections table gains the per-end
// columns and the read badges, and the detail lays the counts out; without
// them none of it shows.
func TestSyscalls(t *testing.T) {
	plain := start(t, 220, 40, handReport(), nil)
	screen := strings.Join(plain.waitText("10.0.0.1:59482"), "\n")
	for _, absent := range []string{"f/send", "frames/send"} {
		if strings.Contains(screen, absent) {
			t.Errorf("%q shown without syscall counts:\n%s", absent, screen)
		}
	}

	rep := handReport()
	f := func(v float64) *float64 { return &v }
	unbuf, nagle := rep.Connections[0], rep.Connections[1]
	unbuf.ClientSyscalls = &analyze.SyscallReport{Sends: 5005, Recvs: 300, SendBytes: 600600, RecvBytes: 200200,
		FramesPerSend: f(1), RecvsPerFrame: f(0.06), PID: 4242, Comm: "gocql-client"}
	unbuf.ServerSyscalls = &analyze.SyscallReport{Sends: 455, Recvs: 420, SendBytes: 200200, RecvBytes: 600600,
		FramesPerSend: f(11), RecvsPerFrame: f(0.08), PID: 77, Comm: "java"}
	// The server of the second connection runs on another host: only its client is counted.
	nagle.ClientSyscalls = &analyze.SyscallReport{Sends: 4000, Recvs: 8000, FramesPerSend: f(1), RecvsPerFrame: f(2), PID: 9, Comm: "python3"}
	nagle.DiagnosisCodes = append(nagle.DiagnosisCodes, analyze.CodeClientUnbufferedReads)

	h := start(t, 220, 40, rep, nil)
	lines := h.waitText("10.0.0.1:59482")
	screen = strings.Join(lines, "\n")
	// (5005+4000) frames in (5005+4000) client sends; 5005 server frames in 455 sends.
	if !strings.Contains(screen, "frames/send client 1.00 server 11.00") {
		t.Errorf("header without frames per send call:\n%s", screen)
	}
	head := line(lines, "cli f/send")
	if head == "" || !strings.Contains(head, "srv f/send") {
		t.Fatalf("no syscall columns:\n%s", screen)
	}
	// Right-aligned numbers end where the column's title does (one rune per cell).
	col := len([]rune(head[:strings.Index(head, "srv f/send")])) + len("srv f/send")
	for client, want := range map[string]string{"10.0.0.1:59482": "11.00", "10.0.0.2:40000": "-", "10.0.0.3:33333": "-"} {
		l := []rune(line(lines, client))
		if len(l) < col || !strings.HasSuffix(string(l[:col]), " "+want) {
			t.Errorf("row %s: srv f/send column is not %q: %q", client, want, string(l))
		}
	}
	if l := line(lines, "10.0.0.2:40000"); !strings.Contains(l, "⚠ SMALL-READS") {
		t.Errorf("no read badge: %q", l)
	}

	// Sorting by the client's frames per send: measured rows first.
	for range colClientFPS - colReqs {
		h.keys("s")
	}
	lines = h.waitFor("sort on cli f/send", func(_ string, lines []string) bool {
		return strings.Contains(line(lines, "cli f/send"), "cli f/send▼")
	})
	if index(lines, "10.0.0.3:33333") < index(lines, "10.0.0.2:40000") {
		t.Errorf("an unmeasured connection sorts before a measured one:\n%s", strings.Join(lines, "\n"))
	}

	h.keys("g")
	h.key(tcell.KeyEnter)
	lines = h.waitText("System calls")
	for _, want := range [][2]string{
		{"process", "gocql-client[4242]"}, {"process", "java[77]"},
		{"send calls", "5005"}, {"send calls", "455"},
		{"frames per send call", "1.00"}, {"frames per send call", "11.00"},
		{"receive calls per frame received", "0.06"},
		{"bytes sent", "600600"},
	} {
		if l := line(lines, "  "+want[0]); !strings.Contains(l, want[1]) {
			t.Errorf("detail row %q lacks %q: %q", want[0], want[1], l)
		}
	}
}
