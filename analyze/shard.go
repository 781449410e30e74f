package analyze

import (
	"crypto/rand"
	"encoding/binary"
	"io"
	"math/bits"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

// shard is one analysis worker: an assembler and an analyzer that own the
// connections dealt to it. With several workers the pipeline's goroutine
// fills batches of packets (copies: the source's buffer is reused at the
// next read) and hands them over a channel; used batches come back on
// another, so a worker that falls behind slows the reader down instead of
// growing memory.
type shard struct {
	an    *Analyzer
	asm   *capture.Assembler
	in    chan *batch
	free  chan *batch
	cur   *batch // being filled by the pipeline's goroutine
	err   error  // the exchange log's, at the end
	fan   fanoutState
	build *building // a snapshot's part under way
}

// Batch bounds: a batch goes to its worker when either is reached (or the
// source pauses, or a report is asked for). batchesPerShard batches per
// worker circulate, so each worker holds at most that much of the capture.
const (
	batchPackets    = 256
	batchBytes      = 256 << 10
	batchesPerShard = 4
)

type batch struct {
	pkts []dealt
	buf  []byte // the packets' payloads
	// After the packets: build a part of a report, or end the capture at
	// time now.
	req    *partsRequest
	finish bool
	now    int64
}

// dealt is a packet dealt to a worker, or (sweep) the moment the capture's
// clock passed a sweep for idle flows, so that every worker sweeps where a
// single assembler would have.
type dealt struct {
	p     capture.Packet
	now   int64 // the capture's clock when the packet was read
	sweep bool
}

func newBatch() *batch {
	return &batch{pkts: make([]dealt, 0, batchPackets), buf: make([]byte, 0, batchBytes)}
}

// partsRequest collects the workers' parts of one report.
type partsRequest struct {
	parts []*part
	copy  bool
	wg    sync.WaitGroup
	cost  atomic.Int64 // the longest a worker took to build its part (ns)
}

// servePart builds worker i's part of r.
//
// A snapshot's part (r.copy) is built a slice at a time (stepBuild),
// between batches or packets; a report asked for by a caller that waits for
// it, at once.
func (s *shard) servePart(i int, r *partsRequest) {
	s.build = &building{b: s.an.newPartBuilder(s.asm.Stats(), r.copy), req: r, i: i}
	if !r.copy {
		for s.build != nil {
			s.stepBuild(0)
		}
		return
	}
	s.stepBuild(partStep)
}

// partStep is how many connections and statements a worker adds to a
// snapshot's part at a time: a few milliseconds' work at most (a
// connection's report costs ~6 µs when it changed, a statement's copy
// ~10 µs).
const partStep = 512

// building is a part under way.
type building struct {
	b     *partBuilder
	req   *partsRequest
	i     int
	spent time.Duration
}

// stepBuild takes the part under way a step further (n: as in
// partBuilder.step) and hands it over when complete.
func (s *shard) stepBuild(n int) {
	w := s.build
	start := time.Now()
	done := w.b.step(n)
	w.spent += time.Since(start)
	if !done {
		return
	}
	pt, r := w.b.pt, w.req
	if s.fan.src != nil {
		// A fanout worker: its member's counters and clock, which only
		// it may read while it runs.
		pt.src, pt.clk = s.fan.src.Stats(), s.fan.clk
	}
	r.parts[w.i] = pt
	d := int64(w.spent)
	for c := r.cost.Load(); d > c && !r.cost.CompareAndSwap(c, d); c = r.cost.Load() {
	}
	s.build = nil
	r.wg.Done()
}

// finishBuild completes the part under way, if any.
func (s *shard) finishBuild() {
	for s.build != nil {
		s.stepBuild(0)
	}
}

// deal hands a packet to the worker that owns its connection.
func (p *Pipeline) deal(pkt *capture.Packet) {
	if pkt.TS > p.now {
		p.now = pkt.TS
	}
	if p.now-p.lastSweep > capture.GCInterval {
		p.lastSweep = p.now
		for _, s := range p.shards {
			p.slot(s, 0).sweep = true
		}
	}
	s := p.shards[shardOf(pkt, len(p.shards))]
	d := p.slot(s, len(pkt.Payload))
	d.p = *pkt
	b := s.cur
	off := len(b.buf)
	b.buf = append(b.buf, pkt.Payload...)
	d.p.Payload = b.buf[off:len(b.buf):len(b.buf)]
}

// slot returns the next entry of s's batch, with room for n payload bytes
// (filled in place: an entry is a 120-byte copy), stamped with the clock.
func (p *Pipeline) slot(s *shard, n int) *dealt {
	b := s.cur
	if len(b.pkts) == cap(b.pkts) || len(b.buf)+n > cap(b.buf) {
		p.send(s)
		b = s.cur
		if n > cap(b.buf) {
			b.buf = make([]byte, 0, n) // a record larger than a batch: rare, and bounded by the source
		}
	}
	b.pkts = b.pkts[:len(b.pkts)+1]
	d := &b.pkts[len(b.pkts)-1]
	d.now, d.sweep = p.now, false
	return d
}

// send hands s's batch to its worker and takes an empty one, waiting for
// the worker to return one if all are in use.
func (p *Pipeline) send(s *shard) {
	s.in <- s.cur
	s.cur = <-s.free
}

// flushAll hands every worker what it has, so that a pause in the capture
// does not leave packets waiting in a half-full batch.
func (p *Pipeline) flushAll() {
	if p.one != nil || !p.started {
		return
	}
	for _, s := range p.shards {
		if len(s.cur.pkts) > 0 {
			p.send(s)
		}
	}
}

// start starts the workers.
func (p *Pipeline) start() {
	p.started = true
	for i, s := range p.shards {
		p.workers.Add(1)
		go func() {
			defer p.workers.Done()
			s.run(i)
		}()
	}
}

// run is a worker's loop.
//
// A snapshot's part under way goes a step further after each batch, and
// step after step while no batch waits.
func (s *shard) run(i int) {
	for {
		var b *batch
		ok := true
		if s.build != nil {
			select {
			case b, ok = <-s.in:
			default:
				s.stepBuild(partStep)
				continue
			}
		} else {
			b, ok = <-s.in
		}
		if !ok {
			s.finishBuild()
			return
		}
		for j := range b.pkts {
			d := &b.pkts[j]
			if d.sweep {
				s.asm.Sweep(d.now)
				continue
			}
			s.asm.Advance(d.now)
			s.asm.Add(&d.p)
		}
		if b.req != nil {
			s.servePart(i, b.req)
		}
		if s.build != nil {
			s.stepBuild(partStep)
		}
		if b.finish {
			s.finishBuild()
			s.asm.Advance(b.now)
			s.asm.Flush()
			s.err = s.an.FlushLog()
		}
		// (The entries' payloads point into b.buf, which goes back with
		// them: nothing to clear.)
		b.pkts, b.buf, b.req, b.finish = b.pkts[:0], b.buf[:0], nil, false
		s.free <- b
	}
}

// shardOf maps a packet to a worker by a hash of its connection that is the
// same in both directions: each end's address and port are mixed on their
// own and the two added.
func shardOf(p *capture.Packet, n int) int {
	h := endpointHash(&p.SrcIP, p.SrcPort) + endpointHash(&p.DstIP, p.DstPort)
	h ^= h >> 29
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 32
	hi, _ := bits.Mul64(h, uint64(n))
	return int(hi)
}

func endpointHash(ip *[16]byte, port uint16) uint64 {
	hi, lo := binary.LittleEndian.Uint64(ip[:8]), binary.LittleEndian.Uint64(ip[8:])
	h := (lo ^ uint64(port)<<48) * 0x9e3779b97f4a7c15
	h ^= hi * 0xc2b2ae3d27d4eb4f
	return h ^ h>>31
}

// lockedLog makes the exchange log safe for several workers. Each worker
// writes whole lines (see exchangeLog), so lines never interleave.
func lockedLog(w io.Writer) io.Writer {
	if w == nil {
		return nil
	}
	return &syncWriter{w: w}
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

func randomKey() []byte {
	k := make([]byte, 32)
	if _, err := rand.Read(k); err != nil {
		panic("crypto/rand: " + err.Error()) // documented never to fail on Linux
	}
	return k
}
