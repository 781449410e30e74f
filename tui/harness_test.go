package tui

import (
	"context"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/cqlsniff/cqlsniff/analyze"
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

func segStats(frames, segments uint64, dist ...uint64) analyze.SegmentStats {
	w := analyze.SegmentStats{Frames: frames, Segments: segments, Distribution: map[string]uint64{}}
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
		ClientSegments: segStats(5005, 4283, 0, 4243, 4, 5, 8, 24), ServerSegments: segStats(5005, 462, 0, 190, 85, 41, 35, 111),
		DiagnosisCodes: []string{analyze.CodeClientUnbuffered}, Closed: "open",
	}
	unbuf.ClientSegments.BackToBack, unbuf.ClientSegments.BackToBackSingle = 3911, 3909
	nagle := &analyze.ConnReport{
		ID: 2, Client: "10.0.0.2:40000", Server: "10.0.0.101:9042", ProtocolVersion: 5, Compression: "lz4",
		Driver: "DataStax Python Driver", DriverVersion: "3.30.1",
		Requests: 4000, Responses: 4000, RequestsPerSec: 3000, InFlight: analyze.InFlight{Mean: 30.1, Max: 32},
		Latency:        analyze.Latency{Count: 4000, P50: 2100, P99: 45000, Max: 52000, Histogram: bars(0, 0, 100, 3000, 800, 100)},
		ClientSegments: segStats(4000, 408, 0, 20, 100, 200, 88), ServerSegments: segStats(4000, 3900, 0, 3800, 100),
		DiagnosisCodes: []string{analyze.CodeClientNagle, analyze.CodeServerUnbuffered}, Closed: "open",
	}
	quiet := &analyze.ConnReport{
		ID: 3, Client: "10.0.0.3:33333", Server: "10.0.0.100:9042", ProtocolVersion: 4, Compression: "none",
		Driver: "nodejs-driver", DriverVersion: "4.10.0",
		Requests: 60, Responses: 60, Errors: 7, RequestsPerSec: 12, InFlight: analyze.InFlight{Mean: 1, Max: 1},
		Latency:        analyze.Latency{Count: 60, P50: 900, P99: 1800, Max: 1900, Histogram: bars(0, 10, 40, 10)},
		ClientSegments: segStats(60, 60, 0, 60), ServerSegments: segStats(60, 60, 0, 60),
		DiagnosisCodes: []string{}, Closed: "fin",
	}
	return withTotals(&analyze.Report{
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
	})
}

// withTotals fills the capture's frame, segment and send-call totals from
// its connections, as analyze's merger does (here every connection is
// listed).
func withTotals(r *analyze.Report) *analyze.Report {
	t := &r.Totals
	t.ClientFrames, t.ClientSegments, t.ServerFrames, t.ServerSegments = 0, 0, 0, 0
	t.ClientSendCalls, t.ClientSendFrames, t.ServerSendCalls, t.ServerSendFrames = 0, 0, 0, 0
	for _, c := range r.Connections {
		t.ClientFrames += c.ClientSegments.Frames
		t.ClientSegments += c.ClientSegments.Segments
		t.ServerFrames += c.ServerSegments.Frames
		t.ServerSegments += c.ServerSegments.Segments
		if k := c.ClientSyscalls; k != nil {
			t.ClientSendCalls += k.Sends
			t.ClientSendFrames += c.ClientSegments.Frames
		}
		if k := c.ServerSyscalls; k != nil {
			t.ServerSendCalls += k.Sends
			t.ServerSendFrames += c.ServerSegments.Frames
		}
	}
	return r
}
