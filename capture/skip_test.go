package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// endless reads head, then unit over and over.
type endless struct {
	head, unit []byte
	off        int
}

func (e *endless) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		if len(e.head) > 0 {
			c := copy(p[n:], e.head)
			e.head = e.head[c:]
			n += c
			continue
		}
		c := copy(p[n:], e.unit[e.off:])
		e.off = (e.off + c) % len(e.unit)
		n += c
	}
	return n, nil
}

// nextWithin calls s.Next, failing the test if it does not return in time.
func nextWithin(t *testing.T, s *FileSource, d time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() {
		var p Packet
		done <- s.Next(&p)
	}()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		t.Fatalf("Next did not return within %v", d)
		return nil
	}
}

// TestFileSourceEndlessOtherTraffic: Next used to read on for as long as
// records were not TCP, so a pipe of UDP (or of pcapng blocks without
// packets) kept it, and the pipeline that checks for cancellation between
// packets, busy forever: Ctrl-C was ignored. It must return ErrTimeout now
// and then, and read on after it.
func TestFileSourceEndlessOtherTraffic(t *testing.T) {
	udp := build(t, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolUDP), gopacket.Payload(make([]byte, 32)))
	pcapRec := func(data []byte, capLen uint32) []byte {
		h := binary.LittleEndian.AppendUint64(nil, 0)
		h = binary.LittleEndian.AppendUint32(h, capLen)
		h = binary.LittleEndian.AppendUint32(h, capLen)
		return append(h, data...)
	}
	pcapHead := writePcap(t, false, layers.LinkTypeEthernet, nil)
	ng := func(blocks func(b *ngBuilder)) []byte {
		b := &ngBuilder{order: binary.LittleEndian}
		blocks(b)
		return b.buf.Bytes()
	}
	ngHead := ng(func(b *ngBuilder) { b.shb(); b.idb(layers.LinkTypeEthernet, 9) })

	for _, c := range []struct {
		name       string
		head, unit []byte
	}{
		{"pcap: UDP", pcapHead, pcapRec(udp, uint32(len(udp)))},
		{"pcap: 1 MiB records skipped unread", pcapHead, pcapRec(nil, 1<<20)},
		{"pcapng: UDP", ngHead, ng(func(b *ngBuilder) { b.epb(0, 0, udp, len(udp), nil) })},
		{"pcapng: unknown blocks", ngHead, ng(func(b *ngBuilder) { b.block(0x0BAD, make([]byte, 8)) })},
		{"pcapng: name resolution blocks", ngHead, ng(func(b *ngBuilder) { b.block(4, make([]byte, 4)) })},
		{"pcapng: oversized packet blocks", ngHead, ng(func(b *ngBuilder) {
			b.epb(0, 0, udp, len(udp), nil)
			binary.LittleEndian.PutUint32(b.buf.Bytes()[20:], MaxRecordLen+1) // captured length
		})},
	} {
		t.Run(c.name, func(t *testing.T) {
			if c.name == "pcap: 1 MiB records skipped unread" {
				c.unit = append(c.unit, make([]byte, 1<<20)...)
			}
			s, err := NewReaderSource(&endless{head: c.head, unit: c.unit})
			if err != nil {
				t.Fatal(err)
			}
			var records uint64
			for range 3 {
				if err := nextWithin(t, s, 10*time.Second); err != ErrTimeout {
					t.Fatalf("Next = %v, want ErrTimeout", err)
				}
				if st := s.Stats(); st.Records <= records && st.Records != 0 || st.TCP != 0 {
					t.Fatalf("Stats %+v after %d records", st, records)
				}
				records = s.Stats().Records
			}
		})
	}

	// Reading goes on after a pause: a TCP packet after 200000 others is
	// still found.
	good := segment(t, 1000)
	var recs []record
	for range 200_000 {
		recs = append(recs, record{link: layers.LinkTypeEthernet, ts: testStart, data: udp})
	}
	recs = append(recs, record{link: layers.LinkTypeEthernet, ts: testStart, data: good})
	for name, file := range map[string][]byte{
		"pcap":   writePcap(t, false, layers.LinkTypeEthernet, recs),
		"pcapng": writeNg(t, recs),
		"pcapng with blocks in between": bytes.Join([][]byte{ngHead,
			bytes.Repeat(ng(func(b *ngBuilder) { b.block(0x0BAD, nil) }), 200_000),
			ng(func(b *ngBuilder) { b.epb(0, 0, good, len(good), nil) })}, nil),
	} {
		s := open(t, file)
		pauses := 0
		var p Packet
		for {
			err := s.Next(&p)
			if err == ErrTimeout {
				pauses++
				continue
			}
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			break
		}
		if p.Seq != 1000 || pauses == 0 {
			t.Errorf("%s: packet seq %d after %d pauses", name, p.Seq, pauses)
		}
		if err := s.Next(&p); !errors.Is(err, io.EOF) {
			t.Errorf("%s: then %v, want EOF", name, err)
		}
	}
}
