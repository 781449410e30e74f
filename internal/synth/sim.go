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

// Arrival flags.
const (
	afData uint8 = 1 << iota
	afFin
	afSyn
	afAck
)

const (
	cli = 0
	srv = 1
)

// Client phases.
const (
	phOptions uint8 = iota
	phStartup
	phPrepare
	phMain
	phDone
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

func (g *gen) startConn(c *conn, ci int32, t int64) {
	if g.cfg.Handshake {
		c.phase = phOptions
		g.sendSeg(c, ci, cli, t, tcpSYN, 0, nil)
		return
	}
	g.startWork(c)
	g.kick(c, ci, cli, t)
}

// startWork begins the application's requests once the connection is usable.
func (g *gen) startWork(c *conn) {
	if c.nPrep > 0 {
		c.phase = phPrepare
		c.prepLeft = c.nPrep
		for i := range c.nPrep {
			g.request(c, kPrepare, uint8(i))
		}
		return
	}
	g.startMain(c)
}

func (g *gen) startMain(c *conn) {
	c.phase = phMain
	for range min(g.cfg.InFlight, c.total) {
		g.issue(c)
	}
	if c.total == 0 {
		c.phase = phDone
	}
}

// issue queues one main-phase request.
func (g *gen) issue(c *conn) {
	kind := kExecute
	switch g.cfg.Mix {
	case MixQuery:
		kind = kQuery
	case MixMixed:
		if c.s[cli].app.IntN(2) == 0 {
			kind = kQuery
		}
	}
	stmt := uint8(stUpdate)
	switch r := c.s[cli].app.IntN(10); {
	case r < 5:
		stmt = stSelect
	case r < 9:
		stmt = stInsert
	}
	g.request(c, kind, stmt)
	c.issued++
}

func (g *gen) request(c *conn, kind, stmt uint8) {
	s := c.pool[c.ph]
	c.ph = (c.ph + 1) % len(c.pool)
	c.pn--
	c.s[cli].wq = append(c.s[cli].wq, item{kind: kind, stmt: stmt, stream: s})
}

func (c *conn) release(stream int16) {
	c.pool[(c.ph+c.pn)%len(c.pool)] = stream
	c.pn++
}

// clientRecv is the client application receiving one response.
func (g *gen) clientRecv(c *conn, t int64, it item) {
	c.release(it.stream)
	switch c.phase {
	case phOptions:
		c.phase = phStartup
		g.request(c, kStartup, 0)
	case phStartup:
		c.s[cli].compress = g.bodyComp
		g.startWork(c)
	case phPrepare:
		if c.prepLeft--; c.prepLeft == 0 {
			g.startMain(c)
		}
	case phMain:
		c.done++
		if c.issued < c.total {
			g.issue(c)
		} else if c.done == c.total {
			c.phase = phDone
		}
	}
}

// serverRecv is the server receiving one request: it answers after a
// jittered service time, so answers overtake each other.
func (g *gen) serverRecv(c *conn, ci int32, t int64, it item) {
	resp := item{stream: it.stream, stmt: it.stmt}
	switch it.kind {
	case kOptions:
		resp.kind = kSupported
	case kStartup:
		resp.kind = kReady
		c.s[srv].compress = g.bodyComp // READY is already compressed (§6.1)
	case kPrepare:
		resp.kind = kPrepared
	default:
		switch {
		case g.cfg.ErrorRate > 0 && c.s[srv].app.Float64() < g.cfg.ErrorRate:
			resp.kind = kWriteTimeout
			if it.stmt == stSelect {
				resp.kind = kReadTimeout
			}
		case it.stmt != stSelect:
			resp.kind = kVoid
		case it.kind == kQuery:
			resp.kind = kRows
		default:
			resp.kind = kRowsNoMeta
		}
	}
	d := int64(float64(g.svc) * (0.5 + 0.5*c.s[srv].app.ExpFloat64()))
	g.schedule(event{t: t + d, kind: evReady, conn: ci, a: resp.pack()})
}

// kick lets side d's writer act on its queue: write now, or schedule the
// write for when the flush delay or the write gap allows.
func (g *gen) kick(c *conn, ci int32, d int, t int64) {
	s := &c.s[d]
	pending := len(s.wq) - s.wh
	if pending == 0 {
		return
	}
	earliest := max(t, s.lastWrite+g.gap)
	if s.wScheduled {
		// A full batch does not wait for the flush timer.
		if pending >= s.batch && earliest < s.wAt {
			s.wGen++
			if earliest == t {
				s.wScheduled = false
				g.write(c, ci, d, t)
				return
			}
			s.wAt = earliest
			g.schedule(event{t: earliest, kind: evWrite, conn: ci, side: uint8(d), a: s.wGen})
		}
		return
	}
	at := earliest
	if pending < s.batch {
		at = max(at, t+s.delay)
	}
	if at == t {
		g.write(c, ci, d, t)
		return
	}
	s.wGen++
	s.wScheduled = true
	s.wAt = at
	g.schedule(event{t: at, kind: evWrite, conn: ci, side: uint8(d), a: s.wGen})
}

// write is one write call of side d's application: up to batch queued
// frames are encoded into the socket buffer and handed to TCP.
func (g *gen) write(c *conn, ci int32, d int, t int64) {
	s := &c.s[d]
	k := min(len(s.wq)-s.wh, s.batch)
	fc := frameCtx{compress: s.compress, tsMicros: (g.start + t) / 1000, rng: s.wr}
	items := s.wq[s.wh : s.wh+k]
	for len(items) > 0 && !s.framed {
		it := items[0]
		items = items[1:]
		s.buf = g.enc.appendFrame(s.buf, it, fc)
		s.frames = append(s.frames, frameRec{end: s.bufOff + uint64(len(s.buf)), it: it})
		// v5 switch point (§8.1): the client frames what follows its
		// STARTUP, the server what follows its answer to it.
		s.framed = g.v5 && (it.kind == kStartup || it.kind == kReady)
	}
	if len(items) > 0 {
		segs := g.enc.segs
		s.buf = g.enc.appendWriteV5(s.buf, items, fc)
		for i, it := range items {
			s.frames = append(s.frames, frameRec{end: s.bufOff + uint64(g.enc.ends[i]), it: it})
		}
		if d == cli {
			g.stats.ClientV5 += g.enc.segs - segs
		} else {
			g.stats.ServerV5 += g.enc.segs - segs
		}
	}
	s.wh += k
	if d == cli {
		g.stats.Requests += k
		g.stats.ClientWrites++
	} else {
		g.stats.Responses += k
		g.stats.ServerWrites++
	}
	s.wq, s.wh = compactItems(s.wq, s.wh)
	s.lastWrite = t
	more := len(s.wq) > s.wh
	if more {
		s.wGen++
		s.wScheduled = true
		s.wAt = t + g.gap
		g.schedule(event{t: s.wAt, kind: evWrite, conn: ci, side: uint8(d), a: s.wGen})
	}
	// Autocorking: the kernel holds this write's data because the next
	// write follows back to back; both leave in one segment.
	s.corked = more && g.cfg.Autocork > 0 && s.wr.Float64() < g.cfg.Autocork
	g.transmit(c, ci, d, t)
}

// transmit sends side d's unsent bytes as far as corking and Nagle allow.
func (g *gen) transmit(c *conn, ci int32, d int, t int64) {
	s := &c.s[d]
	if s.corked {
		return
	}
	for {
		unsent := s.bufOff + uint64(len(s.buf)) - s.sndNxt
		if unsent == 0 {
			break
		}
		n := min(unsent, g.mss)
		// Nagle: a small segment waits until everything sent is ACKed.
		if s.nagle && n < g.mss && s.sndNxt > s.sndUna {
			break
		}
		flags := uint8(tcpACK)
		if n == unsent {
			flags |= tcpPSH
		}
		i := s.sndNxt - s.bufOff
		g.sendSeg(c, ci, d, t, flags, s.sndNxt, s.buf[i:i+n])
		s.sndNxt += n
	}
	// Sent bytes are never needed again (nothing is lost): drop them.
	if sent := int(s.sndNxt - s.bufOff); sent == len(s.buf) {
		s.buf = s.buf[:0]
		s.bufOff = s.sndNxt
	} else if sent > 1<<16 && sent > len(s.buf)/2 {
		s.buf = s.buf[:copy(s.buf, s.buf[sent:])]
		s.bufOff = s.sndNxt
	}
}

// sendSeg writes one segment from side d at offset off and schedules its
// arrival at the peer.
func (g *gen) sendSeg(c *conn, ci int32, d int, t int64, flags uint8, off uint64, payload []byte) {
	s, p := &c.s[d], &c.s[1-d]
	sg := &g.seg
	sg.ts = g.start + t
	sg.src, sg.dst = s.ip, p.ip
	sg.sport, sg.dport = s.port, p.port
	sg.seq = s.isn + 1 + uint32(off)
	sg.ack = 0
	sg.win = dataWin
	sg.tsval = s.tsBase + uint32(t/1e6)
	sg.tsecr = s.tsRecent
	if flags&tcpSYN != 0 {
		sg.seq = s.isn
		sg.win = synWin
		sg.mss = uint16(g.mss + tsOptLen)
		if flags&tcpACK == 0 {
			sg.tsecr = 0
		}
	}
	if flags&tcpACK != 0 {
		sg.ack = p.isn + 1 + uint32(s.rcvNxt)
		s.ackedTo = s.rcvNxt
		s.delackArmed = false
	}
	s.ipID++
	sg.ipID = s.ipID
	sg.flags = flags
	sg.payload = payload
	g.out.packet(sg)

	g.stats.Packets++
	af, end := uint8(0), off+uint64(len(payload))
	if len(payload) > 0 {
		af |= afData
		g.stats.DataSegments++
		if d == cli {
			g.stats.ClientSegments++
		} else {
			g.stats.ServerSegments++
		}
	}
	if flags&tcpFIN != 0 {
		af |= afFin
		end++
	}
	if flags&tcpSYN != 0 {
		af |= afSyn
	}
	if flags&tcpACK != 0 {
		af |= afAck
	}
	// Arrivals all take owd, so they leave in the order they are made: a
	// FIFO merged with the heap by (t, seq) keeps them out of the heap.
	g.fifo = append(g.fifo, event{t: t + g.owd, seq: g.seq, kind: evArrive, conn: ci, side: uint8(1 - d), flags: af, a: end, b: s.rcvNxt})
	g.seq++
}

// arrive is a segment reaching side r: TCP receive processing, delivery of
// complete frames to the application, Nagle release, then the ACK decision.
func (g *gen) arrive(c *conn, ci int32, e *event) {
	r, t := int(e.side), e.t
	rs, ps := &c.s[r], &c.s[1-r]
	rs.tsRecent = ps.tsBase + uint32((t-g.owd)/1e6)
	if e.flags&afSyn != 0 {
		if r == srv {
			g.sendSeg(c, ci, srv, t, tcpSYN|tcpACK, 0, nil)
			return
		}
		g.sendSeg(c, ci, cli, t, tcpACK, 0, nil)
		g.request(c, kOptions, 0)
		g.kick(c, ci, cli, t)
		return
	}
	if e.flags&afAck != 0 && e.b > rs.sndUna {
		rs.sndUna = e.b
	}
	if e.flags&afFin != 0 {
		rs.rcvNxt = e.a
		if r == srv {
			g.sendFin(c, ci, srv, t)
		} else {
			g.sendSeg(c, ci, cli, t, tcpACK, rs.sndNxt, nil)
		}
		return
	}
	data := e.flags&afData != 0
	read := false
	if data {
		if n := e.a - rs.rcvNxt; n > rs.rcvMSS {
			rs.rcvMSS = min(n, g.mss)
		}
		rs.rcvNxt = e.a
		for ps.fh < len(ps.frames) && ps.frames[ps.fh].end <= e.a {
			it := ps.frames[ps.fh].it
			ps.fh++
			read = true
			if r == srv {
				g.serverRecv(c, ci, t, it)
			} else {
				g.clientRecv(c, t, it)
			}
		}
		ps.frames, ps.fh = compactFrames(ps.frames, ps.fh)
	}
	g.transmit(c, ci, r, t)
	switch {
	case rs.readPending:
		// The application acts once all of this instant's segments are in.
	case !read:
		g.kick(c, ci, r, t)
	default:
		// Like one read call, the application writes only after taking in
		// every segment that arrives at this instant (their arrivals are
		// already queued, so this event comes after them). Otherwise how
		// frames fall into segments — v4 bodies or v5 segments — would
		// change what the writer finds queued.
		rs.readPending = true
		g.schedule(event{t: t, kind: evRead, conn: ci, side: uint8(r)})
	}
	if r == cli && c.phase == phDone && g.cfg.Handshake && !rs.finSent {
		g.sendFin(c, ci, cli, t)
	}
	if !data || rs.rcvNxt == rs.ackedTo {
		return
	}
	// Linux acks at once when more than one peer-sized segment is
	// unacknowledged, otherwise it delays the ACK hoping to piggyback it.
	if rs.rcvNxt-rs.ackedTo > rs.rcvMSS {
		g.sendSeg(c, ci, r, t, tcpACK, rs.sndNxt, nil)
	} else if !rs.delackArmed {
		rs.delackArmed = true
		rs.delackAt = t + delackTime
		if !rs.delackPending {
			rs.delackPending = true
			g.schedule(event{t: rs.delackAt, kind: evDelack, conn: ci, side: uint8(r)})
		}
	}
}

// sendFin closes side d's direction. Its buffer is empty by then (a side
// closes only when every frame has been answered), and the FIN takes one
// sequence number.
func (g *gen) sendFin(c *conn, ci int32, d int, t int64) {
	s := &c.s[d]
	g.sendSeg(c, ci, d, t, tcpFIN|tcpACK, s.sndNxt, nil)
	s.sndNxt++
	s.bufOff = s.sndNxt
	s.finSent = true
}

func compactItems(q []item, h int) ([]item, int) {
	if h == len(q) {
		return q[:0], 0
	}
	if h > 1024 && h > len(q)/2 {
		return q[:copy(q, q[h:])], 0
	}
	return q, h
}

func compactFrames(q []frameRec, h int) ([]frameRec, int) {
	if h == len(q) {
		return q[:0], 0
	}
	if h > 1024 && h > len(q)/2 {
		return q[:copy(q, q[h:])], 0
	}
	return q, h
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
