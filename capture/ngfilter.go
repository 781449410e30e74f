package capture

import (
	"bufio"
	"encoding/binary"
	"io"
)

// pcapng block types the filter looks at, and the size of an (enhanced)
// packet block without packet bytes or options: type, length, interface,
// time (2 words), captured and original length, trailing length.
const (
	ngBlockSectionHeader  = 0x0A0D0D0A // a palindrome: the same in both byte orders
	ngBlockPacket         = 2          // obsolete, same layout for what matters here
	ngBlockSimplePacket   = 3
	ngBlockEnhancedPacket = 6
	ngByteOrderMagic      = 0x1A2B3C4D
	ngPacketBlockMin      = 32
	// maxBlockOverhead is the room a pcapng packet block may take beyond
	// its packet bytes (options such as comments and hashes).
	maxBlockOverhead = 64 << 10
)

// byteOrder is what binary.LittleEndian and binary.BigEndian both are.
type byteOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// ngFilter sits between the file and pcapgo's pcapng reader. It follows the
// block framing (every block starts with its type and total length) and
//
//   - leaves out packet blocks that claim a packet longer than MaxRecordLen
//     or longer than the block itself, and packet blocks too long for any
//     such packet. pcapgo would read a claimed length as far as the input
//     goes; left out here, they cost nothing, and since the block length
//     still frames them, reading goes on after them.
//   - strips the options of packet blocks (flags, hashes, comments, drop
//     counts), which cqlsniff does not use and pcapgo allocates for on
//     every packet that has them.
//
// Everything else passes through byte for byte. Input that cannot be framed
// (a bad byte-order magic, a block shorter than a block header) is passed on
// unchanged from there on, for pcapgo to report.
type ngFilter struct {
	r       *bufio.Reader
	order   byteOrder // of the current section; nil before the first section header
	out     []byte    // rewritten header or trailer bytes to hand out first
	left    uint64    // input bytes of the current block to pass on next
	skip    uint64    // input bytes to leave out after those (options, old trailer)
	trailer bool      // after the skip, hand out the rewritten trailer
	newLen  uint32    // total length of the rewritten block
	buf     [8]byte   // backing for out
	raw     bool      // framing lost: pass the rest through
	err     error     // sticky: the input ended inside a left-out block
	dropped uint64    // packet blocks left out
}

// Read hands out the kept blocks. It does not wait for more input once it
// has bytes for p.
func (f *ngFilter) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		switch {
		case len(f.out) > 0:
			m := copy(p[n:], f.out)
			f.out = f.out[m:]
			n += m
			continue
		case f.left > 0 || f.raw:
			chunk := p[n:]
			if !f.raw && uint64(len(chunk)) > f.left {
				chunk = chunk[:f.left]
			}
			if n > 0 {
				if f.r.Buffered() == 0 {
					return n, nil
				}
				chunk = chunk[:min(len(chunk), f.r.Buffered())]
			}
			m, err := f.r.Read(chunk)
			n += m
			if !f.raw {
				f.left -= uint64(m)
			}
			if err != nil {
				return n, err
			}
			continue
		case f.skip > 0:
			if err := discard(f.r, f.skip); err != nil {
				f.skip, f.trailer = 0, false
				return n, io.ErrUnexpectedEOF // inside a block: pcapgo reports truncation
			}
			f.skip = 0
			continue
		case f.trailer:
			f.trailer = false
			f.out = f.order.AppendUint32(f.buf[:0], f.newLen)
			continue
		case f.err != nil:
			return n, f.errAfter(n)
		case n > 0 && f.r.Buffered() < ngPacketBlockMin:
			return n, nil
		}
		if err := f.nextBlock(); err != nil {
			return n, f.errAfter(n)
		}
	}
	return n, nil
}

// errAfter returns the error to report after handing out n bytes: none
// until the caller has taken them.
func (f *ngFilter) errAfter(n int) error {
	if n > 0 {
		return nil
	}
	return f.err
}

// nextBlock looks at the header of the next block and sets up handing it
// out, or drops it and looks at the one after.
func (f *ngFilter) nextBlock() error {
	for {
		b, err := f.r.Peek(ngPacketBlockMin - 4)
		if len(b) == 0 {
			f.err = err
			return err
		}
		if len(b) < 12 {
			f.raw = true // a cut block header: pcapgo reports the truncation
			return nil
		}
		if binary.LittleEndian.Uint32(b[0:4]) == ngBlockSectionHeader {
			switch {
			case binary.LittleEndian.Uint32(b[8:12]) == ngByteOrderMagic:
				f.order = binary.LittleEndian
			case binary.BigEndian.Uint32(b[8:12]) == ngByteOrderMagic:
				f.order = binary.BigEndian
			default:
				f.order = nil
			}
		}
		if f.order == nil {
			f.raw = true
			return nil
		}
		typ, length := f.order.Uint32(b[0:4]), f.order.Uint32(b[4:8])
		if length < 12 {
			f.raw = true
			return nil
		}
		if !f.packetBlockFits(typ, length, b) {
			f.dropped++
			if err := discard(f.r, uint64(length)); err != nil {
				// Not io.ErrUnexpectedEOF: pcapgo takes that for a clean
				// end when it comes before a block's first byte.
				f.err = ErrTruncated
				return f.err
			}
			continue
		}
		f.left = uint64(length)
		if typ == ngBlockEnhancedPacket || typ == ngBlockPacket {
			// Keep the fixed part and the padded packet; rewrite the
			// length in the header and trailer to leave the options out.
			capLen := f.order.Uint32(b[20:24])
			kept := ngPacketBlockMin - 4 + (capLen+3)&^3
			if kept+4 < length {
				f.newLen = kept + 4
				f.out = f.order.AppendUint32(append(f.buf[:0], b[0:4]...), f.newLen)
				if _, err := f.r.Discard(8); err != nil {
					return err // cannot happen: the bytes were peeked
				}
				f.left = uint64(kept) - 8
				f.skip = uint64(length - kept)
				f.trailer = true
			}
		}
		return nil
	}
}

// packetBlockFits reports whether a block is no packet block, or one that
// holds a packet of at most MaxRecordLen bytes and no more than that and its
// options. b is the block's first bytes (up to 28).
func (f *ngFilter) packetBlockFits(typ, length uint32, b []byte) bool {
	switch typ {
	case ngBlockEnhancedPacket, ngBlockPacket:
		if len(b) < ngPacketBlockMin-4 || length < ngPacketBlockMin {
			return true // too short to be one: pcapgo reports it
		}
		capLen := f.order.Uint32(b[20:24])
		return capLen <= MaxRecordLen && capLen <= length-ngPacketBlockMin && length <= ngPacketBlockMin+MaxRecordLen+maxBlockOverhead
	case ngBlockSimplePacket:
		return length <= ngPacketBlockMin+MaxRecordLen
	}
	return true
}

// discard skips n bytes of r without keeping them.
func discard(r *bufio.Reader, n uint64) error {
	for n > 0 {
		chunk := min(n, 1<<30)
		if _, err := r.Discard(int(chunk)); err != nil {
			return err
		}
		n -= chunk
	}
	return nil
}
