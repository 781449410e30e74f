package decode

import (
	"bytes"
	"encoding/binary"
	"reflect"
	"testing"

	"github.com/golang/snappy"
)

// fuzzHeader builds the header a fuzz input describes. extra makes the body a
// prefix of a longer one.
func fuzzHeader(version, flags, opcode byte, extra uint16, body []byte, response bool) Header {
	return Header{
		Version:  version & 0x7F,
		Response: response,
		Flags:    Flags(flags),
		Opcode:   Opcode(opcode),
		Length:   uint32(len(body)) + uint32(extra),
		Size:     HeaderLen,
	}
}

func FuzzDecodeRequest(f *testing.F) {
	for _, tc := range requestCases {
		h, body := splitFrame(f, tc.frame)
		f.Add(h.Version, byte(h.Flags), byte(h.Opcode), uint16(0), tc.keep, body)
		f.Add(h.Version, byte(h.Flags), byte(h.Opcode), uint16(100), true, body[:len(body)/2])
	}
	f.Fuzz(func(t *testing.T, version, flags, opcode byte, extra uint16, keep bool, body []byte) {
		h := fuzzHeader(version, flags, opcode, extra, body, false)
		r := Request{KeepValues: keep}
		err := DecodeRequest(&h, body, &r)
		if err != nil {
			if err != ErrTruncated && err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			if !requestIsReset(&r, keep) {
				t.Fatalf("not reset after %v: %+v", err, r)
			}
		} else {
			checkWithin(t, body, &r)
			if !keep && len(r.Params.Values) != 0 {
				t.Fatalf("values kept without KeepValues")
			}
			if len(r.Params.Values) > r.Params.ValuesCount && r.Opcode != OpBatch {
				t.Fatalf("%d values, count %d", len(r.Params.Values), r.Params.ValuesCount)
			}
			if len(r.Children) > len(body)/5+1 {
				t.Fatalf("%d children from %d bytes", len(r.Children), len(body))
			}
			if r.Opcode == OpAuthResponse || r.Opcode == OpCredentials {
				c := r
				c.CustomPayloadRaw = nil // the prefix, not the secret
				forEachSlice(reflect.ValueOf(&c).Elem(), func(s []byte) {
					if len(s) > 0 {
						t.Fatalf("%v exposes %q", r.Opcode, s)
					}
				})
			}
			checkCustomPayload(t, r.CustomPayload, r.CustomPayloadRaw)
			p := r.Params
			if (p.ContinuousPaging || p.PageSizeInBytes) && !isDSE(h.Version) {
				t.Fatalf("DSE paging options in version %d", h.Version)
			}
			if p.NextPages != 0 && h.Version != VersionDSE2 {
				t.Fatalf("next_pages in version %d", h.Version)
			}
			if r.RevisionNextPages != 0 && r.RevisionType != ReviseMorePages {
				t.Fatalf("next pages for revision type %d", r.RevisionType)
			}
		}
		// A dirty, reused Request gives the same outcome.
		d := Request{KeepValues: keep, Query: []byte("stale"), EventTypes: 9,
			Children: []BatchChild{{Kind: 1}}, Params: QueryParams{Values: [][]byte{{1}}, PageSize: 3}}
		err2 := DecodeRequest(&h, body, &d)
		if err2 != err || !reflect.DeepEqual(normalized(d), normalized(r)) || !sameValues(d.Params.Values, r.Params.Values) {
			t.Fatalf("reuse changed the outcome: %v vs %v\n%+v\n%+v", err, err2, r, d)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, tc := range responseCases {
		h, body := splitFrame(f, tc.frame)
		f.Add(h.Version, byte(h.Flags), byte(h.Opcode), uint16(0), body)
		f.Add(h.Version, byte(h.Flags), byte(h.Opcode), uint16(100), body[:len(body)/2])
	}
	f.Fuzz(func(t *testing.T, version, flags, opcode byte, extra uint16, body []byte) {
		// The top bit of extra makes the ERROR code at the start of the body
		// the advertised rate-limit code.
		var rl ErrorCode
		if extra&0x8000 != 0 && len(body) >= 4 {
			rl = ErrorCode(binary.BigEndian.Uint32(body))
		}
		h := fuzzHeader(version, flags, opcode, extra, body, true)
		r := Response{RateLimitCode: rl}
		err := DecodeResponse(&h, body, &r)
		if err != nil {
			if err != ErrTruncated && err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(r, Response{RateLimitCode: rl}) {
				t.Fatalf("not reset after %v: %+v", err, r)
			}
		} else {
			checkResponse(t, &h, &r)
			checkWithin(t, body, &r)
			if r.Columns < 0 || r.Rows < 0 || r.BindMarkers < 0 || r.PKIndexes < 0 {
				t.Fatalf("negative count: %+v", r)
			}
			if r.RowsKnown && int64(r.Rows)*int64(r.Columns)*4 > int64(h.Length) {
				t.Fatalf("%d rows × %d columns in %d bytes", r.Rows, r.Columns, h.Length)
			}
			if r.Supported != nil {
				if err := ForEachMultimap(r.Supported, func(k, v []byte) {}); err != nil {
					t.Fatalf("SUPPORTED does not walk: %v", err)
				}
				var s ScyllaInfo
				if err := ParseScyllaSupported(r.Supported, &s); err != nil {
					t.Fatalf("SUPPORTED does not parse: %v", err)
				}
			}
		}
		d := Response{RateLimitCode: rl, Keyspace: []byte("stale"), Rows: 3, RowsKnown: true, Warnings: 2,
			Error: ErrorDetail{Partial: true, NumReasons: 3, WriteType: []byte("x")}, AuthTokenLen: 5}
		if err2 := DecodeResponse(&h, body, &d); err2 != err || !reflect.DeepEqual(normalized(d), normalized(r)) {
			t.Fatalf("reuse changed the outcome: %v vs %v", err, err2)
		}
	})
}

// checkCustomPayload: the raw custom payload walks and has the counted
// entries.
func checkCustomPayload(t *testing.T, count int, raw []byte) {
	t.Helper()
	if raw == nil {
		if count != 0 {
			t.Fatalf("%d custom payload entries without raw bytes", count)
		}
		return
	}
	n := 0
	if err := ForEachBytesMap(raw, func(k, v []byte) { n++ }); err != nil || n != count {
		t.Fatalf("custom payload: %d entries walked, %d counted, %v", n, count, err)
	}
}

// checkResponse asserts the invariants of a successful response decode
// beyond aliasing.
func checkResponse(t *testing.T, h *Header, r *Response) {
	t.Helper()
	checkCustomPayload(t, r.CustomPayload, r.CustomPayloadRaw)
	e := &r.Error
	if h.Opcode != OpError && !reflect.DeepEqual(normalized(*e), normalized(ErrorDetail{})) {
		t.Fatalf("error detail in %v: %+v", h.Opcode, e)
	}
	if e.NumReasons < 0 || e.NumReasons > MaxFailureReasons || (e.NumReasons > 0 && int(e.NumFailures) < e.NumReasons) {
		t.Fatalf("%d reasons kept of %d", e.NumReasons, e.NumFailures)
	}
	for i, reason := range e.Reasons {
		if n := len(reason.Endpoint); (i < e.NumReasons) != (n != 0) || (n != 0 && n != 4 && n != 16) {
			t.Fatalf("reason %d of %d: endpoint of %d bytes", i, e.NumReasons, n)
		}
	}
	if e.HasContentions && (h.Version < 5 || string(e.WriteType) != "CAS") {
		t.Fatalf("contentions in v%d for %q", h.Version, e.WriteType)
	}
	rl := r.RateLimitCode
	if rl == 0 {
		rl = ErrScyllaRateLimit
	}
	standard := false // a code with its own layout, which the rate-limit code cannot take over
	switch r.ErrCode {
	case ErrUnavailable, ErrWriteTimeout, ErrReadTimeout, ErrReadFailure, ErrWriteFailure, ErrCASWriteUnknown,
		ErrFunctionFailure, ErrAlreadyExists, ErrUnprepared:
		standard = true
	}
	if e.RateLimit != (h.Opcode == OpError && r.ErrCode == rl && !standard) {
		t.Fatalf("rate limit %v for code %v (rate-limit code %v)", e.RateLimit, r.ErrCode, rl)
	}
	if n := len(r.NodeAddr); n != 0 && n != 4 && n != 16 {
		t.Fatalf("node address of %d bytes", n)
	}
	if r.AuthTokenLen < 0 || int64(r.AuthTokenLen) > int64(h.Length) {
		t.Fatalf("token of %d bytes in %d", r.AuthTokenLen, h.Length)
	}
	if r.Opcode == OpAuthChallenge || r.Opcode == OpAuthSuccess {
		c := *r
		c.TracingID, c.CustomPayloadRaw = nil, nil
		forEachSlice(reflect.ValueOf(&c).Elem(), func(s []byte) {
			if len(s) > 0 {
				t.Fatalf("%v exposes %q", r.Opcode, s)
			}
		})
	}
	if r.LWT != (r.PreparedFlags&ScyllaLWTBit != 0) {
		t.Fatalf("LWT %v with flags %#x", r.LWT, r.PreparedFlags)
	}
}

// FuzzForEachBytesMap: a walk that succeeds reports entries lying inside
// the input, no more than the bytes allow.
func FuzzForEachBytesMap(f *testing.F) {
	for _, tc := range responseCases {
		h, body := splitFrame(f, tc.frame)
		if h.Flags&FlagCustomPayload != 0 {
			f.Add(body)
		}
	}
	for _, tc := range requestCases {
		h, body := splitFrame(f, tc.frame)
		if h.Flags&FlagCustomPayload != 0 {
			f.Add(body)
		}
	}
	f.Add(fixture("00 01 00 00 ff ff ff ff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		n := 0
		err := ForEachBytesMap(b, func(k, v []byte) {
			n++
			if !within(k, b) || !within(v, b) {
				t.Fatalf("entry outside the input")
			}
		})
		switch err {
		case nil:
			if 2+6*n > len(b) {
				t.Fatalf("%d entries in %d bytes", n, len(b))
			}
		case ErrTruncated, ErrMalformed:
		default:
			t.Fatalf("unexpected error %v", err)
		}
		if err2 := ForEachBytesMap(b, nil); err2 != err {
			t.Fatalf("nil fn: %v, with fn: %v", err2, err)
		}
	})
}

// FuzzTabletsRouting: never panics; an accepted payload holds at least the
// bytes its replicas need, and stays accepted, with the same values, when
// bytes are appended (the tablets-routing-v2 version).
func FuzzTabletsRouting(f *testing.F) {
	f.Add(tabletsV1)
	f.Add(fixture(tabletsV1, "00 00 00 08 00 00 00 00 00 00 00 2a"))
	f.Add(fixture("00 00 00 08 80 00 00 00 00 00 00 00", "00 00 00 08 7f ff ff ff ff ff ff ff", "00 00 00 04 00 00 00 00"))
	f.Add(fixture(tabletsV1[:24], "00 00 00 24 00 00 00 01 00 00 00 1c 00 00 00 10", hostID1, "00 00 00 04 ff ff ff ff"))
	f.Add(tabletsV1[:50])
	f.Fuzz(func(t *testing.T, payload []byte) {
		ok, first, last, n := TabletsRouting(payload)
		if !ok {
			if first != 0 || last != 0 || n != 0 {
				t.Fatalf("values without ok: %d %d %d", first, last, n)
			}
			return
		}
		if n < 0 || 28+32*n > len(payload) {
			t.Fatalf("%d replicas in %d bytes", n, len(payload))
		}
		ok2, first2, last2, n2 := TabletsRouting(append(payload[:len(payload):len(payload)], 1, 2, 3))
		if !ok2 || first2 != first || last2 != last || n2 != n {
			t.Fatalf("trailing bytes changed the outcome")
		}
	})
}

// FuzzParseScyllaSupported: the parse succeeds exactly when the multimap
// walks; on error everything is absent; on success slices alias the input
// and numbers are in range.
func FuzzParseScyllaSupported(f *testing.F) {
	for _, tc := range responseCases {
		h, body := splitFrame(f, tc.frame)
		if h.Opcode == OpSupported {
			f.Add(body)
		}
	}
	f.Add(fixture("00 01", str("PROTOCOL_VERSIONS"), "00 02", str("5/v5-beta"), str("31/v31")))
	f.Add(fixture("00 02", str("SCYLLA_RATE_LIMIT_ERROR"), "00 01", str("ERROR_CODE=-2147483648"),
		str("SCYLLA_SHARD"), "00 01", str("2147483647")))
	f.Fuzz(func(t *testing.T, b []byte) {
		var s ScyllaInfo
		err := ParseScyllaSupported(b, &s)
		if walk := ForEachMultimap(b, nil); walk != err {
			t.Fatalf("parse %v, walk %v", err, walk)
		}
		absent := ScyllaInfo{Shard: -1, NrShards: -1, ShardingIgnoreMSB: -1, ShardAwarePort: -1, ShardAwarePortSSL: -1}
		if err != nil {
			if err != ErrTruncated && err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(s, absent) {
				t.Fatalf("not absent after %v: %+v", err, s)
			}
			return
		}
		checkWithin(t, b, &s)
		if s.Shard < -1 || s.NrShards < -1 || s.NrShards == 0 || s.ShardingIgnoreMSB < -1 || s.ShardingIgnoreMSB > 63 ||
			s.ShardAwarePort < -1 || s.ShardAwarePort > 65535 || s.ShardAwarePortSSL < -1 || s.ShardAwarePortSSL > 65535 {
			t.Fatalf("out of range: %+v", s)
		}
		if s.BetaVersions&^s.ProtocolVersions != 0 {
			t.Fatalf("beta versions %#x not in %#x", s.BetaVersions, s.ProtocolVersions)
		}
	})
}

func FuzzDecompressLZ4(f *testing.F) {
	f.Add(fixture("00 00 00 00"), uint32(1<<20))
	f.Add(fixture("00 00 00 00 00"), uint32(1<<20))
	f.Add(fixture("10 00 00 00 00"), uint32(16<<20))
	f.Add(fixture("00 00 00 12 f0 03 00 00 00 03 00 0c 63 71 6c 73 6e 69 66 66 5f 6c 61 62"), uint32(1<<20))
	f.Add(lz4Body(f, bytes.Repeat([]byte("abc"), 300)), uint32(1000))
	f.Fuzz(func(t *testing.T, src []byte, max uint32) {
		limit := int(max % (4 << 20))
		out, err := DecompressLZ4(nil, src, limit)
		switch err {
		case nil:
			if claim := binary.BigEndian.Uint32(src); int(claim) != len(out) || len(out) > limit {
				t.Fatalf("%d bytes out, claim %d, limit %d", len(out), claim, limit)
			}
		case ErrTooLarge:
			if int(binary.BigEndian.Uint32(src)) <= limit {
				t.Fatalf("ErrTooLarge under the limit")
			}
		case ErrMalformed:
		default:
			t.Fatalf("unexpected error %v", err)
		}
		// Whatever the bytes, they also round-trip as plain data.
		back, err := DecompressLZ4(out[:0], lz4Body(t, src), len(src))
		if err != nil || !bytes.Equal(back, src) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzDecompressSnappy(f *testing.F) {
	f.Add(fixture("00"), uint32(1<<20))
	f.Add(fixture("04 0c 00 00 00 01"), uint32(1<<20))
	f.Add(append(binary.AppendUvarint(nil, 256<<20), 0), uint32(16<<20))
	f.Add(snappy.Encode(nil, bytes.Repeat([]byte("abc"), 300)), uint32(1000))
	f.Fuzz(func(t *testing.T, src []byte, max uint32) {
		limit := int(max % (4 << 20))
		out, err := DecompressSnappy(nil, src, limit)
		switch err {
		case nil:
			if claim, _ := snappy.DecodedLen(src); claim != len(out) || len(out) > limit {
				t.Fatalf("%d bytes out, claim %d, limit %d", len(out), claim, limit)
			}
		case ErrTooLarge:
			if claim, _ := snappy.DecodedLen(src); claim <= limit {
				t.Fatalf("ErrTooLarge under the limit")
			}
		case ErrMalformed:
		default:
			t.Fatalf("unexpected error %v", err)
		}
		back, err := DecompressSnappy(nil, snappy.Encode(nil, src), len(src))
		if err != nil || !bytes.Equal(back, src) {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func FuzzParseHeader(f *testing.F) {
	for _, tc := range requestCases {
		f.Add(tc.frame[:min(len(tc.frame), 9)])
	}
	for _, tc := range responseCases {
		f.Add(tc.frame[:min(len(tc.frame), 9)])
	}
	f.Add(fixture("84 00 ff ff 0c 7f ff ff ff"))
	f.Add(fixture("01 00 01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := Header{Length: 12345, Version: 99}
		n := ParseHeader(b, &h)
		switch n {
		case -1, 0:
			if n == 0 && len(b) >= HeaderLen {
				t.Fatalf("need more with %d bytes", len(b))
			}
		case 8, 9:
			if len(b) < n || int(h.Size) != n || h.Length > MaxBodyLen || h.FrameLen() != n+int(h.Length) {
				t.Fatalf("n %d, %+v", n, h)
			}
			if (n == 8) != (h.Version <= 2) || !KnownVersion(h.Version) {
				t.Fatalf("n %d for version %d", n, h.Version)
			}
			_ = h.Plausible(true)
			_ = h.Plausible(false)
		default:
			t.Fatalf("ParseHeader returned %d", n)
		}
	})
}
