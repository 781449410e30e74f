package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/internal/retained"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// record is one captured frame to write into a test file.
type record struct {
	link    layers.LinkType // pcapng: chooses the interface
	ts      time.Time
	data    []byte
	wireLen int // 0: len(data)
}

func (r record) ci() gopacket.CaptureInfo {
	wire := r.wireLen
	if wire == 0 {
		wire = len(r.data)
	}
	return gopacket.CaptureInfo{Timestamp: r.ts, CaptureLength: len(r.data), Length: wire}
}

// testStart is the capture time of the first record; records are 1001 ns
// apart so that microsecond files visibly round.
var testStart = time.Unix(1_700_000_000, 123_456_789)

// segment is a client → server Ethernet/IPv4/TCP frame carrying the CQL
// request, with sequence number seq.
func segment(tb testing.TB, seq uint32) []byte {
	tcp := tcpToServer()
	tcp.Seq = seq
	return build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcp, gopacket.Payload(cqlQuery))
}

// mixedRecords is a small Ethernet capture with one record of each kind:
// TCP (seq 1000, 2000, 3000), ARP, an IPv4 fragment, a malformed frame.
func mixedRecords(tb testing.TB) []record {
	arp := build(tb, ether(layers.EthernetTypeARP), &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4,
		HwAddressSize: 6, ProtAddressSize: 4, Operation: layers.ARPRequest, SourceHwAddress: clientMAC, SourceProtAddress: clientV4,
		DstHwAddress: make([]byte, 6), DstProtAddress: serverV4})
	fragIP := ipv4(layers.IPProtocolTCP)
	fragIP.Flags = layers.IPv4MoreFragments
	frag := build(tb, ether(layers.EthernetTypeIPv4), fragIP, gopacket.Payload(cqlQuery))
	datas := [][]byte{segment(tb, 1000), arp, segment(tb, 2000), frag, segment(tb, 3000)[:20], segment(tb, 3000)}
	recs := make([]record, len(datas))
	for i, d := range datas {
		recs[i] = record{link: layers.LinkTypeEthernet, ts: testStart.Add(time.Duration(i) * 1001), data: d}
	}
	return recs
}

// mixedStats is what reading mixedRecords counts.
var mixedStats = SourceStats{Records: 6, TCP: 3, NotTCP: 1, Fragments: 1, Malformed: 1}

func writePcap(tb testing.TB, nanos bool, link layers.LinkType, recs []record) []byte {
	tb.Helper()
	var buf bytes.Buffer
	w := pcapgo.NewWriter(&buf)
	if nanos {
		w = pcapgo.NewWriterNanos(&buf)
	}
	if err := w.WriteFileHeader(65535, link); err != nil {
		tb.Fatal(err)
	}
	for _, r := range recs {
		if err := w.WritePacket(r.ci(), r.data); err != nil {
			tb.Fatal(err)
		}
	}
	return buf.Bytes()
}

// swapPcap rewrites a little endian pcap file as the big endian file a
// SPARC or PowerPC host would write: every header field byte-swapped.
func swapPcap(le []byte) []byte {
	be := append([]byte(nil), le...)
	swap16 := func(b []byte) { binary.BigEndian.PutUint16(b, binary.LittleEndian.Uint16(b)) }
	swap32 := func(b []byte) { binary.BigEndian.PutUint32(b, binary.LittleEndian.Uint32(b)) }
	swap32(be[0:4]) // magic
	swap16(be[4:6]) // version major
	swap16(be[6:8]) // version minor
	for off := 8; off < 24; off += 4 {
		swap32(be[off : off+4]) // thiszone, sigfigs, snaplen, network
	}
	for off := 24; off+16 <= len(be); {
		capLen := binary.LittleEndian.Uint32(be[off+8 : off+12])
		for i := 0; i < 16; i += 4 {
			swap32(be[off+i : off+i+4]) // seconds, fraction, caplen, len
		}
		off += 16 + int(capLen)
	}
	return be
}

func gzipped(tb testing.TB, b []byte) []byte {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(b); err != nil {
		tb.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// writeNg writes a pcapng file with pcapgo, one interface per link type in
// the order they first appear in recs.
func writeNg(tb testing.TB, recs []record) []byte {
	tb.Helper()
	var buf bytes.Buffer
	var w *pcapgo.NgWriter
	ifaces := map[layers.LinkType]int{}
	for _, r := range recs {
		id, ok := ifaces[r.link]
		if !ok {
			intf := pcapgo.NgInterface{Name: fmt.Sprintf("if%d", len(ifaces)), LinkType: r.link, SnapLength: 65535}
			var err error
			if w == nil {
				w, err = pcapgo.NewNgWriterInterface(&buf, intf, pcapgo.NgWriterOptions{})
			} else {
				id, err = w.AddInterface(intf)
			}
			if err != nil {
				tb.Fatal(err)
			}
			ifaces[r.link] = id
		}
		ci := r.ci()
		ci.InterfaceIndex = id
		if err := w.WritePacket(ci, r.data); err != nil {
			tb.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes()
}

// ngBuilder writes pcapng blocks by hand, for what pcapgo's writer does not
// produce: big endian sections, microsecond interfaces, packet options.
type ngBuilder struct {
	order byteOrder
	buf   bytes.Buffer
}

// block writes one block: type, total length, body padded to 4, length again.
func (b *ngBuilder) block(typ uint32, body []byte) {
	body = append(body, make([]byte, (4-len(body)%4)%4)...)
	total := uint32(12 + len(body))
	b.buf.Write(b.order.AppendUint32(b.order.AppendUint32(nil, typ), total))
	b.buf.Write(body)
	b.buf.Write(b.order.AppendUint32(nil, total))
}

// shb writes a section header: byte-order magic, version 1.0, length unknown.
func (b *ngBuilder) shb() {
	body := b.order.AppendUint32(nil, 0x1A2B3C4D)
	body = b.order.AppendUint16(body, 1)
	body = b.order.AppendUint16(body, 0)
	body = b.order.AppendUint64(body, ^uint64(0))
	b.block(0x0A0D0D0A, body)
}

// idb writes an interface description with if_tsresol (option 9) set to
// 10^-tsresol seconds.
func (b *ngBuilder) idb(link layers.LinkType, tsresol byte) {
	body := b.order.AppendUint16(nil, uint16(link))
	body = b.order.AppendUint16(body, 0)
	body = b.order.AppendUint32(body, 262144) // snap length
	body = b.order.AppendUint16(body, 9)      // if_tsresol
	body = b.order.AppendUint16(body, 1)
	body = append(body, tsresol, 0, 0, 0)
	body = append(body, 0, 0, 0, 0) // opt_endofopt
	b.block(1, body)
}

// epb writes an enhanced packet block; ts is in the interface's units.
// options are raw option bytes (code, length, value, padding), ended here.
func (b *ngBuilder) epb(iface uint32, ts uint64, data []byte, wireLen int, options []byte) {
	body := b.order.AppendUint32(nil, iface)
	body = b.order.AppendUint32(body, uint32(ts>>32))
	body = b.order.AppendUint32(body, uint32(ts))
	body = b.order.AppendUint32(body, uint32(len(data)))
	body = b.order.AppendUint32(body, uint32(wireLen))
	body = append(body, data...)
	body = append(body, make([]byte, (4-len(data)%4)%4)...)
	if len(options) > 0 {
		body = append(body, options...)
		body = append(body, 0, 0, 0, 0)
	}
	b.block(6, body)
}

// opt encodes one block option: code, length, value padded to 4 bytes.
func (b *ngBuilder) opt(code uint16, value []byte) []byte {
	o := b.order.AppendUint16(nil, code)
	o = b.order.AppendUint16(o, uint16(len(value)))
	o = append(o, value...)
	return append(o, make([]byte, (4-len(value)%4)%4)...)
}

// packetOptions are the options dumpcap and editcap put on packets:
// opt_comment (odd length, so padded), epb_flags (inbound), epb_dropcount.
func (b *ngBuilder) packetOptions() []byte {
	return cat(
		b.opt(1, []byte("retransmitted?")),
		b.opt(2, b.order.AppendUint32(nil, 1)),
		b.opt(4, b.order.AppendUint64(nil, 0)),
		b.opt(1, []byte("odd")),
	)
}

// readAll reads a source to its end, returning the packets (payloads
// copied) and the error that ended it.
func readAll(tb testing.TB, s Source) ([]Packet, error) {
	tb.Helper()
	var pkts []Packet
	for i := 0; ; i++ {
		if i > 1e6 {
			tb.Fatal("source does not end")
		}
		var p Packet
		err := s.Next(&p)
		if err == ErrTimeout {
			continue // many records skipped: a pause, not an end
		}
		if err != nil {
			return pkts, err
		}
		p.Payload = append([]byte{}, p.Payload...)
		pkts = append(pkts, p)
	}
}

func open(tb testing.TB, file []byte) *FileSource {
	tb.Helper()
	s, err := NewReaderSource(bytes.NewReader(file))
	if err != nil {
		tb.Fatalf("NewReaderSource: %v", err)
	}
	return s
}

// TestFileSourceFormats reads the same capture written in every supported
// container: the packets, their times and the counters must be the same.
func TestFileSourceFormats(t *testing.T) {
	recs := mixedRecords(t)
	ethPcapMicro := writePcap(t, false, layers.LinkTypeEthernet, recs)
	ethPcapNano := writePcap(t, true, layers.LinkTypeEthernet, recs)

	micro := func(i int) int64 { return recs[i].ts.Truncate(time.Microsecond).UnixNano() }
	nano := func(i int) int64 { return recs[i].ts.UnixNano() }

	handNg := func(order byteOrder, options bool) []byte {
		b := &ngBuilder{order: order}
		b.shb()
		b.idb(layers.LinkTypeEthernet, 6)
		for _, r := range recs {
			var opts []byte
			if options {
				opts = b.packetOptions()
			}
			b.epb(0, uint64(r.ts.UnixNano()/1000), r.data, len(r.data), opts)
		}
		return b.buf.Bytes()
	}

	for _, c := range []struct {
		name string
		file []byte
		ts   func(int) int64
	}{
		{"pcap little endian µs", ethPcapMicro, micro},
		{"pcap little endian ns", ethPcapNano, nano},
		{"pcap big endian µs", swapPcap(ethPcapMicro), micro},
		{"pcap big endian ns", swapPcap(ethPcapNano), nano},
		{"pcap gzip", gzipped(t, ethPcapNano), nano},
		{"pcapng", writeNg(t, recs), nano},
		{"pcapng gzip", gzipped(t, writeNg(t, recs)), nano},
		{"pcapng big endian µs interface", handNg(binary.BigEndian, false), micro},
		{"pcapng with packet options", handNg(binary.LittleEndian, true), micro},
		{"pcapng big endian with packet options", handNg(binary.BigEndian, true), micro},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.file)
			defer s.Close()
			pkts, err := readAll(t, s)
			if err != io.EOF {
				t.Fatalf("ended with %v, want io.EOF", err)
			}
			tcpRecords := []int{0, 2, 5}
			if len(pkts) != len(tcpRecords) {
				t.Fatalf("read %d packets, want %d", len(pkts), len(tcpRecords))
			}
			for i, rec := range tcpRecords {
				want := wantV4(len(recs[rec].data), func(p *Packet) {
					p.TS = c.ts(rec)
					p.Seq = uint32(1000 * (i + 1))
				})
				assertPacket(t, &pkts[i], want)
			}
			want := mixedStats
			for _, r := range recs {
				want.Bytes += uint64(len(r.data))
			}
			if got := s.Stats(); got != want {
				t.Errorf("Stats = %+v, want %+v", got, want)
			}
			if err := s.Next(&Packet{}); err != io.EOF {
				t.Errorf("Next after the end = %v, want io.EOF again", err)
			}
		})
	}
}

// TestFileSourcePcapngMixedLinks reads a pcapng file whose interfaces have
// different link types and timestamp resolutions, as dumpcap writes when
// capturing on an Ethernet and a loopback interface at once.
func TestFileSourcePcapngMixedLinks(t *testing.T) {
	eth := segment(t, 1000)
	sll2 := cat(unhex("0800 0000 00000002 0001 04 06 0200000000010000"), eth[14:]) // LINUX_SLL2, see decode_test.go
	null := cat(unhex("02000000"), eth[14:])                                       // BSD loopback, AF_INET little endian
	wifi := unhex("0801 0000 ffffffffffff")                                        // an 802.11 frame header: not decodable here

	t.Run("pcapgo writer", func(t *testing.T) {
		recs := []record{
			{link: layers.LinkTypeEthernet, ts: testStart, data: eth},
			{link: layers.LinkTypeLinuxSLL2, ts: testStart.Add(1), data: sll2},
			{link: layers.LinkTypeNull, ts: testStart.Add(2), data: null},
			{link: layers.LinkTypeIEEE802_11, ts: testStart.Add(3), data: wifi},
			{link: layers.LinkTypeLinuxSLL2, ts: testStart.Add(4), data: sll2},
		}
		s := open(t, writeNg(t, recs))
		pkts, err := readAll(t, s)
		if err != io.EOF {
			t.Fatalf("ended with %v", err)
		}
		for i, rec := range []int{0, 1, 2, 4} {
			assertPacket(t, &pkts[i], wantV4(len(recs[rec].data), func(p *Packet) { p.TS = recs[rec].ts.UnixNano() }))
		}
		if got := s.Stats(); got.Records != 5 || got.TCP != 4 || got.UnsupportedLink != 1 {
			t.Errorf("Stats = %+v", got)
		}
	})

	t.Run("resolutions", func(t *testing.T) {
		b := &ngBuilder{order: binary.LittleEndian}
		b.shb()
		b.idb(layers.LinkTypeEthernet, 6)   // interface 0: µs
		b.idb(layers.LinkTypeLinuxSLL2, 9)  // interface 1: ns
		b.idb(layers.LinkTypeNull, 0x80|10) // interface 2: 2^-10 s
		b.epb(0, 1_700_000_000_123_456, eth, len(eth), nil)
		b.epb(1, 1_700_000_000_123_456_789, sll2, len(sll2), nil)
		b.epb(2, 1_700_000_000<<10|512, null, len(null), nil)
		s := open(t, b.buf.Bytes())
		pkts, err := readAll(t, s)
		if err != io.EOF || len(pkts) != 3 {
			t.Fatalf("read %d packets, ended with %v", len(pkts), err)
		}
		// 512/1024 s comes out 256 ns early: pcapgo scales binary fractions
		// by the integer 1e9/1024.
		for i, want := range []int64{1_700_000_000_123_456_000, 1_700_000_000_123_456_789, 1_700_000_000_499_999_744} {
			if pkts[i].TS != want {
				t.Errorf("packet %d: TS = %d, want %d", i, pkts[i].TS, want)
			}
		}
	})
}

// TestFileSourceOpen covers OpenFile: paths, standard input, gzip by magic
// not by name, and the errors a user sees for files that are not captures.
func TestFileSourceOpen(t *testing.T) {
	dir := t.TempDir()
	pcap := writePcap(t, true, layers.LinkTypeEthernet, mixedRecords(t))
	write := func(name string, b []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return path
	}

	t.Run("plain and gzip, any name", func(t *testing.T) {
		for _, path := range []string{write("a.pcap", pcap), write("b.pcapng", gzipped(t, pcap)), write("c.txt", writeNg(t, mixedRecords(t)))} {
			s, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			pkts, err := readAll(t, s)
			if err != io.EOF || len(pkts) != 3 {
				t.Errorf("%s: read %d packets, ended with %v", path, len(pkts), err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	})

	t.Run("standard input", func(t *testing.T) {
		f, err := os.Open(write("stdin.pcap.gz", gzipped(t, pcap)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		stdin := os.Stdin
		os.Stdin = f
		defer func() { os.Stdin = stdin }()
		s, err := OpenFile("-")
		if err != nil {
			t.Fatal(err)
		}
		pkts, err := readAll(t, s)
		if err != io.EOF || len(pkts) != 3 {
			t.Errorf("read %d packets, ended with %v", len(pkts), err)
		}
		s.Close()
		if _, err := f.Seek(0, io.SeekStart); err != nil {
			t.Errorf("Close closed standard input: %v", err)
		}
	})

	t.Run("missing file", func(t *testing.T) {
		if _, err := OpenFile(filepath.Join(dir, "nope.pcap")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("err = %v, want ErrNotExist", err)
		}
	})

	for _, c := range []struct {
		name    string
		file    []byte
		want    error
		message string
	}{
		{"empty", nil, ErrEmpty, "empty file"},
		{"empty gzip", gzipped(t, nil), ErrEmpty, "empty file (gzip-compressed)"},
		{"three bytes", []byte("abc"), ErrNotCapture, "not a pcap or pcapng file (only 3 bytes)"},
		{"ELF binary", []byte("\x7fELF\x02\x01\x01\x00"), ErrNotCapture, "not a pcap or pcapng file (magic 0x7f454c46)"},
		{"text", []byte("hello, world\n"), ErrNotCapture, "(magic 0x68656c6c)"},
		{"gzip of text", gzipped(t, []byte("hello, world\n")), ErrNotCapture, "(magic 0x68656c6c)"},
		{"broken gzip header", []byte{0x1f, 0x8b, 0x99, 0, 0, 0}, nil, "gzip"},
		{"pcap header cut", pcap[:10], ErrTruncated, "reading pcap file header"},
		{"pcap version 3.0", func() []byte { b := bytes.Clone(pcap[:24]); b[4] = 3; return b }(), nil, "Unknown major version 3"},
		{"pcapng section header cut", writeNg(t, mixedRecords(t))[:20], ErrTruncated, "reading pcapng section header"},
		{"modified pcap (Kuznetzov)", []byte{0x34, 0xcd, 0xb2, 0xa1, 2, 0, 4, 0}, ErrNotCapture, "magic 0x34cdb2a1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			path := write(strings.ReplaceAll(c.name, " ", "_"), c.file)
			s, err := OpenFile(path)
			if err == nil {
				s.Close()
				t.Fatal("OpenFile succeeded")
			}
			if c.want != nil && !errors.Is(err, c.want) {
				t.Errorf("err = %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.message) || !strings.Contains(err.Error(), path) {
				t.Errorf("err = %q, want it to name the file and say %q", err, c.message)
			}
		})
	}
}

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

// TestFileSourceUnsupportedLink counts a pcap of an unsupported link type
// record by record rather than refusing it.
func TestFileSourceUnsupportedLink(t *testing.T) {
	s := open(t, writePcap(t, false, layers.LinkTypeIEEE802_11, mixedRecords(t)))
	if _, err := readAll(t, s); err != io.EOF {
		t.Fatalf("ended with %v", err)
	}
	if got := s.Stats(); got.Records != 6 || got.UnsupportedLink != 6 {
		t.Errorf("Stats = %+v", got)
	}
}

// manyPackets is an Ethernet capture of n small TCP segments, the traffic a
// busy CQL client produces (one 24-byte request per segment).
func manyPackets(tb testing.TB, n int) []record {
	recs := make([]record, n)
	base := segment(tb, 0)
	for i := range recs {
		d := bytes.Clone(base)
		binary.BigEndian.PutUint32(d[14+20+4:], uint32(i*len(cqlQuery))) // sequence number
		recs[i] = record{link: layers.LinkTypeEthernet, ts: testStart.Add(time.Duration(i) * time.Microsecond), data: d}
	}
	return recs
}

// TestFileSourceNextAllocs checks that reading allocates nothing per packet
// once the reader's buffers exist.
func TestFileSourceNextAllocs(t *testing.T) {
	recs := manyPackets(t, 3000)
	withOptions := &ngBuilder{order: binary.LittleEndian}
	withOptions.shb()
	withOptions.idb(layers.LinkTypeEthernet, 6)
	for i, r := range recs {
		// epb_flags (option 2): inbound, unicast; epb_dropcount (4): 0
		withOptions.epb(0, uint64(i), r.data, len(r.data), unhex("0200 0400 01000000  0400 0800 0000000000000000"))
	}
	sll2Recs := make([]record, len(recs))
	for i, r := range recs {
		sll2Recs[i] = record{link: layers.LinkTypeLinuxSLL2, ts: r.ts, data: cat(unhex("0800 0000 00000002 0001 04 06 0200000000010000"), r.data[14:])}
	}
	for _, c := range []struct {
		name string
		file []byte
		// allocs is what pcapgo itself costs per packet: it boxes each
		// packet's link type in an interface, which allocates for link
		// types above 255 (LINUX_SLL2 is 276).
		allocs float64
	}{
		{"pcap", writePcap(t, true, layers.LinkTypeEthernet, recs), 0},
		{"pcap gzip", gzipped(t, writePcap(t, true, layers.LinkTypeEthernet, recs)), 0},
		{"pcapng", writeNg(t, recs), 0},
		{"pcapng gzip", gzipped(t, writeNg(t, recs)), 0},
		{"pcapng with packet options", withOptions.buf.Bytes(), 0},
		{"pcapng LINUX_SLL2", writeNg(t, sll2Recs), 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			s := open(t, c.file)
			var p Packet
			for range 10 { // let the readers size their buffers
				if err := s.Next(&p); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(2000, func() {
				if err := s.Next(&p); err != nil {
					t.Fatal(err)
				}
			})
			if allocs != c.allocs {
				t.Errorf("Next allocates %.2f times per packet, want %v", allocs, c.allocs)
			}
		})
	}
}

// BenchmarkFileSourceNext reads an in-memory capture of 100k small TCP
// packets; one op is one packet.
func BenchmarkFileSourceNext(b *testing.B) {
	recs := manyPackets(b, 100_000)
	for _, c := range []struct {
		name string
		file []byte
	}{
		{"pcap", writePcap(b, true, layers.LinkTypeEthernet, recs)},
		{"pcapng", writeNg(b, recs)},
		{"pcap gzip", gzipped(b, writePcap(b, true, layers.LinkTypeEthernet, recs))},
	} {
		b.Run(c.name, func(b *testing.B) {
			r := bytes.NewReader(c.file)
			s, err := NewReaderSource(r)
			if err != nil {
				b.Fatal(err)
			}
			var p Packet
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				err := s.Next(&p)
				if err == io.EOF {
					b.StopTimer()
					r.Reset(c.file)
					if s, err = NewReaderSource(r); err != nil {
						b.Fatal(err)
					}
					b.StartTimer()
					err = s.Next(&p)
				}
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		})
	}
}

// TestNgFilter checks the pcapng filter byte for byte: blocks without
// options pass unchanged, packet options are cut out with the block lengths
// rewritten, and oversized packet blocks are left out.
func TestNgFilter(t *testing.T) {
	recs := mixedRecords(t)
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		plain, withOpts, withBad := &ngBuilder{order: order}, &ngBuilder{order: order}, &ngBuilder{order: order}
		for _, b := range []*ngBuilder{plain, withOpts, withBad} {
			b.shb()
			b.idb(layers.LinkTypeEthernet, 9)
			b.block(0x0BAD, []byte("custom block, passed on")) // an unknown block type
		}
		for i, r := range recs {
			plain.epb(0, uint64(i), r.data, len(r.data), nil)
			withOpts.epb(0, uint64(i), r.data, len(r.data), withOpts.packetOptions())
			withBad.epb(0, uint64(i), r.data, len(r.data), nil)
			withBad.epb(0, uint64(i), make([]byte, 8), MaxRecordLen+1, nil) // header patched below
		}
		// Make every second packet block of withBad claim MaxRecordLen+1
		// captured bytes in its 40-byte block.
		bad := withBad.buf.Bytes()
		for off := 0; off < len(bad); {
			typ, length := order.Uint32(bad[off:]), order.Uint32(bad[off+4:])
			if typ == 6 && order.Uint32(bad[off+24:]) == MaxRecordLen+1 {
				order.PutUint32(bad[off+20:], MaxRecordLen+1)
			}
			off += int(length)
		}

		for _, c := range []struct {
			name    string
			in      []byte
			dropped uint64
		}{
			{"no options", plain.buf.Bytes(), 0},
			{"options", withOpts.buf.Bytes(), 0},
			{"oversized", bad, uint64(len(recs))},
		} {
			t.Run(fmt.Sprintf("%v/%s", order, c.name), func(t *testing.T) {
				f := &ngFilter{r: bufio.NewReaderSize(bytes.NewReader(c.in), 64)}
				// Read in small pieces, so that every state meets a short p.
				var out []byte
				buf := make([]byte, 7)
				for {
					n, err := f.Read(buf)
					out = append(out, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(out, plain.buf.Bytes()) {
					t.Errorf("filtered stream differs from the file without options:\n got %x\nwant %x", out, plain.buf.Bytes())
				}
				if f.dropped != c.dropped {
					t.Errorf("dropped %d blocks, want %d", f.dropped, c.dropped)
				}
			})
		}
	}
}

// BenchmarkMinimalWalk is the floor the whole pipeline is compared against:
// a reader that knows a single layout (little endian pcap, Ethernet, IPv4,
// TCP) and walks only the record headers and the IPv4 and TCP header
// lengths to the first CQL byte, without pcapgo, a Packet or any check
// beyond what keeps it in bounds. One op is one packet, over the same
// 100k-packet capture as BenchmarkFileSourceNext.
func BenchmarkMinimalWalk(b *testing.B) {
	file := writePcap(b, true, layers.LinkTypeEthernet, manyPackets(b, 100_000))

	// walk returns the first TCP payload byte of an Ethernet frame.
	walk := func(rec []byte) byte {
		if len(rec) < 14+20 || binary.BigEndian.Uint16(rec[12:14]) != 0x0800 || rec[14+9] != 6 {
			return 0
		}
		tcp := 14 + int(rec[14]&0x0F)*4
		if len(rec) < tcp+20 {
			return 0
		}
		if cql := tcp + int(rec[tcp+12]>>4)*4; cql < len(rec) {
			return rec[cql] // the CQL version byte
		}
		return 0
	}

	// In memory: the file is one byte slice, records are sub-slices.
	b.Run("in memory", func(b *testing.B) {
		var sum int
		off := 24
		for i := 0; i < b.N; i++ {
			if off+16 > len(file) {
				off = 24
			}
			capLen := int(binary.LittleEndian.Uint32(file[off+8 : off+12]))
			sum += int(walk(file[off+16 : off+16+capLen]))
			off += 16 + capLen
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		if b.N > 0 && sum == 0 {
			b.Fatal("no CQL bytes seen")
		}
	})

	// Through a 1 MiB bufio.Reader, copying each record into a reused
	// buffer as pcapgo does, but without its time conversion and checks.
	b.Run("bufio copy", func(b *testing.B) {
		r := bytes.NewReader(file)
		br := bufio.NewReaderSize(r, readBufferSize)
		reset := func() {
			r.Reset(file)
			br.Reset(r)
			br.Discard(24)
		}
		reset()
		var hdr [16]byte
		buf := make([]byte, 65536)
		var sum int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := io.ReadFull(br, hdr[:]); err != nil {
				reset()
				io.ReadFull(br, hdr[:])
			}
			rec := buf[:binary.LittleEndian.Uint32(hdr[8:12])]
			io.ReadFull(br, rec)
			sum += int(walk(rec))
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		if b.N > 0 && sum == 0 {
			b.Fatal("no CQL bytes seen")
		}
	})

	// Through a 1 MiB bufio.Reader, as a file is read: Peek at the record,
	// Discard it. No copy, but the io.Reader plumbing of a real source.
	b.Run("bufio", func(b *testing.B) {
		r := bytes.NewReader(file)
		br := bufio.NewReaderSize(r, readBufferSize)
		reset := func() {
			r.Reset(file)
			br.Reset(r)
			br.Discard(24)
		}
		reset()
		var sum int
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			hdr, err := br.Peek(16)
			if err != nil {
				reset()
				hdr, _ = br.Peek(16)
			}
			capLen := int(binary.LittleEndian.Uint32(hdr[8:12]))
			br.Discard(16)
			rec, _ := br.Peek(capLen)
			sum += int(walk(rec))
			br.Discard(capLen)
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "packets/s")
		if b.N > 0 && sum == 0 {
			b.Fatal("no CQL bytes seen")
		}
	})
}
