package decode

import "testing"

// FuzzSkipValues: stepping over values nobody keeps ends where reading them
// one by one with value does, with the same outcome: the cut of a body
// prefix (extra bytes on the wire), truncation, a malformed length.
func FuzzSkipValues(f *testing.F) {
	for _, tc := range []struct {
		v     uint8
		n     uint16
		extra uint16
		b     []byte
	}{
		// 00 00 00 02 01 02: a 2-byte value; ff ff ff ff: null; ff ff ff fe: not set
		{4, 3, 0, []byte{0, 0, 0, 2, 1, 2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xfe}},
		// ff ff ff fd: length -3, malformed from v4 on, null before
		{4, 2, 0, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfd}},
		{3, 2, 0, []byte{0, 0, 0, 0, 0xff, 0xff, 0xff, 0xfd}},
		// 00 00 00 10 + 4 bytes: a value cut by the end of a prefix, or of the body
		{4, 1, 12, []byte{0, 0, 0, 0x10, 1, 2, 3, 4}},
		{4, 1, 0, []byte{0, 0, 0, 0x10, 1, 2, 3, 4}},
		// 00 00 00 02 01: a value one byte short of its length
		{4, 1, 0, []byte{0, 0, 0, 2, 1}},
		{4, 1, 3, []byte{0, 0, 0, 2, 1}},
		// a length cut in its middle
		{4, 2, 0, []byte{0, 0, 0, 0, 0, 0}},
		{4, 2, 5, []byte{0, 0, 0, 0, 0, 0}},
	} {
		f.Add(tc.v, tc.n, tc.extra, tc.b)
	}
	f.Fuzz(func(t *testing.T, v uint8, n, extra uint16, b []byte) {
		skip := reader{b: b, full: len(b) + int(extra)}
		one := skip
		skip.skipValues(int(n), v)
		for i := 0; i < int(n) && one.ok(); i++ {
			one.value(v)
		}
		if skip.off != one.off || skip.err != one.err {
			t.Fatalf("skipValues: offset %d, %v; value by value: offset %d, %v", skip.off, skip.err, one.off, one.err)
		}
	})
}
