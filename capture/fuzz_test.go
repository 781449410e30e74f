package capture

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/cqlsniff/cqlsniff/internal/retained"
)

// FuzzDecodePacket decodes arbitrary frames of any link type. cut is how
// many bytes the snap length took off the end of the frame.
func FuzzDecodePacket(f *testing.F) {
	for _, c := range decodeCases(f) {
		cut := 0
		if c.wireLen > len(c.frame) {
			cut = c.wireLen - len(c.frame)
		}
		f.Add(uint16(c.link), c.frame, uint16(cut))
	}
	f.Fuzz(func(t *testing.T, link uint16, data []byte, cut uint16) {
		wireLen := len(data) + int(cut)
		sentinel := Packet{TS: -1, SrcPort: 7, Missing: -7, Payload: []byte("untouched")}
		p := sentinel
		res := DecodePacket(layers.LinkType(link), data, wireLen, 42, &p)
		if res > DecodeMalformed {
			t.Fatalf("result %d", res)
		}
		if res != DecodeTCP {
			if p.TS != sentinel.TS || p.SrcPort != sentinel.SrcPort || p.Missing != sentinel.Missing || string(p.Payload) != "untouched" || p.SrcIP != sentinel.SrcIP {
				t.Fatalf("%v wrote p: %+v", res, p)
			}
			return
		}
		if p.TS != 42 || p.WireLen != wireLen {
			t.Errorf("TS %d WireLen %d", p.TS, p.WireLen)
		}
		if p.Missing < 0 || p.Missing > int(cut) {
			t.Errorf("Missing = %d with %d bytes cut", p.Missing, cut)
		}
		// Payload lies inside data, at least a TCP header in, and reaches
		// the end of data when bytes are missing. (An empty payload cannot
		// be placed: Go keeps a zero-capacity slice at its array's start.)
		if len(p.Payload) > 0 {
			start := offsetIn(data, p.Payload)
			if start < minTCPHeaderLen || start+len(p.Payload) > len(data) {
				t.Fatalf("Payload at %d+%d is not inside the %d-byte frame", start, len(p.Payload), len(data))
			}
			if p.Missing > 0 && start+len(p.Payload) != len(data) {
				t.Errorf("Missing %d but Payload ends at %d of %d", p.Missing, start+len(p.Payload), len(data))
			}
		}
		if cap(p.Payload) != len(p.Payload) {
			t.Errorf("Payload cap %d > len %d: appending would overwrite the frame", cap(p.Payload), len(p.Payload))
		}
		if !p.IPv6 && [12]byte(p.SrcIP[:12]) != [12]byte{10: 0xFF, 11: 0xFF} {
			t.Errorf("IPv4 source %x is not IPv4-mapped", p.SrcIP)
		}
	})
}

// offsetIn returns where the non-empty sub starts in b, or -1.
func offsetIn(b, sub []byte) int {
	for i := range b {
		if &b[i] == &sub[0] {
			return i
		}
	}
	return -1
}

// FuzzFileSource reads arbitrary bytes as a capture file. It must not
// panic, must end, and must keep memory to its buffers plus what the input
// itself holds.
func FuzzFileSource(f *testing.F) {
	recs := mixedRecords(f)
	pcap := writePcap(f, false, layers.LinkTypeEthernet, recs)
	ng := writeNg(f, recs)
	withOpts := &ngBuilder{order: binary.BigEndian}
	withOpts.shb()
	withOpts.idb(layers.LinkTypeLinuxSLL2, 6)
	withOpts.idb(layers.LinkTypeEthernet, 0x80|20)
	for i, r := range recs {
		withOpts.epb(uint32(i%2), uint64(i), r.data, len(r.data)+10, withOpts.packetOptions())
	}
	for _, seed := range [][]byte{
		pcap,
		swapPcap(writePcap(f, true, layers.LinkTypeNull, []record{{ts: testStart, data: cat(unhex("02000000"), segment(f, 1)[14:])}})),
		pcap[:len(pcap)-9],
		ng,
		ng[:len(ng)-9],
		withOpts.buf.Bytes(),
		gzipped(f, pcap[:200]),
		cat(pcap[:24], unhex("00f15365 00000000 00000080 00000080"), pcap[24:60]),              // a 2 GiB record
		cat(ng[:100], unhex("06000000 70000000 00000000 00000000 00000000 00000080 00000080")), // a 2 GiB packet
		{},
		[]byte("not a capture"),
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Small buffers: cheaper per run than the 1 MiB a file gets, and
		// every record boundary is near a buffer boundary.
		s, err := newReaderSource(bytes.NewReader(data), minReadBufferSize)
		if err != nil {
			if s != nil {
				t.Fatal("source and error")
			}
			return
		}
		defer s.Close()
		gz := len(data) >= 2 && data[0] == 0x1F && data[1] == 0x8B
		// Every record takes at least 12 bytes of input (pcapng's smallest
		// block); decompressed input can be much larger.
		limit := len(data)/12 + 2
		if gz {
			limit = 1 << 22
		}
		var p Packet
		var tcp uint64
		for i := 0; ; i++ {
			if i > limit {
				t.Fatalf("more than %d Next calls for %d bytes", limit, len(data))
			}
			err = s.Next(&p)
			if err == ErrTimeout {
				continue // many records skipped: a pause, not an end
			}
			if err != nil {
				break
			}
			tcp++
			if p.Missing < 0 || len(p.Payload) > MaxRecordLen {
				t.Fatalf("packet %+v", p)
			}
		}
		if err2 := s.Next(&p); err2 != err {
			t.Fatalf("error not sticky: %v, then %v", err, err2)
		}
		st := s.Stats()
		if st.TCP != tcp || st.TCP+st.NotTCP+st.Fragments+st.Malformed+st.UnsupportedLink != st.Records {
			t.Fatalf("Stats %+v after %d packets", st, tcp)
		}
		if !gz {
			// Read buffers (2 x 4 KiB), pcapgo's packet buffer (up to
			// MaxRecordLen) and option buffers, plus what pcapgo keeps of
			// the input (name records, decryption secrets): counted in the
			// reader (internal/retained), the input itself left out.
			if held := retained.Bytes(s, data); held > 2<<20+4*len(data) {
				t.Fatalf("the reader holds %d bytes after %d bytes of input", held, len(data))
			}
		}
	})
}
