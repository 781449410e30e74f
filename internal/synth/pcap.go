package synth

import (
	"bufio"
	"encoding/binary"
	"io"
)

// Packet layout: Ethernet II, IPv4 without options, TCP with the timestamp
// option on every segment (as Linux sends on loopback) and the usual SYN
// options on SYN and SYN-ACK.
const (
	ethLen    = 14
	ipLen     = 20
	tcpLen    = 20
	tsOptLen  = 12 // NOP NOP TS(10)
	synOptLen = 20 // MSS(4) SACK_PERM(2) TS(10) NOP(1) WSCALE(3)
	pcapRec   = 16

	// MaxMSS is the largest payload that fits one IPv4 packet with the TCP
	// timestamp option: 65535 - 20 - 32. Loopback's MTU of 65536 gives the
	// same figure, which is why Linux loopback captures show it.
	MaxMSS = 65535 - ipLen - tcpLen - tsOptLen

	snaplen     = 262144
	linkEther   = 1
	pcapMagicNs = 0xa1b23c4d

	winScale = 7
	synWin   = 65495
	dataWin  = 1024 // × 2^winScale
)

// TCP flags.
const (
	tcpFIN = 0x01
	tcpSYN = 0x02
	tcpPSH = 0x08
	tcpACK = 0x10
)

// pcapWriter writes classic pcap with nanosecond timestamps. Each record is
// built in one reused buffer (record header followed by the frame) and handed
// to a bufio.Writer in a single call, so writing a packet allocates nothing.
type pcapWriter struct {
	w     *bufio.Writer
	buf   []byte
	bytes int64
	err   error
}

func newPcapWriter(w io.Writer) *pcapWriter {
	p := &pcapWriter{
		w:   bufio.NewWriterSize(w, 1<<20),
		buf: make([]byte, pcapRec+ethLen+ipLen+tcpLen+synOptLen+MaxMSS),
	}
	var h [24]byte
	binary.LittleEndian.PutUint32(h[0:], pcapMagicNs)
	binary.LittleEndian.PutUint16(h[4:], 2)
	binary.LittleEndian.PutUint16(h[6:], 4)
	binary.LittleEndian.PutUint32(h[16:], snaplen)
	binary.LittleEndian.PutUint32(h[20:], linkEther)
	p.write(h[:])
	// Ethernet: zero MACs like Linux loopback, type IPv4. Written once; the
	// per-packet code never touches these bytes again.
	binary.BigEndian.PutUint16(p.buf[pcapRec+12:], 0x0800)
	return p
}

func (p *pcapWriter) write(b []byte) {
	if p.err != nil {
		return
	}
	n, err := p.w.Write(b)
	p.bytes += int64(n)
	p.err = err
}

func (p *pcapWriter) flush() error {
	if p.err == nil {
		p.err = p.w.Flush()
	}
	return p.err
}

// segment is one TCP segment to write. Payload aliases the sender's buffer
// and is copied before packet returns.
type segment struct {
	ts           int64 // Unix ns
	src, dst     uint32
	sport, dport uint16
	seq, ack     uint32
	flags        uint8
	win          uint16
	ipID         uint16
	tsval, tsecr uint32
	mss          uint16 // SYN only
	payload      []byte
}

// packet writes s as one pcap record.
func (p *pcapWriter) packet(s *segment) {
	opt := tsOptLen
	if s.flags&tcpSYN != 0 {
		opt = synOptLen
	}
	thl := tcpLen + opt
	ipTotal := ipLen + thl + len(s.payload)
	frame := ethLen + ipTotal
	b := p.buf[:pcapRec+frame]

	binary.LittleEndian.PutUint32(b[0:], uint32(s.ts/1e9))
	binary.LittleEndian.PutUint32(b[4:], uint32(s.ts%1e9))
	binary.LittleEndian.PutUint32(b[8:], uint32(frame))
	binary.LittleEndian.PutUint32(b[12:], uint32(frame))

	ip := b[pcapRec+ethLen:]
	ip[0] = 0x45
	ip[1] = 0
	binary.BigEndian.PutUint16(ip[2:], uint16(ipTotal))
	binary.BigEndian.PutUint16(ip[4:], s.ipID)
	binary.BigEndian.PutUint16(ip[6:], 0x4000) // DF
	ip[8] = 64
	ip[9] = 6
	ip[10], ip[11] = 0, 0
	binary.BigEndian.PutUint32(ip[12:], s.src)
	binary.BigEndian.PutUint32(ip[16:], s.dst)
	binary.BigEndian.PutUint16(ip[10:], ^fold(sum(ip[:ipLen], 0)))

	t := ip[ipLen:]
	binary.BigEndian.PutUint16(t[0:], s.sport)
	binary.BigEndian.PutUint16(t[2:], s.dport)
	binary.BigEndian.PutUint32(t[4:], s.seq)
	binary.BigEndian.PutUint32(t[8:], s.ack)
	t[12] = byte(thl/4) << 4
	t[13] = s.flags
	binary.BigEndian.PutUint16(t[14:], s.win)
	t[16], t[17], t[18], t[19] = 0, 0, 0, 0 // checksum, urgent pointer
	o := t[tcpLen:]
	if s.flags&tcpSYN != 0 {
		o[0], o[1] = 2, 4 // MSS
		binary.BigEndian.PutUint16(o[2:], s.mss)
		o[4], o[5] = 4, 2 // SACK permitted
		o = o[6:]
	} else {
		o[0], o[1] = 1, 1 // NOP NOP
		o = o[2:]
	}
	o[0], o[1] = 8, 10 // timestamps
	binary.BigEndian.PutUint32(o[2:], s.tsval)
	binary.BigEndian.PutUint32(o[6:], s.tsecr)
	if s.flags&tcpSYN != 0 {
		o[10] = 1                            // NOP
		o[11], o[12], o[13] = 3, 3, winScale // window scale
	}
	copy(t[thl:], s.payload)

	// TCP checksum over the pseudo-header and the segment.
	cs := uint64(s.src>>16) + uint64(s.src&0xFFFF) + uint64(s.dst>>16) + uint64(s.dst&0xFFFF) +
		6 + uint64(thl+len(s.payload))
	binary.BigEndian.PutUint16(t[16:], ^fold(sum(t[:thl+len(s.payload)], cs)))

	p.write(b)
}

// sum adds b to a ones'-complement accumulator, 32 bits at a time; fold
// reduces it to 16 bits (2^16 ≡ 1 mod 0xFFFF, so wide words fold correctly).
func sum(b []byte, s uint64) uint64 {
	for len(b) >= 32 {
		s += uint64(binary.BigEndian.Uint32(b)) + uint64(binary.BigEndian.Uint32(b[4:])) +
			uint64(binary.BigEndian.Uint32(b[8:])) + uint64(binary.BigEndian.Uint32(b[12:])) +
			uint64(binary.BigEndian.Uint32(b[16:])) + uint64(binary.BigEndian.Uint32(b[20:])) +
			uint64(binary.BigEndian.Uint32(b[24:])) + uint64(binary.BigEndian.Uint32(b[28:]))
		b = b[32:]
	}
	for len(b) >= 4 {
		s += uint64(binary.BigEndian.Uint32(b))
		b = b[4:]
	}
	if len(b) >= 2 {
		s += uint64(binary.BigEndian.Uint16(b))
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}
