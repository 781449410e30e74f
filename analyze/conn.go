package analyze

import (
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
)

// conn is one TCP connection. It is the capture.FlowHandler of its flow.
type conn struct {
	a   *Analyzer
	id  uint64
	key capture.FlowKey
	// gen counts the calls that may change the connection's figures; a
	// snapshot reuses the report of the last one while it stands still
	// (rep, made at repGen).
	gen, repGen uint64
	rep         *ConnReport
	partID      uint64 // the last part that has this connection's report

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
	queries    [2]*stmt // the statements of the last QUERY texts (queryStatement)
	queryNext  uint8
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
	bars       latBars   // hist's values, in the report's bars
	few        [32]int64 // the first latencies (µs) until hist is needed
	nfew       uint8
	latMax     int64
	latSum     int64 // summed latency, ns
	tm         timing
}

func (c *conn) setRoles(cdir capture.Dir) {
	c.rolesKnown = true
	c.cdir = cdir
}

func (c *conn) isClient(d capture.Dir) bool { return c.rolesKnown && d == c.cdir }

// Packet implements capture.FlowHandler.
func (c *conn) Packet(d capture.Dir, p *capture.Packet, info capture.SegmentInfo) {
	c.gen++
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

// Data implements capture.FlowHandler.
func (c *conn) Data(d capture.Dir, seq uint32, b []byte, ts int64) {
	c.gen++
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

// cqlFrames feeds CQL bytes to the direction's stream and handles the
// frames they complete, without the batching evidence.
func (c *conn) cqlFrames(d capture.Dir, b []byte, ts int64) {
	w, st := &c.w[d], &c.streams[d]
	st.Feed(b, ts)
	for st.Next(&c.a.frame) {
		if st.V5() {
			w.v5frames++
		}
		c.frame(d, &c.a.frame)
	}
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
	if atStart && w.haveLast && w.lastEnd && time.Duration(ts-w.lastTS) <= c.a.cfg.BackToBack {
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
	c.cqlFrames(d, b, ts)
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
		w.frameStarts++
		if w.candidate && (c.isClient(d) || w.checked) {
			w.backToBack++
			if started == 1 && atEnd {
				w.backToBackSingle++
			}
		}
		if w.haveAck {
			if w.segUnacked {
				w.sentUnacked++
			} else {
				w.sentAcked++
				if time.Duration(w.segGap) <= c.a.cfg.AckClocked {
					w.ackClocked++
				}
			}
		}
	}
	w.lastTS = ts
	w.lastEnd = atEnd
	w.haveLast = true
}

// Gap implements capture.FlowHandler.
func (c *conn) Gap(d capture.Dir, lost int) {
	c.gen++
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
	if f.TCPSegments > 1 {
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
	if c.isCQL() || c.tls {
		cr := c.report()
		if b := a.build; b != nil && c.partID != b.id {
			b.closing(c, cr) // under way, and this connection's slice not yet come
		}
		a.keepClosed(cr)
		if c.isCQL() {
			a.totals.unanswered += uint64(c.pending.len()) + c.reused
		}
	} else {
		a.ignored++
	}
	a.freeHist(c.hist)
	c.hist = nil
	c.pending = pendingTable{}
}

// keepClosed keeps the summary of a closed connection for reports: the
// most recent MaxClosed of them (totals count every connection anyway).
//
// Workers sharing a registry share the bound: each lists its closed
// connections up to a share of its own (MaxClosed / 2 workers), and past
// it while the total is below MaxClosed; then it replaces its own oldest.
// (So the list holds at most 1.5 MaxClosed, and a worker whose connections
// close late still lists its share.)
func (a *Analyzer) keepClosed(r *ConnReport) {
	a.closedSeg.add(r)
	if a.closedNext == 0 {
		share := a.cfg.MaxClosed
		if s := a.reg.closedShare; s > 0 {
			share = s
		}
		if len(a.closed) < share {
			a.reg.closed.Add(1)
			a.closed = append(a.closed, r)
			return
		}
		if a.reg.closed.Add(1) <= int64(a.cfg.MaxClosed) {
			a.closed = append(a.closed, r)
			return
		}
		a.reg.closed.Add(-1)
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
