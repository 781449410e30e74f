package capture

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// pcapng block types the filter looks at, and the size of an (enhanced)
// packet block without packet bytes or options: type, length, interface,
// time (2 words), captured and original length, trailing length.
const (
	ngBlockSectionHeader  = 0x0A0D0D0A // a palindrome: the same in both byte orders
	ngBlockInterface      = 1
	ngBlockPacket         = 2 // obsolete, same layout for what matters here
	ngBlockSimplePacket   = 3
	ngBlockNameResolution = 4
	ngBlockInterfaceStats = 5
	ngBlockEnhancedPacket = 6
	ngByteOrderMagic      = 0x1A2B3C4D
	ngPacketBlockMin      = 32
	// ngSectionHeaderMin is a section header block without options: type,
	// length, byte-order magic, version, section length, trailer.
	ngSectionHeaderMin = 28
	// ngInterfaceBlockMin is an interface description block without
	// options: type, length, link type, reserved, snap length, trailer.
	ngInterfaceBlockMin = 20
	// ngSimplePacketBlockMin is a simple packet block without packet bytes:
	// type, length, original length, trailer.
	ngSimplePacketBlockMin = 16
	// Interface options that change how pcapgo reads packet times.
	ngOptTSResol  = 9
	ngOptTSOffset = 14
	// maxBlockOverhead is the room a pcapng packet block may take beyond
	// its packet bytes (options such as comments and hashes).
	maxBlockOverhead = 64 << 10
	// maxInterfaces is how many interface description blocks of a section
	// are passed on (pcapgo keeps a record of about 250 bytes per interface
	// until the next section); later ones are left out, and the packets
	// that refer to them are counted as malformed. Real captures have one
	// interface per capturing device.
	maxInterfaces = 1 << 12
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
//     still frames them, reading goes on after them. The same goes for
//     packet blocks shorter than their fixed fields, packet blocks of an
//     interface the section has not described (pcapgo fails the whole file
//     on them), and simple packet blocks whose packet (the original length,
//     cut to the first interface's snap length, is all pcapgo goes by) does
//     not fit in the block.
//
//   - strips the options of packet blocks (flags, hashes, comments, drop
//     counts), which cqlsniff does not use and pcapgo allocates for on
//     every packet that has them.
//
//   - keeps only what pcapgo needs of section headers (byte order, version)
//     and interface descriptions (link type, snap length, and the if_tsresol
//     and if_tsoffset options that set packet times), passes at most
//     maxInterfaces interfaces per section, and leaves out name resolution
//     and interface statistics blocks. pcapgo keeps every interface and
//     every name record of a section, with strings of up to 64 KiB each: a
//     small gzip-compressed file repeating them made it hold gigabytes.
//     Rewritten this way, every block pcapgo parses ends where this filter
//     says it does.
//
// Everything else passes through byte for byte. A bad byte-order magic and a
// block header cut by the end of the input are passed on unchanged from
// there on, for pcapgo to report. A block too short for its own header or
// fixed fields ends the input (ErrTruncated).
type ngFilter struct {
	r       *bufio.Reader
	order   byteOrder // of the current section; nil before the first section header
	out     []byte    // rewritten header or trailer bytes to hand out first
	left    uint64    // input bytes of the current block to pass on next
	skip    uint64    // input bytes to leave out after those (options, old trailer)
	trailer bool      // after the skip, hand out the rewritten trailer
	newLen  uint32    // total length of the rewritten block
	buf     [8]byte   // backing for out
	block   [48]byte  // backing for out: a rewritten section header or interface block
	raw     bool      // framing lost: pass the rest through
	err     error     // sticky: the input ended inside a left-out block
	dropped uint64    // packet blocks left out
	ifaces  uint32    // interface blocks passed on in the current section
	snap0   uint32    // snap length of the section's first interface
	cost    int       // of the blocks skipped or passed without a packet (see skipBudget)
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
		case f.cost >= skipBudget:
			// At a block boundary: once the caller took the bytes handed
			// out, pcapgo stops at the start of the next block.
			if n > 0 {
				return n, nil
			}
			return 0, errPause
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
			f.ifaces, f.snap0 = 0, 0 // interfaces are numbered per section
		}
		if f.order == nil {
			f.raw = true
			return nil
		}
		typ, length := f.order.Uint32(b[0:4]), f.order.Uint32(b[4:8])
		if length < 12 {
			// pcapgo would discard 4 GiB and read on from wherever that
			// ends, past this filter's framing.
			return f.corrupt("a block of type 0x%x claims %d bytes, less than its header", typ, length)
		}
		switch typ {
		case ngBlockEnhancedPacket, ngBlockPacket, ngBlockSimplePacket:
			// Counted by the FileSource when passed on.
		default:
			f.cost += skipCost(uint64(length))
		}
		switch {
		case typ == ngBlockSectionHeader:
			return f.sectionHeader(length, b)
		case typ == ngBlockInterface && f.ifaces < maxInterfaces:
			return f.interfaceBlock(length, b)
		case typ == ngBlockInterface, typ == ngBlockNameResolution, typ == ngBlockInterfaceStats:
			if err := f.skipBlock(length); err != nil {
				return err
			}
			if f.cost >= skipBudget {
				return nil // Read pauses
			}
			continue
		case !f.packetBlockFits(typ, length, b):
			f.dropped++
			f.cost += skipCost(uint64(length))
			if err := f.skipBlock(length); err != nil {
				return err
			}
			if f.cost >= skipBudget {
				return nil // Read pauses
			}
			continue
		}
		f.left = uint64(length)
		if (typ == ngBlockEnhancedPacket || typ == ngBlockPacket) && len(b) >= ngPacketBlockMin-4 {
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

// skipBlock leaves out a block of the given length.
func (f *ngFilter) skipBlock(length uint32) error {
	if err := discard(f.r, uint64(length)); err != nil {
		// Not io.ErrUnexpectedEOF: pcapgo takes that for a clean end
		// when it comes before a block's first byte.
		f.err = ErrTruncated
		return f.err
	}
	return nil
}

// packetBlockFits reports whether a block is no packet block, or one that
// holds a packet of at most MaxRecordLen bytes and no more than that and its
// options, of an interface the section described. b is the block's first
// bytes (up to 28; fewer only at the end of the input, where pcapgo reports
// the cut block).
func (f *ngFilter) packetBlockFits(typ, length uint32, b []byte) bool {
	switch typ {
	case ngBlockEnhancedPacket, ngBlockPacket:
		if len(b) < ngPacketBlockMin-4 {
			return true
		}
		if length < ngPacketBlockMin {
			return false
		}
		iface := f.order.Uint32(b[8:12])
		if typ == ngBlockPacket {
			iface = uint32(f.order.Uint16(b[8:10]))
		}
		capLen := f.order.Uint32(b[20:24])
		return iface < f.ifaces && capLen <= MaxRecordLen && capLen <= length-ngPacketBlockMin && length <= ngPacketBlockMin+MaxRecordLen+maxBlockOverhead
	case ngBlockSimplePacket:
		if len(b) < ngSimplePacketBlockMin-4 {
			return true
		}
		// pcapgo takes the original length, cut to the snap length of the
		// first interface, for the captured length, whatever the block
		// holds.
		capLen := f.order.Uint32(b[8:12])
		if f.snap0 != 0 {
			capLen = min(capLen, f.snap0)
		}
		return f.ifaces > 0 && length >= ngSimplePacketBlockMin && capLen <= length-ngSimplePacketBlockMin && capLen <= MaxRecordLen
	}
	return true
}

// corrupt ends the input at a block that cannot be read: the packets
// before it were delivered, as for a file cut there.
func (f *ngFilter) corrupt(format string, a ...any) error {
	f.err = fmt.Errorf("%w: corrupt pcapng block: "+format, append([]any{ErrTruncated}, a...)...)
	return f.err
}

// sectionHeader hands out the section header block of the given length,
// whose first bytes are b, without its options (comment, hardware, OS,
// application), which cqlsniff does not use: then pcapgo reads every block
// it parses as this filter framed it. It reads the whole block.
func (f *ngFilter) sectionHeader(length uint32, b []byte) error {
	if len(b) < ngSectionHeaderMin-4 {
		f.err = ErrTruncated
		return f.err
	}
	if length < ngSectionHeaderMin {
		return f.corrupt("a section header of %d bytes, less than its fixed fields", length)
	}
	out := append(f.block[:0], b[0:4]...)
	out = f.order.AppendUint32(out, ngSectionHeaderMin)
	out = append(out, b[8:24]...) // byte-order magic, version, section length
	f.out = f.order.AppendUint32(out, ngSectionHeaderMin)
	return f.skipBlock(length)
}

// interfaceBlock hands out the interface description block of the given
// length, whose first bytes are b, rewritten without the options pcapgo
// does not need for times. It reads the whole block.
func (f *ngFilter) interfaceBlock(length uint32, b []byte) error {
	if length < ngInterfaceBlockMin {
		return f.corrupt("an interface description of %d bytes, less than its fixed fields", length)
	}
	if len(b) < ngInterfaceBlockMin-4 {
		f.err = ErrTruncated
		return f.err
	}
	out := append(f.block[:0], b[0:4]...)
	out = append(out, 0, 0, 0, 0) // total length, set below
	out = append(out, b[8:16]...) // link type, reserved, snap length
	snap := f.order.Uint32(b[12:16])
	if _, err := f.r.Discard(16); err != nil {
		return err // cannot happen: the bytes were peeked
	}
	// The options, as pcapgo reads them: the last of each code counts. An
	// option that runs past the block ends them (pcapgo would read on into
	// the next block).
	var resol, offset []byte
	var resolBuf [8]byte
	var offsetBuf [12]byte
	rest := uint64(length) - ngInterfaceBlockMin
	for rest >= 4 {
		h, err := f.r.Peek(4)
		if err != nil {
			f.err = ErrTruncated
			return f.err
		}
		code, n := f.order.Uint16(h[0:2]), uint64(f.order.Uint16(h[2:4]))
		size := 4 + (n+3)&^3
		if code == 0 || size > rest {
			break
		}
		switch {
		case code == ngOptTSResol && n >= 1:
			v, err := f.r.Peek(5)
			if err != nil {
				f.err = ErrTruncated
				return f.err
			}
			resol = f.order.AppendUint16(f.order.AppendUint16(resolBuf[:0], code), 1)
			resol = append(resol, v[4], 0, 0, 0)
		case code == ngOptTSOffset && n >= 8:
			v, err := f.r.Peek(12)
			if err != nil {
				f.err = ErrTruncated
				return f.err
			}
			offset = f.order.AppendUint16(f.order.AppendUint16(offsetBuf[:0], code), 8)
			offset = append(offset, v[4:12]...)
		}
		if err := discard(f.r, size); err != nil {
			f.err = ErrTruncated
			return f.err
		}
		rest -= size
	}
	if err := discard(f.r, rest+4); err != nil { // what is left, and the trailer
		f.err = ErrTruncated
		return f.err
	}
	out = append(out, resol...)
	out = append(out, offset...)
	out = append(out, 0, 0, 0, 0) // opt_endofopt
	newLen := uint32(len(out) + 4)
	f.order.PutUint32(out[4:8], newLen)
	f.out = f.order.AppendUint32(out, newLen)
	if f.ifaces == 0 {
		f.snap0 = snap
	}
	f.ifaces++
	return nil
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
