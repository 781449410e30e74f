package tui

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
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

// helpWidth is the help box's width on a terminal wide enough.
const helpWidth = 62

func helpHeight(text string) int { return strings.Count(text, "\n") + 3 }

// Rows built per refresh in each table, after sorting; the filter reaches
// the others.
const (
	maxConnRows = 1000
	maxStmtRows = 1000
)

// Detail targets.
const (
	detailNone = iota
	detailConn
	detailStmt
)

// ui is the application: its views and the state they show. Everything but
// quitCh, quitOnce and applied is touched only on tview's event loop.
type ui struct {
	cfg Config
	app *tview.Application

	pages                           *tview.Pages
	main, lower, stmtPane, diagPane *tview.Flex
	header, footer                  *tview.TextView
	connTitle, stmtTitle, diagTitle *tview.TextView
	conns, stmts                    *tview.Table
	diags                           *tview.TextView
	filterIn                        *tview.InputField
	detailTitle, detail             *tview.TextView
	help                            *tview.TextView
	helpBox, helpColumn             *tview.Flex

	shown   *analyze.Report // the report on screen (frozen while paused)
	latest  *analyze.Report // the newest report received
	ended   bool
	paused  bool
	filter  string // lower case
	nowRate float64
	haveNow bool
	prevReq uint64
	prevDur float64

	connSort, stmtSort sortState
	focus              int
	connRows           []*analyze.ConnReport // as displayed: table row i+1
	stmtRows           []*analyze.StmtReport
	connSel            uint64
	connColOff         int // connection columns scrolled off to the left (after the first)
	connHiddenLeft     int
	connHiddenRight    int
	revealSort         bool // scroll the sort column into view at the next render
	stmtSel            stmtKey
	detailKind         int
	detailConn         uint64
	detailStmt         stmtKey
	helpOpen           bool
	filtering          bool
	width, height      int
	wide               bool
	headerLines        int
	diagSeen           map[string]int // diagnosis → order first seen, for newest first
	diagSeq            int

	quitCh   chan struct{}
	quitOnce sync.Once
	applied  chan struct{} // tests: a refresh was drawn
}

func newUI(cfg Config) *ui {
	u := &ui{
		cfg:         cfg,
		app:         tview.NewApplication(),
		connSort:    defaultConnSort,
		stmtSort:    defaultStmtSort,
		diagSeen:    map[string]int{},
		quitCh:      make(chan struct{}),
		headerLines: 1,
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

func diagKey(d *analyze.Diagnosis) string { return d.Code + "|" + d.Client + "|" + d.Server }

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

func (u *ui) renderHeader() {
	var segs []string
	src := u.cfg.Source
	if src == "" && u.shown != nil {
		src = u.shown.Source
	}
	segs = append(segs, "[::b]cqlsniff[::B] "+escape(shortSource(src, max(maxSourceName, u.width/3))))
	r := u.shown
	if r == nil {
		segs = append(segs, "waiting for the first snapshot…")
	} else {
		o := summarize(r)
		segs = append(segs,
			"elapsed [::b]"+fmtElapsed(r.DurationS)+"[::B]",
			"[::b]"+strconv.FormatUint(r.Packets, 10)+"[::B] pkts")
		drops := strconv.FormatUint(r.Dropped, 10) + " dropped"
		if r.Dropped > 0 {
			drops = "[white:red:b] " + drops + " [-:-:B]"
		}
		segs = append(segs, drops)
		rate := "[::b]" + fmtRate(o.reqRate) + "[::B] req/s"
		if u.haveNow && u.shown == u.latest {
			rate += " (now " + fmtRate(u.nowRate) + ")"
		}
		segs = append(segs, rate)
		if o.latOK {
			segs = append(segs, "p50 [::b]"+fmtUS(o.p50)+"[::B] p99 [::b]"+fmtUS(o.p99)+"[::B]")
		} else {
			segs = append(segs, "p50 - p99 -")
		}
		segs = append(segs, "frames/write client [::b]"+fmtRatio(o.clientFPW)+"[::B] server [::b]"+fmtRatio(o.srvFPW)+"[::B]")
		if o.clientFPS >= 0 || o.srvFPS >= 0 {
			segs = append(segs, "frames/send client [::b]"+fmtRatio(o.clientFPS)+"[::B] server [::b]"+fmtRatio(o.srvFPS)+"[::B]")
		}
	}
	if rp := u.cfg.Replay; rp != nil && rp.Speed != nil {
		segs = append(segs, "replay [::b]"+fmtPace(rp.Speed())+"[::B]")
	}
	if u.paused {
		segs = append(segs, "[black:yellow:b] PAUSED [-:-:B]")
	}
	if u.ended {
		segs = append(segs, "[black:green:b] ENDED [-:-:B]")
	}
	if u.filter != "" {
		segs = append(segs, "[yellow]filter \""+escape(u.filter)+"\"[-]")
	}
	lines := flow(segs, u.width)
	if len(lines) != u.headerLines {
		u.headerLines = len(lines)
		u.main.ResizeItem(u.header, u.headerLines, 0)
	}
	u.header.SetText(strings.Join(lines, "\n"))
}

// flow joins segments with two spaces into lines of at most width cells
// (0 = one line).
func flow(segs []string, width int) []string {
	var lines []string
	var cur string
	curW := 0
	for _, s := range segs {
		w := tview.TaggedStringWidth(s)
		if curW > 0 && width > 0 && curW+2+w > width {
			lines = append(lines, cur)
			cur, curW = "", 0
		}
		if curW > 0 {
			cur += "  "
			curW += 2
		}
		cur += s
		curW += w
	}
	return append(lines, cur)
}

func fmtRatio(f float64) string {
	if f < 0 {
		return "-"
	}
	return strconv.FormatFloat(f, 'f', 2, 64)
}

// shortSource keeps the end of a source name longer than n: the file name
// matters more than its directory.
func shortSource(s string, n int) string {
	if len([]rune(s)) <= n {
		return s
	}
	if b := filepath.Base(s); len([]rune(b)) <= n-2 {
		return "…/" + b
	}
	r := []rune(s)
	return "…" + string(r[len(r)-n+1:])
}

func escape(s string) string { return tview.Escape(s) }

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
		if i == colServer && sharedServer != "" || (i == colClientFPS || i == colServerFPS) && !sys {
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

func headerCell(name string, left bool) *tview.TableCell {
	c := tview.NewTableCell(escape(name)).SetSelectable(false).
		SetTextColor(tcell.ColorYellow).SetAttributes(tcell.AttrBold)
	if !left {
		c.SetAlign(tview.AlignRight)
	}
	return c
}

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
