package decode

import "encoding/binary"

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
		if !names && !r.KeepValues {
			rd.skipValues(n, v)
		} else {
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
