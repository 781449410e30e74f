package synth

import (
	"io"
	"time"
)

// Segment is one data segment of a hand-made conversation.
type Segment struct {
	FromClient bool
	At         time.Duration // since the conversation's start
	Payload    []byte
}

// WriteConversation writes one TCP connection, 127.0.0.2:40000 ↔
// 127.0.0.1:port, caught mid-stream (no handshake), carrying the segments
// in order, each acknowledging what the other side sent before it. It is
// for tests that need exact control of what each segment carries (e.g. the
// same CQL bytes in the clear and inside TLS records).
func WriteConversation(w io.Writer, port uint16, start time.Time, segs []Segment) error {
	if start.IsZero() {
		start = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	}
	p := newPcapWriter(w)
	seq := [2]uint32{1000, 500000} // client, server
	for _, s := range segs {
		from, to := 0, 1
		src, dst, sport, dport := uint32(clientIP), uint32(serverIP), uint16(clientPort), port
		if !s.FromClient {
			from, to = 1, 0
			src, dst, sport, dport = serverIP, clientIP, port, uint16(clientPort)
		}
		for off := 0; off < len(s.Payload) || off == 0; {
			n := min(len(s.Payload)-off, MaxMSS)
			seg := segment{ts: start.Add(s.At).UnixNano(), src: src, dst: dst, sport: sport, dport: dport,
				seq: seq[from], ack: seq[to], flags: tcpACK | tcpPSH, win: 65535, payload: s.Payload[off : off+n]}
			p.packet(&seg)
			seq[from] += uint32(n)
			off += n
			if n == 0 {
				break
			}
		}
	}
	return p.flush()
}
