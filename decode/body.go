package decode

import (
	"encoding/binary"
	"errors"
)

// Query parameter flags (<flags> of QUERY, EXECUTE and BATCH). They are a
// [byte] in v2–v4 and an [int] in v5 and DSE.
const (
	QueryValues            uint32 = 0x0001
	QuerySkipMetadata      uint32 = 0x0002
	QueryPageSize          uint32 = 0x0004
	QueryPagingState       uint32 = 0x0008
	QuerySerialConsistency uint32 = 0x0010
	QueryDefaultTimestamp  uint32 = 0x0020
	QueryNamesForValues    uint32 = 0x0040
	QueryKeyspace          uint32 = 0x0080     // v5, DSE_V2
	QueryNowInSeconds      uint32 = 0x0100     // v5
	QueryPageSizeBytes     uint32 = 0x40000000 // DSE: the page size counts bytes
	QueryContinuousPaging  uint32 = 0x80000000 // DSE: continuous paging options follow
)

// Rows metadata flags.
const (
	rowsGlobalTableSpec = 0x0001
	rowsHasMorePages    = 0x0002
	rowsNoMetadata      = 0x0004
	rowsMetadataChanged = 0x0008
	rowsDSEContinuous   = 0x40000000
)

// maxTypeDepth bounds the nesting of [option] type descriptions
// (list<map<int, frozen<tuple<...>>>>); real schemas stay far below it.
const maxTypeDepth = 32

// errCut means the decoder ran off the end of a body prefix: the bytes exist
// on the wire but the caller did not buffer them. It never leaves the
// package: it turns into success once the essential fields are decoded, and
// into ErrTruncated before that.
var errCut = errors.New("cql: body prefix ends here")

// reader walks a body. Errors are sticky: after the first one every read
// returns zero values, so decoders read a whole structure and check once.
type reader struct {
	b   []byte
	off int
	// full is the length of the whole body on the wire. It is larger than
	// len(b) when b is only a prefix; a length that fits in full but not in
	// b cuts the prefix (errCut) instead of failing (ErrTruncated).
	full int
	err  error
	// tolerant is set once the message's essential fields are decoded: from
	// then on running off the prefix ends the decode successfully.
	tolerant bool
}

func newReader(h *Header, body []byte) reader {
	full := len(body)
	// A v1–v4 compressed body was decompressed by the caller and is whole;
	// h.Length then counts compressed bytes and says nothing about it.
	compressed := h.Flags&FlagCompression != 0 && h.Version < 5
	if !compressed && int(h.Length) > full {
		full = int(h.Length)
	}
	return reader{b: body, full: full}
}

func (r *reader) ok() bool { return r.err == nil }

func (r *reader) fail(err error) {
	if r.err == nil {
		r.err = err
	}
}

// commit marks the essential fields as decoded.
func (r *reader) commit() {
	if r.err == nil {
		r.tolerant = true
	}
}

// done is the decode's outcome.
func (r *reader) done() error {
	switch {
	case r.err == nil:
		return nil
	case r.err == errCut && r.tolerant:
		return nil
	case r.err == errCut:
		return ErrTruncated
	}
	return r.err
}

// left is how many bytes of the whole body remain, buffered or not.
func (r *reader) left() int { return r.full - r.off }

// need checks that n more bytes exist on the wire (not only in the prefix)
// without consuming them: used to reject counts before looping over them.
func (r *reader) need(n int64) bool {
	if r.err != nil {
		return false
	}
	if n > int64(r.left()) {
		r.err = ErrTruncated
		return false
	}
	return true
}

// take consumes n bytes. The returned slice aliases the body and has its
// capacity clipped so that nobody can append into the body.
func (r *reader) take(n int) []byte {
	if r.err == nil && uint(n) <= uint(len(r.b)-r.off) {
		s := r.b[r.off : r.off+n : r.off+n]
		r.off += n
		return s
	}
	r.short(n)
	return nil
}

// short records why n bytes cannot be taken.
func (r *reader) short(n int) {
	switch {
	case r.err != nil:
	case n < 0:
		r.err = ErrMalformed
	case n > r.full-r.off:
		r.err = ErrTruncated
	default:
		r.err = errCut
	}
}

func (r *reader) u8() uint8 {
	if r.err == nil && r.off < len(r.b) {
		v := r.b[r.off]
		r.off++
		return v
	}
	r.short(1)
	return 0
}

func (r *reader) u16() uint16 {
	if r.err == nil && r.off+2 <= len(r.b) {
		v := binary.BigEndian.Uint16(r.b[r.off:])
		r.off += 2
		return v
	}
	r.short(2)
	return 0
}

func (r *reader) i32() int32 {
	if r.err == nil && r.off+4 <= len(r.b) {
		v := binary.BigEndian.Uint32(r.b[r.off:])
		r.off += 4
		return int32(v)
	}
	r.short(4)
	return 0
}

func (r *reader) i64() int64 {
	if r.err == nil && r.off+8 <= len(r.b) {
		v := binary.BigEndian.Uint64(r.b[r.off:])
		r.off += 8
		return int64(v)
	}
	r.short(8)
	return 0
}

// str reads a [string].
func (r *reader) str() []byte { return r.take(int(r.u16())) }

// longStr reads a [long string]; a negative length is malformed.
func (r *reader) longStr() []byte { return r.take(int(r.i32())) }

// shortBytes reads a [short bytes].
func (r *reader) shortBytes() []byte { return r.take(int(r.u16())) }

// bytes reads a [bytes]; a negative length is null (nil).
func (r *reader) bytes() []byte {
	n := r.i32()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}

// value reads a bound value: [bytes] before v4, [value] from v4 on, where
// -1 is null, -2 is "not set" and anything below is invalid.
func (r *reader) value(v uint8) []byte {
	n := r.i32()
	if n < 0 {
		if v >= 4 && n < -2 {
			r.fail(ErrMalformed)
		}
		return nil
	}
	return r.take(int(n))
}

func (r *reader) consistency() Consistency {
	c := Consistency(r.u16())
	if r.err == nil && !c.Valid() {
		r.err = ErrMalformed
	}
	return c
}

// stringList skips a [string list] and returns its length.
func (r *reader) stringList() int {
	n := int(r.u16())
	if !r.need(int64(n) * 2) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.str()
	}
	return n
}

// bytesMap skips a [bytes map] and returns its number of entries.
func (r *reader) bytesMap() int {
	n := int(r.u16())
	if !r.need(int64(n) * 6) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		r.str()
		r.bytes()
	}
	return n
}

// stringMap walks a [string map]; fn may be nil.
func (r *reader) stringMap(fn func(k, v []byte)) int {
	n := int(r.u16())
	if !r.need(int64(n) * 4) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		v := r.str()
		if r.err == nil && fn != nil {
			fn(k, v)
		}
	}
	return n
}

// multimap walks a [string multimap]; fn may be nil.
func (r *reader) multimap(fn func(k, v []byte)) int {
	n := int(r.u16())
	if !r.need(int64(n) * 4) {
		return 0
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		m := int(r.u16())
		if !r.need(int64(m) * 2) {
			break
		}
		for j := 0; j < m && r.err == nil; j++ {
			v := r.str()
			if r.err == nil && fn != nil {
				fn(k, v)
			}
		}
	}
	return n
}

// inet reads an [inet]: address bytes and port.
func (r *reader) inet() ([]byte, int32) {
	addr := r.inetAddr()
	port := r.i32()
	return addr, port
}

// inetAddr reads an [inetaddr]: a length of 4 or 16, then the address.
func (r *reader) inetAddr() []byte {
	n := r.u8()
	if r.err == nil && n != 4 && n != 16 {
		r.err = ErrMalformed
		return nil
	}
	return r.take(int(n))
}

// skipType skips an [option] type description, recursing into collection,
// UDT and tuple element types no deeper than maxTypeDepth.
func (r *reader) skipType(depth int) {
	if depth >= maxTypeDepth {
		r.fail(ErrMalformed)
		return
	}
	id := r.u16()
	if r.err != nil {
		return
	}
	switch {
	case id == 0x0000: // custom: Java class name
		r.str()
	case id <= 0x0015: // native types (0x000A is v1/v2 text)
	case id == 0x0020, id == 0x0022: // list, set
		r.skipType(depth + 1)
	case id == 0x0021: // map
		r.skipType(depth + 1)
		r.skipType(depth + 1)
	case id == 0x0030: // UDT: keyspace, name, n × (field, type)
		r.str()
		r.str()
		n := int(r.u16())
		if !r.need(int64(n) * 4) {
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.str()
			r.skipType(depth + 1)
		}
	case id == 0x0031: // tuple: n × type
		n := int(r.u16())
		if !r.need(int64(n) * 2) {
			return
		}
		for i := 0; i < n && r.err == nil; i++ {
			r.skipType(depth + 1)
		}
	default:
		r.err = ErrMalformed
	}
}

// ForEachMultimap walks a [string multimap] (a SUPPORTED body), calling fn
// for every value of every key; a key with an empty list is not reported.
// A nil fn only validates. Bytes after the multimap are ignored. The slices
// alias b.
func ForEachMultimap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	r.multimap(fn)
	return r.done()
}

// ForEachBytesMap walks a [bytes map] (a custom payload, see
// Request.CustomPayloadRaw and Response.CustomPayloadRaw), calling fn for
// every entry; a null value is nil. A nil fn only validates. Bytes after the
// map are ignored. The slices alias b.
func ForEachBytesMap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	n := int(r.u16())
	if !r.need(int64(n) * 6) {
		return r.done()
	}
	for i := 0; i < n && r.err == nil; i++ {
		k := r.str()
		v := r.bytes()
		if r.err == nil && fn != nil {
			fn(k, v)
		}
	}
	return r.done()
}

// ForEachStringMap walks a [string map] (a STARTUP body), calling fn for
// every entry; a nil fn only validates. Bytes after the map are ignored. The
// slices alias b.
func ForEachStringMap(b []byte, fn func(key, value []byte)) error {
	r := reader{b: b, full: len(b)}
	r.stringMap(fn)
	return r.done()
}

// Version-dependent layouts. DSE_V1 (0x41) is v4 with [int] flags; DSE_V2
// (0x42) adds the v5 keyspace, PREPARE flags and metadata ids.

// intFlags reports whether query flags are an [int] rather than a [byte].
func intFlags(v uint8) bool { return v >= 5 }

// v5Features reports whether PREPARE flags, result metadata ids and the
// keyspace of query parameters exist in version v.
func v5Features(v uint8) bool { return (v >= 5 && v < VersionDSE1) || v == VersionDSE2 }

func isDSE(v uint8) bool { return v == VersionDSE1 || v == VersionDSE2 }

// DecodeRequest decodes a request body (already decompressed) of the
// envelope described by h into r. Byte slices in r alias body.
//
// body may be shorter than h.Length when the caller buffered only a prefix
// of a large uncompressed body: the fields that are there are decoded, the
// rest are left zero, and the missing tail is no error once the essential
// leading fields are in — the statement of QUERY and PREPARE, the id of
// EXECUTE, the type, count and first statement of BATCH, the length of an
// AUTH_RESPONSE token, the whole of STARTUP and REGISTER. A length that
// does not fit in h.Length is ErrTruncated; an impossible value (invalid
// consistency, v4 flags byte over 0x7F, unknown batch type...) ErrMalformed.
//
// The custom payload prefix (flag 0x04, v4+) is stripped first. On error r is
// reset. KeepValues decides whether Params.Values is filled.
func DecodeRequest(h *Header, body []byte, r *Request) error {
	r.Reset()
	r.Opcode = h.Opcode
	rd := newReader(h, body)
	decodeRequest(h, &rd, r)
	if err := rd.done(); err != nil {
		r.Reset()
		return err
	}
	return nil
}

func decodeRequest(h *Header, rd *reader, r *Request) {
	v := h.Version
	if !h.Opcode.IsRequest(v) {
		rd.fail(ErrMalformed)
		return
	}
	if h.Flags&FlagCustomPayload != 0 && v >= 4 {
		r.CustomPayload, r.CustomPayloadRaw = rd.customPayload()
	}
	switch h.Opcode {
	case OpStartup:
		decodeStartup(rd, r)
	case OpOptions:
		// Empty body; trailing bytes are ignored like in every message.
	case OpQuery:
		r.Query = rd.longStr()
		rd.commit()
		if v == 1 {
			r.Params.PageSize = -1
			r.Params.Consistency = rd.consistency()
			r.HasParams = rd.ok()
			return
		}
		decodeParams(rd, v, r)
	case OpPrepare:
		r.Query = rd.longStr()
		rd.commit()
		if v5Features(v) {
			flags := rd.i32()
			if flags&0x01 != 0 {
				if ks := rd.str(); rd.ok() {
					r.Keyspace = ks
				}
			}
		}
	case OpExecute:
		decodeExecute(rd, v, r)
	case OpBatch:
		decodeBatch(rd, v, r)
	case OpRegister:
		n := rd.stringList()
		if rd.ok() {
			r.EventTypes = n
		}
	case OpAuthResponse:
		n := rd.i32()
		rd.commit()
		if n > 0 {
			r.AuthTokenLen = int(n)
		}
		rd.take(r.AuthTokenLen)
	case OpCredentials:
		// v1 plaintext credentials: counted, never exposed.
		if n := rd.stringMap(nil); rd.ok() {
			r.Credentials = n
		}
	case OpRevise:
		// DSE: [int] revision type, [int] stream id of the paging request,
		// and for "more pages" (DSE_V2 backpressure) [int] next pages.
		typ := rd.i32()
		stream := rd.i32()
		if !rd.ok() {
			return
		}
		r.RevisionType, r.RevisionStream = typ, stream
		if typ == ReviseMorePages {
			if n := rd.i32(); rd.ok() {
				r.RevisionNextPages = n
			}
		}
	}
}

// customPayload reads the [bytes map] custom payload prefix and returns its
// entry count and its raw bytes.
func (r *reader) customPayload() (int, []byte) {
	start := r.off
	n := r.bytesMap()
	if !r.ok() {
		return 0, nil
	}
	return n, r.b[start:r.off:r.off]
}

func decodeStartup(rd *reader, r *Request) {
	n := int(rd.u16())
	if !rd.need(int64(n) * 4) {
		return
	}
	for i := 0; i < n && rd.ok(); i++ {
		k := rd.str()
		val := rd.str()
		if !rd.ok() {
			return
		}
		switch {
		case keyIs(k, "CQL_VERSION"):
			r.CQLVersion = val
		case keyIs(k, "COMPRESSION"):
			r.Compression = val
		case keyIs(k, "DRIVER_NAME"):
			r.DriverName = val
		case keyIs(k, "DRIVER_VERSION"):
			r.DriverVersion = val
		}
	}
}

// keyIs compares a wire key with an upper-case ASCII name, ignoring case.
func keyIs(k []byte, name string) bool {
	if len(k) != len(name) {
		return false
	}
	for i, c := range k {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != name[i] {
			return false
		}
	}
	return true
}

func decodeExecute(rd *reader, v uint8, r *Request) {
	r.PreparedID = rd.shortBytes()
	rd.commit()
	switch {
	case v5Features(v):
		if id := rd.shortBytes(); rd.ok() {
			r.ResultMetadataID = id
		}
	case v == 3 || v == 4:
		// Scylla's SCYLLA_USE_METADATA_ID sends the v5 result metadata id on
		// v3/v4 too. Where the consistency should be, a value above LOCAL_ONE
		// (0x0010, the length of an MD5 id) can only be that id.
		if rd.ok() && rd.off+2 <= len(rd.b) && binary.BigEndian.Uint16(rd.b[rd.off:]) > uint16(LocalOne) {
			if id := rd.shortBytes(); rd.ok() {
				r.ResultMetadataID = id
			}
		}
	case v == 1:
		// <id><n><value_1>...<value_n><consistency>
		p := &r.Params
		p.PageSize = -1
		n := int(rd.u16())
		if !rd.need(int64(n) * 4) {
			return
		}
		p.ValuesCount = n
		for i := 0; i < n && rd.ok(); i++ {
			val := rd.value(v)
			if rd.ok() && r.KeepValues {
				p.Values = append(p.Values, val)
			}
		}
		p.Consistency = rd.consistency()
		r.HasParams = rd.ok()
		return
	}
	decodeParams(rd, v, r)
}

// decodeParams decodes <query_parameters> (v2+).
func decodeParams(rd *reader, v uint8, r *Request) {
	p := &r.Params
	p.PageSize = -1
	c := rd.consistency()
	var flags uint32
	if intFlags(v) {
		flags = uint32(rd.i32())
	} else {
		flags = uint32(rd.u8())
		if flags > 0x7F {
			rd.fail(ErrMalformed)
		}
	}
	if !rd.ok() {
		return
	}
	p.Consistency, p.Flags = c, flags
	r.HasParams = true
	if flags&QueryValues != 0 {
		names := flags&QueryNamesForValues != 0 && v >= 3
		n := int(rd.u16())
		if !rd.need(int64(n) * 4) {
			return
		}
		p.ValuesCount = n
		for i := 0; i < n && rd.ok(); i++ {
			if names {
				rd.str()
			}
			val := rd.value(v)
			if rd.ok() && r.KeepValues {
				p.Values = append(p.Values, val)
			}
		}
	}
	if flags&QueryPageSize != 0 {
		if n := rd.i32(); rd.ok() {
			p.PageSize = n
		}
	}
	if flags&QueryPagingState != 0 {
		if s := rd.bytes(); rd.ok() {
			p.PagingState = s
		}
	}
	decodeParamsTail(rd, v, p, flags)
	if !isDSE(v) {
		return
	}
	p.PageSizeInBytes = flags&QueryPageSizeBytes != 0
	if flags&QueryContinuousPaging != 0 {
		maxPages := rd.i32()
		perSecond := rd.i32()
		var next int32
		if v == VersionDSE2 {
			next = rd.i32()
		}
		if rd.ok() {
			p.ContinuousPaging = true
			p.MaxPages, p.PagesPerSecond, p.NextPages = maxPages, perSecond, next
		}
	}
}

// decodeParamsTail decodes the fields QUERY/EXECUTE parameters share with
// the end of a BATCH: serial consistency, timestamp, keyspace, now. DSE
// versions have the keyspace (even DSE_V1, in DataStax's codec) but no now.
func decodeParamsTail(rd *reader, v uint8, p *QueryParams, flags uint32) {
	if flags&QuerySerialConsistency != 0 {
		if c := rd.consistency(); rd.ok() {
			p.SerialConsistency, p.HasSerial = c, true
		}
	}
	if flags&QueryDefaultTimestamp != 0 && v >= 3 {
		if ts := rd.i64(); rd.ok() {
			p.Timestamp, p.HasTimestamp = ts, true
		}
	}
	if !intFlags(v) {
		return
	}
	if flags&QueryKeyspace != 0 {
		if ks := rd.str(); rd.ok() {
			p.Keyspace = ks
		}
	}
	if flags&QueryNowInSeconds != 0 && !isDSE(v) {
		if now := rd.i32(); rd.ok() {
			p.NowInSeconds, p.HasNowInSeconds = now, true
		}
	}
}

// decodeBatch decodes a BATCH. Values are never preceded by names: the
// names flag comes after the statements and Cassandra rejects it
// (CASSANDRA-10246).
func decodeBatch(rd *reader, v uint8, r *Request) {
	typ := rd.u8()
	n := int(rd.u16())
	if rd.ok() && typ > 2 {
		rd.fail(ErrMalformed)
	}
	// Each statement is at least kind + [short bytes] + [short] count.
	if !rd.need(int64(n) * 5) {
		return
	}
	r.BatchType = typ
	p := &r.Params
	p.PageSize = -1
	if n == 0 {
		rd.commit()
	}
	total := 0
	for i := 0; i < n && rd.ok(); i++ {
		var c BatchChild
		c.Kind = rd.u8()
		switch c.Kind {
		case 0:
			c.Query = rd.longStr()
		case 1:
			c.PreparedID = rd.shortBytes()
		default:
			rd.fail(ErrMalformed)
		}
		if !rd.ok() {
			break
		}
		if i == 0 {
			rd.commit()
		}
		c.FirstValue = len(p.Values)
		nv := int(rd.u16())
		if rd.need(int64(nv) * 4) {
			c.ValuesCount = nv
			total += nv
		}
		r.Children = append(r.Children, c)
		for j := 0; j < nv && rd.ok(); j++ {
			val := rd.value(v)
			if rd.ok() && r.KeepValues {
				p.Values = append(p.Values, val)
			}
		}
	}
	if !rd.ok() {
		return
	}
	p.ValuesCount = total
	c := rd.consistency()
	var flags uint32
	switch {
	case v <= 2:
		// No flags in v2.
	case intFlags(v):
		flags = uint32(rd.i32())
	default:
		flags = uint32(rd.u8())
		if flags > 0x7F {
			rd.fail(ErrMalformed)
		}
	}
	if !rd.ok() {
		return
	}
	p.Consistency, p.Flags = c, flags
	r.HasParams = true
	decodeParamsTail(rd, v, p, flags)
}

// DecodeResponse decodes a response body (already decompressed) of the
// envelope described by h into r. Byte slices in r alias body.
//
// The tracing id (flag 0x02), warnings (0x08, v4+) and custom payload
// (0x04, v4+) prefixes are stripped in that order. The prefix rules of
// DecodeRequest apply; the essential fields are the prefixes, the ERROR
// code, the RESULT kind, the Set_keyspace keyspace, the Prepared id, the
// EVENT type, and the whole of AUTHENTICATE and SUPPORTED. A Rows result
// whose rows_count cannot fit in the body (each cell takes at least 4
// bytes) is ErrTruncated.
//
// The code-specific fields of an ERROR go to r.Error; they are never
// essential (see ErrorDetail.Partial). AUTH_CHALLENGE and AUTH_SUCCESS
// tokens are measured, not exposed. On error r is reset, keeping
// RateLimitCode.
func DecodeResponse(h *Header, body []byte, r *Response) error {
	r.Reset()
	r.Opcode = h.Opcode
	rd := newReader(h, body)
	decodeResponse(h, &rd, r)
	if err := rd.done(); err != nil {
		r.Reset()
		return err
	}
	return nil
}

func decodeResponse(h *Header, rd *reader, r *Response) {
	v := h.Version
	if !h.Opcode.IsResponse(v) {
		rd.fail(ErrMalformed)
		return
	}
	if h.Flags&FlagTracing != 0 {
		r.TracingID = rd.take(16)
	}
	if v >= 4 {
		if h.Flags&FlagWarning != 0 {
			r.Warnings = rd.stringList()
		}
		if h.Flags&FlagCustomPayload != 0 {
			r.CustomPayload, r.CustomPayloadRaw = rd.customPayload()
		}
	}
	switch h.Opcode {
	case OpError:
		r.ErrCode = ErrorCode(rd.i32())
		rd.commit()
		if msg := rd.str(); rd.ok() {
			r.ErrMessage = msg
		}
		// The code-specific tail is optional reading on a copy of the
		// reader: a bad one does not spoil code and message.
		t := *rd
		decodeErrorDetail(&t, v, r)
	case OpReady:
	case OpAuthenticate:
		r.Authenticator = rd.str()
	case OpSupported:
		start := rd.off
		rd.multimap(nil)
		if rd.ok() {
			r.Supported = rd.b[start:rd.off:rd.off]
		}
	case OpResult:
		decodeResult(rd, v, r)
	case OpEvent:
		decodeEvent(rd, v, r)
	case OpAuthChallenge, OpAuthSuccess:
		rd.commit()
		if n := rd.i32(); n > 0 {
			r.AuthTokenLen = int(n)
		}
		rd.take(r.AuthTokenLen)
	}
}

func decodeResult(rd *reader, v uint8, r *Response) {
	kind := ResultKind(rd.i32())
	if !rd.ok() {
		return
	}
	if kind < ResultVoid || kind > ResultSchemaChange {
		rd.fail(ErrMalformed)
		return
	}
	r.Kind = kind
	switch kind {
	case ResultVoid:
	case ResultRows:
		rd.commit()
		var m metadata
		m.read(rd, v, false)
		r.Columns = m.columns
		r.HasMorePages = m.hasMorePages
		r.PagingState = m.pagingState
		r.ResultMetadataID = m.newID
		r.Keyspace, r.Table = m.keyspace, m.table
		rows := rd.i32()
		if !rd.ok() {
			return
		}
		if rows < 0 {
			rd.fail(ErrMalformed)
			return
		}
		if !rd.need(int64(rows) * int64(m.columns) * 4) {
			return
		}
		r.Rows, r.RowsKnown = rows, true
	case ResultSetKeyspace:
		r.Keyspace = rd.str()
	case ResultPrepared:
		r.PreparedID = rd.shortBytes()
		rd.commit()
		if !rd.ok() {
			return
		}
		if v != 3 && v != 4 {
			decodePrepared(rd, v, r, v5Features(v))
			return
		}
		save, saveResp := *rd, *r
		decodePrepared(rd, v, r, false)
		if rd.err != nil && rd.err != errCut {
			// Scylla's SCYLLA_USE_METADATA_ID puts a result metadata id
			// after the prepared id on v3/v4 too: try that layout.
			first := rd.err
			*rd, *r = save, saveResp
			decodePrepared(rd, v, r, true)
			if rd.err != nil && rd.err != errCut {
				*r = saveResp
				rd.err = first
			}
		}
	case ResultSchemaChange:
		rd.commit()
		decodeSchemaChange(rd, v, &r.Schema)
	}
}

func decodePrepared(rd *reader, v uint8, r *Response, withID bool) {
	if withID {
		if id := rd.shortBytes(); rd.ok() {
			r.ResultMetadataID = id
		}
	}
	var m metadata
	m.read(rd, v, true)
	r.BindMarkers, r.PKIndexes = m.columns, m.pkCount
	r.PreparedFlags, r.LWT = m.flags, m.flags&ScyllaLWTBit != 0
	r.Keyspace, r.Table = m.keyspace, m.table
	if v == 1 || !rd.ok() {
		return // v1 has no result metadata
	}
	m = metadata{}
	m.read(rd, v, false)
	r.Columns = m.columns
	if r.Keyspace == nil {
		r.Keyspace, r.Table = m.keyspace, m.table
	}
}

// metadata is what analysis keeps of a Rows <metadata> or a Prepared
// <metadata>.
type metadata struct {
	flags           uint32
	columns         int32
	pkCount         int32
	hasMorePages    bool
	pagingState     []byte
	newID           []byte
	keyspace, table []byte
}

// read decodes a metadata block: the bind-marker metadata of a Prepared
// result when prepared is set, else a Rows (or result) metadata.
func (m *metadata) read(rd *reader, v uint8, prepared bool) {
	flags := rd.i32()
	cols := rd.i32()
	if !rd.ok() {
		return
	}
	if cols < 0 {
		rd.fail(ErrMalformed)
		return
	}
	m.flags, m.columns = uint32(flags), cols
	if prepared {
		if v >= 4 {
			pk := rd.i32()
			if rd.ok() && pk < 0 {
				rd.fail(ErrMalformed)
			}
			if !rd.need(int64(pk) * 2) {
				return
			}
			m.pkCount = pk
			rd.take(int(pk) * 2)
		}
	} else {
		m.hasMorePages = flags&rowsHasMorePages != 0
		if m.hasMorePages {
			if s := rd.bytes(); rd.ok() {
				m.pagingState = s
			}
		}
		if flags&rowsMetadataChanged != 0 {
			if id := rd.shortBytes(); rd.ok() {
				m.newID = id
			}
		}
		if isDSE(v) && flags&rowsDSEContinuous != 0 {
			rd.i32() // continuous paging page number
		}
		if flags&rowsNoMetadata != 0 {
			return
		}
	}
	global := flags&rowsGlobalTableSpec != 0
	if global {
		ks := rd.str()
		t := rd.str()
		if rd.ok() {
			m.keyspace, m.table = ks, t
		}
	}
	// A column spec is at least a name and a type id (plus a table spec
	// when not global).
	min := int64(4)
	if !global {
		min = 8
	}
	if !rd.need(int64(cols) * min) {
		return
	}
	for i := int32(0); i < cols && rd.ok(); i++ {
		if !global {
			rd.str()
			rd.str()
		}
		rd.str()
		rd.skipType(0)
	}
}

// decodeSchemaChange decodes a Schema_change result or SCHEMA_CHANGE event
// after its type. Unknown targets keep change and target and skip the rest.
func decodeSchemaChange(rd *reader, v uint8, s *SchemaChange) {
	change := rd.str()
	if v <= 2 {
		ks := rd.str()
		name := rd.str()
		if rd.ok() {
			s.Change, s.Keyspace, s.Name = change, ks, name
		}
		return
	}
	target := rd.str()
	if !rd.ok() {
		return
	}
	s.Change, s.Target = change, target
	switch string(target) {
	case "KEYSPACE":
		if ks := rd.str(); rd.ok() {
			s.Keyspace = ks
		}
	case "TABLE", "TYPE", "FUNCTION", "AGGREGATE":
		ks := rd.str()
		name := rd.str()
		if !rd.ok() {
			return
		}
		s.Keyspace, s.Name = ks, name
		if target[0] == 'F' || target[0] == 'A' {
			if n := rd.stringList(); rd.ok() {
				s.ArgTypes = n
			}
		}
	}
}

func decodeEvent(rd *reader, v uint8, r *Response) {
	r.EventType = rd.str()
	rd.commit()
	if !rd.ok() {
		return
	}
	switch string(r.EventType) {
	case "SCHEMA_CHANGE":
		decodeSchemaChange(rd, v, &r.Schema)
	case "TOPOLOGY_CHANGE", "STATUS_CHANGE":
		if c := rd.str(); rd.ok() {
			r.Change = c
		}
		if addr, port := rd.inet(); rd.ok() {
			r.NodeAddr, r.NodePort = addr, port
		}
	case "CLIENT_ROUTES_CHANGE":
		// Scylla: [string] change, [string list] connection ids,
		// [string list] host ids.
		if c := rd.str(); rd.ok() {
			r.Change = c
		}
		if n := rd.stringList(); rd.ok() {
			r.ConnectionIDs = n
		}
		if n := rd.stringList(); rd.ok() {
			r.HostIDs = n
		}
	}
}
