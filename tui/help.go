package tui

import (
	"strings"

	"github.com/rivo/tview"
)

// helpPane is the key help: the hints in the footer and the box that ?
// opens (its text is helpText, beside the keys it describes).
type helpPane struct {
	footer              *tview.TextView
	help                *tview.TextView
	helpBox, helpColumn *tview.Flex
	helpOpen            bool
}

// helpWidth is the help box's width on a terminal wide enough.
const helpWidth = 62

func helpHeight(text string) int { return strings.Count(text, "\n") + 3 }

// keyHints renders key, meaning pairs for a footer.
func keyHints(pairs ...string) string {
	var segs []string
	for i := 0; i+1 < len(pairs); i += 2 {
		segs = append(segs, "[black:aqua]"+escape(pairs[i])+"[-:-] "+escape(pairs[i+1]))
	}
	return strings.Join(segs, " ")
}

// renderFooter shows as many key hints as fit, the most useful first (?
// lists them all).
func (u *ui) renderFooter() {
	pairs := []string{"q", "quit", "?", "help", "/", "filter", "s/S", "sort", "p", "pause",
		"Tab", "pane", "Enter", "detail"}
	if u.cfg.Replay != nil {
		pairs = append(pairs, "+/-", "pace")
	}
	pairs = append(pairs, "←/→", "columns")
	for len(pairs) > 2 && u.width > 0 && tview.TaggedStringWidth(keyHints(pairs...)) > u.width {
		pairs = pairs[:len(pairs)-2]
	}
	u.footer.SetText(keyHints(pairs...))
}
