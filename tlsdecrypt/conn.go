package tlsdecrypt

import (
	"encoding/binary"
	"fmt"
)

// RecordInfo describes one application_data record, delivered with its
// plaintext. Offsets are into the segment passed to the Feed call during
// which the record completed, so a caller can count records per TCP
// segment and bytes per record (most TLS stacks make one record of one
// application write).
type RecordInfo struct {
	Dir      Dir    // the caller's direction
	WireLen  int    // record length on the wire, 5-byte header included; the plaintext is shorter by the AEAD overhead
	Start    int    // offset of the record's header in the segment just fed; -1 if it began in an earlier segment
	End      int    // offset just past the record in the segment just fed; -1 if Late
	Segments int    // Feed calls its bytes came in; 1 if the record started and ended in one segment
	StartTS  int64  // capture time of the segment holding the record's first byte
	EndTS    int64  // capture time of the segment holding its last byte
	Seq      uint64 // TLS sequence number under the current keys
	Late     bool   // decrypted when keys arrived, after it was fed (Start and End are -1)
	Skipped  uint64 // wire bytes of this direction not decrypted just before this record: a gap in the plaintext stream
}

// Limits.
const (
	maxBody   = 1<<14 + 2048 // largest record body TLS 1.2 allows (TLS 1.3: 2^14+256)
	maxRecord = 5 + maxBody
	pendMax   = 64 << 10 // bytes of records held per direction while waiting for keys
	helloMax  = 8 << 10  // largest ServerHello read (one with an ML-KEM key share is about 1.2 KiB)
	metaLen   = 20       // per waiting record: start and end time, segment count
	maxEarly  = 64       // TLS 1.3 client records that fail under the handshake keys before any succeeds, taken for 0-RTT data
)

// Content types.
const (
	ctCCS       = 20
	ctAlert     = 21
	ctHandshake = 22
	ctAppData   = 23
	ctHeartbeat = 24
)

// Roles index Conn.h.
const (
	client = 0
	server = 1
)

// parseHeader reads a record header: the body length and 5 if complete, 0
// if b is too short to tell, -1 if it is not a TLS record header.
func parseHeader(b []byte) (bodyLen, n int) {
	if len(b) > 0 && (b[0] < ctCCS || b[0] > ctHeartbeat) ||
		len(b) > 1 && b[1] != 3 ||
		len(b) > 2 && b[2] > 4 {
		return 0, -1
	}
	if len(b) < 5 {
		return 0, 0
	}
	l := int(binary.BigEndian.Uint16(b[3:]))
	if l > maxBody {
		return 0, -1
	}
	return l, 5
}

type recMeta struct {
	startTS, endTS int64
	segs           int32
	start, end     int
	late           bool
}

// half is one direction of a connection.
type half struct {
	st   Status // final status of the direction, or 0 while it goes on
	seen bool   // a record of it was handled

	// The record being assembled across segments (or, between records,
	// scratch space for plaintext).
	part     []byte
	need     int
	partTS   int64
	partSegs int32

	// Records waiting for a ClientHello, a ServerHello or keys, each after
	// a metaLen prefix.
	pend      []byte
	pendOff   int
	pendBytes int
	pendRecs  int
	blocked   bool // the head cannot be handled in the current drain

	// Over the bound, records are dropped but counted, so that decryption
	// can resume at the right sequence number once keys arrive.
	dropping bool
	dropCCS  bool   // a ChangeCipherSpec was among them
	dropAll  uint64 // records other than ChangeCipherSpec since the last dropped one
	drop23   uint64 // application_data records (TLS 1.3 protected records)
	dropGap  uint64

	phase    uint8 // keys needed: 0 none, 1 handshake (TLS 1.3) or master-derived (1.2), 2 application (1.3)
	keyed    uint8 // phase of the installed keys
	waitKeys bool
	opened   bool  // a record of this direction authenticated
	early    uint8 // TLS 1.3 client records taken for 0-RTT data
	finished bool  // TLS 1.3: this record carried the Finished: application keys from the next one
	update   bool  // TLS 1.3: this record carried a KeyUpdate
	seq      uint64
	hs       hsParser
	gap      uint64 // wire bytes not decrypted since the last delivered record

	c DirStats
}

func (h *half) skip(n int) {
	h.c.SkippedBytes += uint64(n)
	h.gap += uint64(n)
}

func (h *half) done(rec []byte) {
	h.c.Records++
	h.c.DoneBytes += uint64(len(rec))
	h.seen = true
}

// scratch returns space for n bytes of plaintext: the partial-record
// buffer, which is empty whenever a record is decrypted from the caller's
// segment. It grows to the largest record seen and is then reused.
func (h *half) scratch(n int) []byte {
	if cap(h.part) < n {
		h.part = make([]byte, 0, max(n, 2*cap(h.part), 512))
	}
	return h.part[:0]
}

// Conn decrypts one TCP connection's TLS records, both directions, given
// the key log. Feed it each direction's in-order stream bytes as they are
// reassembled; it calls emit with the plaintext of every application_data
// record. Everything else (handshake, alerts, session tickets, key
// updates) is followed and counted, not delivered.
//
// A Conn is not safe for concurrent use. Its memory is a few hundred bytes,
// plus per direction the largest record seen (at most 18 KiB) and, only
// while waiting for keys, up to 64 KiB of records.
type Conn struct {
	kl   *KeyLog
	emit func(RecordInfo, []byte)
	h    [2]half // by role: client, server
	swap Dir     // caller's Dir ^ swap = role

	status   Status // a final status of the whole connection
	started  bool
	haveCH   bool
	haveSH   bool
	renego   bool
	kick     bool // a hello arrived: waiting records may go on
	draining bool
	cr, sr   [32]byte // client and server random (public values)
	version  uint16
	suiteID  uint16
	suite    *suite
	keys     *connKeys
	looked   bool
	gen      uint64 // key log generation of the last lookup

	// TLS 1.2 sessions: what the hellos offered and what the server
	// issued, to find a resumed session's master secret and to teach the
	// key log a new session's.
	sid, ticket       sessionKey // offered by the ClientHello
	newSID, newTicket sessionKey // made by the ServerHello, issued by a NewSessionTicket
	resumed           bool       // the ServerHello echoed the offered session ID
	verified          bool       // a TLS 1.2 record authenticated: the master secret is right
	toLearn           bool       // newSID or newTicket not yet given to the key log
}

// NewConn returns a decrypter for one connection. kl may be nil (nothing
// will be decrypted; the statuses still tell why). emit receives each
// application_data record's plaintext, in order per direction; the slice is
// valid only during the call, and emit must not call the Conn.
func NewConn(kl *KeyLog, emit func(info RecordInfo, plain []byte)) *Conn {
	return &Conn{kl: kl, emit: emit}
}

// Feed takes the next bytes of direction d's stream (one TCP segment, in
// order, captured at ts) and delivers the plaintext of every
// application_data record it completes. It neither keeps nor changes b
// (plaintext is made in the Conn's own buffers). Records fed
// earlier that were waiting for keys are decrypted first if the key log
// has changed since they were last tried.
func (c *Conn) Feed(d Dir, b []byte, ts int64) {
	d &= 1
	c.h[d^c.swap].c.WireBytes += uint64(len(b))
	if c.waitingKeys() && c.kl.Generation() != c.gen {
		c.drain()
	}
	off := 0
	for off < len(b) {
		h := &c.h[d^c.swap]
		if h.st != 0 {
			h.skip(len(b) - off)
			return
		}
		if len(h.part) > 0 {
			// Complete the record begun in an earlier segment.
			if len(h.part) < 5 {
				n := min(5-len(h.part), len(b)-off)
				h.part = append(h.part, b[off:off+n]...)
				off += n
				l, ok := parseHeader(h.part)
				if ok < 0 {
					c.badHeader(d)
					continue
				}
				if ok == 0 {
					h.partSegs++
					return
				}
				h.need = 5 + l
			}
			n := min(h.need-len(h.part), len(b)-off)
			h.part = append(h.part, b[off:off+n]...)
			off += n
			if len(h.part) < h.need {
				h.partSegs++
				return
			}
			rec := h.part
			h.part = h.part[:0]
			m := recMeta{startTS: h.partTS, endTS: ts, segs: h.partSegs + 1, start: -1, end: off}
			c.record(d, rec, true, &m)
			continue
		}
		rest := b[off:]
		l, ok := parseHeader(rest)
		if ok < 0 {
			c.badHeader(d)
			continue
		}
		if ok == 0 || 5+l > len(rest) {
			// The record goes on in a later segment.
			h.part = append(h.part[:0], rest...)
			h.need = 5 + l
			h.partTS, h.partSegs = ts, 1
			return
		}
		m := recMeta{startTS: ts, endTS: ts, segs: 1, start: off, end: off + 5 + l}
		off += 5 + l
		c.record(d, rest[:5+l], false, &m)
	}
}

// Gap tells the Conn that lost bytes precede the next bytes of d: record
// boundaries and sequence numbers are lost with them, so the direction is
// given up (StatusGap) unless nothing of it was seen yet.
func (c *Conn) Gap(d Dir, lost int) {
	h := &c.h[(d&1)^c.swap]
	if h.st != 0 || !h.seen && len(h.part) == 0 && h.pendRecs == 0 {
		return
	}
	c.dirFail(int((d&1)^c.swap), StatusGap)
}

// Retry looks the connection up in the key log again if it is waiting for
// keys and the key log has changed, and decrypts what was waiting. Feed
// does this itself; Retry is for a caller that refreshed the key log and
// wants waiting records of an idle connection now.
func (c *Conn) Retry() {
	if c.waitingKeys() && c.kl.Generation() != c.gen {
		c.drain()
	}
}

// Status summarises the connection: the worst of its directions.
func (c *Conn) Status() Status {
	if c.status != 0 {
		return c.status
	}
	s := c.dirStatus(client)
	if o := c.dirStatus(server); rank[o] > rank[s] {
		s = o
	}
	return s
}

// Stats returns the connection's status and counters.
func (c *Conn) Stats() Stats {
	s := Stats{Status: c.Status(), Version: c.version, Suite: c.suiteID, Swapped: c.swap == 1, renego: c.renego}
	for r := range c.h {
		h := &c.h[r]
		ds := h.c
		ds.Status = c.dirStatus(r)
		ds.HeldBytes = uint64(len(h.part) + h.pendBytes)
		s.Dirs[Dir(r)^c.swap] = ds
	}
	return s
}

func (c *Conn) dirStatus(r int) Status {
	h := &c.h[r]
	switch {
	case h.st != 0:
		return h.st
	case h.waitKeys:
		return StatusNoKeys
	case h.keyed > 0:
		return StatusDecrypting
	}
	return StatusHandshake
}

func (c *Conn) waitingKeys() bool { return c.h[0].waitKeys || c.h[1].waitKeys }

// badHeader handles bytes that are not a record header: a capture that
// starts mid-record if nothing was seen yet, a broken stream otherwise.
func (c *Conn) badHeader(d Dir) {
	r := int(d ^ c.swap)
	h := &c.h[r]
	if !h.seen {
		c.connFail(StatusNoHandshake)
		return
	}
	c.dirFail(r, StatusMalformed)
}

// connFail gives up the whole connection.
func (c *Conn) connFail(st Status) {
	if c.status == 0 {
		c.status = st
	}
	c.dirFail(client, st)
	c.dirFail(server, st)
}

// dirFail gives up one direction: what it held will never be decrypted.
func (c *Conn) dirFail(r int, st Status) {
	h := &c.h[r]
	if h.st != 0 {
		return
	}
	h.st = st
	h.skip(len(h.part) + h.pendBytes)
	h.c.SkippedRecords += uint64(h.pendRecs)
	h.part, h.pend, h.pendOff, h.pendBytes, h.pendRecs = nil, nil, 0, 0, 0
	h.dropping, h.waitKeys = false, false
	h.hs.body = nil
	if c.keys != nil {
		c.keys.dir[r] = nil
	}
}

// record handles one complete record of d, in order: now, or after the
// records waiting before it. inPlace says rec may be decrypted in place.
func (c *Conn) record(d Dir, rec []byte, inPlace bool, m *recMeta) {
	if !c.started {
		c.started = true
		if d == FromServer && rec[0] == ctHandshake && len(rec) > 5 && rec[5] == 1 {
			// A ClientHello from the side the caller took for the server.
			c.h[0], c.h[1] = c.h[1], c.h[0]
			c.swap = 1
		}
	}
	r := int(d ^ c.swap)
	h := &c.h[r]
	if h.st != 0 {
		h.skip(len(rec))
		h.c.SkippedRecords++
		return
	}
	if h.pendRecs > 0 || h.dropping || !c.process(r, rec, inPlace, m) {
		c.enqueue(r, rec, m)
		return
	}
	if c.kick {
		c.drain()
	}
}

// process handles one complete record. It returns false, having changed
// nothing that matters, if the record must wait: for the ClientHello, the
// ServerHello or keys.
func (c *Conn) process(r int, rec []byte, inPlace bool, m *recMeta) bool {
	h := &c.h[r]
	if h.st != 0 {
		h.skip(len(rec))
		h.c.SkippedRecords++
		return true
	}
	typ := rec[0]
	if !h.seen && typ == ctAlert && len(rec) == 7 {
		// A refusal before any hello (a plaintext alert): no verdict yet.
		h.c.Alerts++
		h.c.Records++
		h.c.DoneBytes += uint64(len(rec))
		return true
	}
	if !h.seen {
		// A direction starts with its hello, or the handshake was missed.
		want := byte(1)
		if r == server {
			want = 2
		}
		if typ != ctHandshake || len(rec) < 6 || rec[5] != want {
			c.connFail(StatusNoHandshake)
			h.skip(len(rec))
			h.c.SkippedRecords++
			return true
		}
		if r == server && !c.haveCH {
			return false
		}
	}
	var protected bool
	if c.haveSH && c.version == versionTLS13 {
		// TLS 1.3 protects everything as application_data; the
		// ChangeCipherSpec records are for middleboxes only.
		protected = typ == ctAppData
	} else {
		protected = h.phase > 0
	}
	if !protected {
		switch typ {
		case ctHandshake:
			h.done(rec)
			c.handshake(r, rec[5:], false)
			return true
		case ctCCS:
			// In TLS 1.2 the records after it are protected. Before the
			// ServerHello it can only be TLS 1.3's middlebox compatibility
			// record (after a HelloRetryRequest, or sent with the hello).
			if c.haveSH && c.version == versionTLS12 {
				h.phase, h.seq = 1, 0
				h.hs.reset()
			}
		case ctAlert:
			h.c.Alerts++
		case ctAppData:
			if !c.haveSH {
				return false // TLS 1.3 records before the ServerHello was seen
			}
			c.dirFail(r, StatusMalformed) // TLS 1.2 application data before ChangeCipherSpec
			h.skip(len(rec))
			h.c.SkippedRecords++
			return true
		}
		h.done(rec)
		return true
	}
	if h.keyed != h.phase && !c.installKeys(r) {
		if h.st == 0 {
			return false
		}
		h.skip(len(rec))
		h.c.SkippedRecords++
		return true
	}
	c.decrypt(r, rec, inPlace, m)
	return true
}

// GoString keeps %#v of a Conn short; it never shows key material anyway.
func (c *Conn) GoString() string {
	s := c.Stats()
	return fmt.Sprintf("&tlsdecrypt.Conn{Status: %q, Version: %#04x, Suite: %#04x}", s.Reason(), s.Version, s.Suite)
}
