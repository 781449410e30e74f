package tui

import (
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"
)

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
