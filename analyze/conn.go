package analyze

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
)

// conn is one TCP connection. It is the capture.FlowHandler of its flow.
type conn struct {
	a   *Analyzer
	id  uint64
	key capture.FlowKey

	rolesKnown bool
	guess      bool        // roles not known from the port list
	cdir       capture.Dir // direction client → server

	streams [2]decode.Stream
	w       [2]dirStats // by flow direction

	first, last int64
	packets     [2]uint64
	bytes       [2]uint64
	closeReason capture.CloseReason
	closed      bool

	version       uint8
	compression   decode.Compression
	compInferred  bool
	driver        string
	driverVersion string
	cqlVersion    string
	keyspace      string
	tls           bool
	tlsSt         *tlsState         // TLS connections: records and decryption
	v5            bool              // protocol v5 segment framing after STARTUP
	scylla        decode.ScyllaInfo // from SUPPORTED, when the server is ScyllaDB
	scyllaSeen    bool
	rateLimit     decode.ErrorCode // Scylla's advertised rate-limit error code
	tabletHints   uint64           // responses carrying a tablets-routing-v1 payload
	notCQL        bool
	dataSegs      int

	pending    pendingTable
	ids        [4]idCache
	idNext     uint8
	requests   uint64
	answered   uint64
	errors     uint64
	errCodes   map[decode.ErrorCode]uint64 // made at the first error: errors are rare
	reused     uint64
	orphans    uint64
	events     uint64
	eventKinds [4]uint64 // by eventKind
	inflSum    uint64
	inflMax    int
	hist       *hdrhistogram.Histogram
	few        [32]int64 // the first latencies (µs) until hist is needed
	nfew       uint8
	latMax     int64
	latSum     int64 // summed latency, ns
	tm         timing
}

type idCache struct {
	n  uint8
	id [32]byte
	st *stmt
}

type pending struct {
	ts          int64 // capture time of the packet that completed the request
	op          decode.Opcode
	st          *stmt
	bytes       int32
	consistency decode.Consistency
	hasCons     bool
	prepare     *stmt  // PREPARE: the EXECUTE statement its id will name
	values      string // --show-values / --hash-values: the JSON of the request's values, built at request time
	children    uint16 // BATCH: statements in it
	idLen       uint8  // EXECUTE: the prepared id (Cassandra's and Scylla's ids are MD5s: 16 bytes)
	id          [16]byte
}

// dirStats is the batching evidence of one direction.
type dirStats struct {
	frames   uint64
	segments uint64    // data-bearing segments (retransmissions excluded)
	buckets  [6]uint64 // segments carrying 0 (continuation only), 1, 2–3, 4–7, 8–15, 16+ frame starts
	spanning uint64    // frames that spanned several segments
	bytes    uint64
	v5segs   uint64    // protocol v5: segments (the layer between envelopes and TCP)
	v5frames uint64    // frames that came inside v5 segments (not the STARTUP exchange before them)
	v5tcp    uint64    // data-bearing TCP segments sent once the direction spoke v5
	v5bucket [6]uint64 // TCP segments by the v5 segments starting in them
	retrans  uint64

	// Back-to-back evidence (see diagnose.go).
	lastTS      int64
	lastEnd     bool // the last segment ended on a frame boundary
	haveLast    bool
	lastStream  int16 // last request completed in the last segment (client side)
	lastReqTS   int64
	haveLastReq bool
	fresh       uint64 // segments that start on a frame boundary and start a frame
	split       uint64 // fresh segments that could have gone out with the previous one
	splitSingle uint64 // ... carrying exactly one frame
	candidate   bool   // the segment being fed is a split candidate (server side: pending the request check)
	prevTS      int64  // previous segment's time, for the server-side check
	checked     bool

	// Nagle evidence: data segments sent with all earlier data acknowledged.
	ackMax      uint32 // highest ACK the peer sent for this direction's data
	ackTS       int64  // when ackMax last advanced
	haveAck     bool
	sentUnacked uint64
	sentAcked   uint64
	ackClocked  uint64
	segSeq      uint32
	segUnacked  bool
	segGap      int64

	ackDelay ackDelay // this direction's data to the peer's ACK
}

func (c *conn) setRoles(cdir capture.Dir) {
	c.rolesKnown = true
	c.cdir = cdir
}

func (c *conn) isClient(d capture.Dir) bool { return c.rolesKnown && d == c.cdir }

// Packet implements capture.FlowHandler.
func (c *conn) Packet(d capture.Dir, p *capture.Packet, info capture.SegmentInfo) {
	c.last = p.TS
	c.packets[d]++
	c.bytes[d] += uint64(p.WireLen)
	if p.Flags&capture.FlagACK != 0 {
		// This packet acknowledges the other direction's data.
		o := &c.w[d.Other()]
		if !o.haveAck || int32(p.Ack-o.ackMax) > 0 {
			o.ackMax = p.Ack
			o.ackTS = p.TS
			o.haveAck = true
		}
		o.ackDelay.acked(p.Ack, p.TS)
	}
	w := &c.w[d]
	switch info {
	case capture.SegRetransmit:
		w.retrans++
		w.ackDelay.pending = false // Karn: an ACK after a retransmission times nothing
	case capture.SegInOrder, capture.SegOverlap:
		w.segSeq = p.Seq
		w.segUnacked = w.haveAck && int32(p.Seq-w.ackMax) > 0
		w.segGap = p.TS - w.ackTS
		if n := len(p.Payload) + p.Missing; n > 0 {
			w.ackDelay.sent(p.Seq+uint32(n), p.TS)
		}
	}
}

// ackDelay times one direction's data segments to the peer's ACK that
// covers them, one at a time (as TCP's own round-trip sampling does), and
// keeps the shortest. Where the capture is taken on the receiver's host it
// is the receiver's reaction (microseconds); on the sender's host it is the
// round trip to the receiver and back.
type ackDelay struct {
	end     uint32 // sequence number just past the timed segment
	at      int64
	pending bool
	min     int64 // shortest delay seen (0: none)
}

func (a *ackDelay) sent(end uint32, ts int64) {
	if !a.pending {
		a.end, a.at, a.pending = end, ts, true
	}
}

func (a *ackDelay) acked(ack uint32, ts int64) {
	if a.pending && int32(ack-a.end) >= 0 {
		a.pending = false
		if d := ts - a.at; d >= 0 && (a.min == 0 || d < a.min) {
			a.min = max(d, 1)
		}
	}
}

// Data implements capture.FlowHandler.
func (c *conn) Data(d capture.Dir, seq uint32, b []byte, ts int64) {
	if c.tls {
		c.tlsData(d, b, ts)
		return
	}
	if c.notCQL {
		return
	}
	st := &c.streams[d]
	c.dataSegs++
	if !st.Synced() && (c.dataSegs <= 2 && len(b) >= 3 && b[0] == 0x16 && b[1] == 0x03 && b[2] <= 0x04 ||
		c.dataSegs <= 8 && tlsRecords(b)) {
		if c.guess {
			c.notCQL = true
			return // TLS on a port that is not a CQL port: not ours at all
		}
		c.tls = true
		c.tlsData(d, b, ts)
		return
	}
	c.cqlData(d, b, ts)
}

// cqlData feeds one segment's worth of CQL bytes (a TCP segment's payload,
// or the plaintext of the TLS records it completed) to the direction's
// stream and gathers the batching evidence.
func (c *conn) cqlData(d capture.Dir, b []byte, ts int64) {
	w := &c.w[d]
	st := &c.streams[d]
	atStart := st.AtBoundary()
	w.candidate = false
	w.checked = false
	if atStart && w.haveLast && w.lastEnd && ts-w.lastTS <= c.a.cfg.BackToBack {
		if c.isClient(d) {
			// Something to batch: the previous write's last request is still
			// waiting for its answer, so both were in flight together.
			if w.haveLastReq {
				if p, ok := c.pending.get(w.lastStream); ok && p.ts == w.lastReqTS {
					w.candidate = true
				}
			}
		} else {
			w.candidate = true // confirmed by the first response below
			w.prevTS = w.lastTS
		}
	}
	wasV5 := st.V5()
	st.Feed(b, ts)
	for st.Next(&c.a.frame) {
		if st.V5() {
			w.v5frames++
		}
		c.frame(d, &c.a.frame)
	}
	if !st.Synced() && !c.rolesKnown && c.guess && c.dataSegs > 8 && !c.isCQL() {
		// Not on a CQL port and nothing in it looks like CQL: stop looking.
		c.notCQL = true
		return
	}
	started := st.Started()
	atEnd := st.AtBoundary()
	w.segments++
	w.bytes += uint64(len(b))
	w.buckets[bucket(started)]++
	if n := st.SegmentsStarted(); st.V5() && (wasV5 || n > 0) {
		// (The segment that carried STARTUP or READY is not a v5 write.)
		w.v5segs += uint64(n)
		w.v5tcp++
		w.v5bucket[bucket(n)]++
	}
	if atStart && started > 0 {
		w.fresh++
		if w.candidate && (c.isClient(d) || w.checked) {
			w.split++
			if started == 1 && atEnd {
				w.splitSingle++
			}
		}
		if w.haveAck {
			if w.segUnacked {
				w.sentUnacked++
			} else {
				w.sentAcked++
				if w.segGap <= c.a.cfg.AckClocked {
					w.ackClocked++
				}
			}
		}
	}
	w.lastTS = ts
	w.lastEnd = atEnd
	w.haveLast = true
}

func bucket(n int) int {
	switch {
	case n == 0:
		return 0
	case n == 1:
		return 1
	case n <= 3:
		return 2
	case n <= 7:
		return 3
	case n <= 15:
		return 4
	}
	return 5
}

// Gap implements capture.FlowHandler.
func (c *conn) Gap(d capture.Dir, lost int) {
	if c.tls {
		c.tlsGap(d, lost)
		return
	}
	if c.notCQL {
		return
	}
	st := &c.streams[d]
	st.Gap(lost)
	for st.Next(&c.a.frame) {
		c.frame(d, &c.a.frame)
	}
	c.w[d].haveLast = false
}

// frame handles one envelope.
func (c *conn) frame(d capture.Dir, f *decode.Frame) {
	a := c.a
	if !c.rolesKnown {
		if f.Header.Response {
			c.setRoles(d.Other())
		} else {
			c.setRoles(d)
		}
		o := &c.streams[d.Other()]
		o.Response = d.Other() != c.cdir
		o.DirKnown = true
	}
	w := &c.w[d]
	w.frames++
	if f.Segments > 1 {
		w.spanning++
	}
	a.totals.frames++
	c.version = f.Header.Version
	if f.Compressed && c.compression == decode.CompressionUnknown {
		if comp := c.streams[d].Compression; comp != decode.CompressionUnknown {
			c.compression = comp
			c.compInferred = true
			c.streams[d.Other()].Compression = comp
		}
	}
	if st := &c.streams[d]; c.compression == decode.CompressionUnknown && st.V5() {
		// v5 caught mid-stream: the segment layout found says which.
		c.compression = decode.CompressionNone
		if st.SegmentsLZ4() {
			c.compression = decode.CompressionLZ4
		}
		c.compInferred = true
	}
	if f.Header.Response {
		c.response(d, f)
	} else {
		c.request(d, f)
	}
}

func (c *conn) request(d capture.Dir, f *decode.Frame) {
	a := c.a
	r := &a.req
	h := &f.Header
	err := errNoBody
	if !f.BadCompression {
		err = decode.DecodeRequest(h, f.Body, r)
	}
	if err != nil {
		r.Reset()
		r.Opcode = h.Opcode
	}
	p := pending{ts: f.End, op: h.Opcode, bytes: int32(f.Header.FrameLen())}
	if r.HasParams {
		p.consistency = r.Params.Consistency
		p.hasCons = true
	}
	if r.KeepValues && err == nil && h.Opcode != decode.OpAuthResponse {
		p.values = a.valuesJSON(r)
	}
	switch h.Opcode {
	case decode.OpStartup:
		if err == nil {
			c.driver = string(r.DriverName)
			c.driverVersion = string(r.DriverVersion)
			c.cqlVersion = string(r.CQLVersion)
			c.compression = decode.ParseCompression(r.Compression)
			c.compInferred = false
			c.streams[0].Compression = c.compression
			c.streams[1].Compression = c.compression
		}
		if framedV5(h) {
			// Everything after STARTUP is in v5 segments; the server
			// switches after its answer (see response).
			c.v5 = true
			c.streams[d].SwitchToSegments(c.compression == decode.CompressionLZ4)
		}
		p.st = a.statement(h.Opcode, []byte("STARTUP"))
	case decode.OpQuery, decode.OpPrepare:
		q := r.Query
		if err != nil && f.Partial && len(f.Body) > 4 && !f.BadCompression {
			// A statement longer than the body prefix kept (64 KiB): name it
			// by the text it starts with.
			q, err = f.Body[4:], nil
			p.st = a.textStatement(h.Opcode, q, err, true)
		} else {
			p.st = a.textStatement(h.Opcode, q, err, false)
		}
		if h.Opcode == decode.OpPrepare && err == nil {
			p.prepare = a.statement(decode.OpExecute, a.fp)
		}
	case decode.OpExecute:
		p.st = c.executeStatement(r.PreparedID, err)
		if err == nil && len(r.PreparedID) <= len(p.id) {
			p.idLen = uint8(copy(p.id[:], r.PreparedID))
		}
	case decode.OpBatch:
		announced := -1
		if f.Partial && len(f.Body) >= 3 && !f.BadCompression {
			// A batch longer than the body prefix kept: its header still
			// says how many statements it holds.
			announced = int(binary.BigEndian.Uint16(f.Body[1:3]))
		}
		p.st = a.batchStatement(r, err, announced)
		switch {
		case announced >= 0:
			p.children = uint16(announced)
		case err == nil:
			p.children = uint16(min(len(r.Children), 65535))
		}
	default:
		p.st = a.statement(h.Opcode, []byte(h.Opcode.String()))
	}
	w := &c.w[d]
	w.lastStream = h.Stream
	w.lastReqTS = f.End
	w.haveLastReq = true

	if c.pending.len() >= a.cfg.MaxPending {
		if _, dup := c.pending.get(h.Stream); !dup {
			return // full: only a reused stream id may still be stored
		}
	}
	if c.pending.put(h.Stream, p) {
		// The id was reused before its answer came: the old request will
		// never be answered as far as we can tell.
		c.reused++
		a.totals.reused++
	}
	c.requests++
	a.totals.requests++
	n := c.pending.len()
	c.tm.request(f.End, n, c.requests)
	c.inflSum += uint64(n)
	if n > c.inflMax {
		c.inflMax = n
	}
}

var errNoBody = decode.ErrTruncated

// textStatement names a QUERY or PREPARE by its fingerprint, which it
// leaves in a.fp.
func (a *Analyzer) textStatement(op decode.Opcode, q []byte, err error, cut bool) *stmt {
	if err != nil {
		return a.statement(op, []byte("(undecodable)"))
	}
	if cut {
		// The fingerprint of a cut text ends wherever the cut fell: keep
		// a stable prefix so that the executions of one statement group.
		q = q[:min(len(q), 1024)]
	}
	a.fp = Fingerprint(a.fp[:0], q)
	if cut {
		a.fp = append(a.fp, " … (over 64 KiB)"...)
	}
	return a.statement(op, a.fp)
}

// executeStatement names an EXECUTE. A connection usually executes a
// handful of prepared statements over and over: a small per-connection cache
// of recent ids saves hashing the id into the analyzer's map each time.
func (c *conn) executeStatement(id []byte, err error) *stmt {
	if err == nil && len(id) <= len(c.ids[0].id) {
		for i := range c.ids {
			e := &c.ids[i]
			if e.st != nil && int(e.n) == len(id) && string(e.id[:e.n]) == string(id) {
				return e.st
			}
		}
	}
	st := c.a.executeStatement(id, err)
	if err == nil && len(id) <= len(c.ids[0].id) && c.a.prepared[string(id)] == st {
		// Only ids already resolved to their text are cached: an unknown
		// id may be prepared later in the capture.
		e := &c.ids[c.idNext%uint8(len(c.ids))]
		c.idNext++
		e.n = uint8(copy(e.id[:], id))
		e.st = st
	}
	return st
}

func (a *Analyzer) executeStatement(id []byte, err error) *stmt {
	if err != nil {
		return a.statement(decode.OpExecute, []byte("(undecodable)"))
	}
	if s := a.prepared[string(id)]; s != nil {
		return s
	}
	a.fp = append(a.fp[:0], "prepared 0x"...)
	a.fp = hex.AppendEncode(a.fp, id)
	return a.statement(decode.OpExecute, a.fp)
}

// batchStatement names a BATCH by its children. announced >= 0 is the
// count its header gives when only a prefix of the body was kept: the name
// then uses the first child and that count, which do not depend on where
// the prefix ended.
func (a *Analyzer) batchStatement(r *decode.Request, err error, announced int) *stmt {
	if announced >= 0 && len(r.Children) > 0 {
		r.Children = r.Children[:1]
		err = nil
	}
	if err != nil {
		return a.statement(decode.OpBatch, []byte("(undecodable)"))
	}
	a.fp = append(a.fp[:0], "BATCH "...)
	switch r.BatchType {
	case 0:
		a.fp = append(a.fp, "LOGGED"...)
	case 1:
		a.fp = append(a.fp, "UNLOGGED"...)
	case 2:
		a.fp = append(a.fp, "COUNTER"...)
	}
	a.fp = append(a.fp, ": "...)
	// Consecutive children of the same shape are written once with a count:
	// "INSERT INTO t (k, v) VALUES (?, ?) ×5".
	prev, run := -1, 0
	flush := func() {
		if run > 1 {
			a.fp = append(a.fp, " ×"...)
			a.fp = strconv.AppendInt(a.fp, int64(run), 10)
		}
	}
	for i := range r.Children {
		if len(a.fp) > 512 {
			a.fp = append(a.fp, " ..."...)
			run = 0
			break
		}
		a.fp2 = a.fp2[:0]
		ch := &r.Children[i]
		if ch.Kind == 0 {
			a.fp2 = Fingerprint(a.fp2, ch.Query)
		} else if s := a.prepared[string(ch.PreparedID)]; s != nil {
			a.fp2 = append(a.fp2, s.text...)
		} else {
			a.fp2 = append(a.fp2, "prepared 0x"...)
			a.fp2 = hex.AppendEncode(a.fp2, ch.PreparedID)
		}
		if prev >= 0 && string(a.fp[prev:]) == string(a.fp2) {
			run++
			continue
		}
		flush()
		if i > 0 {
			a.fp = append(a.fp, "; "...)
		}
		prev = len(a.fp)
		a.fp = append(a.fp, a.fp2...)
		run = 1
	}
	flush()
	if announced >= 0 {
		a.fp = append(a.fp, " … ("...)
		a.fp = strconv.AppendInt(a.fp, int64(announced), 10)
		a.fp = append(a.fp, " statements, over 64 KiB)"...)
	}
	return a.statement(decode.OpBatch, a.fp)
}

func (c *conn) response(d capture.Dir, f *decode.Frame) {
	a := c.a
	h := &f.Header
	r := &a.resp
	if h.Opcode == decode.OpEvent {
		c.events++
		a.totals.events++
		kind := eventOther
		if !f.BadCompression && f.Body != nil && decode.DecodeResponse(h, f.Body, r) == nil {
			kind = eventKind(r.EventType)
		}
		c.eventKinds[kind]++
		return
	}
	pp, ok := c.pending.get(h.Stream)
	var p pending
	if ok {
		p = *pp
	}
	if ok && p.op == decode.OpStartup && c.v5 && (h.Opcode == decode.OpReady || h.Opcode == decode.OpAuthenticate) {
		c.streams[d].SwitchToSegments(c.compression == decode.CompressionLZ4)
	}
	if !ok {
		// An answer to a request we did not see (capture started after it).
		c.orphans++
		a.totals.orphans++
		return
	}
	c.pending.del(h.Stream)
	c.tm.response(f.End, c.pending.len())
	w := &c.w[d]
	if w.candidate && !w.checked && f.Segments == 1 {
		// Server side: the request this segment answers had arrived before
		// the previous write went out, so the two could have been one write.
		w.checked = true
		if p.ts > w.prevTS {
			w.candidate = false
		}
	}
	err := errNoBody
	r.RateLimitCode = c.rateLimit
	if !f.BadCompression && f.Body != nil && (a.log != nil || mayMatter(h, f.Body)) {
		err = decode.DecodeResponse(h, f.Body, r) // r is only read below when err is nil
	}
	lat := f.End - p.ts
	if lat < 0 {
		lat = 0
	}
	us := (lat + 500) / 1000
	if us < 1 {
		us = 1
	}
	c.answered++
	a.totals.responses++
	switch {
	case c.hist != nil:
		_ = c.hist.RecordValue(us)
	case int(c.nfew) < len(c.few):
		// The first answers go to a small array: most connections (drivers'
		// control connections, short-lived ones) never need a histogram.
		c.few[c.nfew] = us
		c.nfew++
	default:
		c.hist = a.newHist()
		for _, v := range c.few {
			_ = c.hist.RecordValue(v)
		}
		_ = c.hist.RecordValue(us)
	}
	c.latSum += lat
	if lat > c.latMax {
		c.latMax = lat
	}
	isErr := h.Opcode == decode.OpError
	if isErr {
		c.errors++
		a.totals.errors++
		p.st.errors++
		code := decode.ErrorCode(-1) // the body could not be read
		if err == nil {
			code = r.ErrCode
		}
		if c.errCodes == nil {
			c.errCodes = make(map[decode.ErrorCode]uint64)
		}
		c.errCodes[code]++
	}
	p.st.count++
	p.st.total += lat
	p.st.max = max(p.st.max, lat)
	_ = p.st.hist.RecordValue(us) // opcode figures are merged from statements at report time

	if err == nil {
		switch {
		case h.Opcode == decode.OpResult && r.Kind == decode.ResultPrepared && p.prepare != nil:
			if len(a.prepared) < a.cfg.MaxPrepared || a.prepared[string(r.PreparedID)] != nil {
				a.prepared[string(r.PreparedID)] = p.prepare
			}
			if r.LWT && c.scylla.NrShards >= 0 && c.scyllaSeen {
				// Scylla marks conditional statements when the client
				// negotiated SCYLLA_LWT_ADD_METADATA_MARK.
				p.prepare.lwt = true
			}
		case h.Opcode == decode.OpResult && r.Kind == decode.ResultSetKeyspace:
			c.keyspace = string(r.Keyspace)
		case h.Opcode == decode.OpSupported && len(r.Supported) > 0:
			var info decode.ScyllaInfo
			if decode.ParseScyllaSupported(r.Supported, &info) == nil && (info.NrShards >= 0 || info.Shard >= 0) {
				c.scylla = info
				c.scyllaSeen = true
				if _, server := c.key.Endpoints(c.cdir); len(a.scyllaNodes) < a.cfg.MaxPrepared {
					if a.scyllaNodes == nil {
						a.scyllaNodes = make(map[[16]byte]decode.ScyllaInfo)
					}
					a.scyllaNodes[server.IP] = info
				}
				r.RateLimitCode = info.RateLimitErrorCode
				c.rateLimit = info.RateLimitErrorCode
			}
		}
		if r.CustomPayloadRaw != nil {
			decode.ForEachBytesMap(r.CustomPayloadRaw, func(k, v []byte) {
				if string(k) == "tablets-routing-v1" {
					c.tabletHints++
				}
			})
		}
	}
	if a.log != nil {
		a.log.write(c, h, &p, f, r, err == nil, lat)
	}
}

// Close implements capture.FlowHandler.
func (c *conn) Close(reason capture.CloseReason, ts int64) {
	a := c.a
	c.closeReason = reason
	delete(a.live, c)
	if c.isCQL() {
		for d := range c.streams {
			addStreamStats(&a.closedStream, c.streams[d].Stats())
		}
	}
	c.closed = true
	if c.isCQL() {
		a.keepClosed(c.report())
		a.totals.unanswered += uint64(c.pending.len()) + c.reused
	} else if c.tls {
		a.keepClosed(c.report())
	} else {
		a.ignored++
	}
	a.freeHist(c.hist)
	c.hist = nil
	c.pending = pendingTable{}
}

// keepClosed keeps the summary of a closed connection for reports: the
// most recent MaxClosed of them (totals count every connection anyway).
func (a *Analyzer) keepClosed(r *ConnReport) {
	if len(a.closed) < a.cfg.MaxClosed {
		a.closed = append(a.closed, r)
		return
	}
	a.closed[a.closedNext] = r
	a.closedNext = (a.closedNext + 1) % len(a.closed)
	a.closedDropped++
}

func (c *conn) isCQL() bool { return !c.notCQL && c.w[0].frames+c.w[1].frames > 0 }

// framedV5 reports whether a STARTUP with this header switches the
// connection to v5 segments: v5 and later, except the old v5 beta (flag
// 0x10 on version 5) and DSE's private versions, which stay unframed.
func framedV5(h *decode.Header) bool {
	if h.Version < 5 || h.Version >= decode.VersionDSE1 {
		return false
	}
	return !(h.Version == 5 && h.Flags&decode.FlagBeta != 0)
}

// mayMatter reports whether a response body holds something the analysis
// keeps (a prepared id, a keyspace) when no exchange log is written: most
// RESULTs (Void, Rows) need not be decoded at all.
func mayMatter(h *decode.Header, body []byte) bool {
	if h.Opcode != decode.OpResult || h.Flags&(decode.FlagTracing|decode.FlagWarning|decode.FlagCustomPayload) != 0 || len(body) < 4 {
		return true
	}
	k := decode.ResultKind(binary.BigEndian.Uint32(body))
	return k == decode.ResultPrepared || k == decode.ResultSetKeyspace
}

// The EVENT types of the protocol (and anything else a server sends).
const (
	eventTopology = iota
	eventStatus
	eventSchema
	eventOther
)

var eventNames = [...]string{eventTopology: "TOPOLOGY_CHANGE", eventStatus: "STATUS_CHANGE", eventSchema: "SCHEMA_CHANGE", eventOther: "other"}

func eventKind(t []byte) int {
	switch string(t) {
	case "TOPOLOGY_CHANGE":
		return eventTopology
	case "STATUS_CHANGE":
		return eventStatus
	case "SCHEMA_CHANGE":
		return eventSchema
	}
	return eventOther
}

// tlsRecords reports whether b starts with TLS records chained to its end
// (or past it): how a TLS connection caught after its handshake looks. No
// CQL header starts with a content type byte (0x14-0x17) and a 0x03 version.
func tlsRecords(b []byte) bool {
	n := 0
	for len(b) >= 5 {
		if b[0] < 0x14 || b[0] > 0x17 || b[1] != 0x03 || b[2] > 0x04 {
			return false
		}
		l := int(b[3])<<8 | int(b[4])
		if l == 0 || l > 1<<14+2048 {
			return false
		}
		n++
		if 5+l >= len(b) {
			return true // the last record ends here or in a later segment
		}
		b = b[5+l:]
	}
	return n > 0 && len(b) == 0
}
