package analyze

import (
	"fmt"
	"sort"
	"strings"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
)

// A report is built in two steps, so that several analysis workers can
// make one: each worker's analyzer builds its part (its connections' reports
// and its counters, on its own goroutine, between two packets), and a
// merger joins the parts with what the packet source counted and what the
// host told (the kernel's socket counts, the processes' CPU).

// part is one analyzer's share of a report.
type part struct {
	conns         []*ConnReport
	unanswered    uint64 // of the open connections
	totals        totals
	closedDropped uint64
	ignored       uint64
	stmts         []stmtPart
	stream        decode.StreamStats
	seg           segTotals
	asm           capture.AssemblerStats
	// A fanout worker's member: its counters and clock.
	src capture.SourceStats
	clk clock
}

// segTotals are the frames and TCP segments of each direction, summed over
// connections.
type segTotals struct {
	clientFrames, clientSegments, serverFrames, serverSegments uint64
}

func (t *segTotals) add(r *ConnReport) {
	t.clientFrames += r.ClientSegments.Frames
	t.clientSegments += r.ClientSegments.Segments
	t.serverFrames += r.ServerSegments.Frames
	t.serverSegments += r.ServerSegments.Segments
}

type stmtPart struct {
	text          string
	op            decode.Opcode
	lwt           bool
	count, errors uint64
	total, max    int64
	hist          *hdrhistogram.Histogram
	bars          latBars
	// more are the histograms of the same statement in other parts,
	// merged into hist only when its summary is not already known.
	more []*hdrhistogram.Histogram
}

// merged returns the statement's histogram over all parts.
func (s *stmtPart) merged() *hdrhistogram.Histogram {
	if len(s.more) == 0 {
		return s.hist
	}
	h := s.hist.Clone()
	for _, o := range s.more {
		h.Merge(o)
	}
	return h
}

// part builds the analyzer's share of a report. With copyHists the
// statements' histograms are copies the part owns, for a merge that runs
// while the analyzer goes on; without, they are the analyzer's own and the
// part must be merged before the analyzer sees another packet.
func (a *Analyzer) part(asm capture.AssemblerStats, copyHists bool) *part {
	b := a.newPartBuilder(asm, copyHists)
	b.step(0)
	return b.pt
}

// partBuilder builds a part a slice at a time (step), so that a snapshot
// of tens of thousands of connections never stops a worker for long: the
// counters and the closed connections are taken when it starts, each open
// connection's report when its slice comes, or when it closes before that
// (closing): every connection is in every part, once.
type partBuilder struct {
	a     *Analyzer
	id    uint64
	pt    *part
	copy  bool
	conns []*conn
	next  int // of conns
	stmt  int // of a.stmtList
}

func (a *Analyzer) newPartBuilder(asm capture.AssemblerStats, copyHists bool) *partBuilder {
	a.retryKeys()
	a.buildSeq++
	b := &partBuilder{a: a, id: a.buildSeq, copy: copyHists, conns: make([]*conn, 0, len(a.live))}
	a.build = b
	b.pt = &part{
		conns:         make([]*ConnReport, 0, len(a.closed)+len(a.live)),
		totals:        a.totals,
		closedDropped: a.closedDropped,
		ignored:       a.ignored,
		stream:        a.closedStream,
		seg:           a.closedSeg,
		asm:           asm,
		stmts:         make([]stmtPart, 0, len(a.stmtList)),
	}
	b.pt.conns = append(b.pt.conns, a.closed...)
	for c := range a.live {
		b.conns = append(b.conns, c)
	}
	return b
}

// step adds up to n connections and statements to the part (n <= 0: all
// of them) and reports whether it is complete.
func (b *partBuilder) step(n int) bool {
	a, p := b.a, b.pt
	if n <= 0 {
		n = len(b.conns) + len(a.stmtList)
	}
	for ; n > 0 && b.next < len(b.conns); n-- {
		c := b.conns[b.next]
		b.next++
		if c.closed {
			continue // (its report came with closing)
		}
		c.partID = b.id
		if !c.isCQL() && !c.tls {
			continue // not listed
		}
		// A connection that saw nothing since the last report has the
		// same one: most of a busy host's thousands, between two
		// refreshes of the UI.
		cr := c.rep
		if cr == nil || c.repGen != c.gen {
			cr = c.report()
			c.rep, c.repGen = cr, c.gen
		}
		b.add(c, cr)
	}
	for ; n > 0 && b.stmt < len(a.stmtList); n-- {
		s := a.stmtList[b.stmt]
		b.stmt++
		if s.count == 0 {
			continue
		}
		h := s.hist
		if b.copy {
			// The copy of the last part serves again if the statement
			// did not run since: the parts never modify it.
			if s.snap == nil || s.snapCount != s.count {
				s.snap, s.snapCount = s.hist.Clone(), s.count
			}
			h = s.snap
		}
		p.stmts = append(p.stmts, stmtPart{text: s.text, op: s.op, lwt: s.lwt, count: s.count, errors: s.errors,
			total: s.total, max: s.max, hist: h, bars: s.bars})
	}
	done := b.next == len(b.conns) && b.stmt == len(a.stmtList)
	if done && a.build == b {
		a.build = nil
	}
	return done
}

// closing adds the final report of a connection that closes while the
// part is under way, before its slice came (or that opened since the part
// began): the part's counters were taken before it closed.
func (b *partBuilder) closing(c *conn, cr *ConnReport) {
	c.partID = b.id
	b.add(c, cr)
}

// add puts a listed connection's report and its stream counters into the
// part.
func (b *partBuilder) add(c *conn, cr *ConnReport) {
	p := b.pt
	p.conns = append(p.conns, cr)
	p.unanswered += cr.Unanswered
	p.seg.add(cr)
	if c.isCQL() {
		addStreamStats(&p.stream, c.streams[0].Stats())
		addStreamStats(&p.stream, c.streams[1].Stats())
	}
}

// merger joins parts into reports. It keeps what reports add from outside
// the wire: the kernel's counts and the processes' CPU (whose windows run
// from one report to the next).
type merger struct {
	cfg   Config
	reg   *registry
	sys   map[SocketKey]SocketCounts // the kernel's counts, when measured
	procs map[uint32]*procState      // the processes at the ends, when measured
	// stmtCache is each statement's latency summary in the last report.
	stmtCache map[stmtKey]stmtSummary
}

type stmtKey struct {
	op   decode.Opcode
	text string
}

type stmtSummary struct {
	count      uint64
	total, max int64
	lat        Latency
}

// withNode returns r with what its ScyllaDB node said on another
// connection, when its own SUPPORTED was not captured. It is joined here,
// when the report is made, rather than when the connection's report was
// (at its close, say): by then any connection, on any worker, may have
// told it.
func (m *merger) withNode(r *ConnReport) *ConnReport {
	if !r.nodeLookup {
		return r
	}
	info, ok := m.reg.nodeInfo(r.serverEP.IP)
	if !ok {
		return r
	}
	cp := *r
	cp.Scylla = scyllaConn(info, true, r.tabletHints, r.clientEP, r.serverEP)
	return &cp
}

// merge builds the report of the parts.
func (m *merger) merge(parts []*part, src CaptureInfo) *Report {
	r := &Report{
		Source:  src.Name,
		Packets: src.Packets,
		Bytes:   src.Bytes,
		Dropped: src.Dropped,
		Start:   rfc3339(src.First),
		End:     rfc3339(src.Last),
	}
	if src.Elapsed > 0 {
		r.DurationS = float64(src.Elapsed) / 1e9
	}
	if src.ClockJumps > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("packet times jumped back %d times (captures with different clocks spliced together?): the duration counts only the spans where time ran forward", src.ClockJumps))
	}
	n := 0
	for _, p := range parts {
		n += len(p.conns)
	}
	conns := make([]*ConnReport, 0, n)
	var t totals
	var unanswered, dropped, ignored uint64
	var ss decode.StreamStats
	var seg segTotals
	var asm capture.AssemblerStats
	for _, p := range parts {
		for _, cr := range p.conns {
			conns = append(conns, m.withSyscalls(m.withNode(cr)))
		}
		unanswered += p.unanswered
		dropped += p.closedDropped
		ignored += p.ignored
		t.add(&p.totals)
		addStreamTotals(&ss, &p.stream)
		seg.clientFrames += p.seg.clientFrames
		seg.clientSegments += p.seg.clientSegments
		seg.serverFrames += p.seg.serverFrames
		seg.serverSegments += p.seg.serverSegments
		addAssemblerStats(&asm, &p.asm)
	}
	sort.Slice(conns, func(i, j int) bool { return conns[i].ID < conns[j].ID })
	m.withProcesses(conns)
	r.Connections = conns
	r.Diagnoses = []Diagnosis{}
	stopped := 0
	for _, c := range conns {
		if c.TLS != nil && c.TLS.Decrypted && c.TLS.Status != "decrypting" {
			stopped++
		}
	}
	if stopped > 0 {
		r.Warnings = append(r.Warnings, fmt.Sprintf("%d TLS connections stopped being decrypted partway (see their tls.status: bytes lost in the capture, a record that failed authentication): their later requests and answers are missing from the figures", stopped))
	}
	for _, c := range conns {
		r.Diagnoses = append(r.Diagnoses, c.diagnoses...)
		if c.Encrypted {
			r.Totals.Encrypted++
			if c.TLS != nil && c.TLS.Decrypted {
				r.Totals.Decrypted++
			}
		}
	}
	r.Totals = Totals{
		Connections:     len(conns) + int(dropped),
		NotListed:       dropped,
		Requests:        t.requests,
		Responses:       t.responses,
		Unanswered:      t.unanswered + unanswered,
		Errors:          t.errors,
		Events:          t.events,
		OrphanResponses: t.orphans,
		StreamReuse:     t.reused,
		Frames:          t.frames,
		Encrypted:       r.Totals.Encrypted,
		Decrypted:       r.Totals.Decrypted,
		NotCQL:          ignored,
		ClientFrames:    seg.clientFrames,
		ClientSegments:  seg.clientSegments,
		ServerFrames:    seg.serverFrames,
		ServerSegments:  seg.serverSegments,
	}
	for _, c := range conns {
		if k := c.ClientSyscalls; k != nil {
			r.Totals.ClientSendCalls += k.Sends
			r.Totals.ClientSendFrames += c.ClientSegments.Frames
		}
		if k := c.ServerSyscalls; k != nil {
			r.Totals.ServerSendCalls += k.Sends
			r.Totals.ServerSendFrames += c.ServerSegments.Frames
		}
	}
	stmts := m.statements(parts)
	r.Statements = make([]StmtReport, 0, len(stmts))
	seen := make(map[stmtKey]stmtSummary, len(stmts))
	for _, s := range stmts {
		// A statement that ran no more since the last report has the
		// same figures: most of the thousands a busy host has, between two
		// refreshes of the UI.
		k := stmtKey{s.op, s.text}
		sum, ok := m.stmtCache[k]
		if !ok || sum.count != s.count || sum.total != s.total || sum.max != s.max {
			sum = stmtSummary{count: s.count, total: s.total, max: s.max, lat: summarize(s.merged(), &s.bars, s.max, s.total)}
		}
		seen[k] = sum
		r.Statements = append(r.Statements, StmtReport{
			Statement: s.text, Opcode: s.op.String(), LWT: s.lwt, Count: s.count, Errors: s.errors,
			TotalMS: round2(float64(s.total) / 1e6), Latency: sum.lat,
		})
	}
	m.stmtCache = seen
	r.Opcodes, r.Latency = opcodes(stmts)
	r.Capture = CaptureCounters{
		TCPPackets: src.TCP, NotTCP: src.NotTCP, Fragments: src.Fragments, Malformed: src.Malformed,
		UnsupportedLink: src.Unsupported, Retransmits: asm.Retransmits, OutOfOrder: asm.OutOfOrder,
		Gaps: asm.Gaps, GapBytes: asm.GapBytes, SkippedBytes: ss.SkippedBytes, Resyncs: ss.Syncs,
		Desyncs: ss.Desyncs, Oversized: ss.Oversized, DecompressErr: ss.DecompressErr, Truncated: src.Truncated,
		LostFrames: ss.LostFrames, V5Segments: ss.V5Segments, V5SegmentErrors: ss.V5SegmentErrors,
	}
	return r
}

// statements joins the parts' statements by name, after naming the
// EXECUTEs (and BATCH children) whose ids were learned only after they
// ran, and orders them by the time spent in them. Histograms of statements
// are the parts' (see stmtPart.merged).
func (m *merger) statements(parts []*part) []stmtPart {
	idx := make(map[stmtKey]int)
	var out []stmtPart
	for _, p := range parts {
		for _, s := range p.stmts {
			if name, lwt, ok := m.reg.resolve(s.op, s.text); ok {
				s.text, s.lwt = name, s.lwt || lwt
			}
			k := stmtKey{s.op, s.text}
			i, ok := idx[k]
			if !ok {
				idx[k] = len(out)
				out = append(out, s)
				continue
			}
			o := &out[i]
			o.more = append(o.more, s.hist)
			o.bars.merge(&s.bars)
			o.lwt = o.lwt || s.lwt
			o.count += s.count
			o.errors += s.errors
			o.total += s.total
			o.max = max(o.max, s.max)
		}
	}
	sortStatements(out)
	return m.capStatements(out)
}

func sortStatements(out []stmtPart) {
	sort.Slice(out, func(i, j int) bool {
		a, b := &out[i], &out[j]
		if ta, tb := round2(float64(a.total)/1e6), round2(float64(b.total)/1e6); ta != tb {
			return ta > tb
		}
		if a.count != b.count {
			return a.count > b.count
		}
		if a.op != b.op {
			return a.op < b.op
		}
		return a.text < b.text
	})
}

// capStatements keeps MaxStatements named statements, the ones with the
// most time, and folds the rest into their opcode's "other" (each worker
// keeps MaxStatements of its own, so together they may name more).
func (m *merger) capStatements(out []stmtPart) []stmtPart {
	named := 0
	for i := range out {
		if !isOther(out[i].text) {
			named++
		}
	}
	if named <= m.cfg.MaxStatements {
		return out
	}
	kept := out[:0:0]
	others := map[decode.Opcode]int{}
	fold := func(s *stmtPart) {
		i, ok := others[s.op]
		if !ok {
			others[s.op] = len(kept)
			o := *s
			o.text, o.lwt = otherName(s.op), false
			o.more = append([]*hdrhistogram.Histogram(nil), s.more...)
			kept = append(kept, o)
			return
		}
		o := &kept[i]
		o.more = append(append(o.more, s.hist), s.more...)
		o.bars.merge(&s.bars)
		o.lwt = false
		o.count += s.count
		o.errors += s.errors
		o.total += s.total
		o.max = max(o.max, s.max)
	}
	n := 0
	for i := range out {
		s := &out[i]
		switch {
		case isOther(s.text):
			fold(s)
		case n < m.cfg.MaxStatements:
			n++
			kept = append(kept, *s)
		default:
			fold(s)
		}
	}
	sortStatements(kept)
	return kept
}

func otherName(op decode.Opcode) string { return "(other " + op.String() + " statements)" }

func isOther(text string) bool {
	return strings.HasPrefix(text, "(other ") && strings.HasSuffix(text, " statements)")
}

// opcodes gives the per-opcode figures and the whole capture's latency.
// Every answered request is counted in exactly one statement, so they are
// the merge of the statements' (one histogram update per response instead
// of two on the hot path).
func opcodes(stmts []stmtPart) ([]OpReport, Latency) {
	var ops [256]*OpReport
	var opHist [256]*hdrhistogram.Histogram
	var opMax, opSum [256]int64
	var opBars [256]latBars
	for i := range stmts {
		s := &stmts[i]
		if ops[s.op] == nil {
			ops[s.op] = &OpReport{Opcode: s.op.String()}
			opHist[s.op] = hdrhistogram.New(1, 100_000_000, 2)
		}
		ops[s.op].Count += s.count
		ops[s.op].Errors += s.errors
		opHist[s.op].Merge(s.hist)
		for _, h := range s.more {
			opHist[s.op].Merge(h)
		}
		opMax[s.op] = max(opMax[s.op], s.max)
		opSum[s.op] += s.total
		opBars[s.op].merge(&s.bars)
	}
	out := []OpReport{}
	all := hdrhistogram.New(1, 100_000_000, 2)
	var allMax, allSum int64
	var allBars latBars
	for op, o := range ops {
		if o != nil {
			o.Latency = summarize(opHist[op], &opBars[op], opMax[op], opSum[op])
			out = append(out, *o)
			all.Merge(opHist[op])
			allMax, allSum = max(allMax, opMax[op]), allSum+opSum[op]
			allBars.merge(&opBars[op])
		}
	}
	return out, summarize(all, &allBars, allMax, allSum)
}

func (t *totals) add(o *totals) {
	t.requests += o.requests
	t.responses += o.responses
	t.unanswered += o.unanswered
	t.errors += o.errors
	t.events += o.events
	t.orphans += o.orphans
	t.reused += o.reused
	t.frames += o.frames
}

// addStreamTotals adds counters already summed by addStreamStats.
func addStreamTotals(dst, s *decode.StreamStats) {
	dst.Frames += s.Frames
	dst.FrameBytes += s.FrameBytes
	dst.SkippedBytes += s.SkippedBytes
	dst.Syncs += s.Syncs
	dst.Desyncs += s.Desyncs
	dst.Gaps += s.Gaps
	dst.Oversized += s.Oversized
	dst.DecompressErr += s.DecompressErr
	dst.LostFrames += s.LostFrames
	dst.V5Segments += s.V5Segments
	dst.V5SegmentErrors += s.V5SegmentErrors
}

func addAssemblerStats(dst, s *capture.AssemblerStats) {
	dst.Flows += s.Flows
	dst.Ignored += s.Ignored
	dst.Evicted += s.Evicted
	dst.IdleClosed += s.IdleClosed
	dst.DataSegments += s.DataSegments
	dst.Retransmits += s.Retransmits
	dst.Overlaps += s.Overlaps
	dst.OutOfOrder += s.OutOfOrder
	dst.Gaps += s.Gaps
	dst.GapBytes += s.GapBytes
	dst.BufferOverflow += s.BufferOverflow
}
