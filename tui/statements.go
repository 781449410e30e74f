package tui

import (
	"fmt"
	"slices"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// stmtsPane is the statements table: the rows on screen, the selection kept
// across refreshes and the sort.
type stmtsPane struct {
	stmtPane  *tview.Flex
	stmtTitle *tview.TextView
	stmts     *tview.Table
	stmtSort  sortState
	stmtRows  []*analyze.StmtReport
	stmtSel   stmtKey
}

func (u *ui) renderStmts() {
	t := u.stmts
	rowOff, colOff := t.GetOffset()
	defer t.SetOffset(rowOff, colOff)
	t.Clear()
	var rows []*analyze.StmtReport
	if u.shown != nil {
		for i := range u.shown.Statements {
			if s := &u.shown.Statements[i]; matchStmt(s, u.filter) {
				rows = append(rows, s)
			}
		}
	}
	sortRows(rows, stmtColumns, u.stmtSort)
	more := 0
	if len(rows) > maxStmtRows {
		more = len(rows) - maxStmtRows
		rows = rows[:maxStmtRows]
	}
	u.stmtRows = rows
	if len(rows) == 0 {
		msg := "no statement yet"
		if u.filter != "" {
			msg = "no statement matches the filter"
		}
		t.SetCell(0, 0, tview.NewTableCell(msg).SetSelectable(false).SetTextColor(tcell.ColorGray))
		return
	}
	names := header(stmtColumns, u.stmtSort)
	for j, c := range stmtColumns {
		t.SetCell(0, j, headerCell(names[j], c.left))
	}
	for i, s := range rows {
		for j, col := range stmtColumns {
			cell := tview.NewTableCell(escape(col.cell(s)))
			if !col.left {
				cell.SetAlign(tview.AlignRight)
			}
			if j == colStmtErrors && s.Errors > 0 {
				cell.SetTextColor(tcell.ColorRed)
			}
			if j == colStmtText {
				cell.SetExpansion(1)
			}
			t.SetCell(i+1, j, cell)
		}
	}
	if more > 0 {
		t.SetCell(len(rows)+1, 0, tview.NewTableCell(fmt.Sprintf("… %d more; / filters", more)).
			SetSelectable(false).SetTextColor(tcell.ColorGray))
	}
	sel := slices.IndexFunc(rows, func(s *analyze.StmtReport) bool { return keyOf(s) == u.stmtSel })
	t.Select(max(sel, 0)+1, 0)
}
