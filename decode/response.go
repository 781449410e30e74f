package decode

// Rows metadata flags.
const (
	rowsGlobalTableSpec = 0x0001
	rowsHasMorePages    = 0x0002
	rowsNoMetadata      = 0x0004
	rowsMetadataChanged = 0x0008
	rowsDSEContinuous   = 0x40000000
)

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
