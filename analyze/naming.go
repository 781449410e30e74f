package analyze

import (
	"bytes"
	"encoding/hex"
	"strconv"

	"github.com/cqlsniff/cqlsniff/decode"
)

// Statement names: QUERY and PREPARE by their fingerprint, EXECUTE by the
// prepared text its id resolves to, BATCH by its children.

type idCache struct {
	n  uint8
	id [32]byte
	st *stmt
}

var errNoBody = decode.ErrTruncated

// textStatement names a QUERY or PREPARE by its fingerprint, which it
// leaves in a.fp.
func (a *Analyzer) textStatement(op decode.Opcode, q []byte, err error, cut bool) *stmt {
	if err != nil {
		return a.statement(op, []byte("(undecodable)"))
	}
	if cut {
		// The fingerprint of a cut text ends wherever the cut fell: keep
		// a stable prefix so that the executions of one statement group.
		q = q[:min(len(q), 1024)]
	}
	a.fp, a.fpHid = fingerprint(a.fp[:0], q)
	if cut {
		a.fp = append(a.fp, " … (over 64 KiB)"...)
	}
	return a.statement(op, a.fp)
}

// queryStatement names a QUERY. An application sends a few statement texts
// over and over, with bind markers instead of literals: a connection keeps
// the statements of its last two texts, and a text equal to the one a
// statement was first named from is that statement, without a fingerprint
// or a lookup. (Texts with literals or comments are not kept: they go the
// long way each time; the comparison that fails costs a few nanoseconds.)
func (c *conn) queryStatement(q []byte) *stmt {
	for _, st := range c.queries {
		if st != nil && st.raw != nil && string(st.raw) == string(q) {
			return st
		}
	}
	st := c.a.textStatement(decode.OpQuery, q, nil, false)
	if st.raw == nil && !c.a.fpHid && len(q) <= maxRawText {
		// The same text always names the same statement (its own, or
		// "other" once the cap is reached), so any text that named it
		// may stand for it. Only a text whose fingerprint left nothing
		// out is kept: literals and comments (which may hold passwords)
		// are not held in memory past their request, and a text with
		// literals seldom comes again anyway.
		st.raw = bytes.Clone(q)
	}
	c.queries[c.queryNext%uint8(len(c.queries))] = st
	c.queryNext++
	return st
}

// maxRawText is the longest QUERY text kept to name its statement without
// a fingerprint: MaxStatements of them per worker at most.
const maxRawText = 256

// executeStatement names an EXECUTE. A connection usually executes a
// handful of prepared statements over and over: a small per-connection cache
// of recent ids saves hashing the id into the analyzer's map each time.
func (c *conn) executeStatement(id []byte, err error) *stmt {
	if err == nil && len(id) <= len(c.ids[0].id) {
		for i := range c.ids {
			e := &c.ids[i]
			if e.st != nil && int(e.n) == len(id) && string(e.id[:e.n]) == string(id) {
				return e.st
			}
		}
	}
	st := c.a.executeStatement(id, err)
	if err == nil && len(id) <= len(c.ids[0].id) && c.a.prepared[string(id)] == st {
		// Only ids already resolved to their text are cached: an unknown
		// id may be prepared later in the capture.
		e := &c.ids[c.idNext%uint8(len(c.ids))]
		c.idNext++
		e.n = uint8(copy(e.id[:], id))
		e.st = st
	}
	return st
}

func (a *Analyzer) executeStatement(id []byte, err error) *stmt {
	if err != nil {
		return a.statement(decode.OpExecute, []byte("(undecodable)"))
	}
	if s := a.preparedStmt(id); s != nil {
		return s
	}
	a.fp = append(a.fp[:0], unknownPrefix...)
	a.fp = hex.AppendEncode(a.fp, id)
	return a.statement(decode.OpExecute, a.fp)
}

// batchStatement names a BATCH by its children. announced >= 0 is the
// count its header gives when only a prefix of the body was kept: the name
// then uses the first child and that count, which do not depend on where
// the prefix ended.
func (a *Analyzer) batchStatement(r *decode.Request, err error, announced int) *stmt {
	if announced >= 0 && len(r.Children) > 0 {
		r.Children = r.Children[:1]
		err = nil
	}
	if err != nil {
		return a.statement(decode.OpBatch, []byte("(undecodable)"))
	}
	a.fp = append(a.fp[:0], "BATCH "...)
	switch r.BatchType {
	case 0:
		a.fp = append(a.fp, "LOGGED"...)
	case 1:
		a.fp = append(a.fp, "UNLOGGED"...)
	case 2:
		a.fp = append(a.fp, "COUNTER"...)
	}
	a.fp = append(a.fp, ": "...)
	// Consecutive children of the same shape are written once with a count:
	// "INSERT INTO t (k, v) VALUES (?, ?) ×5".
	prev, run := -1, 0
	flush := func() {
		if run > 1 {
			a.fp = append(a.fp, " ×"...)
			a.fp = strconv.AppendInt(a.fp, int64(run), 10)
		}
	}
	for i := range r.Children {
		if len(a.fp) > 512 {
			a.fp = append(a.fp, " ..."...)
			run = 0
			break
		}
		a.fp2 = a.fp2[:0]
		ch := &r.Children[i]
		if ch.Kind == 0 {
			a.fp2 = Fingerprint(a.fp2, ch.Query)
		} else {
			// By id, whether its text is known yet or not: the report
			// names it (registry.resolve), so that the name, its length
			// cut and its ×N runs do not depend on when, or on which
			// worker, the id was learned.
			a.fp2 = append(a.fp2, unknownPrefix...)
			a.fp2 = hex.AppendEncode(a.fp2, ch.PreparedID)
		}
		if prev >= 0 && string(a.fp[prev:]) == string(a.fp2) {
			run++
			continue
		}
		flush()
		if i > 0 {
			a.fp = append(a.fp, "; "...)
		}
		prev = len(a.fp)
		a.fp = append(a.fp, a.fp2...)
		run = 1
	}
	flush()
	if announced >= 0 {
		a.fp = append(a.fp, " … ("...)
		a.fp = strconv.AppendInt(a.fp, int64(announced), 10)
		a.fp = append(a.fp, " statements, over 64 KiB)"...)
	}
	return a.statement(decode.OpBatch, a.fp)
}
