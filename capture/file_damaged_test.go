package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/cqlsniff/cqlsniff/internal/retained"
)

// Files cut short, and records whose headers claim more than any capture
// holds. (Gzip-compressed pcapng bombs: ngbomb_test.go.)

// TestFileSourceTruncated cuts files inside their last record: the records
// before it are delivered, then Next says ErrTruncated (and keeps saying it).
func TestFileSourceTruncated(t *testing.T) {
	recs := mixedRecords(t) // the last record is TCP, 78 bytes
	pcap := writePcap(t, false, layers.LinkTypeEthernet, recs)
	ng := writeNg(t, recs)
	last := len(recs[len(recs)-1].data)
	lastBlock := 28 + (last+3)&^3 + 4 // enhanced packet block: header, padded data, trailer

	for _, c := range []struct {
		name string
		file []byte
	}{
		{"pcap: inside record header", pcap[:len(pcap)-last-5]},
		{"pcap: after record header", pcap[:len(pcap)-last]},
		{"pcap: inside record data", pcap[:len(pcap)-1]},
		{"pcapng: inside block header", ng[:len(ng)-lastBlock+10]},
		{"pcapng: inside packet data", ng[:len(ng)-10]},
		{"pcapng: block trailer missing", ng[:len(ng)-4]},
		{"gzip pcap: stream cut", func() []byte {
			// Stored, not compressed, so the cut lands in the last record:
			// 8 bytes of gzip trailer, the 5 of the final empty block, 7 of data.
			var buf bytes.Buffer
			zw, _ := gzip.NewWriterLevel(&buf, gzip.NoCompression)
			zw.Write(pcap)
			zw.Close()
			return buf.Bytes()[:buf.Len()-20]
		}()},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.file)
			pkts, err := readAll(t, s)
			if !errors.Is(err, ErrTruncated) {
				t.Fatalf("ended with %v, want ErrTruncated", err)
			}
			if len(pkts) != 2 || s.Stats().Records != 5 || s.Stats().TCP != 2 {
				t.Errorf("read %d packets, %+v; want the 2 TCP of the first 5 records", len(pkts), s.Stats())
			}
			if !strings.Contains(err.Error(), "truncated after 5 records") {
				t.Errorf("err = %q", err)
			}
			if err2 := s.Next(&Packet{}); err2 != err {
				t.Errorf("second Next = %v, want the same error", err2)
			}
		})
	}
}

// TestFileSourceAbsurdLengths feeds records whose headers claim more than
// any capture holds. They must leave the reader holding no memory beyond its
// buffers and never fail the whole file while it can still be read.
func TestFileSourceAbsurdLengths(t *testing.T) {
	good := segment(t, 1000)
	pcapHeader := func(snaplen uint32) []byte {
		h := unhex("d4c3b2a1 0200 0400 00000000 00000000")
		h = binary.LittleEndian.AppendUint32(h, snaplen)
		return binary.LittleEndian.AppendUint32(h, uint32(layers.LinkTypeEthernet))
	}
	rec := func(capLen, wireLen uint32, data []byte) []byte {
		h := unhex("00f15365 00000000") // seconds, microseconds
		h = binary.LittleEndian.AppendUint32(h, capLen)
		h = binary.LittleEndian.AppendUint32(h, wireLen)
		return append(h, data...)
	}
	goodRec := rec(uint32(len(good)), uint32(len(good)), good)

	ngFile := func(blocks func(b *ngBuilder)) []byte {
		b := &ngBuilder{order: binary.LittleEndian}
		b.shb()
		b.idb(layers.LinkTypeEthernet, 9)
		blocks(b)
		return b.buf.Bytes()
	}

	for _, c := range []struct {
		name      string
		file      []byte
		packets   int   // TCP packets read
		malformed int   // records skipped
		err       error // how reading ends
	}{
		{"pcap: 2 GiB record, 2 GiB snap length", cat(pcapHeader(1<<31), goodRec, rec(1<<31, 1<<31, good)), 1, 1, ErrTruncated},
		{"pcap: 4 GiB record", cat(pcapHeader(65535), goodRec, rec(1<<32-1, 1<<32-1, good)), 1, 1, ErrTruncated},
		{"pcap: record longer than the wire", cat(pcapHeader(65535), rec(uint32(len(good)), 10, good), goodRec), 1, 1, io.EOF},
		{"pcap: 300 kB record", cat(pcapHeader(1<<20), rec(300_000, 300_000, make([]byte, 300_000)), goodRec), 1, 1, io.EOF},
		{"pcap: 256 KiB record", cat(pcapHeader(1<<20), rec(MaxRecordLen, MaxRecordLen, make([]byte, MaxRecordLen)), goodRec), 1, 0, io.EOF},
		{"pcapng: block claiming 2 GiB", ngFile(func(b *ngBuilder) {
			b.epb(0, 0, good, len(good), nil)
			b.buf.Write(unhex("06000000 00000080")) // EPB, total length 0x80000000
			b.buf.Write(good)
		}), 1, 1, ErrTruncated},
		{"pcapng: packet claiming 2 GiB in a small block", ngFile(func(b *ngBuilder) {
			// The block length still frames the block, so it is skipped and
			// the good packet after it is read.
			b.buf.Write(unhex("06000000 70000000 00000000 00000000 00000000 00000080 00000080"))
			b.buf.Write(good)
			b.buf.Write(unhex("0000 70000000"))
			b.epb(0, 0, good, len(good), nil)
		}), 1, 1, io.EOF},
		{"pcapng: 300 kB packet", ngFile(func(b *ngBuilder) {
			b.epb(0, 0, make([]byte, 300_000), 300_000, nil)
			b.epb(0, 0, good, len(good), nil)
		}), 1, 1, io.EOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.file)
			opened := retained.Bytes(s, c.file)
			pkts, err := readAll(t, s)
			if c.err == io.EOF && err != io.EOF || c.err != io.EOF && !errors.Is(err, c.err) {
				t.Errorf("ended with %v, want %v", err, c.err)
			}
			if len(pkts) != c.packets || s.Stats().Malformed != uint64(c.malformed) {
				t.Errorf("read %d packets, %+v; want %d packets, %d malformed", len(pkts), s.Stats(), c.packets, c.malformed)
			}
			// The reader's own buffer is already allocated; pcapgo may keep
			// one more of at most MaxRecordLen (counted: what the reader
			// holds, internal/retained). Opening and reading the file takes
			// a handful of allocations (10 to 19), none per record.
			if grew := retained.Bytes(s, c.file) - opened; grew > 2*MaxRecordLen {
				t.Errorf("reading made the reader hold %d bytes more", grew)
			}
			if allocs := testing.AllocsPerRun(1, func() { readAll(t, open(t, c.file)) }); allocs > 32 {
				t.Errorf("opening and reading took %.0f allocations", allocs)
			}
		})
	}
}
