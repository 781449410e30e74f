package tui

import (
	"fmt"
	"slices"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// connsPane is the connections table: the rows on screen, the selection
// kept across refreshes, the sort and the horizontal column scroll.
type connsPane struct {
	connTitle       *tview.TextView
	conns           *tview.Table
	connSort        sortState
	connRows        []*analyze.ConnReport // as displayed: table row i+1
	connSel         uint64
	connColOff      int // connection columns scrolled off to the left (after the first)
	connHiddenLeft  int
	connHiddenRight int
	revealSort      bool // scroll the sort column into view at the next render
}

// connColumnsShown returns the connection columns to show: all of them,
// except the server column when every row shares one server and the table
// is narrow (the title names the server then), and the kernel's frames per
// send call when no row has them.
func (u *ui) connColumnsShown(rows []*analyze.ConnReport) (cols []int, sharedServer string) {
	sys := hasSyscalls(rows)
	if u.width < serverColumn && len(rows) > 0 {
		sharedServer = rows[0].Server
		for _, c := range rows[1:] {
			if c.Server != sharedServer {
				sharedServer = ""
				break
			}
		}
	}
	for i := range connColumns {
		if i == colServer && sharedServer != "" || (i == colClientFPSend || i == colServerFPSend) && !sys {
			continue
		}
		cols = append(cols, i)
	}
	return cols, sharedServer
}

func (u *ui) renderConns() {
	t := u.conns
	// Keep the scroll position (tview would otherwise keep following the
	// end once a short table has been drawn).
	rowOff, _ := t.GetOffset()
	defer t.SetOffset(rowOff, 0)
	t.Clear()
	var rows []*analyze.ConnReport
	if u.shown != nil {
		for _, c := range u.shown.Connections {
			if matchConn(c, u.filter) {
				rows = append(rows, c)
			}
		}
	}
	sortRows(rows, connColumns, u.connSort)
	more := 0
	if len(rows) > maxConnRows {
		more = len(rows) - maxConnRows
		rows = rows[:maxConnRows]
	}
	u.connRows = rows
	shown, _ := u.connColumnsShown(rows)
	names := header(connColumns, u.connSort)

	// Cell texts first, to know each column's width.
	texts := make([][]string, len(rows))
	widths := make([]int, len(shown))
	for j, ci := range shown {
		widths[j] = tview.TaggedStringWidth(escape(names[ci]))
	}
	for i, c := range rows {
		texts[i] = make([]string, len(shown))
		for j, ci := range shown {
			text := connColumns[ci].cell(c)
			if ci != colDiag {
				text = escape(text)
			}
			if ci == colDriver {
				text = truncate(text, maxDriverWidth)
			}
			texts[i][j] = text
			widths[j] = max(widths[j], tview.TaggedStringWidth(text))
		}
	}
	if len(rows) == 0 {
		msg := "no connection yet"
		if u.filter != "" {
			msg = "no connection matches the filter"
		}
		t.SetCell(0, 0, tview.NewTableCell(msg).SetSelectable(false).SetTextColor(tcell.ColorGray))
		u.connHiddenLeft, u.connHiddenRight = 0, 0
		return
	}
	reveal := -1
	if u.revealSort {
		reveal = slices.Index(shown, u.connSort.col)
		u.revealSort = false
	}
	cols := u.fitConnColumns(widths, reveal)

	for j, k := range cols {
		ci := shown[k]
		t.SetCell(0, j, headerCell(names[ci], connColumns[ci].left))
		for i, c := range rows {
			cell := tview.NewTableCell(texts[i][k])
			if !connColumns[ci].left {
				cell.SetAlign(tview.AlignRight)
			}
			if ci == colErrors && c.Errors > 0 {
				cell.SetTextColor(tcell.ColorRed)
			}
			t.SetCell(i+1, j, cell)
		}
	}
	if more > 0 {
		t.SetCell(len(rows)+1, 0, tview.NewTableCell(fmt.Sprintf("… %d more; / filters", more)).
			SetSelectable(false).SetTextColor(tcell.ColorGray))
	}
	sel := slices.IndexFunc(rows, func(c *analyze.ConnReport) bool { return c.ID == u.connSel })
	t.Select(max(sel, 0)+1, 0)
}

// fitConnColumns picks the columns (indices into widths) that fit the
// terminal whole: the first one always, then from the horizontal scroll
// offset on, scrolling so that column reveal (if > 0) shows. It clamps the
// offset and records what is hidden for the title.
func (u *ui) fitConnColumns(widths []int, reveal int) []int {
	n := len(widths)
	if n == 0 {
		return nil
	}
	u.connColOff = min(max(u.connColOff, 0), n-2)
	u.connColOff = max(u.connColOff, 0)
	fits := func(off int) (cols []int) {
		cols = []int{0}
		used := widths[0]
		for k := 1 + off; k < n; k++ {
			if u.width > 0 && used+1+widths[k] > u.width {
				break
			}
			cols = append(cols, k)
			used += 1 + widths[k]
		}
		return cols
	}
	if reveal > 0 {
		u.connColOff = min(u.connColOff, reveal-1)
		for !slices.Contains(fits(u.connColOff), reveal) && u.connColOff < reveal-1 {
			u.connColOff++
		}
	}
	cols := fits(u.connColOff)
	// Do not scroll further than needed to show the last column.
	for u.connColOff > 0 && cols[len(cols)-1] == n-1 {
		if c := fits(u.connColOff - 1); c[len(c)-1] == n-1 {
			u.connColOff--
			cols = c
			continue
		}
		break
	}
	u.connHiddenLeft = u.connColOff
	u.connHiddenRight = n - 1 - cols[len(cols)-1]
	if len(cols) == 1 {
		u.connHiddenRight = n - 1 - u.connColOff
	}
	return cols
}

// truncate cuts text (without style tags) to width cells, marking the cut.
func truncate(text string, width int) string {
	r := []rune(text)
	if len(r) <= width {
		return text
	}
	return string(r[:width-1]) + "…"
}
