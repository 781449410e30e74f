package tui

import (
	"fmt"
	"strconv"
	"sync"

	"github.com/gdamore/tcell/v2"
	"github.com/rivo/tview"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// Panes that Tab moves between.
const (
	paneConns = iota
	paneStmts
	paneDiags
	numPanes
)

// Layout thresholds, in terminal cells.
const (
	wideLayout     = 160 // statements and diagnoses side by side from this width
	serverColumn   = 120 // narrower than this, a server shared by every connection moves to the pane title
	maxSourceName  = 40
	maxDriverWidth = 32
)

// Rows built per refresh in each table, after sorting; the filter reaches
// the others.
const (
	maxConnRows = 1000
	maxStmtRows = 1000
)

// ui is the application: its views and the state they show. Everything but
// quitCh, quitOnce and applied is touched only on tview's event loop.
type ui struct {
	cfg Config
	app *tview.Application

	pages       *tview.Pages
	main, lower *tview.Flex
	filterIn    *tview.InputField

	// The panes, each with its views and what it keeps between refreshes.
	headerPane
	connsPane
	stmtsPane
	diagsPane
	detailPage
	helpPane

	shown         *analyze.Report // the report on screen (frozen while paused)
	latest        *analyze.Report // the newest report received
	ended         bool
	paused        bool
	filter        string // lower case
	filtering     bool
	focus         int
	width, height int
	wide          bool

	quitCh   chan struct{}
	quitOnce sync.Once
	applied  chan struct{} // tests: a refresh was drawn
}

func newUI(cfg Config) *ui {
	u := &ui{
		cfg:        cfg,
		app:        tview.NewApplication(),
		headerPane: headerPane{headerLines: 1},
		connsPane:  connsPane{connSort: defaultConnSort},
		stmtsPane:  stmtsPane{stmtSort: defaultStmtSort},
		diagsPane:  diagsPane{diagSeen: map[string]int{}},
		quitCh:     make(chan struct{}),
	}
	if cfg.Screen != nil {
		u.app.SetScreen(cfg.Screen)
	}

	u.header = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.footer = tview.NewTextView().SetDynamicColors(true).SetWrap(false)
	u.connTitle = newTitle()
	u.stmtTitle = newTitle()
	u.diagTitle = newTitle()

	u.conns = newTable()
	u.conns.SetSelectionChangedFunc(func(row, _ int) {
		if row >= 1 && row <= len(u.connRows) {
			u.connSel = u.connRows[row-1].ID
		}
	})
	u.stmts = newTable()
	u.stmts.SetSelectionChangedFunc(func(row, _ int) {
		if row >= 1 && row <= len(u.stmtRows) {
			u.stmtSel = keyOf(u.stmtRows[row-1])
		}
	})
	u.diags = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetWordWrap(true)

	u.filterIn = tview.NewInputField().SetLabel("filter (client, server, driver, statement): ")
	u.filterIn.SetDoneFunc(func(key tcell.Key) {
		switch key {
		case tcell.KeyEnter:
			u.closeFilter(u.filterIn.GetText())
		case tcell.KeyEscape:
			u.closeFilter("")
		}
	})

	u.stmtPane = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.stmtTitle, 1, 0, false).AddItem(u.stmts, 0, 1, true)
	u.diagPane = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.diagTitle, 1, 0, false).AddItem(u.diags, 0, 1, true)
	u.lower = tview.NewFlex()
	u.main = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.header, 1, 0, false).
		AddItem(u.connTitle, 1, 0, false).
		AddItem(u.conns, 0, 4, true).
		AddItem(u.lower, 0, 6, false).
		AddItem(u.footer, 1, 0, false)
	u.layout(false)

	u.detailTitle = newTitle()
	u.detail = tview.NewTextView().SetDynamicColors(true).SetWrap(true).SetWordWrap(true)
	detailPage := tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(u.detailTitle, 1, 0, false).
		AddItem(u.detail, 0, 1, true).
		AddItem(tview.NewTextView().SetDynamicColors(true).SetText(keyHints(
			"Esc", "back", "↑/↓ PgUp/PgDn", "scroll", "p", "pause", "?", "help", "q", "quit")), 1, 0, false)

	u.help = tview.NewTextView().SetDynamicColors(true).SetWrap(false).SetText(u.helpText())
	u.help.SetBorder(true).SetTitle(" cqlsniff keys (Esc closes) ")
	u.helpColumn = tview.NewFlex().SetDirection(tview.FlexRow).
		AddItem(nil, 0, 1, false).
		AddItem(u.help, helpHeight(u.helpText()), 0, true).
		AddItem(nil, 0, 1, false)
	u.helpBox = tview.NewFlex().
		AddItem(nil, 0, 1, false).
		AddItem(u.helpColumn, helpWidth, 0, true).
		AddItem(nil, 0, 1, false)

	u.pages = tview.NewPages().
		AddPage("main", u.main, true, true).
		AddPage("detail", detailPage, true, false).
		AddPage("help", u.helpBox, true, false)
	u.app.SetRoot(u.pages, true).SetInputCapture(u.onKey)
	u.app.SetFocus(u.conns)
	u.render()
	return u
}

func newTitle() *tview.TextView {
	return tview.NewTextView().SetDynamicColors(true).SetWrap(false)
}

func newTable() *tview.Table {
	t := tview.NewTable().SetSelectable(true, false).SetFixed(1, 1)
	t.SetSelectedStyle(tcell.StyleDefault.Reverse(true))
	return t
}

// layout puts the statements and diagnoses under each other, or side by
// side on a wide terminal.
func (u *ui) layout(wide bool) {
	u.wide = wide
	u.lower.Clear()
	if wide {
		u.lower.SetDirection(tview.FlexColumn).
			AddItem(u.stmtPane, 0, 3, false).
			AddItem(u.diagPane, 0, 2, false)
		u.main.ResizeItem(u.conns, 0, 1).ResizeItem(u.lower, 0, 1)
	} else {
		u.lower.SetDirection(tview.FlexRow).
			AddItem(u.stmtPane, 0, 1, false).
			AddItem(u.diagPane, 0, 1, false)
		u.main.ResizeItem(u.conns, 0, 4).ResizeItem(u.lower, 0, 6)
	}
}

// resize runs before every draw (on the event loop, with the application
// locked: it must not call Application methods).
func (u *ui) resize(w, h int) {
	if w == u.width && h == u.height {
		return
	}
	u.width, u.height = w, h
	if wide := w >= wideLayout; wide != u.wide {
		u.layout(wide)
	}
	// The help box shrinks to the terminal (and scrolls).
	u.helpBox.ResizeItem(u.helpColumn, min(helpWidth, w), 0)
	u.helpColumn.ResizeItem(u.help, min(helpHeight(u.helpText()), h), 0)
	u.render()
}

// receive takes a report from the refresher (on the event loop).
func (u *ui) receive(rep *analyze.Report, ended bool) {
	u.ended = ended
	if rep == nil || rep == u.latest {
		u.renderHeader()
		return
	}
	if u.latest != nil && rep.DurationS > u.prevDur && rep.Totals.Requests >= u.prevReq {
		u.nowRate = float64(rep.Totals.Requests-u.prevReq) / (rep.DurationS - u.prevDur)
		u.haveNow = true
	}
	u.prevReq, u.prevDur = rep.Totals.Requests, rep.DurationS
	u.latest = rep
	// Remember when each diagnosis first appeared (for newest first); forget
	// those the report no longer has.
	seen := make(map[string]int, len(rep.Diagnoses))
	for i := range rep.Diagnoses {
		k := diagKey(&rep.Diagnoses[i])
		if seen[k] = u.diagSeen[k]; seen[k] == 0 {
			u.diagSeq++
			seen[k] = u.diagSeq
		}
	}
	u.diagSeen = seen
	if u.paused {
		u.renderHeader()
		return
	}
	u.shown = rep
	u.render()
}

// render redraws every view from the state.
func (u *ui) render() {
	u.renderHeader()
	u.renderFooter()
	u.renderConns()
	u.renderStmts()
	u.renderDiags()
	u.renderTitles()
	u.renderDetail()
}

func (u *ui) renderTitles() {
	connN, stmtN, diagN := 0, 0, 0
	if u.shown != nil {
		connN, stmtN, diagN = len(u.shown.Connections), len(u.shown.Statements), len(u.shown.Diagnoses)
	}
	_, shared := u.connColumnsShown(u.connRows)
	to := ""
	if shared != "" {
		to = " to " + escape(shared)
	}
	more := ""
	switch {
	case u.connHiddenLeft > 0 && u.connHiddenRight > 0:
		more = fmt.Sprintf(" · ← %d hidden columns, %d more →", u.connHiddenLeft, u.connHiddenRight)
	case u.connHiddenLeft > 0:
		more = fmt.Sprintf(" · ← %d hidden columns", u.connHiddenLeft)
	case u.connHiddenRight > 0:
		more = fmt.Sprintf(" · %d more columns →", u.connHiddenRight)
	}
	setTitle(u.connTitle, u.focus == paneConns, fmt.Sprintf("Connections %s%s · sort %s%s",
		count(len(u.connRows), connN), to, sortName(connColumns, u.connSort), more))
	setTitle(u.stmtTitle, u.focus == paneStmts, fmt.Sprintf("Statements %s · sort %s",
		count(len(u.stmtRows), stmtN), sortName(stmtColumns, u.stmtSort)))
	setTitle(u.diagTitle, u.focus == paneDiags, fmt.Sprintf("Diagnoses %s · newest first",
		count(len(u.shownDiagnoses()), diagN)))
}

// count says "n", or "n of total" when the filter hides some.
func count(n, total int) string {
	if n == total {
		return strconv.Itoa(n)
	}
	return fmt.Sprintf("%d of %d", n, total)
}

func sortName[T any](cols []column[T], s sortState) string {
	return escape(header(cols, s)[s.col])
}

func setTitle(t *tview.TextView, focused bool, text string) {
	if focused {
		t.SetBackgroundColor(tcell.ColorTeal)
		t.SetTextColor(tcell.ColorBlack)
		text = "[::b]▶ " + text
	} else {
		t.SetBackgroundColor(tcell.ColorDarkSlateGray)
		t.SetTextColor(tcell.ColorWhite)
		text = "  " + text
	}
	t.SetText(text)
}

func fmtRatio(f float64) string {
	if f < 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

func escape(s string) string { return tview.Escape(s) }

func headerCell(name string, left bool) *tview.TableCell {
	c := tview.NewTableCell(escape(name)).SetSelectable(false).
		SetTextColor(tcell.ColorYellow).SetAttributes(tcell.AttrBold)
	if !left {
		c.SetAlign(tview.AlignRight)
	}
	return c
}
