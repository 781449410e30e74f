package decode

import (
	"encoding/binary"
	"hash/crc32"
)

// Protocol v5 wraps envelopes in segments ("frames" in the v5 spec):
//
//	uncompressed: 3-byte LE header (17-bit payload length, bit 17 self-contained), CRC24, payload, CRC32
//	lz4:          5-byte LE header (17-bit wire length, 17-bit uncompressed length, bit 34
//	              self-contained), CRC24, payload, CRC32 of the wire payload
//
// Segment-level integers are little-endian; everything inside is the usual
// big-endian envelope.

// MaxSegmentPayload is the largest v5 segment payload (2^17 - 1).
const MaxSegmentPayload = 1<<17 - 1

// SegmentHeader is a decoded v5 segment header.
type SegmentHeader struct {
	Length        int  // payload bytes on the wire
	Uncompressed  int  // lz4 only: payload size after decompression; 0 = stored as is
	SelfContained bool // the payload holds whole envelopes only
	Size          int  // header bytes: 6 (uncompressed) or 8 (lz4)
}

// Crc24 computes the CRC24 that protects a v5 segment header: polynomial
// 0x1974F0B, initial value 0x875060, MSB first, no reflection.
func Crc24(b []byte) uint32 {
	crc := uint32(0x875060)
	for _, c := range b {
		crc = (crc<<8 ^ crc24Table[byte(crc>>16)^c]) & 0xFFFFFF
	}
	return crc
}

// crc24Bitwise is the definition, one bit at a time; it builds the table
// and checks it in tests.
func crc24Bitwise(b []byte) uint32 {
	crc := uint32(0x875060)
	for _, c := range b {
		crc ^= uint32(c) << 16
		for i := 0; i < 8; i++ {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1974F0B
			}
		}
	}
	return crc & 0xFFFFFF
}

// crc24Table[i] is the CRC24 register update for the byte i entering at
// the top of a zero register.
var crc24Table = func() (t [256]uint32) {
	for i := range t {
		crc := uint32(i) << 16
		for j := 0; j < 8; j++ {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1974F0B
			}
		}
		t[i] = crc & 0xFFFFFF
	}
	return t
}()

// crc32Init is the IEEE CRC-32 state after the bytes FA 2D 55 CA, which
// every v5 payload checksum starts with.
var crc32Init = crc32.Update(0, crc32.IEEETable, []byte{0xFA, 0x2D, 0x55, 0xCA})

// SegmentCrc32 computes the CRC32 trailer of a v5 segment payload.
func SegmentCrc32(payload []byte) uint32 {
	return crc32.Update(crc32Init, crc32.IEEETable, payload)
}

// ParseSegmentHeader decodes a v5 segment header of the given layout at the
// start of b. It returns the header size on success, 0 when b is too short,
// and -1 when the padding bits are set or the CRC24 does not match (the
// length must then not be trusted).
func ParseSegmentHeader(b []byte, lz4 bool, h *SegmentHeader) int {
	if lz4 {
		if len(b) < 8 {
			return 0
		}
		if b[4]&0xF8 != 0 {
			return -1
		}
		v := uint64(b[0]) | uint64(b[1])<<8 | uint64(b[2])<<16 | uint64(b[3])<<24 | uint64(b[4])<<32
		if Crc24(b[:5]) != uint32(b[5])|uint32(b[6])<<8|uint32(b[7])<<16 {
			return -1
		}
		*h = SegmentHeader{
			Length:        int(v & 0x1FFFF),
			Uncompressed:  int(v >> 17 & 0x1FFFF),
			SelfContained: v&(1<<34) != 0,
			Size:          8,
		}
		return 8
	}
	if len(b) < 6 {
		return 0
	}
	if b[2]&0xFC != 0 {
		return -1
	}
	v := uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16
	if Crc24(b[:3]) != uint32(b[3])|uint32(b[4])<<8|uint32(b[5])<<16 {
		return -1
	}
	*h = SegmentHeader{Length: int(v & 0x1FFFF), SelfContained: v&(1<<17) != 0, Size: 6}
	return 6
}

// AppendSegment appends a v5 segment carrying payload (uncompressed layout,
// or lz4 layout storing the payload as is). Used by tests and the generator.
func AppendSegment(dst, payload []byte, lz4, selfContained bool) []byte {
	n := len(payload)
	if lz4 {
		v := uint64(n)
		if selfContained {
			v |= 1 << 34
		}
		var h [5]byte
		for i := range h {
			h[i] = byte(v >> (8 * i))
		}
		dst = append(dst, h[:]...)
		c := Crc24(h[:])
		dst = append(dst, byte(c), byte(c>>8), byte(c>>16))
	} else {
		v := uint32(n)
		if selfContained {
			v |= 1 << 17
		}
		h := [3]byte{byte(v), byte(v >> 8), byte(v >> 16)}
		dst = append(dst, h[:]...)
		c := Crc24(h[:])
		dst = append(dst, byte(c), byte(c>>8), byte(c>>16))
	}
	dst = append(dst, payload...)
	return binary.LittleEndian.AppendUint32(dst, SegmentCrc32(payload))
}
