package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/cqlsniff/cqlsniff/internal/retained"
)

// TestFileSourcePcapngBombs feeds gzip-compressed pcapng files that repeat
// blocks pcapgo keeps, or claim a packet it would read from the blocks that
// follow. A few hundred KiB of gzip expanded to gigabytes of memory before
// ngFilter left these blocks out or rewrote them: here, 8 MiB of them must
// cost no more than the reader's buffers, and the packet after them must
// still be read. Counted, not read from the heap: what the reader holds
// afterwards (internal/retained) and how many allocations reading takes,
// each against the same file without the repeated blocks.
func TestFileSourcePcapngBombs(t *testing.T) {
	const size = 8 << 20 // bytes of repeated blocks
	good := segment(t, 1000)
	order := binary.LittleEndian
	repeat := func(b *ngBuilder, block func(b *ngBuilder)) {
		for b.buf.Len() < size {
			block(b)
		}
	}
	bigString := bytes.Repeat([]byte("x"), 0xFFFC)

	// The same file without the repeated blocks.
	plain := func() []byte {
		b := &ngBuilder{order: order}
		b.shb()
		b.idb(layers.LinkTypeEthernet, 9)
		b.epb(0, 1, good, len(good), nil)
		var gz bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
		zw.Write(b.buf.Bytes())
		zw.Close()
		return gz.Bytes()
	}()
	ps := open(t, plain)
	readAll(t, ps)
	plainHeld := retained.Bytes(ps, plain)
	plainAllocs := testing.AllocsPerRun(1, func() { readAll(t, open(t, plain)) })
	for _, c := range []struct {
		name string
		body func(b *ngBuilder) // after a section header and an Ethernet interface
	}{
		{"name resolution records", func(b *ngBuilder) {
			// One block of 8000 IPv4 records, each naming 10.0.0.1 "a".
			var recs []byte
			for range 8000 {
				recs = order.AppendUint16(recs, 1) // nrb_record_ipv4
				recs = order.AppendUint16(recs, 6)
				recs = append(recs, 10, 0, 0, 1, 'a', 0, 0, 0)
			}
			recs = append(recs, 0, 0, 0, 0) // nrb_record_end
			repeat(b, func(b *ngBuilder) { b.block(4, recs) })
		}},
		{"interfaces with 64 KiB strings", func(b *ngBuilder) {
			var opts []byte
			for _, code := range []uint16{1, 2, 3, 6, 12} { // comment, name, description, OS, hardware
				opts = append(opts, b.opt(code, bigString)...)
			}
			body := order.AppendUint16(nil, uint16(layers.LinkTypeEthernet))
			body = order.AppendUint16(body, 0)
			body = order.AppendUint32(body, 262144)
			body = append(append(body, opts...), 0, 0, 0, 0)
			repeat(b, func(b *ngBuilder) { b.block(1, body) })
		}},
		{"interfaces", func(b *ngBuilder) {
			repeat(b, func(b *ngBuilder) { b.idb(layers.LinkTypeEthernet, 9) })
		}},
		{"interface statistics with 64 KiB comments", func(b *ngBuilder) {
			body := append(make([]byte, 12), b.opt(1, bigString)...)
			body = append(body, 0, 0, 0, 0)
			repeat(b, func(b *ngBuilder) { b.block(5, body) })
		}},
		{"simple packet claiming 4 GiB", func(b *ngBuilder) {
			// pcapgo took the original length for the captured length
			// and read it from the blocks after this one.
			b.block(3, append(order.AppendUint32(nil, 1<<32-16), good...))
			repeat(b, func(b *ngBuilder) { b.block(0x0BAD, make([]byte, 4096)) })
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &ngBuilder{order: order}
			b.shb()
			b.idb(layers.LinkTypeEthernet, 9)
			c.body(b)
			b.epb(0, 1, good, len(good), nil)
			var gz bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
			zw.Write(b.buf.Bytes())
			zw.Close()

			file := gz.Bytes()
			s := open(t, file)
			pkts, err := readAll(t, s)
			if err != io.EOF || len(pkts) != 1 || pkts[0].Seq != 1000 {
				t.Errorf("read %d packets, ended with %v; want the one after the repeated blocks", len(pkts), err)
			}
			// pcapgo keeps the interfaces ngFilter passes on (at most
			// maxInterfaces a section), and allocates for each.
			ifaces := s.ng.NInterfaces()
			if ifaces > maxInterfaces {
				t.Errorf("pcapgo holds %d interfaces", ifaces)
			}
			if held := retained.Bytes(s, file); held > plainHeld+4<<20 {
				t.Errorf("after %d bytes of repeated blocks the reader holds %d bytes, %d without them", b.buf.Len(), held, plainHeld)
			}
			allocs := testing.AllocsPerRun(1, func() { readAll(t, open(t, file)) })
			if allocs > plainAllocs+4*float64(ifaces)+32 {
				t.Errorf("reading %d bytes of repeated blocks (%d interfaces kept) took %.0f allocations, %.0f without them", b.buf.Len(), ifaces, allocs, plainAllocs)
			}
		})
	}
}

// TestFileSourcePcapngBadFraming: packet blocks pcapgo cannot read but whose
// block length still frames them are skipped and counted, not fatal; a block
// too short for its own header ends the file like a cut.
func TestFileSourcePcapngBadFraming(t *testing.T) {
	good := segment(t, 1000)
	order := binary.LittleEndian
	for _, c := range []struct {
		name      string
		body      func(b *ngBuilder)
		packets   int
		malformed uint64
		err       error
	}{
		{"packet of an interface not described", func(b *ngBuilder) {
			b.epb(1, 0, good, len(good), nil)
			b.epb(0, 0, good, len(good), nil)
		}, 1, 1, io.EOF},
		{"packet block shorter than its fields", func(b *ngBuilder) {
			b.block(6, nil)
			b.epb(0, 0, good, len(good), nil)
		}, 1, 1, io.EOF},
		{"simple packet longer than its block", func(b *ngBuilder) {
			b.block(3, append(order.AppendUint32(nil, 200_000), good...))
			b.block(3, append(order.AppendUint32(nil, uint32(len(good))), good...))
		}, 1, 1, io.EOF},
		{"interface beyond the limit", func(b *ngBuilder) {
			for range maxInterfaces {
				b.idb(layers.LinkTypeEthernet, 9)
			}
			b.epb(maxInterfaces, 0, good, len(good), nil)
			b.epb(maxInterfaces-1, 0, good, len(good), nil)
		}, 1, 1, io.EOF},
		{"block length 0", func(b *ngBuilder) {
			b.epb(0, 0, good, len(good), nil)
			b.buf.Write(unhex("0bad0000 00000000"))
			b.buf.Write(make([]byte, 64))
			b.epb(0, 0, good, len(good), nil)
		}, 1, 0, ErrTruncated},
	} {
		t.Run(c.name, func(t *testing.T) {
			b := &ngBuilder{order: order}
			b.shb()
			b.idb(layers.LinkTypeEthernet, 9)
			c.body(b)
			s := open(t, b.buf.Bytes())
			pkts, err := readAll(t, s)
			if c.err == io.EOF && err != io.EOF || c.err != io.EOF && !errors.Is(err, c.err) {
				t.Errorf("ended with %v, want %v", err, c.err)
			}
			if len(pkts) != c.packets || s.Stats().Malformed != c.malformed {
				t.Errorf("read %d packets, %+v; want %d packets, %d malformed", len(pkts), s.Stats(), c.packets, c.malformed)
			}
		})
	}
}

// TestNgFilterInterfaceTimes: the rewritten interface description keeps
// the options that set packet times (if_tsresol, if_tsoffset) among those
// it drops, and an option running past its block ends the options.
func TestNgFilterInterfaceTimes(t *testing.T) {
	good := segment(t, 1000)
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		for _, overrun := range []bool{false, true} {
			b := &ngBuilder{order: order}
			b.shb()
			body := order.AppendUint16(nil, uint16(layers.LinkTypeEthernet))
			body = order.AppendUint16(body, 0)
			body = order.AppendUint32(body, 262144)
			body = append(body, b.opt(2, []byte("eth0"))...)
			body = append(body, b.opt(9, []byte{6})...) // replaced by the next one
			body = append(body, b.opt(14, order.AppendUint64(nil, 100))...)
			body = append(body, b.opt(1, []byte("a comment"))...)
			body = append(body, b.opt(9, []byte{3})...) // milliseconds
			if overrun {
				body = append(body, b.opt(1, nil)...)
				order.PutUint16(body[len(body)-2:], 200) // claims 200 bytes
			} else {
				body = append(body, 0, 0, 0, 0)
			}
			b.block(1, body)
			b.epb(0, 1500, good, len(good), nil)
			pkts, err := readAll(t, open(t, b.buf.Bytes()))
			if err != io.EOF || len(pkts) != 1 {
				t.Fatalf("%v, overrun %v: read %d packets, ended with %v", order, overrun, len(pkts), err)
			}
			if pkts[0].TS != 101_500_000_000 {
				t.Errorf("%v, overrun %v: packet time %d, want 101.5 s", order, overrun, pkts[0].TS)
			}
		}
	}
}
