package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/rivo/tview"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// diagsPane lists the diagnoses, newest first.
type diagsPane struct {
	diagPane  *tview.Flex
	diagTitle *tview.TextView
	diags     *tview.TextView
	diagSeen  map[string]int // diagnosis → order first seen, for newest first
	diagSeq   int
}

func diagKey(d *analyze.Diagnosis) string { return d.Code + "|" + d.Client + "|" + d.Server }

// shownDiagnoses returns the diagnoses passing the filter, newest first.
func (u *ui) shownDiagnoses() []*analyze.Diagnosis {
	if u.shown == nil {
		return nil
	}
	var out []*analyze.Diagnosis
	for i := range u.shown.Diagnoses {
		if d := &u.shown.Diagnoses[i]; matchDiag(d, u.shown.Connections, u.filter) {
			out = append(out, d)
		}
	}
	slices.SortStableFunc(out, func(a, b *analyze.Diagnosis) int {
		return u.diagSeen[diagKey(b)] - u.diagSeen[diagKey(a)]
	})
	return out
}

func (u *ui) renderDiags() {
	ds := u.shownDiagnoses()
	var b strings.Builder
	switch {
	case u.shown == nil:
	case len(ds) == 0 && u.filter != "" && len(u.shown.Diagnoses) > 0:
		b.WriteString("[gray]no diagnosis matches the filter[-]")
	case len(ds) == 0:
		b.WriteString("[green]No diagnosis[-]: no side sent frames one write at a time while it had several to send.")
	}
	for i, d := range ds {
		if i > 0 {
			b.WriteString("\n\n")
		}
		fmt.Fprintf(&b, "%s %s → %s\n%s", badgeLine([]string{d.Code}, true), escape(d.Client), escape(d.Server), escape(d.Message))
	}
	row, _ := u.diags.GetScrollOffset()
	u.diags.SetText(b.String())
	u.diags.ScrollTo(row, 0)
}
