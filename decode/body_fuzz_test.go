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
			if r.Opcode == OpAuthResponse {
				forEachSlice(reflect.ValueOf(&r).Elem(), func(s []byte) {
					if len(s) > 0 {
						t.Fatalf("AUTH_RESPONSE exposes %q", s)
					}
				})
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
		h := fuzzHeader(version, flags, opcode, extra, body, true)
		var r Response
		err := DecodeResponse(&h, body, &r)
		if err != nil {
			if err != ErrTruncated && err != ErrMalformed {
				t.Fatalf("unexpected error %v", err)
			}
			if !reflect.DeepEqual(r, Response{}) {
				t.Fatalf("not reset after %v: %+v", err, r)
			}
		} else {
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
			}
		}
		d := Response{Keyspace: []byte("stale"), Rows: 3, RowsKnown: true, Warnings: 2}
		if err2 := DecodeResponse(&h, body, &d); err2 != err || !reflect.DeepEqual(normalized(d), normalized(r)) {
			t.Fatalf("reuse changed the outcome: %v vs %v", err, err2)
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
