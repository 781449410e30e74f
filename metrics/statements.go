package metrics

import (
	"cmp"
	"slices"
	"strconv"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// stmtSeries is what the Collector keeps to turn the statements of reports
// into series: the ones with the most total time under labels of their own,
// the rest under "other".
type stmtSeries struct {
	stmts      map[stmtKey]*stmtState
	labeled    []*stmtState
	stmtLabels map[string]bool // opcode + "\x00" + label in use
	others     map[string]*series
	order      []stmtRef
}

type stmtKey struct{ opcode, text string }

// stmtState follows one statement of the report.
type stmtState struct {
	key         stmtKey
	last        stmtCounters
	series      *series // its own series while labelled
	pinnedOther bool    // the analyzer's own "(other … statements)"
	totalMS     float64 // ranking key of the current build
	build       uint64
}

type stmtCounters struct {
	count, errors uint64
	lat           [nLat]uint64
	totalMS       float64
}

type stmtRef struct {
	st *stmtState
	s  *analyze.StmtReport
}

// series is the counters of one (opcode, statement) label pair.
type series struct {
	opcode, label string
	created       time.Time
	count, errors uint64
	lat           latHist
}

func (c *Collector) updateStatements(r *analyze.Report, now time.Time) {
	order := c.order[:0]
	for i := range r.Statements {
		s := &r.Statements[i]
		k := stmtKey{s.Opcode, s.Statement}
		st := c.stmts[k]
		if st == nil {
			st = &stmtState{key: k, pinnedOther: s.Statement == "(other "+s.Opcode+" statements)"}
			c.stmts[k] = st
		}
		st.build = c.build
		st.totalMS = s.TotalMS
		order = append(order, stmtRef{st, s})
	}
	byTotal := func(a, b stmtRef) int { return cmp.Compare(b.st.totalMS, a.st.totalMS) }
	if !slices.IsSortedFunc(order, byTotal) {
		slices.SortStableFunc(order, byTotal)
	}
	c.rank(order, now)

	var cur stmtCounters
	for _, ref := range order {
		st, s := ref.st, ref.s
		cur.count, cur.errors, cur.totalMS = s.Count, s.Errors, s.TotalMS
		cur.lat = [nLat]uint64{}
		fillBars(&cur.lat, s.Latency.Histogram)
		to := st.series
		if to == nil {
			to = c.other(s.Opcode, now)
		}
		to.advance(&st.last, &cur)
	}
	clear(order)
	c.order = order[:0]

	if len(c.stmts) > len(r.Statements) {
		// Statements that left the report (a new pipeline): forget them.
		for k, st := range c.stmts {
			if st.build != c.build {
				if st.series != nil {
					c.unlabel(st)
				}
				delete(c.stmts, k)
			}
		}
	}
}

// rank gives the statements with the most total time their own label
// values, with hysteresis (swapFactor).
func (c *Collector) rank(order []stmtRef, now time.Time) {
	for _, ref := range order {
		st := ref.st
		if st.series != nil || st.pinnedOther {
			continue
		}
		if len(c.labeled) < c.cfg.MaxStatements {
			c.label(st, now)
			continue
		}
		w := c.labeled[0]
		for _, l := range c.labeled[1:] {
			if l.totalMS < w.totalMS {
				w = l
			}
		}
		if st.totalMS <= swapFactor*w.totalMS {
			break // the rest have less total time still
		}
		c.unlabel(w)
		c.label(st, now)
	}
}

func (c *Collector) label(st *stmtState, now time.Time) {
	l := labelValue(st.key.text, maxStatementLabel)
	if l == otherLabel || c.stmtLabels[st.key.opcode+"\x00"+l] {
		base := l + "#" + shortHash(st.key.text)
		l = base
		for i := 2; c.stmtLabels[st.key.opcode+"\x00"+l]; i++ {
			l = base + "-" + strconv.Itoa(i)
		}
	}
	c.stmtLabels[st.key.opcode+"\x00"+l] = true
	st.series = &series{opcode: st.key.opcode, label: l, created: now}
	c.labeled = append(c.labeled, st)
}

func (c *Collector) unlabel(st *stmtState) {
	delete(c.stmtLabels, st.key.opcode+"\x00"+st.series.label)
	st.series = nil
	i := slices.Index(c.labeled, st)
	c.labeled[i] = c.labeled[len(c.labeled)-1]
	c.labeled[len(c.labeled)-1] = nil
	c.labeled = c.labeled[:len(c.labeled)-1]
}

func (c *Collector) other(opcode string, now time.Time) *series {
	s := c.others[opcode]
	if s == nil {
		s = &series{opcode: opcode, label: otherLabel, created: now}
		c.others[opcode] = s
	}
	return s
}

// advance adds what grew from last to cur to s, and makes last cur.
func (s *series) advance(last, cur *stmtCounters) {
	if cur.count > last.count {
		s.count += cur.count - last.count
	}
	if cur.errors > last.errors {
		s.errors += cur.errors - last.errors
	}
	for i, n := range cur.lat {
		if n > last.lat[i] {
			s.lat.counts[i] += n - last.lat[i]
		}
	}
	if cur.totalMS > last.totalMS {
		s.lat.sumUS += (cur.totalMS - last.totalMS) * 1e3
		last.totalMS = cur.totalMS
	}
	last.count, last.errors, last.lat = cur.count, cur.errors, cur.lat
}
