package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// The cost per packet of reading a file: no allocation, and the packet
// rate against a reader that knows one layout only.

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
