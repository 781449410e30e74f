package synth

// The TCP side of a connection: segments as corking and Nagle allow,
// receive processing, delayed ACKs and FIN.

// Arrival flags.
const (
	afData uint8 = 1 << iota
	afFin
	afSyn
	afAck
)

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

func compactFrames(q []frameRec, h int) ([]frameRec, int) {
	if h == len(q) {
		return q[:0], 0
	}
	if h > 1024 && h > len(q)/2 {
		return q[:copy(q, q[h:])], 0
	}
	return q, h
}
