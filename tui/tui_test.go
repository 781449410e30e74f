package tui

import (
	"context"
	"errors"
	"math"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gdamore/tcell/v2"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// The whole screen and the application: layout, filter, pause, replay, quit.
// Each pane's own tests are in the file named for it; the harness and the
// hand-made report are in harness_test.go.

// TestScreen: the header, the three tables and the diagnoses of a report.
func TestScreen(t *testing.T) {
	h := start(t, 144, 40, handReport(), nil)
	lines := h.waitText("10.0.0.1:59482")
	screen := strings.Join(lines, "\n")
	for _, want := range []string{
		"cqlsniff test.pcap", "elapsed 1.50s", "24680 pkts", "3 dropped", "6043 req/s",
		"frames/seg client 1.91 server 2.05", // 9065 frames in 4283+408+60 and 462+3900+60 segments
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
