package synth

import (
	"encoding/binary"
	"hash/crc32"

	"github.com/pierrec/lz4/v4"
)

// Protocol v5 segment framing (cql-wire.md §8). Written from the reference
// rather than taken from decode, like the envelopes: a CRC or layout bug in
// the decoder must not be mirrored here. The tests pin these functions to
// the reference's test vectors.

// maxSegPayload is the largest v5 segment payload, 2^17 - 1 (§8.5).
const maxSegPayload = 1<<17 - 1

// crc24 is the v5 header CRC: polynomial 0x1974F0B, initial value 0x875060,
// most significant bit first, no reflection, no final XOR (§8.4).
func crc24(b []byte) uint32 {
	crc := uint32(0x875060)
	for _, c := range b {
		crc ^= uint32(c) << 16
		for range 8 {
			crc <<= 1
			if crc&0x1000000 != 0 {
				crc ^= 0x1974F0B
			}
		}
	}
	return crc & 0xFFFFFF
}

// segCrc32Init is the IEEE CRC-32 after the bytes FA 2D 55 CA, with which
// every v5 payload checksum starts (§8.4).
var segCrc32Init = crc32.Update(0, crc32.IEEETable, []byte{0xFA, 0x2D, 0x55, 0xCA})

// segCrc32 is the CRC32 trailer of a v5 segment payload.
func segCrc32(payload []byte) uint32 {
	return crc32.Update(segCrc32Init, crc32.IEEETable, payload)
}

// appendWriteV5 appends the envelopes of one write call, framed as v5
// segments, to dst: whole envelopes in self-contained segments (one per
// write, more when they exceed the payload maximum), and an envelope too
// big for one segment sliced into consecutive non-self-contained segments
// filled to the maximum, as Cassandra and the drivers write them (§8.5).
// e.ends[i] is set to where the segment carrying the end of items[i] ends
// in dst: the peer's application sees the envelope only then.
func (e *encoder) appendWriteV5(dst []byte, items []item, fc frameCtx) []byte {
	env := e.env[:0]
	e.ends = e.ends[:0]
	group, first := 0, 0 // pending self-contained payload env[group:], its first item
	flush := func(upto, next int) {
		if upto > group {
			dst = e.appendSegment(dst, env[group:upto], true)
		}
		for range next - first {
			e.ends = append(e.ends, len(dst))
		}
		group, first = upto, next
	}
	for i, it := range items {
		at := len(env)
		env = e.appendFrame(env, it, fc)
		switch n := len(env) - at; {
		case n > maxSegPayload:
			flush(at, i)
			for off := at; off < len(env); off += maxSegPayload {
				dst = e.appendSegment(dst, env[off:min(off+maxSegPayload, len(env))], false)
			}
			group = len(env)
			flush(group, i+1)
		case len(env)-group > maxSegPayload:
			flush(at, i)
		}
	}
	flush(len(env), len(items))
	e.env = env
	return dst
}

// appendSegment appends one v5 segment carrying payload (at most
// maxSegPayload bytes): the 6-byte uncompressed layout, or with lz4 the
// 8-byte layout whose payload is compressed when that makes it smaller and
// stored as is with uncompressed length 0 otherwise (§8.2, §8.3).
func (e *encoder) appendSegment(dst, payload []byte, selfContained bool) []byte {
	e.segs++
	sc := uint64(0)
	if selfContained {
		sc = 1
	}
	if e.comp != compLZ4 {
		h := uint32(len(payload)) | uint32(sc)<<17
		dst = append(dst, byte(h), byte(h>>8), byte(h>>16))
		c := crc24(dst[len(dst)-3:])
		dst = append(dst, byte(c), byte(c>>8), byte(c>>16))
		dst = append(dst, payload...)
		return binary.LittleEndian.AppendUint32(dst, segCrc32(payload))
	}
	wire, u := payload, 0
	if e.lzOut == nil {
		e.lzOut = make([]byte, lz4.CompressBlockBound(maxSegPayload))
	}
	if n, err := e.lz.CompressBlock(payload, e.lzOut); err == nil && n > 0 && n < len(payload) {
		wire, u = e.lzOut[:n], len(payload)
	}
	h := uint64(len(wire)) | uint64(u)<<17 | sc<<34
	dst = append(dst, byte(h), byte(h>>8), byte(h>>16), byte(h>>24), byte(h>>32))
	c := crc24(dst[len(dst)-5:])
	dst = append(dst, byte(c), byte(c>>8), byte(c>>16))
	dst = append(dst, wire...)
	return binary.LittleEndian.AppendUint32(dst, segCrc32(wire))
}
