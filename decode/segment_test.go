package decode

import (
	"bytes"
	"testing"
)

// The test vectors of cql-wire.md §8.4: a v5 OPTIONS envelope (stream 1,
// empty body) in a self-contained segment, cross-checked there against the
// Python driver's SegmentCodec.
var (
	// 09 00 02: H = 0x020009 (length 9, self-contained) | a4 c8 c1: CRC24 0xC1C8A4
	// 05 00 00 01 05 00 00 00 00: v5 request, stream 1, OPTIONS, length 0 | b5 55 74 86: CRC32 0x867455B5
	vecPlain = []byte{0x09, 0x00, 0x02, 0xa4, 0xc8, 0xc1, 0x05, 0x00, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xb5, 0x55, 0x74, 0x86}
	// 09 00 00 00 04: H = 0x0400000009 (wire length 9, uncompressed length 0 = stored, self-contained) | c2 b8 95: CRC24
	vecLZ4 = []byte{0x09, 0x00, 0x00, 0x00, 0x04, 0xc2, 0xb8, 0x95, 0x05, 0x00, 0x00, 0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xb5, 0x55, 0x74, 0x86}
)

func TestSegmentVectors(t *testing.T) {
	if c := Crc24([]byte{0x09, 0x00, 0x02}); c != 0xC1C8A4 {
		t.Errorf("CRC24 = %#x, want 0xC1C8A4", c)
	}
	if c := Crc24([]byte{0x09, 0x00, 0x00, 0x00, 0x04}); c != 0x95B8C2 {
		t.Errorf("CRC24 = %#x, want 0x95B8C2", c)
	}
	if c := SegmentCrc32(vecPlain[6:15]); c != 0x867455B5 {
		t.Errorf("CRC32 = %#x, want 0x867455B5", c)
	}
	var h SegmentHeader
	if n := ParseSegmentHeader(vecPlain, false, &h); n != 6 || h.Length != 9 || !h.SelfContained {
		t.Errorf("plain header: n=%d %+v", n, h)
	}
	if n := ParseSegmentHeader(vecLZ4, true, &h); n != 8 || h.Length != 9 || h.Uncompressed != 0 || !h.SelfContained {
		t.Errorf("lz4 header: n=%d %+v", n, h)
	}
	if got := AppendSegment(nil, vecPlain[6:15], false, true); !bytes.Equal(got, vecPlain) {
		t.Errorf("AppendSegment plain = % x", got)
	}
	if got := AppendSegment(nil, vecPlain[6:15], true, true); !bytes.Equal(got, vecLZ4) {
		t.Errorf("AppendSegment lz4 = % x", got)
	}
	bad := append([]byte{}, vecPlain...)
	bad[3] ^= 1
	if n := ParseSegmentHeader(bad, false, &h); n != -1 {
		t.Errorf("corrupt CRC24 accepted")
	}
}

func TestCrc24TableMatchesDefinition(t *testing.T) {
	b := make([]byte, 0, 64)
	for i := 0; i < 4096; i++ {
		b = append(b[:0], byte(i), byte(i>>4), byte(i*7), byte(i*13), byte(i>>8))
		for n := 0; n <= len(b); n++ {
			if Crc24(b[:n]) != crc24Bitwise(b[:n]) {
				t.Fatalf("CRC24(% x) = %#x, bitwise %#x", b[:n], Crc24(b[:n]), crc24Bitwise(b[:n]))
			}
		}
	}
}
