package analyze

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/cqlsniff/cqlsniff/decode"
)

// exchangeLog writes one JSON object per request/response pair. Lines are
// built by appending into a reused buffer: the log costs no allocation per
// exchange.
type exchangeLog struct {
	w   *bufio.Writer
	buf []byte
	msg []byte // scratch for redacted error messages
	fp  []byte
	err error
}

func newExchangeLog(w io.Writer) *exchangeLog {
	return &exchangeLog{w: bufio.NewWriterSize(w, 256<<10), buf: make([]byte, 0, 1024)}
}

func rfc3339(ns int64) string {
	if ns == 0 {
		return ""
	}
	return time.Unix(0, ns).UTC().Format(time.RFC3339Nano)
}

func (l *exchangeLog) write(c *conn, h *decode.Header, p *pending, f *decode.Frame, r *decode.Response, decoded bool, lat int64) {
	if l.err != nil {
		return
	}
	client, server := c.key.Endpoints(c.cdir)
	b := l.buf[:0]
	b = append(b, `{"ts":"`...)
	b = time.Unix(0, p.ts).UTC().AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","client":"`...)
	b = client.AppendTo(b)
	b = append(b, `","server":"`...)
	b = server.AppendTo(b)
	b = append(b, `","stream":`...)
	b = strconv.AppendInt(b, int64(h.Stream), 10)
	b = append(b, `,"opcode":"`...)
	b = append(b, p.op.String()...)
	b = append(b, `","statement":`...)
	name := p.st.text
	if p.st.op == decode.OpBatch && strings.Contains(name, unknownPrefix) {
		// A BATCH names its prepared children by id (see batchStatement):
		// the log gives the texts known by now.
		name, _, _ = c.a.reg.resolve(decode.OpBatch, name)
	}
	b = appendJSONString(b, name)
	if p.idLen > 0 {
		b = append(b, `,"prepared_id":"`...)
		b = hex.AppendEncode(b, p.id[:p.idLen])
		b = append(b, '"')
	}
	if p.op == decode.OpBatch {
		b = append(b, `,"batch_children":`...)
		b = strconv.AppendInt(b, int64(p.children), 10)
	}
	b = append(b, p.values...)
	if p.hasCons {
		b = append(b, `,"consistency":"`...)
		b = append(b, p.consistency.String()...)
		b = append(b, '"')
	}
	b = append(b, `,"latency_us":`...)
	b = strconv.AppendFloat(b, float64(lat)/1e3, 'f', 3, 64)
	if h.Opcode == decode.OpError {
		b = append(b, `,"error_code":"`...)
		if decoded {
			b = append(b, r.ErrCode.String()...)
		} else {
			b = append(b, "unknown"...)
		}
		b = append(b, '"')
		if decoded && len(r.ErrMessage) > 0 {
			msg := r.ErrMessage
			if !c.a.cfg.ShowValues {
				l.msg, l.fp = redactMessage(l.msg[:0], l.fp, msg)
				msg = l.msg
			}
			b = append(b, `,"error_message":`...)
			b = appendJSONString(b, string(msg))
		}
		if decoded {
			b = appendErrorDetail(b, r)
		}
	} else {
		b = append(b, `,"result":"`...)
		switch {
		case h.Opcode == decode.OpResult && decoded:
			b = append(b, r.Kind.String()...)
		default:
			b = append(b, h.Opcode.String()...)
		}
		b = append(b, '"')
		if decoded && r.Kind == decode.ResultRows && r.RowsKnown {
			b = append(b, `,"rows":`...)
			b = strconv.AppendInt(b, int64(r.Rows), 10)
			if r.HasMorePages {
				b = append(b, `,"has_more_pages":true`...)
			}
		}
	}
	b = append(b, `,"request_bytes":`...)
	b = strconv.AppendInt(b, int64(p.bytes), 10)
	b = append(b, `,"response_bytes":`...)
	b = strconv.AppendInt(b, int64(h.FrameLen()), 10)
	if f.Lost {
		b = append(b, `,"lost_bytes":true`...)
	}
	b = append(b, "}\n"...)
	l.buf = b
	if l.w.Available() < len(b) && l.w.Buffered() > 0 {
		// Whole lines only reach the writer, so that the lines of several
		// analysis workers sharing it never interleave.
		if l.err = l.w.Flush(); l.err != nil {
			return
		}
	}
	_, l.err = l.w.Write(b)
}

// Flush writes out buffered lines and returns the first write error.
func (l *exchangeLog) Flush() error {
	if l.err != nil {
		return l.err
	}
	return l.w.Flush()
}

// appendJSONString appends s as a JSON string, escaping what JSON requires
// and replacing invalid UTF-8.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\t':
				b = append(b, '\\', 't')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&15])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, `\ufffd`...)
		} else {
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// FlushLog flushes the exchange log, if any.
func (a *Analyzer) FlushLog() error {
	if a.log == nil {
		return nil
	}
	return a.log.Flush()
}

// valuesJSON renders the bound values (and a QUERY's literal text) of r as
// JSON members to splice into its log line: shown (hex, capped) or as keyed
// hashes. It allocates: it only runs when one of the opt-in flags is set.
func (a *Analyzer) valuesJSON(r *decode.Request) string {
	var b []byte
	val := func(v []byte) {
		switch {
		case v == nil:
			b = append(b, "null"...)
		case a.cfg.HashValues:
			m := hmac.New(sha256.New, a.cfg.HashKey)
			m.Write(v)
			b = append(b, `"#`...)
			b = hex.AppendEncode(b, m.Sum(nil)[:8])
			b = append(b, '"')
		default:
			b = append(b, `"0x`...)
			n := min(len(v), a.cfg.MaxValueBytes)
			b = hex.AppendEncode(b, v[:n])
			if n < len(v) {
				b = append(b, "…("...)
				b = strconv.AppendInt(b, int64(len(v)), 10)
				b = append(b, " bytes)"...)
			}
			b = append(b, '"')
		}
	}
	if why := a.withhold(r); len(r.Params.Values) > 0 && why != "" {
		b = append(b, `,"values_withheld":"`...)
		b = append(b, why...)
		b = append(b, '"')
	} else if len(r.Params.Values) > 0 {
		b = append(b, `,"values":[`...)
		for i, v := range r.Params.Values {
			if i > 0 {
				b = append(b, ',')
			}
			val(v)
		}
		b = append(b, ']')
	}
	if len(r.Query) > 0 && (r.Opcode == decode.OpQuery || r.Opcode == decode.OpPrepare) {
		if a.cfg.HashValues {
			b = append(b, `,"query_hash":`...)
			val(r.Query)
		} else {
			b = append(b, `,"query_text":`...)
			q := r.Query
			if containsFold(q, "PASSWORD") {
				// CREATE/ALTER ROLE|USER ... PASSWORD '...': never shown.
				q = Fingerprint(nil, q)
			}
			if len(q) > 64*a.cfg.MaxValueBytes {
				q = q[:64*a.cfg.MaxValueBytes]
			}
			b = appendJSONString(b, string(q))
		}
	}
	return string(b)
}

// withhold says why a request's bound values must not be shown, "" when
// they may: its statement (its text, the text its prepared id stands for,
// any child of a BATCH) mentions PASSWORD, or a prepared id's text is not
// known, so that it cannot be told whether it does (the PREPARE was not
// captured, or another analysis worker has not learned it yet): unknown
// fails closed.
func (a *Analyzer) withhold(r *decode.Request) string {
	const (
		password = "the statement sets a password"
		unknown  = "the statement is not known (its PREPARE was not seen): it may set a password"
	)
	why := func(query, id []byte) string {
		if len(query) > 0 {
			if containsFold(query, "PASSWORD") {
				return password
			}
			return ""
		}
		text, ok := a.preparedText(id)
		switch {
		case !ok:
			// (Also when a full statement table named it "other": its
			// text is not kept.)
			return unknown
		case containsFold([]byte(text), "PASSWORD"):
			return password
		}
		return ""
	}
	switch r.Opcode {
	case decode.OpQuery:
		return why(r.Query, nil)
	case decode.OpExecute:
		return why(nil, r.PreparedID)
	case decode.OpBatch:
		w := ""
		for _, c := range r.Children {
			switch why(c.Query, c.PreparedID) {
			case password:
				return password
			case unknown:
				w = unknown
			}
		}
		return w
	}
	return ""
}

// containsFold reports whether upper-case ASCII word w occurs in b, in any case.
func containsFold(b []byte, w string) bool {
	for i := 0; i+len(w) <= len(b); i++ {
		j := 0
		for j < len(w) && b[i+j]&^0x20 == w[j] {
			j++
		}
		if j == len(w) {
			return true
		}
	}
	return false
}

// appendErrorDetail appends the code-specific fields of an ERROR that
// explain it: who timed out or was unavailable, and how many replicas
// answered.
func appendErrorDetail(b []byte, r *decode.Response) []byte {
	e := &r.Error
	num := func(name string, v int32) {
		b = append(b, `,"`...)
		b = append(b, name...)
		b = append(b, `":`...)
		b = strconv.AppendInt(b, int64(v), 10)
	}
	switch r.ErrCode {
	case decode.ErrUnavailable:
		b = append(b, `,"error_consistency":"`...)
		b = append(b, e.Consistency.String()...)
		b = append(b, '"')
		num("required", e.Required)
		num("alive", e.Alive)
	case decode.ErrWriteTimeout, decode.ErrReadTimeout, decode.ErrReadFailure, decode.ErrWriteFailure, decode.ErrCASWriteUnknown:
		b = append(b, `,"error_consistency":"`...)
		b = append(b, e.Consistency.String()...)
		b = append(b, '"')
		num("received", e.Received)
		num("block_for", e.BlockFor)
		if len(e.WriteType) > 0 {
			b = append(b, `,"write_type":`...)
			b = appendJSONString(b, string(e.WriteType))
		}
		if r.ErrCode == decode.ErrReadFailure || r.ErrCode == decode.ErrWriteFailure {
			num("failures", e.NumFailures)
			if e.NumReasons > 0 {
				// v5: which replica failed how.
				b = append(b, `,"failure_reasons":[`...)
				for i, fr := range e.Reasons[:min(e.NumReasons, len(e.Reasons))] {
					if i > 0 {
						b = append(b, ',')
					}
					b = append(b, `{"endpoint":`...)
					b = appendJSONString(b, endpoint(fr.Endpoint))
					b = append(b, `,"code":`...)
					b = appendJSONString(b, fr.Code.String())
					b = append(b, '}')
				}
				b = append(b, ']')
			}
		}
		if r.ErrCode == decode.ErrReadTimeout || r.ErrCode == decode.ErrReadFailure {
			b = append(b, `,"data_present":`...)
			b = strconv.AppendBool(b, e.DataPresent)
		}
		if e.HasContentions {
			num("contentions", int32(e.Contentions))
		}
	case decode.ErrAlreadyExists:
		b = appendField(b, "keyspace", e.Keyspace)
		b = appendField(b, "table", e.Table)
	case decode.ErrFunctionFailure:
		b = appendField(b, "keyspace", e.Keyspace)
		b = appendField(b, "function", e.Function)
		num("arg_types", int32(e.ArgTypes))
	case decode.ErrUnprepared:
		if len(e.PreparedID) > 0 {
			b = append(b, `,"unprepared_id":"`...)
			b = hex.AppendEncode(b, e.PreparedID)
			b = append(b, '"')
		}
	}
	if e.RateLimit {
		op := "read"
		if e.OpType == 1 {
			op = "write"
		}
		b = append(b, `,"rate_limited":true,"op_type":"`...)
		b = append(b, op...)
		b = append(b, '"')
		b = append(b, `,"rejected_by_coordinator":`...)
		b = strconv.AppendBool(b, e.RejectedByCoordinator)
	}
	if e.Partial {
		b = append(b, `,"error_detail_partial":true`...)
	}
	return b
}

// appendField appends ,"name":"value" when value is not empty.
func appendField(b []byte, name string, value []byte) []byte {
	if len(value) == 0 {
		return b
	}
	b = append(b, `,"`...)
	b = append(b, name...)
	b = append(b, `":`...)
	return appendJSONString(b, string(value))
}

// endpoint renders an [inetaddr]'s address bytes.
func endpoint(a []byte) string {
	if ip, ok := netip.AddrFromSlice(a); ok {
		return ip.String()
	}
	return "?"
}

// redactMessage appends an error message with what may echo the user's
// data masked, unless --show-values: numbers and quoted strings as in a
// statement fingerprint, and the contents of parentheses and brackets, where
// Cassandra quotes offending input ("Invalid STRING constant (hunter2) for
// ...", a syntax error's "(...VALUES (1, [secret]...)").
func redactMessage(dst, scratch, msg []byte) (out, scratchOut []byte) {
	scratch = Fingerprint(scratch[:0], msg)
	out = dst
	depth := 0
	for _, ch := range scratch {
		switch {
		case ch == '(' || ch == '[':
			if depth == 0 {
				out = append(out, ch, '?')
			}
			depth++
		case (ch == ')' || ch == ']') && depth > 0:
			depth--
			if depth == 0 {
				out = append(out, ch)
			}
		case depth == 0:
			out = append(out, ch)
		}
	}
	if depth > 0 {
		out = append(out, ')')
	}
	return out, scratch
}
