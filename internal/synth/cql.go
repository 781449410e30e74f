package synth

import (
	"crypto/md5"
	"encoding/binary"
	"math/rand/v2"
	"strconv"

	"github.com/golang/snappy"
	"github.com/pierrec/lz4/v4"
)

// Envelope constants (cql-wire.md §2–§6). Kept local so the generator does
// not depend on the decoder it is meant to test.
const (
	verResponse = 0x80 // direction bit of the version byte
	headerLen   = 9

	flagCompression = 0x01

	opError     = 0x00
	opStartup   = 0x01
	opReady     = 0x02
	opOptions   = 0x05
	opSupported = 0x06
	opQuery     = 0x07
	opResult    = 0x08
	opPrepare   = 0x09
	opExecute   = 0x0A

	resultVoid     = 1
	resultRows     = 2
	resultPrepared = 4

	qfValues       = 0x01
	qfSkipMetadata = 0x02
	qfPageSize     = 0x04
	qfDefaultTS    = 0x20

	clLocalQuorum = 0x0006
	clLocalOne    = 0x000A

	mfGlobalTables = 0x0001
	mfNoMetadata   = 0x0004

	typeBlob      = 0x0003
	typeCounter   = 0x0005
	typeTimestamp = 0x000B
	typeUUID      = 0x000C
	typeVarchar   = 0x000D

	errWriteTimeout = 0x1100
	errReadTimeout  = 0x1200

	pageSize = 5000
)

// Compression algorithms negotiated in STARTUP (§7).
const (
	compNone = iota
	compLZ4
	compSnappy
)

// Frame kinds carried through the simulation. Requests and responses share
// one space so a queued item says exactly which frame to encode.
const (
	kOptions uint8 = iota
	kStartup
	kPrepare
	kQuery
	kExecute

	kSupported
	kReady
	kPrepared
	kRows       // full metadata (answer to QUERY)
	kRowsNoMeta // No_metadata (answer to EXECUTE with SKIP_METADATA)
	kVoid
	kReadTimeout
	kWriteTimeout
)

// isRequest tells the direction of a frame kind.
func isRequest(k uint8) bool { return k <= kExecute }

// Statement kinds of the synthetic workload.
const (
	stSelect = iota
	stInsert
	stUpdate
	numStmts
)

// column describes one bound or result column.
type column struct {
	name string
	typ  uint16
}

// statement is one of the few CQL statements the synthetic clients run. The
// precomputed bodies make the per-frame cost of PREPARE and its RESULT a copy.
type statement struct {
	text       string
	table      string
	bind       []column
	id         [16]byte
	resultID   [16]byte // v5 result_metadata_id
	prepared   []byte   // RESULT Prepared body (v4)
	preparedV5 []byte   // RESULT Prepared body (v5: result_metadata_id after the id)
	rowsMeta   []byte   // Rows metadata with full column specs (SELECT only)
}

var tblColumns = []column{
	{"id", typeUUID}, {"name", typeVarchar}, {"value", typeBlob}, {"updated", typeTimestamp},
}

func newStatements() [numStmts]statement {
	s := [numStmts]statement{
		stSelect: {
			text:  "SELECT id, name, value, updated FROM ks.tbl WHERE id = ?",
			table: "tbl",
			bind:  tblColumns[:1],
		},
		stInsert: {
			text:  "INSERT INTO ks.tbl (id, name, value, updated) VALUES (?, ?, ?, ?)",
			table: "tbl",
			bind:  tblColumns,
		},
		stUpdate: {
			text:  "UPDATE ks.counters SET n = n + 1 WHERE id = ?",
			table: "counters",
			bind:  []column{{"id", typeUUID}},
		},
	}
	for i := range s {
		st := &s[i]
		// Cassandra's id is the MD5 of keyspace and query text.
		st.id = md5.Sum([]byte("ks" + st.text))
		var res []byte
		if i == stSelect {
			res = appendMetadata(nil, mfGlobalTables, st.table, tblColumns)
			st.rowsMeta = res
		} else {
			res = appendInt(appendInt(nil, mfNoMetadata), 0)
		}
		// Cassandra's result metadata id is an MD5 digest of the result
		// columns; any digest of them serves a passive observer.
		st.resultID = md5.Sum(res)
		// Prepared metadata (v4 and v5): flags, columns, pk indexes, global
		// spec, columns; then the result metadata.
		var pm []byte
		pm = appendInt(pm, mfGlobalTables)
		pm = appendInt(pm, int32(len(st.bind)))
		pm = appendInt(pm, 1)
		pm = appendShort(pm, 0)
		pm = appendString(pm, "ks")
		pm = appendString(pm, st.table)
		for _, c := range st.bind {
			pm = appendString(pm, c.name)
			pm = appendShort(pm, c.typ)
		}
		pm = append(pm, res...)
		b := appendShortBytes(appendInt(nil, resultPrepared), st.id[:])
		st.prepared = append(b, pm...)
		b = appendShortBytes(appendInt(nil, resultPrepared), st.id[:])
		b = appendShortBytes(b, st.resultID[:]) // v5 §4.2.5.4
		st.preparedV5 = append(b, pm...)
	}
	return s
}

// appendMetadata appends Rows metadata with a global table spec (§6.9.1).
func appendMetadata(b []byte, flags int32, table string, cols []column) []byte {
	b = appendInt(b, flags)
	b = appendInt(b, int32(len(cols)))
	b = appendString(b, "ks")
	b = appendString(b, table)
	for _, c := range cols {
		b = appendString(b, c.name)
		b = appendShort(b, c.typ)
	}
	return b
}

func appendShort(b []byte, v uint16) []byte { return binary.BigEndian.AppendUint16(b, v) }
func appendInt(b []byte, v int32) []byte    { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func appendLong(b []byte, v int64) []byte   { return binary.BigEndian.AppendUint64(b, uint64(v)) }

func appendString(b []byte, s string) []byte {
	b = appendShort(b, uint16(len(s)))
	return append(b, s...)
}

func appendShortBytes(b []byte, v []byte) []byte {
	b = appendShort(b, uint16(len(v)))
	return append(b, v...)
}

func appendStringList(b []byte, l ...string) []byte {
	b = appendShort(b, uint16(len(l)))
	for _, s := range l {
		b = appendString(b, s)
	}
	return b
}

// supportedBody is the SUPPORTED [string multimap] of a Cassandra 4/5 node.
var supportedBody = func() []byte {
	b := appendShort(nil, 3)
	b = appendString(b, "COMPRESSION")
	b = appendStringList(b, "snappy", "lz4")
	b = appendString(b, "CQL_VERSION")
	b = appendStringList(b, "3.4.7")
	b = appendString(b, "PROTOCOL_VERSIONS")
	b = appendStringList(b, "3/v3", "4/v4", "5/v5", "6/v6-beta")
	return b
}()

func startupBody(comp int) []byte {
	n := uint16(3)
	if comp != compNone {
		n++
	}
	b := appendShort(nil, n)
	b = appendString(b, "CQL_VERSION")
	b = appendString(b, "3.0.0")
	if comp != compNone {
		b = appendString(b, "COMPRESSION")
		if comp == compLZ4 {
			b = appendString(b, "lz4")
		} else {
			b = appendString(b, "snappy")
		}
	}
	b = appendString(b, "DRIVER_NAME")
	b = appendString(b, "synth")
	b = appendString(b, "DRIVER_VERSION")
	b = appendString(b, "1.0")
	return b
}

const (
	msgReadTimeout  = "Operation timed out - received only 0 responses."
	msgWriteTimeout = "Operation timed out - received only 1 responses."
	hexDigits       = "0123456789abcdef"
)

// encoder appends CQL envelopes to a sender's byte stream. It owns the
// scratch space compression and v5 framing need, so encoding allocates
// nothing once the buffers have grown to the largest frame.
type encoder struct {
	stmts   [numStmts]statement
	startup [2][]byte // STARTUP body without / with COMPRESSION
	comp    int       // negotiated in STARTUP: v4 body compression, v5 segment layout
	ver     byte      // 4 or 5
	lz      lz4.Compressor
	scratch []byte
	fill    []byte // pseudo-random bytes for blobs
	rows    int    // mean row-data bytes per SELECT result

	// v5 framing (segment.go).
	env   []byte // one write's envelopes before framing
	ends  []int  // where each envelope of the write ends in the framed output
	lzOut []byte // lz4 segment payload after compression
	segs  int    // v5 segments encoded
}

func newEncoder(proto, comp, rowsSize int, seed int64) *encoder {
	e := &encoder{stmts: newStatements(), comp: comp, ver: byte(proto), rows: rowsSize}
	e.startup[0] = startupBody(compNone)
	e.startup[1] = startupBody(comp)
	r := rand.New(rand.NewPCG(uint64(seed), 0x5eed))
	e.fill = make([]byte, 1<<16)
	for i := 0; i < len(e.fill); i += 8 {
		binary.LittleEndian.PutUint64(e.fill[i:], r.Uint64())
	}
	return e
}

// frameCtx is what encoding one frame needs besides the item itself.
type frameCtx struct {
	compress bool
	tsMicros int64 // client timestamp for QUERY/EXECUTE
	rng      *rand.Rand
}

// appendFrame appends the envelope for it to dst and returns the grown slice.
func (e *encoder) appendFrame(dst []byte, it item, fc frameCtx) []byte {
	start := len(dst)
	ver, op := e.ver|verResponse, byte(opResult)
	// v5 has no body compression: lz4 is a property of its segments (§8.5).
	compress := fc.compress && e.ver < 5
	switch it.kind {
	case kOptions:
		ver, op = e.ver, opOptions
	case kStartup:
		ver, op, compress = e.ver, opStartup, false // STARTUP is never compressed (§6.1)
	case kPrepare:
		ver, op = e.ver, opPrepare
	case kQuery:
		ver, op = e.ver, opQuery
	case kExecute:
		ver, op = e.ver, opExecute
	case kSupported:
		op = opSupported
	case kReady:
		op = opReady
	case kReadTimeout, kWriteTimeout:
		op = opError
	}
	dst = append(dst, ver, 0, byte(uint16(it.stream)>>8), byte(it.stream), op, 0, 0, 0, 0)
	body := len(dst)
	dst = e.appendBody(dst, it, fc)
	if compress {
		dst[start+1] = flagCompression
		dst = e.compress(dst, body)
	}
	binary.BigEndian.PutUint32(dst[start+5:], uint32(len(dst)-body))
	return dst
}

// compress replaces dst[body:] by its compressed form (§7).
func (e *encoder) compress(dst []byte, body int) []byte {
	e.scratch = append(e.scratch[:0], dst[body:]...)
	src := e.scratch
	dst = dst[:body]
	switch e.comp {
	case compLZ4:
		need := 4 + lz4.CompressBlockBound(len(src))
		dst = grow(dst, need)
		binary.BigEndian.PutUint32(dst[body:], uint32(len(src)))
		n, err := e.lz.CompressBlock(src, dst[body+4:body+need])
		if err != nil || n == 0 {
			// Cannot happen with a bound-sized buffer; emit a literal-only
			// block so the stream stays valid regardless.
			return appendLiteralBlock(dst[:body+4], src)
		}
		return dst[:body+4+n]
	case compSnappy:
		need := snappy.MaxEncodedLen(len(src))
		dst = grow(dst, need)
		out := snappy.Encode(dst[body:body+need], src)
		return dst[:body+len(out)]
	}
	return append(dst, src...)
}

// appendLiteralBlock appends src as one LZ4 block made of a single literal run.
func appendLiteralBlock(dst, src []byte) []byte {
	n := len(src)
	if n < 15 {
		dst = append(dst, byte(n<<4))
	} else {
		dst = append(dst, 0xF0)
		for n -= 15; n >= 255; n -= 255 {
			dst = append(dst, 255)
		}
		dst = append(dst, byte(n))
	}
	return append(dst, src...)
}

// grow makes room for n more bytes after len(b) and returns b resliced to
// include them; the caller trims to what it used.
func grow(b []byte, n int) []byte {
	if cap(b)-len(b) < n {
		nb := make([]byte, len(b), 2*cap(b)+n)
		copy(nb, b)
		b = nb
	}
	return b[:len(b)+n]
}

func (e *encoder) appendBody(b []byte, it item, fc frameCtx) []byte {
	st := &e.stmts[it.stmt]
	switch it.kind {
	case kOptions, kReady:
		return b
	case kStartup:
		return append(b, e.startup[btoi(e.comp != compNone)]...)
	case kPrepare:
		b = appendString32(b, st.text)
		if e.ver >= 5 {
			b = appendInt(b, 0) // v5 PREPARE flags: no keyspace
		}
		return b
	case kQuery:
		at := len(b)
		b = append(b, 0, 0, 0, 0)
		b = e.appendLiteral(b, it.stmt, fc)
		binary.BigEndian.PutUint32(b[at:], uint32(len(b)-at-4))
		b = appendShort(b, consistency(it.stmt))
		b = e.appendQueryFlags(b, qfPageSize|qfDefaultTS)
		b = appendInt(b, pageSize)
		return appendLong(b, fc.tsMicros)
	case kExecute:
		b = appendShortBytes(b, st.id[:])
		if e.ver >= 5 {
			b = appendShortBytes(b, st.resultID[:])
		}
		b = appendShort(b, consistency(it.stmt))
		flags := byte(qfValues | qfPageSize | qfDefaultTS)
		if it.stmt == stSelect {
			flags |= qfSkipMetadata
		}
		b = e.appendQueryFlags(b, flags)
		b = appendShort(b, uint16(len(st.bind)))
		b = e.appendValues(b, it.stmt, fc)
		b = appendInt(b, pageSize)
		return appendLong(b, fc.tsMicros)
	case kSupported:
		return append(b, supportedBody...)
	case kPrepared:
		if e.ver >= 5 {
			return append(b, st.preparedV5...)
		}
		return append(b, st.prepared...)
	case kVoid:
		return appendInt(b, resultVoid)
	case kRows, kRowsNoMeta:
		b = appendInt(b, resultRows)
		if it.kind == kRows {
			b = append(b, e.stmts[stSelect].rowsMeta...)
		} else {
			b = appendInt(b, mfNoMetadata)
			b = appendInt(b, int32(len(tblColumns)))
		}
		return e.appendRows(b, fc)
	case kReadTimeout:
		b = appendInt(b, errReadTimeout)
		b = appendString(b, msgReadTimeout)
		b = appendShort(b, clLocalOne)
		b = appendInt(b, 0) // received
		b = appendInt(b, 1) // blockfor
		return append(b, 0) // data_present
	case kWriteTimeout:
		b = appendInt(b, errWriteTimeout)
		b = appendString(b, msgWriteTimeout)
		b = appendShort(b, clLocalQuorum)
		b = appendInt(b, 1) // received
		b = appendInt(b, 2) // blockfor
		if it.stmt == stUpdate {
			return appendString(b, "COUNTER")
		}
		return appendString(b, "SIMPLE")
	}
	panic("synth: unknown frame kind")
}

// appendQueryFlags appends query-parameter flags: a [byte] in v4, an [int]
// in v5 (§6.4).
func (e *encoder) appendQueryFlags(b []byte, flags byte) []byte {
	if e.ver >= 5 {
		return appendInt(b, int32(flags))
	}
	return append(b, flags)
}

func consistency(stmt uint8) uint16 {
	if stmt == stSelect {
		return clLocalOne
	}
	return clLocalQuorum
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func appendString32(b []byte, s string) []byte {
	b = appendInt(b, int32(len(s)))
	return append(b, s...)
}

// appendLiteral appends the statement text with literals instead of bind
// markers, as an application building query strings would.
func (e *encoder) appendLiteral(b []byte, stmt uint8, fc frameCtx) []byte {
	switch stmt {
	case stSelect:
		b = append(b, "SELECT id, name, value, updated FROM ks.tbl WHERE id = "...)
		return appendUUIDText(b, fc.rng)
	case stInsert:
		b = append(b, "INSERT INTO ks.tbl (id, name, value, updated) VALUES ("...)
		b = appendUUIDText(b, fc.rng)
		b = append(b, ", 'user-"...)
		b = appendDigits(b, fc.rng.Uint32N(1000000), 6)
		b = append(b, "', 0x"...)
		for range 8 + fc.rng.IntN(25) {
			v := byte(fc.rng.Uint32())
			b = append(b, hexDigits[v>>4], hexDigits[v&15])
		}
		b = append(b, ", "...)
		b = strconv.AppendInt(b, fc.tsMicros/1000, 10)
		return append(b, ')')
	default:
		b = append(b, "UPDATE ks.counters SET n = n + 1 WHERE id = "...)
		return appendUUIDText(b, fc.rng)
	}
}

// appendValues appends the bound [value]s of an EXECUTE (v4: [int] length).
func (e *encoder) appendValues(b []byte, stmt uint8, fc frameCtx) []byte {
	b = appendInt(b, 16)
	b = appendUUID(b, fc.rng)
	if stmt != stInsert {
		return b
	}
	b = appendInt(b, 11)
	b = append(b, "user-"...)
	b = appendDigits(b, fc.rng.Uint32N(1000000), 6)
	n := 16 + fc.rng.IntN(65)
	b = appendInt(b, int32(n))
	off := fc.rng.IntN(len(e.fill) - n)
	b = append(b, e.fill[off:off+n]...)
	b = appendInt(b, 8)
	return appendLong(b, fc.tsMicros/1000)
}

// rowFixed is the size of a row without its blob: four [bytes] lengths,
// uuid, 11-byte name, timestamp.
const rowFixed = 4*4 + 16 + 11 + 8

// appendRows appends rows_count and the rows of a SELECT result whose row
// data is, on average, e.rows bytes (uniform between half and one and a half
// times), so some results of a large RowsSize span several segments.
func (e *encoder) appendRows(b []byte, fc frameCtx) []byte {
	if e.rows <= 0 {
		return appendInt(b, 0)
	}
	total := e.rows/2 + fc.rng.IntN(e.rows+1)
	nrows := max(1, total/1024)
	blob := max(0, total/nrows-rowFixed)
	b = appendInt(b, int32(nrows))
	for range nrows {
		b = appendInt(b, 16)
		b = appendUUID(b, fc.rng)
		b = appendInt(b, 11)
		b = append(b, "user-"...)
		b = appendDigits(b, fc.rng.Uint32N(1000000), 6)
		b = appendInt(b, int32(blob))
		for n := blob; n > 0; {
			off := fc.rng.IntN(len(e.fill))
			k := min(n, len(e.fill)-off)
			b = append(b, e.fill[off:off+k]...)
			n -= k
		}
		b = appendInt(b, 8)
		b = appendLong(b, fc.tsMicros/1000-int64(fc.rng.IntN(1e9)))
	}
	return b
}

func appendUUID(b []byte, r *rand.Rand) []byte {
	hi, lo := r.Uint64(), r.Uint64()
	hi = hi&^0xF000 | 0x4000     // version 4
	lo = lo&^(0xC<<60) | 0x8<<60 // RFC 4122 variant
	return binary.BigEndian.AppendUint64(binary.BigEndian.AppendUint64(b, hi), lo)
}

func appendUUIDText(b []byte, r *rand.Rand) []byte {
	var u [16]byte
	appendUUID(u[:0], r)
	for i, v := range u {
		if i == 4 || i == 6 || i == 8 || i == 10 {
			b = append(b, '-')
		}
		b = append(b, hexDigits[v>>4], hexDigits[v&15])
	}
	return b
}

// appendDigits appends v as exactly n decimal digits.
func appendDigits(b []byte, v uint32, n int) []byte {
	at := len(b)
	for range n {
		b = append(b, '0')
	}
	for i := at + n - 1; i >= at && v > 0; i-- {
		b[i] = byte('0' + v%10)
		v /= 10
	}
	return b
}
