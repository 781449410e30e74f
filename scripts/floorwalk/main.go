// Command floorwalk is the yardstick of scripts/bench-file.sh (issue 13):
// the least any analyser of a pcap file has to do. It reads the file through
// a 1 MiB bufio.Reader, walks each record's Ethernet, IPv4 and TCP headers
// and the CQL envelope headers chained from the start of its payload, and
// counts what it saw; nothing else: no flows, no reassembly, no bodies, no
// time. cqlsniff's cost on a file is given as a multiple of this one's.
//
// Usage:
//
//	floorwalk FILE
//
// FILE is a classic pcap file (either byte order, micro- or nanosecond
// times) of Ethernet frames, as cmd/cqlgen writes them. It prints one line:
//
//	records 693 tcp 693 payloads 693 frames 1200 bytes 175302
//
// records are the pcap records, tcp the IPv4 TCP packets among them,
// payloads the TCP packets with payload bytes, frames the envelope headers
// found at the start of a payload and chained after it, bytes the captured
// bytes of all records. Without flow state a frame that continues into the
// next segment ends the walk of its payload, and that next segment (which
// starts inside the frame) adds none: frames equals cqlsniff's count when
// every payload starts with an envelope, as in captures generated with the
// default (loopback) MSS.
package main

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
)

// readBuffer is the read-ahead of the floor, as the issue defines it (and
// as capture.FileSource reads).
const readBuffer = 1 << 20

func main() {
	if len(os.Args) != 2 || os.Args[1] == "-h" || os.Args[1] == "--help" {
		fmt.Fprintln(os.Stderr, "usage: floorwalk FILE.pcap (classic pcap, Ethernet)")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "floorwalk:", err)
		os.Exit(1)
	}
	defer f.Close()
	c, err := walk(f)
	if err != nil {
		fmt.Fprintf(os.Stderr, "floorwalk: %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	fmt.Printf("records %d tcp %d payloads %d frames %d bytes %d\n", c.Records, c.TCP, c.Payloads, c.Frames, c.Bytes)
}

// counts is what the walk saw.
type counts struct {
	Records, TCP, Payloads, Frames, Bytes uint64
}

// walk reads a whole pcap file from r.
func walk(r io.Reader) (counts, error) {
	var c counts
	br := bufio.NewReaderSize(r, readBuffer)
	hdr, err := br.Peek(24)
	if err != nil {
		return c, fmt.Errorf("reading the file header: %w", err)
	}
	var order binary.ByteOrder
	switch binary.LittleEndian.Uint32(hdr) {
	case 0xA1B2C3D4, 0xA1B23C4D:
		order = binary.LittleEndian
	case 0xD4C3B2A1, 0x4D3CB2A1:
		order = binary.BigEndian
	default:
		return c, errors.New("not a classic pcap file")
	}
	if link := order.Uint32(hdr[20:24]) & 0x0FFFFFFF; link != 1 {
		return c, fmt.Errorf("link type %d: only Ethernet (1) is walked", link)
	}
	br.Discard(24)
	for {
		rh, err := br.Peek(16)
		if err == io.EOF && len(rh) == 0 {
			return c, nil
		}
		if err != nil {
			return c, fmt.Errorf("record %d: %w", c.Records+1, io.ErrUnexpectedEOF)
		}
		n := int(order.Uint32(rh[8:12]))
		if n > readBuffer-16 {
			return c, fmt.Errorf("record %d: %d bytes, more than the read buffer", c.Records+1, n)
		}
		rec, err := br.Peek(16 + n)
		if err != nil {
			return c, fmt.Errorf("record %d: %w", c.Records+1, io.ErrUnexpectedEOF)
		}
		c.Records++
		c.Bytes += uint64(n)
		c.frame(rec[16:])
		br.Discard(16 + n)
	}
}

// frame walks one Ethernet frame to its TCP payload and the envelope
// headers in it.
func (c *counts) frame(b []byte) {
	const eth = 14
	if len(b) < eth+20 || binary.BigEndian.Uint16(b[12:14]) != 0x0800 || b[eth]>>4 != 4 || b[eth+9] != 6 {
		return
	}
	ihl := int(b[eth]&0x0F) * 4
	end := min(eth+int(binary.BigEndian.Uint16(b[eth+2:eth+4])), len(b)) // trims Ethernet padding
	tcp := eth + ihl
	if ihl < 20 || end < tcp+20 {
		return
	}
	c.TCP++
	payload := b[min(tcp+int(b[tcp+12]>>4)*4, end):end]
	if len(payload) == 0 {
		return
	}
	c.Payloads++
	// Envelope headers (cql-wire.md §2.1): version (0x80 set on responses),
	// flags, stream, opcode, body length.
	for len(payload) >= 9 {
		if v := payload[0] & 0x7F; v < 3 || v > 5 || payload[4] > 0x10 {
			return
		}
		c.Frames++
		next := 9 + uint64(binary.BigEndian.Uint32(payload[5:9]))
		if next > uint64(len(payload)) {
			return
		}
		payload = payload[next:]
	}
}
