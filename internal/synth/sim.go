package synth

import (
	"io"
	"math"
	"math/rand/v2"
	"time"
)

// Simulation constants that are not worth a Config field.
const (
	// serverWindow is how long a batching server (ServerBatch > 1) waits
	// after the first completed response for others to join the write, like
	// Cassandra's Flusher picking up everything queued on the event loop.
	serverWindow = int64(10 * time.Microsecond)
	// delackTime is Linux's minimum delayed-ACK timeout (TCP_DELACK_MIN).
	delackTime = int64(40 * time.Millisecond)
	// minRcvMSS is Linux's floor for its estimate of the peer's segment size.
	minRcvMSS = 536
	// startSpread spreads connection start times.
	startSpread = int64(200 * time.Microsecond)

	serverIP   = 0x7F000001
	serverPort = 9042
	clientIP   = 0x7F000002
	clientPort = 40000
)

// Seed words of the per-side random streams (client, server).
var (
	appSeed    = [2]uint64{0x6170702d636c6900, 0x6170702d73727600}
	writerSeed = [2]uint64{0x7772742d636c6900, 0x7772742d73727600}
)

// Event kinds.
const (
	evStart  uint8 = iota // client starts (SYN or first requests)
	evArrive              // a segment reaches side
	evWrite               // side's writer may write (a = generation)
	evReady               // server finished a request (a = packed response item)
	evDelack              // side's delayed-ACK timer
	evRead                // side's application acts on what it received at this instant
)

const (
	cli = 0
	srv = 1
)

// event is one scheduled happening. Events are ordered by time, then by the
// order they were scheduled, which makes the run deterministic.
type event struct {
	t     int64 // ns since Start
	seq   uint64
	a, b  uint64
	conn  int32
	kind  uint8
	side  uint8
	flags uint8
}

// item is a frame waiting in a writer's queue or travelling in a byte stream.
type item struct {
	kind   uint8
	stmt   uint8
	stream int16
}

func (it item) pack() uint64 {
	return uint64(it.kind) | uint64(it.stmt)<<8 | uint64(uint16(it.stream))<<16
}

func unpack(v uint64) item {
	return item{kind: uint8(v), stmt: uint8(v >> 8), stream: int16(uint16(v >> 16))}
}

// frameRec marks where a frame ends in its direction's byte stream, so the
// receiver hands it to its application once all its bytes have arrived.
type frameRec struct {
	end uint64
	it  item
}

// side is one endpoint of a connection: a TCP sender for its direction, a
// TCP receiver for the other, and the application's writer. Byte offsets are
// relative to ISN+1 and kept 64-bit; only the wire seq numbers wrap.
type side struct {
	ip     uint32
	port   uint16
	isn    uint32
	tsBase uint32
	ipID   uint16

	// Sender.
	sndNxt, sndUna uint64
	buf            []byte // bytes from bufOff on: sent-but-compactable, then unsent
	bufOff         uint64
	frames         []frameRec // frames written, not yet delivered to the peer
	fh             int
	corked         bool // autocork: hold the unsent bytes for the next write
	nagle          bool
	compress       bool // v4 body compression on from here on
	framed         bool // v5 segments from here on
	finSent        bool

	// Receiver.
	rcvNxt, ackedTo uint64
	rcvMSS          uint64
	delackArmed     bool
	delackAt        int64 // deadline of the armed delayed ACK
	delackPending   bool  // an evDelack for this side is in the heap
	readPending     bool  // an evRead for this side is in the heap
	tsRecent        uint32

	// Randomness. Each side draws its application's decisions (requests to
	// issue, answers and service times) and its writer's (frame contents,
	// autocorking) from streams of their own, so the order in which a side
	// meets events never changes what another draws. That makes a run
	// independent of how bytes fall into TCP segments: the same Seed gives
	// the same exchanges with v4 body compression and with v5 segments.
	app, wr *rand.Rand

	// Application writer.
	wq         []item
	wh         int
	batch      int
	delay      int64
	lastWrite  int64
	wGen       uint64
	wScheduled bool
	wAt        int64
}

// conn is one simulated TCP connection with its client application state.
type conn struct {
	s     [2]side
	rng   *rand.Rand // addresses, sequence numbers, start time
	phase uint8

	pool   []int16 // free stream ids, FIFO like the Python driver's deque
	ph, pn int

	issued, done, total int // main-phase requests
	prepLeft, nPrep     int
}

type gen struct {
	cfg   *Config
	out   *pcapWriter
	enc   *encoder
	heap  []event
	fifo  []event // arrivals: scheduled at now+owd, so already in time order
	fh    int
	seq   uint64
	conns []conn
	stats Stats
	seg   segment

	start         int64 // Unix ns of time 0
	owd, gap, svc int64
	mss           uint64
	comp          int
	bodyComp      bool // v4 with compression: compressed bodies after STARTUP
	v5            bool // v5: segments after STARTUP (client) and READY (server)
}

func newGen(w io.Writer, cfg *Config) *gen {
	g := &gen{
		cfg:   cfg,
		out:   newPcapWriter(w),
		conns: make([]conn, cfg.Connections),
		start: cfg.Start.UnixNano(),
		owd:   int64(cfg.RTT / 2),
		gap:   int64(cfg.WriteGap),
		svc:   int64(cfg.ServiceTime),
		mss:   uint64(cfg.MSS),
	}
	switch cfg.Compression {
	case "lz4":
		g.comp = compLZ4
	case "snappy":
		g.comp = compSnappy
	}
	g.v5 = cfg.Protocol >= 5
	g.bodyComp = g.comp != compNone && !g.v5
	g.enc = newEncoder(cfg.Protocol, g.comp, cfg.RowsSize, cfg.Seed)

	poolSize := min(maxStreams, max(2*cfg.InFlight, 8))
	nPrep := 0
	if cfg.Mix != MixQuery {
		nPrep = min(numStmts, cfg.Requests)
	}
	for i := range g.conns {
		c := &g.conns[i]
		c.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), uint64(i)))
		c.pool = make([]int16, poolSize)
		for j := range c.pool {
			c.pool[j] = int16(j)
		}
		c.pn = poolSize
		c.nPrep = nPrep
		c.total = cfg.Requests - nPrep

		cs, ss := &c.s[cli], &c.s[srv]
		cs.ip, cs.port = clientIP+uint32(i), uint16(clientPort+i%25000)
		ss.ip, ss.port = serverIP, serverPort
		for k, s := range []*side{cs, ss} {
			s.app = rand.New(rand.NewPCG(uint64(cfg.Seed)^appSeed[k], uint64(i)))
			s.wr = rand.New(rand.NewPCG(uint64(cfg.Seed)^writerSeed[k], uint64(i)))
			s.isn = c.rng.Uint32()
			s.tsBase = c.rng.Uint32()
			s.ipID = uint16(c.rng.Uint32())
			s.lastWrite = math.MinInt64 / 2
			s.rcvMSS = minRcvMSS
			s.compress = g.bodyComp && !cfg.Handshake
			s.framed = g.v5 && !cfg.Handshake
		}
		cs.nagle = cfg.Nagle
		cs.batch = cfg.ClientBatch
		if cs.batch > 1 {
			cs.delay = int64(cfg.ClientFlush)
		}
		ss.batch = cfg.ServerBatch
		if ss.batch > 1 {
			ss.delay = serverWindow
		}
		g.schedule(event{t: c.rng.Int64N(startSpread), kind: evStart, conn: int32(i)})
	}
	return g
}

func (g *gen) run() {
	for g.out.err == nil {
		var e event
		switch {
		case g.fh < len(g.fifo) && (len(g.heap) == 0 || before(&g.fifo[g.fh], &g.heap[0])):
			e = g.fifo[g.fh]
			g.fh++
			if g.fh == len(g.fifo) {
				g.fifo, g.fh = g.fifo[:0], 0
			} else if g.fh > 4096 && g.fh > len(g.fifo)/2 {
				g.fifo, g.fh = g.fifo[:copy(g.fifo, g.fifo[g.fh:])], 0
			}
		case len(g.heap) > 0:
			e = g.pop()
		default:
			return
		}
		c := &g.conns[e.conn]
		switch e.kind {
		case evStart:
			g.startConn(c, e.conn, e.t)
		case evArrive:
			g.arrive(c, e.conn, &e)
		case evWrite:
			s := &c.s[e.side]
			if s.wScheduled && e.a == s.wGen {
				s.wScheduled = false
				g.write(c, e.conn, int(e.side), e.t)
			}
		case evRead:
			c.s[e.side].readPending = false
			g.kick(c, e.conn, int(e.side), e.t)
		case evReady:
			s := &c.s[srv]
			s.wq = append(s.wq, unpack(e.a))
			g.kick(c, e.conn, srv, e.t)
		case evDelack:
			// One timer event per side at most: re-armed deadlines only
			// move later, so an early event just goes back to sleep.
			s := &c.s[e.side]
			s.delackPending = false
			switch {
			case !s.delackArmed:
			case c.phase == phDone && !g.cfg.Handshake:
				// A mid-connection capture ends with the workload, not
				// with an ACK 40ms after it.
			case e.t < s.delackAt:
				s.delackPending = true
				g.schedule(event{t: s.delackAt, kind: evDelack, conn: e.conn, side: e.side})
			case s.rcvNxt > s.ackedTo:
				g.sendSeg(c, e.conn, int(e.side), e.t, tcpACK, s.sndNxt, nil)
			}
		}
	}
}

// schedule and pop maintain g.heap as a 4-ary min-heap on (t, seq), moving
// a hole instead of swapping. Hand-written: container/heap would box every
// event in an interface, and the heap is half the generator's work.
func (g *gen) schedule(e event) {
	e.seq = g.seq
	g.seq++
	h := append(g.heap, e)
	i := len(h) - 1
	for i > 0 {
		p := (i - 1) / 4
		if !before(&e, &h[p]) {
			break
		}
		h[i] = h[p]
		i = p
	}
	h[i] = e
	g.heap = h
}

func (g *gen) pop() event {
	h := g.heap
	top := h[0]
	n := len(h) - 1
	last := h[n]
	h = h[:n]
	g.heap = h
	if n == 0 {
		return top
	}
	i := 0
	for {
		c := 4*i + 1
		if c >= n {
			break
		}
		m := c
		for j := c + 1; j < c+4 && j < n; j++ {
			if before(&h[j], &h[m]) {
				m = j
			}
		}
		if !before(&h[m], &last) {
			break
		}
		h[i] = h[m]
		i = m
	}
	h[i] = last
	return top
}

func before(a, b *event) bool {
	return a.t < b.t || a.t == b.t && a.seq < b.seq
}
