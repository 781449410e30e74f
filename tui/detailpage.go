package tui

import (
	"github.com/rivo/tview"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// detailPage shows one connection or statement in full (Enter on a row).
type detailPage struct {
	detailTitle, detail *tview.TextView
	detailKind          int
	detailConn          uint64
	detailStmt          stmtKey
}

// Detail targets.
const (
	detailNone = iota
	detailConn
	detailStmt
)

func (u *ui) renderDetail() {
	if u.detailKind == detailNone {
		return
	}
	barW := min(max(u.width-44, 10), 60)
	var title, body string
	switch u.detailKind {
	case detailConn:
		var c *analyze.ConnReport
		if u.shown != nil {
			for _, x := range u.shown.Connections {
				if x.ID == u.detailConn {
					c = x
				}
			}
		}
		title = "Connection"
		if c != nil {
			title += " " + c.Client + " → " + c.Server
			body = connDetail(c, u.shown.Diagnoses, barW)
		} else {
			body = "This connection is no longer in the report."
		}
	case detailStmt:
		var s *analyze.StmtReport
		if u.shown != nil {
			for i := range u.shown.Statements {
				if keyOf(&u.shown.Statements[i]) == u.detailStmt {
					s = &u.shown.Statements[i]
				}
			}
		}
		title = "Statement " + u.detailStmt.opcode
		if s != nil {
			body = stmtDetail(s, barW)
		} else {
			body = "This statement is no longer in the report."
		}
	}
	if u.paused {
		title += "  [black:yellow:b] PAUSED [-:-:B]"
	}
	setTitle(u.detailTitle, true, escape(oneLine(title)))
	row, _ := u.detail.GetScrollOffset()
	u.detail.SetText(body)
	u.detail.ScrollTo(row, 0)
}
