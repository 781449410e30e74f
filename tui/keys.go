package tui

import (
	"fmt"
	"slices"
	"strings"

	"github.com/gdamore/tcell/v2"
)

// onKey handles the keys before any view does.
func (u *ui) onKey(ev *tcell.EventKey) *tcell.EventKey {
	if ev.Key() == tcell.KeyCtrlC {
		u.quit()
		return nil
	}
	if u.filtering {
		return ev // the input field's done func handles Enter and Esc
	}
	r := rune(0)
	if ev.Key() == tcell.KeyRune {
		r = ev.Rune()
	}
	if u.helpOpen {
		switch {
		case r == 'q':
			u.quit()
		case r == '?', ev.Key() == tcell.KeyEscape, ev.Key() == tcell.KeyEnter:
			u.closeHelp()
		}
		return nil
	}
	switch r {
	case 'q':
		u.quit()
		return nil
	case '?':
		u.openHelp()
		return nil
	case 'p':
		u.paused = !u.paused
		if !u.paused && u.latest != nil {
			u.shown = u.latest
		}
		u.render()
		return nil
	case '+', '=':
		u.setPace(faster)
		return nil
	case '-', '_':
		u.setPace(slower)
		return nil
	}
	if u.detailKind != detailNone {
		switch ev.Key() {
		case tcell.KeyEscape, tcell.KeyBackspace, tcell.KeyBackspace2:
			u.closeDetail()
			return nil
		}
		return ev // scrolling
	}
	switch r {
	case '/':
		u.openFilter()
		return nil
	case 's', 'S':
		u.cycleSort(r == 'S')
		return nil
	}
	if u.focus == paneConns {
		step := 0
		switch {
		case ev.Key() == tcell.KeyLeft || r == 'h':
			step = -1
		case ev.Key() == tcell.KeyRight || r == 'l':
			step = 1
		}
		if step != 0 {
			u.connColOff += step
			u.renderConns()
			u.renderTitles()
			return nil
		}
	}
	switch ev.Key() {
	case tcell.KeyTab:
		u.setFocus((u.focus + 1) % numPanes)
		return nil
	case tcell.KeyBacktab:
		u.setFocus((u.focus + numPanes - 1) % numPanes)
		return nil
	case tcell.KeyEnter:
		u.openDetail()
		return nil
	case tcell.KeyEscape:
		if u.filter != "" {
			u.filter = ""
			u.filterIn.SetText("")
			u.render()
		}
		return nil
	}
	return ev
}

func (u *ui) setPace(step func(float64) float64) {
	rp := u.cfg.Replay
	if rp == nil || rp.Speed == nil || rp.SetSpeed == nil {
		return
	}
	rp.SetSpeed(step(rp.Speed()))
	u.renderHeader()
}

// cycleSort moves the focused table's sort to the next column, or reverses
// it.
func (u *ui) cycleSort(reverse bool) {
	switch u.focus {
	case paneConns:
		if reverse {
			u.connSort.desc = !u.connSort.desc
		} else {
			// Skip the columns not shown (a folded server column, syscall
			// columns without counts); the client column always is.
			cols, _ := u.connColumnsShown(u.connRows)
			for u.connSort = nextSort(connColumns, u.connSort); !slices.Contains(cols, u.connSort.col); {
				u.connSort = nextSort(connColumns, u.connSort)
			}
			u.revealSort = true
		}
		u.renderConns()
	case paneStmts:
		if reverse {
			u.stmtSort.desc = !u.stmtSort.desc
		} else {
			u.stmtSort = nextSort(stmtColumns, u.stmtSort)
		}
		u.renderStmts()
	default:
		return
	}
	u.renderTitles()
}

func (u *ui) setFocus(p int) {
	u.focus = p
	switch p {
	case paneConns:
		u.app.SetFocus(u.conns)
	case paneStmts:
		u.app.SetFocus(u.stmts)
	case paneDiags:
		u.app.SetFocus(u.diags)
	}
	u.renderTitles()
}

func (u *ui) openFilter() {
	u.filtering = true
	u.filterIn.SetText(u.filter)
	u.main.RemoveItem(u.footer).AddItem(u.filterIn, 1, 0, true)
	u.app.SetFocus(u.filterIn)
}

func (u *ui) closeFilter(text string) {
	u.filtering = false
	u.filter = strings.ToLower(strings.TrimSpace(text))
	u.filterIn.SetText(u.filter)
	u.main.RemoveItem(u.filterIn).AddItem(u.footer, 1, 0, false)
	u.setFocus(u.focus)
	u.render()
}

func (u *ui) openDetail() {
	switch u.focus {
	case paneConns:
		row, _ := u.conns.GetSelection()
		if row < 1 || row > len(u.connRows) {
			return
		}
		u.detailKind, u.detailConn = detailConn, u.connRows[row-1].ID
	case paneStmts:
		row, _ := u.stmts.GetSelection()
		if row < 1 || row > len(u.stmtRows) {
			return
		}
		u.detailKind, u.detailStmt = detailStmt, keyOf(u.stmtRows[row-1])
	default:
		return
	}
	u.detail.ScrollTo(0, 0)
	u.renderDetail()
	u.pages.HidePage("main").ShowPage("detail")
	u.app.SetFocus(u.detail)
}

func (u *ui) closeDetail() {
	u.detailKind = detailNone
	u.pages.HidePage("detail").ShowPage("main")
	u.setFocus(u.focus)
}

func (u *ui) openHelp() {
	u.helpOpen = true
	u.pages.ShowPage("help")
	u.app.SetFocus(u.help)
}

func (u *ui) closeHelp() {
	u.helpOpen = false
	u.pages.HidePage("help")
	if u.detailKind != detailNone {
		u.app.SetFocus(u.detail)
	} else {
		u.setFocus(u.focus)
	}
}

func (u *ui) helpText() string {
	keys := [][2]string{
		{"q  Ctrl-C", "quit"},
		{"?", "this help (Esc closes it)"},
		{"Tab  Shift-Tab", "next / previous pane"},
		{"↑ ↓  j k", "move in the focused pane"},
		{"PgUp PgDn  g G", "page up / down, first / last row"},
		{"← →  h l", "more connection columns"},
		{"Enter", "detail of the selected row"},
		{"Esc", "back from the detail; clear the filter"},
		{"s", "sort the focused table by the next column"},
		{"S", "reverse the sort"},
		{"/", "filter by client, server, driver or"},
		{"", "statement text; Enter applies, Esc clears"},
		{"p", "pause the screen (capture goes on)"},
	}
	if u.cfg.Replay != nil {
		keys = append(keys,
			[2]string{"+  =", "replay twice as fast (past 64x: max)"},
			[2]string{"-  _", "replay half as fast (down to 1/16x);"},
			[2]string{"", "from max: real time (1x)"})
	}
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, " [yellow::b]%-15s[-::B] %s\n", escape(k[0]), escape(k[1]))
	}
	b.WriteString("\n [::d]latency: request to response at the capture point\n" +
		" f/seg: CQL frames per TCP segment (≈ per send call)\n" +
		" f/send: CQL frames per send call (the kernel's count)[::D]")
	return b.String()
}
