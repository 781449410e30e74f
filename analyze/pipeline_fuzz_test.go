package analyze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
)

// FuzzPipeline drives the whole offline path past the decoders: TCP
// reassembly, the CQL stream, pairing, the v5 switch, statements, the
// exchange log and both report renderings, over packets of up to four
// connections that the fuzzer shapes (see fuzzSource). Nothing may panic, the
// log must be JSON lines, and a connection never has more answered requests
// than requests.
func FuzzPipeline(f *testing.F) {
	for _, c := range []struct {
		file string
		conn int // which connection, in order of appearance
	}{
		{"python-3.30.1-v5-nodelay-c1.pcap", 1},      // v5 segments, the switch after STARTUP
		{"gocql-1.7.0-v4-lz4-coalesced-c64.pcap", 4}, // v4, lz4 bodies, many frames per segment
		{"python-3.30.1-v5-lz4-nodelay-c32.pcap", 1}, // v5 lz4 segments
		{"nodejs-4.10.0-default-c1.pcap", 0},         // a refused DSE_V2 probe
	} {
		if seed := seedFromCapture(f, filepath.Join("..", "pcaps", c.file), c.conn, 40); seed != nil {
			f.Add(seed)
		}
	}
	f.Add([]byte{})
	f.Add([]byte{0x08, 0, 0, 0x0c, 0, 0, 0x10, 0, 0})                   // SYN, FIN, RST
	f.Add([]byte{0x00, 9, 0, 0x04, 0, 0, 0, 0, 0x05, 0, 0, 0, 0, 0, 0}) // a header claiming no body

	f.Fuzz(func(t *testing.T, data []byte) {
		var log bytes.Buffer
		cfg := DefaultConfig()
		cfg.Log = &log
		acfg := capture.DefaultAssemblerConfig()
		p := NewPipeline(&fuzzSource{data: data}, cfg, acfg)
		if err := p.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if err := p.Finish(); err != nil {
			t.Fatal(err)
		}
		rep := p.Report("fuzz")
		if err := rep.WriteText(io.Discard, 5); err != nil {
			t.Fatal(err)
		}
		if _, err := json.Marshal(rep); err != nil {
			t.Fatal(err)
		}
		for _, c := range rep.Connections {
			if c.Responses > c.Requests {
				t.Fatalf("%s: %d responses paired to %d requests", c.Client, c.Responses, c.Requests)
			}
		}
		if rep.Totals.Responses > rep.Totals.Requests {
			t.Fatalf("totals: %d responses paired to %d requests", rep.Totals.Responses, rep.Totals.Requests)
		}
		sc := bufio.NewScanner(&log)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			if !json.Valid(sc.Bytes()) {
				t.Fatalf("log line is not JSON: %q", sc.Bytes())
			}
		}
		// Three workers make the same report.
		p3 := NewPipeline(&fuzzSource{data: data}, DefaultConfig(), acfg, Workers(3))
		if err := p3.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if err := p3.Finish(); err != nil {
			t.Fatal(err)
		}
		cfg.Log = nil
		one, _ := json.Marshal(rep)
		three, _ := json.Marshal(p3.Report("fuzz"))
		if !bytes.Equal(one, three) {
			t.Fatalf("three workers' report differs from one's:\n%s", jsonDiff(one, three))
		}
	})
}

// fuzzSource turns bytes into TCP packets. Each packet is a control byte, a
// 16-bit payload length (little end first) and the payload:
//
//	bits 0-1  connection 0-3 (3 is on port 19042, 2 over IPv6)
//	bit 2     direction: 0 client to server, 1 server to client
//	bits 3-4  0 data/ACK, 1 SYN, 2 FIN, 3 RST
//	bit 5     a gap: the sequence number jumps past lost bytes first
//	bit 6     a retransmission: the previous payload of that direction again
//	bit 7     a pause of a second before the packet (else a few µs)
//
// Every packet acknowledges all the peer sent, so the reassembler sees holes
// the way it does in a capture that lost packets.
type fuzzSource struct {
	data  []byte
	ts    int64
	seq   [4][2]uint32
	last  [4][2][]byte
	stats capture.SourceStats
}

func (s *fuzzSource) Next(p *capture.Packet) error {
	if len(s.data) < 3 {
		return io.EOF
	}
	ctl := s.data[0]
	n := int(s.data[1]) | int(s.data[2])<<8
	s.data = s.data[3:]
	n = min(n, len(s.data))
	payload := s.data[:n]
	s.data = s.data[n:]

	conn, dir := int(ctl&3), int(ctl>>2&1)
	if ctl&0x80 != 0 {
		s.ts += 1e9
	} else {
		s.ts += int64(1000 + int(ctl)*37)
	}
	*p = capture.Packet{TS: s.ts, Window: 65535, Flags: capture.FlagACK}
	client, server := [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}, [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 2} // IPv4-mapped
	if conn == 2 {
		client, server = [16]byte{0xfd, 15: 1}, [16]byte{0xfd, 15: 2}
		p.IPv6 = true
	}
	cport, sport := uint16(40000+conn), uint16(9042)
	if conn == 3 {
		sport = 19042
	}
	p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = client, server, cport, sport
	if dir == 1 {
		p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = server, client, sport, cport
	}
	switch ctl >> 3 & 3 {
	case 1:
		p.Flags = capture.FlagSYN
		if dir == 1 {
			p.Flags |= capture.FlagACK
		}
	case 2:
		p.Flags |= capture.FlagFIN
	case 3:
		p.Flags |= capture.FlagRST
	}
	seq := &s.seq[conn][dir]
	if ctl&0x20 != 0 {
		*seq += 1 + uint32(n)
	}
	if ctl&0x40 != 0 && s.last[conn][dir] != nil {
		payload = s.last[conn][dir]
		p.Seq = *seq - uint32(len(payload))
	} else {
		p.Seq = *seq
		*seq += uint32(len(payload))
		if p.Flags&(capture.FlagSYN|capture.FlagFIN) != 0 {
			*seq++
		}
		s.last[conn][dir] = payload
	}
	p.Ack = s.seq[conn][1-dir]
	p.Payload = payload
	p.WireLen = 54 + len(payload)
	s.stats.Records++
	p.Num = s.stats.Records
	s.stats.TCP++
	s.stats.Bytes += uint64(p.WireLen)
	return nil
}

func (s *fuzzSource) Stats() capture.SourceStats { return s.stats }
func (s *fuzzSource) Close() error               { return nil }

// seedFromCapture writes the first max packets of one connection of a real
// capture (the conn-th to appear) in fuzzSource's format, 16 KiB at most
// (the fuzzer minimizes big inputs slowly); nil when pcaps/ is absent.
func seedFromCapture(tb testing.TB, path string, conn, max int) []byte {
	tb.Helper()
	src, err := capture.OpenFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	var out []byte
	var pkt capture.Packet
	var clients []uint16
	for n := 0; n < max && len(out) < 16<<10; {
		if err := src.Next(&pkt); err != nil {
			break
		}
		if pkt.DstPort == 9042 && len(clients) <= conn && !slices.Contains(clients, pkt.SrcPort) {
			clients = append(clients, pkt.SrcPort)
		}
		if len(clients) <= conn {
			continue
		}
		client := clients[conn]
		toServer := pkt.SrcPort == client && pkt.DstPort == 9042
		if !toServer && !(pkt.DstPort == client && pkt.SrcPort == 9042) {
			continue
		}
		var ctl byte
		if !toServer {
			ctl |= 4
		}
		switch {
		case pkt.Flags&capture.FlagSYN != 0:
			ctl |= 1 << 3
		case pkt.Flags&capture.FlagFIN != 0:
			ctl |= 2 << 3
		case pkt.Flags&capture.FlagRST != 0:
			ctl |= 3 << 3
		case len(pkt.Payload) == 0:
			continue
		}
		l := min(len(pkt.Payload), 65535)
		out = append(out, ctl, byte(l), byte(l>>8))
		out = append(out, pkt.Payload[:l]...)
		n++
	}
	return out
}
