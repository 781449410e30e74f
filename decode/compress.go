package decode

import (
	"encoding/binary"

	"github.com/golang/snappy"
	"github.com/pierrec/lz4/v4"
)

// Bounds on how much a compressed byte can expand. An LZ4 sequence turns at
// most one length byte (255) into 255 output bytes; a Snappy copy turns a
// 3-byte tag into at most 64 bytes. A claim beyond these cannot be honest,
// so it is refused before any buffer is sized for it.
const (
	lz4MaxRatio    = 255
	snappyMaxRatio = 32
)

// DecompressLZ4 decompresses a v1–v4 lz4 body: a 4-byte big-endian
// uncompressed length followed by one raw LZ4 block. The output is written
// into dst[:0], grown only when dst is too small and never beyond max, and
// returned. A claim over max is ErrTooLarge and allocates nothing; an output
// that does not match the claim exactly, or bytes left over, is ErrMalformed.
// On error dst[:0] is returned.
func DecompressLZ4(dst, src []byte, max int) ([]byte, error) {
	n, err := lz4Claim(src, max)
	if err != nil {
		return dst[:0], err
	}
	block := src[4:]
	if n == 0 {
		// Drivers send an empty block, or a single zero token, for an empty body.
		if len(block) == 0 || (len(block) == 1 && block[0] == 0) {
			return dst[:0], nil
		}
		return dst[:0], ErrMalformed
	}
	out := dst[:0]
	if cap(out) < n {
		out = make([]byte, n)
	}
	out = out[:n]
	got, err := lz4.UncompressBlock(block, out)
	if err != nil || got != n {
		return dst[:0], ErrMalformed
	}
	return out, nil
}

// DecompressSnappy decompresses a v1–v4 snappy body: one raw Snappy block,
// which starts with its uncompressed length as a varint. Same contract as
// DecompressLZ4.
func DecompressSnappy(dst, src []byte, max int) ([]byte, error) {
	claim, err := snappyClaim(src, max)
	if err != nil {
		return dst[:0], err
	}
	out := dst[:0]
	if cap(out) < claim {
		out = make([]byte, claim)
	}
	out = out[:claim]
	got, err := snappy.Decode(out, src)
	if err != nil || len(got) != claim || (claim > 0 && &got[0] != &out[0]) {
		return dst[:0], ErrMalformed
	}
	return got, nil
}

// lz4Claim returns the size a v1–v4 lz4 body says it decompresses to, or
// why that cannot be: over max (ErrTooLarge), or more than its compressed
// bytes can expand to (ErrMalformed). It allocates nothing.
func lz4Claim(src []byte, max int) (int, error) {
	if len(src) < 4 {
		return 0, ErrMalformed
	}
	claim := uint64(binary.BigEndian.Uint32(src))
	if claim > uint64(max) {
		return 0, ErrTooLarge
	}
	if claim > lz4MaxRatio*uint64(len(src)-4)+lz4MaxRatio {
		return 0, ErrMalformed
	}
	return int(claim), nil
}

// snappyClaim is lz4Claim for a snappy body.
func snappyClaim(src []byte, max int) (int, error) {
	claim, err := snappy.DecodedLen(src)
	if err != nil || claim < 0 {
		return 0, ErrMalformed
	}
	if claim > max {
		return 0, ErrTooLarge
	}
	if uint64(claim) > snappyMaxRatio*uint64(len(src)) {
		return 0, ErrMalformed
	}
	return claim, nil
}
