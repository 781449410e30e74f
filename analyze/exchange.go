package analyze

import (
	"encoding/binary"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
)

// Requests and responses: pairing by stream id, latency, errors, and what
// a response teaches about the connection (prepared ids, keyspace, Scylla).

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
		} else if h.Opcode == decode.OpQuery && err == nil {
			p.st = c.queryStatement(q)
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
	if w.candidate && !w.checked && f.TCPSegments == 1 {
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
	c.bars.add(us)
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
	p.st.bars.add(us)

	if err == nil {
		switch {
		case h.Opcode == decode.OpResult && r.Kind == decode.ResultPrepared && p.prepare != nil:
			if len(a.prepared) < a.cfg.MaxPrepared || a.prepared[string(r.PreparedID)] != nil {
				a.prepared[string(r.PreparedID)] = p.prepare
			}
			if r.LWT && c.scylla.NrShards >= 0 && c.scyllaSeen && p.prepare != a.other[decode.OpExecute] {
				// Scylla marks conditional statements when the client
				// negotiated SCYLLA_LWT_ADD_METADATA_MARK.
				p.prepare.lwt = true
			}
			if p.prepare != a.other[decode.OpExecute] {
				a.reg.learn(r.PreparedID, p.prepare.text, p.prepare.lwt)
			}
		case h.Opcode == decode.OpResult && r.Kind == decode.ResultSetKeyspace:
			c.keyspace = string(r.Keyspace)
		case h.Opcode == decode.OpSupported && len(r.Supported) > 0:
			var info decode.ScyllaInfo
			if decode.ParseScyllaSupported(r.Supported, &info) == nil && (info.NrShards >= 0 || info.Shard >= 0) {
				c.scylla = info
				c.scyllaSeen = true
				_, server := c.key.Endpoints(c.cdir)
				a.reg.node(server.IP, info)
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
