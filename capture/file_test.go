package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

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
