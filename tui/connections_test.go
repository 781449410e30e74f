package tui

import (
	"strings"
	"testing"

	"github.com/gdamore/tcell/v2"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// TestSortKeys: s moves the sort to the next column, S reverses it.
func TestSortKeys(t *testing.T) {
	h := start(t, 140, 40, handReport(), nil)
	h.waitText("req/s▼")
	h.keys("s")
	lines := h.waitText("infl▼")
	// In flight: 38.4 > 30.1 > 1.0.
	if !(index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.2:40000") && index(lines, "10.0.0.2:40000") < index(lines, "10.0.0.3:33333")) {
		t.Errorf("not sorted by in-flight:\n%s", strings.Join(lines, "\n"))
	}
	h.keys("s")
	lines = h.waitText("cli f/seg▼")
	// Client frames per segment: 9.80 > 1.17 > 1.00.
	if !(index(lines, "10.0.0.2:40000") < index(lines, "10.0.0.1:59482") && index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.3:33333")) {
		t.Errorf("not sorted by client frames per segment:\n%s", strings.Join(lines, "\n"))
	}
	h.keys("S")
	lines = h.waitText("cli f/seg▲")
	if !(index(lines, "10.0.0.3:33333") < index(lines, "10.0.0.1:59482") && index(lines, "10.0.0.1:59482") < index(lines, "10.0.0.2:40000")) {
		t.Errorf("not reversed:\n%s", strings.Join(lines, "\n"))
	}
	if !strings.Contains(line(lines, "Connections"), "sort cli f/seg▲") {
		t.Errorf("title: %q", line(lines, "Connections"))
	}

	// Statements: Tab, then s sorts them by count.
	h.key(tcell.KeyTab)
	h.waitText("▶ Statements")
	h.keys("s")
	lines = h.waitText("count▼")
	if index(lines, "SELECT v FROM kv") > index(lines, "INSERT INTO kv") {
		t.Errorf("statements not sorted by count:\n%s", strings.Join(lines, "\n"))
	}
}

// TestColumnsScroll: on 80 columns the connections table shows whole
// columns only; → brings the others in.
func TestColumnsScroll(t *testing.T) {
	h := start(t, 80, 24, handReport(), nil)
	lines := h.waitText("more columns →")
	if index(lines, "driver") >= 0 {
		t.Errorf("the driver column fits on 80 columns?\n%s", strings.Join(lines, "\n"))
	}
	for _, l := range lines {
		if strings.Contains(l, "…") && strings.Contains(l, "10.0.0.") {
			t.Errorf("a column is cut: %q", l)
		}
	}
	for range 12 {
		h.key(tcell.KeyRight)
	}
	lines = h.waitFor("the last columns", func(_ string, lines []string) bool {
		l := line(lines, "Connections")
		return strings.Contains(l, "hidden columns") && !strings.Contains(l, "more")
	})
	if l := line(lines, "10.0.0.3:33333"); !strings.Contains(l, "nodejs-driver v4.10.0") {
		t.Errorf("scrolled row: %q", l)
	}
	h.key(tcell.KeyLeft)
	for range 12 {
		h.key(tcell.KeyLeft)
	}
	h.waitFor("scrolled back", func(s string, _ []string) bool { return !strings.Contains(s, "hidden columns") })

	// Sorting by a column out of view scrolls to it (the two syscall
	// columns are not shown without counts, so s skips them).
	for range colDriver - colReqs - 2 {
		h.keys("s")
	}
	lines = h.waitText("driver▲")
	if l := line(lines, "Connections"); !strings.Contains(l, "sort driver▲") || !strings.Contains(l, "hidden columns") {
		t.Errorf("title: %q", l)
	}
}

// TestSyscalls: with the kernel's counts (live, --syscalls) the header
// gives frames per send call, the connections table gains the per-end
// columns and the read badges, and the detail lays the counts out; without
// them none of it shows.
func TestSyscalls(t *testing.T) {
	plain := start(t, 220, 40, handReport(), nil)
	screen := strings.Join(plain.waitText("10.0.0.1:59482"), "\n")
	for _, absent := range []string{"f/send", "frames/send"} {
		if strings.Contains(screen, absent) {
			t.Errorf("%q shown without syscall counts:\n%s", absent, screen)
		}
	}

	rep := handReport()
	f := func(v float64) *float64 { return &v }
	unbuf, nagle := rep.Connections[0], rep.Connections[1]
	unbuf.ClientSyscalls = &analyze.SyscallReport{Sends: 5005, Recvs: 300, SendBytes: 600600, RecvBytes: 200200,
		FramesPerSend: f(1), RecvsPerFrame: f(0.06), PID: 4242, Comm: "gocql-client"}
	unbuf.ServerSyscalls = &analyze.SyscallReport{Sends: 455, Recvs: 420, SendBytes: 200200, RecvBytes: 600600,
		FramesPerSend: f(11), RecvsPerFrame: f(0.08), PID: 77, Comm: "java"}
	// The server of the second connection runs on another host: only its client is counted.
	nagle.ClientSyscalls = &analyze.SyscallReport{Sends: 4000, Recvs: 8000, FramesPerSend: f(1), RecvsPerFrame: f(2), PID: 9, Comm: "python3"}
	nagle.DiagnosisCodes = append(nagle.DiagnosisCodes, analyze.CodeClientUnbufferedReads)
	withTotals(rep)

	h := start(t, 220, 40, rep, nil)
	lines := h.waitText("10.0.0.1:59482")
	screen = strings.Join(lines, "\n")
	// (5005+4000) frames in (5005+4000) client sends; 5005 server frames in 455 sends.
	if !strings.Contains(screen, "frames/send client 1.00 server 11.00") {
		t.Errorf("header without frames per send call:\n%s", screen)
	}
	head := line(lines, "cli f/send")
	if head == "" || !strings.Contains(head, "srv f/send") {
		t.Fatalf("no syscall columns:\n%s", screen)
	}
	// Right-aligned numbers end where the column's title does (one rune per cell).
	col := len([]rune(head[:strings.Index(head, "srv f/send")])) + len("srv f/send")
	for client, want := range map[string]string{"10.0.0.1:59482": "11.00", "10.0.0.2:40000": "-", "10.0.0.3:33333": "-"} {
		l := []rune(line(lines, client))
		if len(l) < col || !strings.HasSuffix(string(l[:col]), " "+want) {
			t.Errorf("row %s: srv f/send column is not %q: %q", client, want, string(l))
		}
	}
	if l := line(lines, "10.0.0.2:40000"); !strings.Contains(l, "⚠ SMALL-READS") {
		t.Errorf("no read badge: %q", l)
	}

	// Sorting by the client's frames per send: measured rows first.
	for range colClientFPSend - colReqs {
		h.keys("s")
	}
	lines = h.waitFor("sort on cli f/send", func(_ string, lines []string) bool {
		return strings.Contains(line(lines, "cli f/send"), "cli f/send▼")
	})
	if index(lines, "10.0.0.3:33333") < index(lines, "10.0.0.2:40000") {
		t.Errorf("an unmeasured connection sorts before a measured one:\n%s", strings.Join(lines, "\n"))
	}

	h.keys("g")
	h.key(tcell.KeyEnter)
	lines = h.waitText("System calls")
	for _, want := range [][2]string{
		{"process", "gocql-client[4242]"}, {"process", "java[77]"},
		{"send calls", "5005"}, {"send calls", "455"},
		{"frames per send call", "1.00"}, {"frames per send call", "11.00"},
		{"receive calls per frame received", "0.06"},
		{"bytes sent", "600600"},
	} {
		if l := line(lines, "  "+want[0]); !strings.Contains(l, want[1]) {
			t.Errorf("detail row %q lacks %q: %q", want[0], want[1], l)
		}
	}
}
