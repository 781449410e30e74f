package synth

// The application model of a connection: the client's phases and requests,
// the server's answers, and each side's writer turning queued frames into
// write calls.

// Client phases.
const (
	phOptions uint8 = iota
	phStartup
	phPrepare
	phMain
	phDone
)

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

func compactItems(q []item, h int) ([]item, int) {
	if h == len(q) {
		return q[:0], 0
	}
	if h > 1024 && h > len(q)/2 {
		return q[:copy(q, q[h:])], 0
	}
	return q, h
}
