package capture

import (
	"sync/atomic"
	"time"
)

// FlowHandler receives one TCP connection's traffic, in capture order, from
// the Assembler. Byte slices passed to it alias packet buffers and are only
// valid during the call.
type FlowHandler interface {
	// Packet is called for every packet of the flow before its payload is
	// delivered, with what reassembly made of it.
	Packet(d Dir, p *Packet, info SegmentInfo)
	// Data delivers in-order stream bytes. Each call carries the new bytes of
	// exactly one TCP segment (segments buffered out of order are delivered
	// when the hole before them fills, with their own capture time).
	Data(d Dir, seq uint32, b []byte, ts int64)
	// Gap reports that lost bytes precede the next Data call in d.
	Gap(d Dir, lost int)
	// Close ends the flow. The handler is not used afterwards.
	Close(reason CloseReason, ts int64)
}

// SegmentInfo says what reassembly did with a packet.
type SegmentInfo uint8

// Reassembly outcomes.
const (
	SegEmpty      SegmentInfo = iota // no payload (pure ACK, SYN, FIN, RST)
	SegInOrder                       // new bytes, delivered now
	SegOutOfOrder                    // new bytes after a hole, buffered (or delivered after a gap)
	SegRetransmit                    // bytes already delivered: dropped
	SegOverlap                       // partly old bytes: the old part was trimmed
)

// CloseReason says why a flow ended.
type CloseReason uint8

// Close reasons.
const (
	CloseFIN CloseReason = iota
	CloseRST
	CloseIdle
	CloseEvicted
	CloseEnd // the capture ended
)

func (r CloseReason) String() string {
	return [...]string{"fin", "rst", "idle", "evicted", "end"}[r]
}

// HandlerFactory creates the handler of a newly seen flow. d is the
// direction of its first packet. It may return nil to ignore the flow.
type HandlerFactory interface {
	NewFlow(k FlowKey, d Dir, p *Packet) FlowHandler
}

// AssemblerConfig bounds the assembler's state.
type AssemblerConfig struct {
	MaxFlows        int           // flows tracked at once; the least recently active is evicted beyond it
	MaxBufferedFlow int           // out-of-order bytes buffered per direction before a gap is declared
	MaxBufferedAll  int           // out-of-order bytes buffered in all flows
	IdleTimeout     time.Duration // packet time without traffic after which a flow is closed
	HoleTimeout     time.Duration // packet time a hole may stay open before it is declared lost
}

// DefaultAssemblerConfig returns limits that suit a busy server host.
func DefaultAssemblerConfig() AssemblerConfig {
	return AssemblerConfig{
		MaxFlows:        65536,
		MaxBufferedFlow: 1 << 20,
		MaxBufferedAll:  32 << 20,
		IdleTimeout:     5 * time.Minute,
		HoleTimeout:     500 * time.Millisecond,
	}
}

// AssemblerStats counts what reassembly saw and skipped.
type AssemblerStats struct {
	Flows          uint64 // flows created
	Ignored        uint64 // flows the factory declined
	Evicted        uint64 // flows evicted because MaxFlows was reached
	IdleClosed     uint64
	DataSegments   uint64 // packets carrying new bytes
	Retransmits    uint64 // packets whose bytes were all seen already
	Overlaps       uint64 // packets partly seen already (trimmed)
	OutOfOrder     uint64 // packets that arrived after a hole
	Gaps           uint64 // holes declared lost
	GapBytes       uint64
	BufferOverflow uint64 // holes declared early because buffers were full
}

// Assembler turns packets into ordered per-direction byte streams. It keeps
// each TCP segment's boundary and capture time, which is what batching
// analysis needs and why gopacket's reassembly (which merges pages) is not
// used. It is not safe for concurrent use: run one per worker.
type Assembler struct {
	cfg     AssemblerConfig
	factory HandlerFactory
	flows   map[FlowKey]*flow
	ignored map[FlowKey]int64 // flows the factory declined → last packet time
	stats   AssemblerStats
	now     int64
	lastGC  int64
	// driven: the owner moves the clock and sweeps (Advance, Sweep), so
	// that several assemblers sharing a capture act at the same moments.
	driven bool
	// shared counts the flows of all the assemblers sharing MaxFlows.
	shared *atomic.Int64
	bufAll int
	free   [][]byte             // recycled out-of-order buffers
	cache  [flowCacheSize]*flow // recent flows by a cheap direction-independent hash
	// The flows from least to most recently active (by arrival of their
	// packets): eviction takes the first without scanning the table, which
	// cost a pass over all MaxFlows flows per new flow once it was full.
	oldest, newest *flow
}

func (a *Assembler) slot(k FlowKey) **flow {
	return &a.cache[(k.A.Port^k.B.Port^uint16(k.A.IP[15]^k.B.IP[15])<<8)&(flowCacheSize-1)]
}

// flowCacheSize is the number of slots of the flow cache in front of the
// flow map: packets of a few hundred busy connections skip the map lookup.
const flowCacheSize = 512

type pendingSeg struct {
	seq  uint32
	ts   int64
	data []byte
}

type half struct {
	started bool
	next    uint32 // next expected sequence number
	fin     bool
	ooo     []pendingSeg // sorted by seq
	oooLen  int
	holeTS  int64  // when the oldest pending segment arrived
	peerAck uint32 // highest ACK the peer sent for this direction's bytes
	acked   bool   // peerAck is set
}

type flow struct {
	key        FlowKey
	h          FlowHandler
	dirs       [2]half
	last       int64
	rst        bool
	prev, next *flow // in the Assembler's activity order
}

// NewAssembler returns an assembler that hands each new flow to f.
func NewAssembler(cfg AssemblerConfig, f HandlerFactory) *Assembler {
	return &Assembler{
		cfg:     cfg,
		factory: f,
		flows:   make(map[FlowKey]*flow),
		ignored: make(map[FlowKey]int64),
	}
}

// Stats returns the counters so far.
func (a *Assembler) Stats() AssemblerStats { return a.stats }

// Flows returns the number of flows currently tracked.
func (a *Assembler) Flows() int { return len(a.flows) }

// Add processes one packet. Packets must come in capture order.
func (a *Assembler) Add(p *Packet) {
	if p.TS > a.now {
		a.now = p.TS
	}
	if a.now-a.lastGC > GCInterval && !a.driven {
		a.gc()
	}
	// A direct-mapped cache of recent flows, indexed by a hash that is
	// the same in both directions, saves building the canonical key and
	// the map lookup for most packets.
	slot := &a.cache[(p.SrcPort^p.DstPort^uint16(p.SrcIP[15]^p.DstIP[15])<<8)&(flowCacheSize-1)]
	f := *slot
	var d Dir
	switch {
	case f != nil && f.key.A.Port == p.SrcPort && f.key.B.Port == p.DstPort && f.key.A.IP == p.SrcIP && f.key.B.IP == p.DstIP:
		d = 0
	case f != nil && f.key.B.Port == p.SrcPort && f.key.A.Port == p.DstPort && f.key.B.IP == p.SrcIP && f.key.A.IP == p.DstIP:
		d = 1
	default:
		var k FlowKey
		k, d = KeyOf(p)
		f = a.flows[k]
		if f == nil {
			f = a.newFlow(k, d, p)
			if f == nil {
				return
			}
		}
	}
	f.last = p.TS
	*slot = f
	if f != a.newest {
		a.unlink(f)
		a.push(f)
	}
	a.segment(f, d, p)
	if f.rst || (f.dirs[0].fin && f.dirs[1].fin) {
		reason := CloseFIN
		if f.rst {
			reason = CloseRST
		}
		a.close(f, reason)
	}
}

// newFlow asks the factory for a handler of a flow not seen before; nil
// means the packet is ignored.
func (a *Assembler) newFlow(k FlowKey, d Dir, p *Packet) *flow {
	if _, ok := a.ignored[k]; ok {
		a.ignored[k] = p.TS
		return nil
	}
	if p.Flags&(FlagRST|FlagFIN) != 0 && len(p.Payload) == 0 {
		return nil // the tail of a connection we never saw
	}
	h := a.factory.NewFlow(k, d, p)
	if h == nil {
		a.stats.Ignored++
		if len(a.ignored) < a.cfg.MaxFlows {
			a.ignored[k] = p.TS
		}
		return nil
	}
	if a.shared != nil {
		if a.shared.Add(1) > int64(a.cfg.MaxFlows) && len(a.flows) > 0 {
			a.evictOldest()
		}
	} else if len(a.flows) >= a.cfg.MaxFlows {
		a.evictOldest()
	}
	f := &flow{key: k, h: h}
	a.flows[k] = f
	a.push(f)
	a.stats.Flows++
	return f
}

// push makes f the most recently active flow.
func (a *Assembler) push(f *flow) {
	f.prev, f.next = a.newest, nil
	if a.newest != nil {
		a.newest.next = f
	} else {
		a.oldest = f
	}
	a.newest = f
}

// unlink takes f out of the activity order.
func (a *Assembler) unlink(f *flow) {
	if f.prev != nil {
		f.prev.next = f.next
	} else if a.oldest == f {
		a.oldest = f.next
	}
	if f.next != nil {
		f.next.prev = f.prev
	} else if a.newest == f {
		a.newest = f.prev
	}
	f.prev, f.next = nil, nil
}

func (a *Assembler) segment(f *flow, d Dir, p *Packet) {
	hd := &f.dirs[d]
	seq := p.Seq
	if p.Flags&FlagSYN != 0 {
		hd.started = true
		hd.next = seq + 1
		seq++
	}
	n := len(p.Payload) + p.Missing
	if !hd.started && n > 0 {
		// Mid-stream start: the first bytes we see define the stream.
		hd.started = true
		hd.next = seq
	}
	if len(hd.ooo) > 0 && time.Duration(p.TS-hd.holeTS) > a.cfg.HoleTimeout {
		a.skipHole(f, d)
	}
	if p.Flags&FlagACK != 0 {
		// The peer acknowledged bytes up to p.Ack. If that covers a
		// segment we hold after a hole, the peer has the hole's bytes: the
		// capture lost them and no retransmission will bring them, so the
		// hole is declared now rather than after HoleTimeout (which would
		// let this side's answers overtake the requests stuck behind it).
		o := &f.dirs[d.Other()]
		if !o.acked || int32(p.Ack-o.peerAck) > 0 {
			o.peerAck, o.acked = p.Ack, true
		}
		if len(o.ooo) > 0 && int32(p.Ack-o.ooo[0].seq) > 0 {
			a.skipHole(f, d.Other())
		}
	}
	info := SegEmpty
	payload := p.Payload
	missing := p.Missing
	if n > 0 {
		diff := int32(seq - hd.next)
		switch {
		case diff < 0 && int64(-diff) >= int64(n):
			info = SegRetransmit
			a.stats.Retransmits++
		case diff < 0:
			info = SegOverlap
			a.stats.Overlaps++
			trim := int(-diff)
			if trim >= len(payload) {
				missing -= trim - len(payload)
				payload = nil
			} else {
				payload = payload[trim:]
			}
			seq = hd.next
		case diff > 0:
			info = SegOutOfOrder
			a.stats.OutOfOrder++
		default:
			info = SegInOrder
		}
	}
	f.h.Packet(d, p, info)
	switch info {
	case SegInOrder, SegOverlap:
		a.stats.DataSegments++
		a.deliver(f, d, seq, payload, missing, p.TS)
		a.drain(f, d)
	case SegOutOfOrder:
		a.stats.DataSegments++
		a.buffer(f, d, seq, payload, missing, p.TS)
	}
	if p.Flags&FlagFIN != 0 {
		hd.fin = true
	}
	if p.Flags&FlagRST != 0 {
		f.rst = true
	}
}

func (a *Assembler) deliver(f *flow, d Dir, seq uint32, b []byte, missing int, ts int64) {
	hd := &f.dirs[d]
	if len(b) > 0 {
		f.h.Data(d, seq, b, ts)
	}
	hd.next = seq + uint32(len(b))
	if missing > 0 {
		a.stats.Gaps++
		a.stats.GapBytes += uint64(missing)
		f.h.Gap(d, missing)
		hd.next += uint32(missing)
	}
}

// buffer keeps a segment that arrived after a hole. A truncated capture
// (missing > 0) cannot be buffered faithfully, so it forces the gap now.
func (a *Assembler) buffer(f *flow, d Dir, seq uint32, b []byte, missing int, ts int64) {
	hd := &f.dirs[d]
	ackedPast := hd.acked && int32(hd.peerAck-seq) > 0
	var buf []byte
	full := false
	if !ackedPast && missing == 0 {
		buf = a.alloc(len(b))
		c := charge(buf)
		if full = hd.oooLen+c > a.cfg.MaxBufferedFlow || a.bufAll+c > a.cfg.MaxBufferedAll; full {
			a.release(buf)
		}
	}
	if ackedPast || missing > 0 || full {
		if full {
			a.stats.BufferOverflow++
		}
		a.skipHole(f, d)
		// Anything still buffered is now either delivered or behind seq.
		if int32(seq-hd.next) > 0 {
			lost := int(seq - hd.next)
			a.stats.Gaps++
			a.stats.GapBytes += uint64(lost)
			f.h.Gap(d, lost)
			hd.next = seq
		}
		if int32(seq-hd.next) < 0 {
			return
		}
		a.deliver(f, d, seq, b, missing, ts)
		a.drain(f, d)
		return
	}
	copy(buf, b)
	if len(hd.ooo) == 0 {
		hd.holeTS = ts
	}
	// The first buffered segment not before seq (the list is sorted, and
	// all of it lies within 2^31 after hd.next).
	i, j := 0, len(hd.ooo)
	for i < j {
		if m := int(uint(i+j) >> 1); int32(hd.ooo[m].seq-seq) < 0 {
			i = m + 1
		} else {
			j = m
		}
	}
	if i < len(hd.ooo) && hd.ooo[i].seq == seq {
		// Duplicate of a buffered segment: keep the longer one.
		if len(hd.ooo[i].data) >= len(buf) {
			a.release(buf)
			a.stats.Retransmits++
			return
		}
		hd.oooLen -= charge(hd.ooo[i].data)
		a.bufAll -= charge(hd.ooo[i].data)
		a.release(hd.ooo[i].data)
		hd.ooo[i] = pendingSeg{seq, ts, buf}
	} else {
		hd.ooo = append(hd.ooo, pendingSeg{})
		copy(hd.ooo[i+1:], hd.ooo[i:])
		hd.ooo[i] = pendingSeg{seq, ts, buf}
	}
	hd.oooLen += charge(buf)
	a.bufAll += charge(buf)
}

// Buffered segments are charged to MaxBufferedFlow and MaxBufferedAll by
// the memory they hold, not their length: the capacity of their buffer
// (at least minSegBuffer) and segOverhead for their entry in the list.
// Charged by length, a flow of 1-byte segments after a hole held 2 KiB per
// byte of the limits (2 GiB per flow), and its list grew long enough to
// make each insertion a long copy.
const (
	minSegBuffer = 2048
	segOverhead  = 64
	// maxRecycled is the largest buffer kept for reuse: the free list
	// holds at most 256 of them.
	maxRecycled = 16 << 10
)

func charge(b []byte) int { return cap(b) + segOverhead }

// drain delivers buffered segments that have become in order.
func (a *Assembler) drain(f *flow, d Dir) {
	hd := &f.dirs[d]
	for len(hd.ooo) > 0 {
		s := hd.ooo[0]
		diff := int32(s.seq - hd.next)
		if diff > 0 {
			return
		}
		a.pop(hd)
		b := s.data
		if int(-diff) >= len(b) {
			a.stats.Retransmits++
		} else {
			a.deliver(f, d, hd.next, b[-diff:], 0, s.ts)
		}
		a.release(s.data)
	}
}

func (a *Assembler) pop(hd *half) {
	s := hd.ooo[0]
	hd.oooLen -= charge(s.data)
	a.bufAll -= charge(s.data)
	// Sliced off, not shifted down: draining n segments costs O(n).
	hd.ooo[0] = pendingSeg{}
	hd.ooo = hd.ooo[1:]
	if len(hd.ooo) > 0 {
		hd.holeTS = hd.ooo[0].ts
	}
}

// skipHole declares the bytes before the first buffered segment lost and
// delivers what follows.
func (a *Assembler) skipHole(f *flow, d Dir) {
	hd := &f.dirs[d]
	if len(hd.ooo) == 0 {
		return
	}
	lost := int(hd.ooo[0].seq - hd.next)
	if lost > 0 {
		a.stats.Gaps++
		a.stats.GapBytes += uint64(lost)
		f.h.Gap(d, lost)
		hd.next = hd.ooo[0].seq
	}
	a.drain(f, d)
}

func (a *Assembler) alloc(n int) []byte {
	for i := len(a.free) - 1; i >= 0; i-- {
		if cap(a.free[i]) >= n {
			b := a.free[i][:n]
			a.free[i] = a.free[len(a.free)-1]
			a.free = a.free[:len(a.free)-1]
			return b
		}
	}
	if n < minSegBuffer {
		return make([]byte, n, minSegBuffer)
	}
	return make([]byte, n)
}

func (a *Assembler) release(b []byte) {
	if len(a.free) < 256 && cap(b) <= maxRecycled {
		a.free = append(a.free, b[:0])
	}
}

func (a *Assembler) close(f *flow, reason CloseReason) {
	for d := Dir(0); d < 2; d++ {
		hd := &f.dirs[d]
		for len(hd.ooo) > 0 {
			a.skipHole(f, d)
		}
	}
	f.h.Close(reason, a.now)
	delete(a.flows, f.key)
	if a.shared != nil {
		a.shared.Add(-1)
	}
	a.unlink(f)
	if slot := a.slot(f.key); *slot == f {
		*slot = nil
	}
}

func (a *Assembler) evictOldest() {
	if oldest := a.oldest; oldest != nil {
		a.stats.Evicted++
		a.close(oldest, CloseEvicted)
	}
}

// gc closes idle flows and declares holes that stayed open too long lost.
func (a *Assembler) gc() {
	a.lastGC = a.now
	for _, f := range a.flows {
		if time.Duration(a.now-f.last) > a.cfg.IdleTimeout {
			a.stats.IdleClosed++
			a.close(f, CloseIdle)
			continue
		}
		for d := Dir(0); d < 2; d++ {
			hd := &f.dirs[d]
			if len(hd.ooo) > 0 && time.Duration(a.now-hd.holeTS) > a.cfg.HoleTimeout {
				a.skipHole(f, d)
			}
		}
	}
	for k, t := range a.ignored {
		if time.Duration(a.now-t) > a.cfg.IdleTimeout {
			delete(a.ignored, k)
		}
	}
}

// Flush closes every flow, as at the end of a capture.
func (a *Assembler) Flush() {
	for _, f := range a.flows {
		a.close(f, CloseEnd)
	}
}
