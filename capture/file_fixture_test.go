package capture

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

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
