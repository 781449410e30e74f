package tui

import (
	"path/filepath"
	"strconv"
	"strings"

	"github.com/rivo/tview"
)

// headerPane is the status line at the top (several lines when it does not
// fit the width): the source, the totals, the rates, and whether the screen
// is paused, the capture ended or a filter applies.
type headerPane struct {
	header      *tview.TextView
	headerLines int
	// The rate "now": requests between the last two reports received.
	nowRate float64
	haveNow bool
	prevReq uint64
	prevDur float64
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
		segs = append(segs, "frames/seg client [::b]"+fmtRatio(o.clientFPSeg)+"[::B] server [::b]"+fmtRatio(o.srvFPSeg)+"[::B]")
		if o.clientFPSend >= 0 || o.srvFPSend >= 0 {
			segs = append(segs, "frames/send client [::b]"+fmtRatio(o.clientFPSend)+"[::B] server [::b]"+fmtRatio(o.srvFPSend)+"[::B]")
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
