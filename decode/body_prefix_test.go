package decode

import (
	"bytes"
	"reflect"
	"testing"
)

// Bodies kept only as a prefix (the first bytes of a large frame): decoded
// as far as they go, the same as the whole body up to there.

// TestPrefixBodies cuts every valid fixture at every length and decodes the
// cut body under the original header, as the analyzer does with a buffered
// prefix of a large body. The result must be an error only while the
// essential fields are incomplete, never ErrMalformed, and every field it
// does fill must agree with the full decode.
func TestPrefixBodies(t *testing.T) {
	for _, tc := range requestCases {
		if tc.err != nil {
			continue
		}
		h, body := splitFrame(t, tc.frame)
		var full, r Request
		full.KeepValues, r.KeepValues = true, true
		if err := DecodeRequest(&h, body, &full); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := 0; n < len(body); n++ {
			err := DecodeRequest(&h, body[:n], &r)
			switch {
			case err == nil:
				if msg := prefixMismatch(reflect.ValueOf(r), reflect.ValueOf(full)); msg != "" {
					t.Errorf("%s cut at %d: %s", tc.name, n, msg)
				}
			case err == ErrTruncated:
				if !requestIsReset(&r, true) {
					t.Errorf("%s cut at %d: not reset after error", tc.name, n)
				}
			default:
				t.Errorf("%s cut at %d: %v", tc.name, n, err)
			}
			// The same bytes as a whole body: any outcome but a panic.
			hw := h
			hw.Length = uint32(n)
			if err := DecodeRequest(&hw, body[:n], &r); err != nil && !requestIsReset(&r, true) {
				t.Errorf("%s whole body of %d: not reset after error", tc.name, n)
			}
		}
	}
	for _, tc := range responseCases {
		if tc.err != nil {
			continue
		}
		h, body := splitFrame(t, tc.frame)
		reset := Response{RateLimitCode: tc.rateLimit}
		full, r := reset, reset
		if err := DecodeResponse(&h, body, &full); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := 0; n < len(body); n++ {
			err := DecodeResponse(&h, body[:n], &r)
			switch {
			case err == nil:
				if msg := prefixMismatch(reflect.ValueOf(r), reflect.ValueOf(full)); msg != "" {
					t.Errorf("%s cut at %d: %s", tc.name, n, msg)
				}
			case err == ErrTruncated:
				if !reflect.DeepEqual(r, reset) {
					t.Errorf("%s cut at %d: not reset after error", tc.name, n)
				}
			default:
				t.Errorf("%s cut at %d: %v", tc.name, n, err)
			}
			hw := h
			hw.Length = uint32(n)
			if err := DecodeResponse(&hw, body[:n], &r); err != nil && !reflect.DeepEqual(r, reset) {
				t.Errorf("%s whole body of %d: not reset after error", tc.name, n)
			}
		}
	}
}

// prefixMismatch reports a field of a prefix decode p that is neither zero
// (or the -1 of an absent page size) nor equal to the full decode f.
func prefixMismatch(p, f reflect.Value) string {
	switch p.Kind() {
	case reflect.Struct:
		for i := 0; i < p.NumField(); i++ {
			name := p.Type().Field(i).Name
			if name == "PageSize" && p.Field(i).Int() == -1 {
				continue
			}
			if name == "Partial" || name == "NumReasons" {
				continue // an ERROR tail cut by the prefix, the reasons kept before the cut
			}
			if msg := prefixMismatch(p.Field(i), f.Field(i)); msg != "" {
				return name + ": " + msg
			}
		}
	case reflect.Array:
		for i := 0; i < p.Len(); i++ {
			if msg := prefixMismatch(p.Index(i), f.Index(i)); msg != "" {
				return msg
			}
		}
	case reflect.Slice:
		if p.Type() == bytesType {
			if p.Len() > 0 && !bytes.Equal(p.Bytes(), f.Bytes()) {
				return "differs"
			}
			return ""
		}
		// Children and Values: a prefix of the full list.
		if p.Len() > f.Len() {
			return "longer than in the full decode"
		}
		for i := 0; i < p.Len(); i++ {
			if msg := prefixMismatch(p.Index(i), f.Index(i)); msg != "" {
				return msg
			}
		}
	default:
		if !p.IsZero() && !reflect.DeepEqual(p.Interface(), f.Interface()) {
			return "differs"
		}
	}
	return ""
}

// TestPrefixOfLargeBodies spells out the prefix contract on typical cases.
func TestPrefixOfLargeBodies(t *testing.T) {
	// 84 00 00 09 08 00 10 00 00: v4 response, stream 9, RESULT, length 1 MiB; only 16 bytes buffered.
	rows := fixture("84 00 00 09 08 00 10 00 00", "00 00 00 02", "00 00 00 04", "00 00 00 03", "00 00 27 10")
	h, body := splitFrame(t, rows)
	var resp Response
	if err := DecodeResponse(&h, body, &resp); err != nil || !resp.RowsKnown || resp.Rows != 10000 || resp.Columns != 3 {
		t.Errorf("rows prefix: err %v, %+v", err, resp)
	}
	// The same rows_count cannot fit in a 100-byte body.
	h.Length = 100
	if err := DecodeResponse(&h, body, &resp); err != ErrTruncated {
		t.Errorf("rows count over the whole length: err %v", err)
	}
	// A paging state that claims more than the whole body is an error even
	// in a prefix.
	paging := fixture("84 00 00 09 08 00 00 10 00", "00 00 00 02", "00 00 00 02", "00 00 00 01", "00 00 20 00")
	h, body = splitFrame(t, paging)
	if err := DecodeResponse(&h, body, &resp); err != ErrTruncated {
		t.Errorf("paging state over the whole length: err %v", err)
	}

	// 04 00 00 01 07 00 01 00 00: v4 request, stream 1, QUERY, length 64 KiB.
	query := fixture("04 00 00 01 07 00 01 00 00", "00 00 00 10", ascii("INSERT INTO t VA"))
	h, body = splitFrame(t, query)
	var req Request
	if err := DecodeRequest(&h, body[:10], &req); err != ErrTruncated {
		t.Errorf("query cut inside the statement: err %v", err)
	}
	if err := DecodeRequest(&h, body, &req); err != nil || string(req.Query) != "INSERT INTO t VA" || req.HasParams {
		t.Errorf("query with statement only: err %v, %+v", err, req)
	}

	// 04 00 00 01 0d 00 01 00 00: v4 request, stream 1, BATCH, length 64 KiB.
	batch := fixture("04 00 00 01 0d 00 01 00 00", "00", "01 00", // LOGGED, 256 statements
		"00", "00 00 00 08", ascii("UPDATE a"), "00 00", // first statement
		"01", "00 10", "00 11 22") // second statement cut inside its id
	h, body = splitFrame(t, batch)
	if err := DecodeRequest(&h, body, &req); err != nil || len(req.Children) != 1 || req.HasParams {
		t.Errorf("batch prefix: err %v, %+v", err, req)
	}
	if err := DecodeRequest(&h, body[:8], &req); err != ErrTruncated {
		t.Errorf("batch cut inside the first statement: err %v", err)
	}
}
