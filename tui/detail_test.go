package tui

import (
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"
)

// TestDetail: Enter opens the selected connection with its histogram and
// frames-per-segment distributions; Esc goes back.
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
		"data-bearing segments", "back to back (could have joined the previous)",
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
