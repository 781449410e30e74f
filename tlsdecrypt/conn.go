package tlsdecrypt

import (
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
)

// Dir is the direction of a stream within a connection. The caller says
// which side it takes for the client, usually from the server port (9142)
// or from who sent the SYN. If the first record proves it wrong (a
// ClientHello sent FromServer), the Conn takes the handshake's word for it,
// keeps reporting in the caller's directions, and sets Stats.Swapped.
type Dir uint8

// Directions.
const (
	FromClient Dir = 0 // client to server
	FromServer Dir = 1 // server to client
)

func (d Dir) String() string {
	switch d {
	case FromClient:
		return "client→server"
	case FromServer:
		return "server→client"
	}
	return "Dir(invalid)"
}

// Status says how far decryption of a connection or direction got.
type Status uint8

// Statuses. The ones from StatusNoHandshake on are final: nothing more
// will be decrypted.
const (
	StatusHandshake   Status = iota // no verdict yet: the handshake is under way
	StatusDecrypting                // keys found: records are being decrypted
	StatusNoKeys                    // the key log has no secrets for the connection (yet: a later Refresh may bring them)
	StatusNoHandshake               // the capture started after the handshake: no client random, no keys to match
	StatusUnsupported               // a protocol version or cipher suite this package does not decrypt (Stats.Reason names it)
	StatusFailed                    // a record failed authentication: wrong keys or damaged bytes; the direction was given up
	StatusMalformed                 // bytes that are not TLS records where records were expected
	StatusGap                       // bytes were lost from the capture: record boundaries and sequence numbers are gone
	StatusOverflow                  // more than the waiting bound arrived before the keys, at a point it could not be skipped over
)

var statusNames = [...]string{
	"handshake",
	"decrypting",
	"no keys in the key log",
	"handshake not captured",
	"unsupported",
	"failed",
	"malformed record",
	"bytes lost in the capture",
	"gave up waiting for keys",
}

func (s Status) String() string {
	if int(s) < len(statusNames) {
		return statusNames[s]
	}
	return "Status(invalid)"
}

// Final reports whether nothing more will be decrypted.
func (s Status) Final() bool { return s >= StatusNoHandshake }

// rank orders statuses for a connection's summary: the worst direction wins.
var rank = [...]uint8{
	StatusDecrypting:  0,
	StatusHandshake:   1,
	StatusNoKeys:      2,
	StatusOverflow:    3,
	StatusGap:         4,
	StatusUnsupported: 5,
	StatusMalformed:   6,
	StatusFailed:      7,
	StatusNoHandshake: 8,
}

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

// DirStats counts one direction. Every byte fed is in exactly one of
// DoneBytes, SkippedBytes and HeldBytes.
type DirStats struct {
	Status         Status
	Records        uint64 // records handled: parsed in the clear or decrypted
	AppRecords     uint64 // application_data records delivered
	WireBytes      uint64 // bytes fed
	DoneBytes      uint64 // wire bytes of the records handled
	SkippedBytes   uint64 // bytes not decrypted: no handshake, unsupported, failed, over the waiting bound
	SkippedRecords uint64 // whole records among them (bytes out of record sync are not counted as records)
	HeldBytes      uint64 // bytes held now: a partial record, records waiting for keys
	PlainBytes     uint64 // application plaintext delivered
	AuthFailures   uint64 // records that failed authentication
	KeyUpdates     uint64 // TLS 1.3 KeyUpdates followed
	Alerts         uint64 // alert records (in the clear or decrypted)
}

// Stats describes a connection.
type Stats struct {
	Status  Status
	Version uint16      // negotiated version (0x0303 TLS 1.2, 0x0304 TLS 1.3), 0 before the ServerHello
	Suite   uint16      // negotiated cipher suite, 0 before the ServerHello
	Swapped bool        // the handshake showed FromServer to be the client
	Dirs    [2]DirStats // by the caller's Dir
	renego  bool
}

// Reason is the status as a report says it: "unsupported: TLS 1.1",
// "unsupported: TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "failed: ...".
func (s Stats) Reason() string {
	switch s.Status {
	case StatusUnsupported:
		switch {
		case s.Version != versionTLS12 && s.Version != versionTLS13 && s.Version != 0:
			return "unsupported: " + VersionName(s.Version)
		case s.Suite != 0 && findSuite(s.Version, s.Suite) == nil:
			return "unsupported: " + SuiteName(s.Suite)
		}
		if s.renego {
			return "unsupported: renegotiation"
		}
		return "unsupported: a cipher the crypto module refuses (FIPS 140-only mode)"
	case StatusFailed:
		for _, d := range s.Dirs {
			if d.AuthFailures > 0 {
				return "failed: a record failed authentication (wrong keys or damaged capture)"
			}
		}
		return "failed: the logged secret does not fit the cipher suite"
	}
	return s.Status.String()
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

// hrrRandom marks a ServerHello that is a HelloRetryRequest (RFC 8446 4.1.3).
var hrrRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

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

// connKeys holds a connection's secrets and keys two pointers away from
// Conn, so that no formatting of a Conn shows them (see table).
type connKeys struct {
	sec *secretSet  // this connection's key log entry
	dir [2]*dirKeys // by role
}

// dirKeys is one direction's record protection.
type dirKeys struct {
	aead   cipher.AEAD
	iv     [12]byte
	nonce  [12]byte
	aad    [13]byte
	secret [48]byte // TLS 1.3: the current traffic secret, for KeyUpdate
	slen   int
}

// seqNonce sets the nonce to the IV XOR the sequence number.
func (k *dirKeys) seqNonce(seq uint64) {
	k.nonce = k.iv
	for i := range 8 {
		k.nonce[4+i] ^= byte(seq >> (56 - 8*i))
	}
}

// hsParser follows the handshake messages of one direction across
// records, collecting the start of the hellos.
type hsParser struct {
	hdr    [4]byte
	nhdr   int
	typ    uint8
	remain int    // body bytes of the current message still to come
	want   int    // body bytes of it to collect
	body   []byte // collected
}

func (p *hsParser) reset() { p.nhdr, p.remain, p.want = 0, 0, 0 }

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

// enqueue keeps a record that must wait, or drops it over the bound.
func (c *Conn) enqueue(r int, rec []byte, m *recMeta) {
	h := &c.h[r]
	if h.pendOff > 0 {
		h.pend = h.pend[:copy(h.pend, h.pend[h.pendOff:])]
		h.pendOff = 0
	}
	if h.dropping || len(h.pend)+metaLen+len(rec) > pendMax {
		h.dropping = true
		if rec[0] == ctCCS {
			h.dropCCS, h.dropAll = true, 0
		} else {
			h.dropAll++
			if rec[0] == ctAppData {
				h.drop23++
			}
		}
		h.dropGap += uint64(len(rec))
		h.c.SkippedBytes += uint64(len(rec))
		h.c.SkippedRecords++
		return
	}
	h.pend = binary.LittleEndian.AppendUint64(h.pend, uint64(m.startTS))
	h.pend = binary.LittleEndian.AppendUint64(h.pend, uint64(m.endTS))
	h.pend = binary.LittleEndian.AppendUint32(h.pend, uint32(m.segs))
	h.pend = append(h.pend, rec...)
	h.pendBytes += len(rec)
	h.pendRecs++
}

// head returns the first waiting record of h.
func (h *half) head() ([]byte, recMeta) {
	p := h.pend[h.pendOff:]
	m := recMeta{
		startTS: int64(binary.LittleEndian.Uint64(p)),
		endTS:   int64(binary.LittleEndian.Uint64(p[8:])),
		segs:    int32(binary.LittleEndian.Uint32(p[16:])),
		start:   -1, end: -1, late: true,
	}
	p = p[metaLen:]
	return p[:5+int(binary.BigEndian.Uint16(p[3:]))], m
}

// drain handles waiting records of both directions until none can go on,
// the earliest captured first, then resumes directions that dropped
// records over the bound.
func (c *Conn) drain() {
	c.kick = false
	if c.draining {
		return
	}
	c.draining = true
	for {
		best := -1
		for r := range c.h {
			h := &c.h[r]
			if h.pendRecs == 0 || h.blocked {
				continue
			}
			if best < 0 || c.headTS(r) < c.headTS(best) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		h := &c.h[best]
		rec, m := h.head()
		h.pendBytes -= len(rec)
		h.pendRecs--
		if !c.process(best, rec, true, &m) {
			h.pendBytes += len(rec)
			h.pendRecs++
			h.blocked = true
		} else if h.pend != nil {
			h.pendOff += metaLen + len(rec)
			if h.pendRecs == 0 {
				h.pend, h.pendOff = nil, 0
			}
		}
		if c.kick {
			c.kick = false
			c.h[0].blocked, c.h[1].blocked = false, false
		}
	}
	for r := range c.h {
		h := &c.h[r]
		h.blocked = false
		if h.dropping && h.pendRecs == 0 {
			c.resume(r)
		}
	}
	c.draining = false
}

func (c *Conn) headTS(r int) int64 {
	h := &c.h[r]
	return int64(binary.LittleEndian.Uint64(h.pend[h.pendOff+8:]))
}

// resume continues a direction after the records dropped over the bound,
// if the sequence number can be known: in TLS 1.2 after its
// ChangeCipherSpec, in TLS 1.3 under application keys (a KeyUpdate among
// the dropped records will show as an authentication failure).
func (c *Conn) resume(r int) {
	h := &c.h[r]
	h.dropping = false
	switch {
	case h.st != 0:
	case c.version == versionTLS12 && h.dropCCS:
		h.phase, h.seq = 1, h.dropAll
	case c.version == versionTLS12 && h.phase == 1:
		h.seq += h.dropAll
	case c.version == versionTLS13 && h.phase == 2:
		h.seq += h.drop23
	default:
		c.dirFail(r, StatusOverflow)
	}
	h.gap += h.dropGap
	h.dropCCS, h.dropAll, h.drop23, h.dropGap = false, 0, 0, 0
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

// label is the key log secret direction r needs in its current phase.
func (c *Conn) label(r int) Label {
	h := &c.h[r]
	switch {
	case !c.suite.tls13:
		return LabelClientRandom
	case h.phase == 1 && r == client:
		return LabelClientHandshake
	case h.phase == 1:
		return LabelServerHandshake
	case r == client:
		return LabelClientTraffic0
	}
	return LabelServerTraffic0
}

// secret returns the logged secret l of this connection, looking the key
// log up again only if it changed since the last try.
func (c *Conn) secret(l Label) []byte {
	if c.keys == nil {
		c.keys = &connKeys{sec: new(secretSet)}
	}
	sec := c.keys.sec
	if sec.s[l].n == 0 {
		if g := c.kl.Generation(); !c.looked || g != c.gen {
			c.looked, c.gen = true, g
			c.kl.lookupInto(&c.cr, sec)
			if l == LabelClientRandom && sec.s[l].n == 0 && c.resumed {
				// A resumed session: its master secret is the original's.
				if !c.kl.lookupSession(&c.sid, &sec.s[l]) && c.ticket.kind != 0 {
					c.kl.lookupSession(&c.ticket, &sec.s[l])
				}
			}
		}
	}
	if sec.s[l].n == 0 {
		return nil
	}
	return sec.s[l].bytes()
}

// installKeys sets up direction r's keys for its phase. It returns false if
// the key log has no secret for it yet (waitKeys) or the secret is unusable
// (the direction is given up).
func (c *Conn) installKeys(r int) bool {
	h := &c.h[r]
	s := c.secret(c.label(r))
	if s == nil {
		h.waitKeys = true
		return false
	}
	h.waitKeys = false
	k := c.keys.dir[r]
	if k == nil {
		k = new(dirKeys)
		c.keys.dir[r] = k
	}
	var key, iv []byte
	if c.suite.tls13 {
		if len(s) != c.suite.hashLen {
			c.dirFail(r, StatusFailed)
			return false
		}
		k.slen = copy(k.secret[:], s)
		var ok bool
		if key, iv, ok = c.trafficKeys(k.secret[:k.slen]); !ok {
			c.dirFail(r, StatusUnsupported)
			return false
		}
	} else {
		key, iv = keys12(c.suite, s, c.cr[:], c.sr[:], r == server)
	}
	aead, err := newAEAD(c.suite.kind, key)
	if err != nil {
		c.dirFail(r, StatusUnsupported) // refused by the crypto module (FIPS 140-only mode)
		return false
	}
	k.aead = aead
	k.iv = [12]byte{}
	copy(k.iv[:], iv)
	copy(k.nonce[:], iv) // TLS 1.2 GCM: the implicit part stays put
	h.keyed = h.phase
	return true
}

// trafficKeys derives a TLS 1.3 key and IV from a traffic secret.
func (c *Conn) trafficKeys(secret []byte) (key, iv []byte, ok bool) {
	key, err1 := expandLabel(c.suite.hash, secret, "key", c.suite.keyLen)
	iv, err2 := expandLabel(c.suite.hash, secret, "iv", 12)
	return key, iv, err1 == nil && err2 == nil
}

// keyUpdate moves direction r to its next TLS 1.3 traffic secret.
func (c *Conn) keyUpdate(r int) {
	h := &c.h[r]
	k := c.keys.dir[r]
	next, err := expandLabel(c.suite.hash, k.secret[:k.slen], "traffic upd", c.suite.hashLen)
	var key, iv []byte
	ok := err == nil
	if ok {
		copy(k.secret[:], next)
		key, iv, ok = c.trafficKeys(k.secret[:k.slen])
	}
	var aead cipher.AEAD
	if ok {
		aead, err = newAEAD(c.suite.kind, key)
		ok = err == nil
	}
	if !ok {
		c.dirFail(r, StatusUnsupported)
		return
	}
	k.aead = aead
	copy(k.iv[:], iv)
	h.seq = 0
	h.c.KeyUpdates++
}

// decrypt opens a protected record and acts on its content.
func (c *Conn) decrypt(r int, rec []byte, inPlace bool, m *recMeta) {
	h := &c.h[r]
	k := c.keys.dir[r]
	body := rec[5:]
	var ct, aad []byte
	switch {
	case c.suite.tls13:
		if len(body) < 17 || len(body) > 1<<14+256 {
			c.authFail(r, rec)
			return
		}
		k.seqNonce(h.seq)
		ct, aad = body, rec[:5]
	default:
		explicit := 0
		if c.suite.kind == aesGCM {
			explicit = 8
		}
		if len(body) < explicit+16 {
			c.authFail(r, rec)
			return
		}
		if explicit > 0 {
			copy(k.nonce[4:], body[:8])
		} else {
			k.seqNonce(h.seq)
		}
		ct = body[explicit:]
		binary.BigEndian.PutUint64(k.aad[:8], h.seq)
		k.aad[8], k.aad[9], k.aad[10] = rec[0], rec[1], rec[2]
		binary.BigEndian.PutUint16(k.aad[11:], uint16(len(ct)-16))
		aad = k.aad[:]
	}
	var dst []byte
	if inPlace {
		dst = ct[:0]
	} else {
		dst = h.scratch(len(ct))
	}
	plain, err := k.aead.Open(dst, k.nonce[:], ct, aad)
	if err != nil {
		if c.suite.tls13 && r == client && h.phase == 1 && !h.opened && h.early < maxEarly {
			// TLS 1.3 0-RTT data, under the early traffic secret, comes
			// before the client's first handshake record: skipped.
			h.early++
			h.skip(len(rec))
			h.c.SkippedRecords++
			return
		}
		c.authFail(r, rec)
		return
	}
	h.opened = true
	seq := h.seq
	h.seq++
	if !c.verified {
		c.verified = true
		c.learn()
	}
	typ := rec[0]
	if c.suite.tls13 {
		// The inner plaintext: content, its real type, zero padding.
		i := len(plain) - 1
		for i >= 0 && plain[i] == 0 {
			i--
		}
		if i < 0 {
			c.dirFail(r, StatusMalformed)
			h.skip(len(rec))
			h.c.SkippedRecords++
			return
		}
		typ, plain = plain[i], plain[:i]
	}
	h.done(rec)
	switch typ {
	case ctAppData:
		if c.suite.tls13 && h.phase != 2 || len(plain) == 0 {
			break // not allowed under handshake keys; or empty (allowed, and nothing to deliver)
		}
		h.c.AppRecords++
		h.c.PlainBytes += uint64(len(plain))
		info := RecordInfo{
			Dir: Dir(r) ^ c.swap, WireLen: len(rec),
			Start: m.start, End: m.end, Segments: int(m.segs),
			StartTS: m.startTS, EndTS: m.endTS, Seq: seq, Late: m.late, Skipped: h.gap,
		}
		h.gap = 0
		if c.emit != nil {
			c.emit(info, plain)
		}
	case ctHandshake:
		c.handshake(r, plain, true)
	case ctAlert:
		h.c.Alerts++
	case ctCCS:
		c.renego = true // a second ChangeCipherSpec: renegotiation
		c.dirFail(r, StatusUnsupported)
	}
	if h.finished {
		h.finished = false
		h.phase, h.seq = 2, 0
		h.hs.reset()
	}
	if h.update {
		h.update = false
		c.keyUpdate(r)
	}
}

func (c *Conn) authFail(r int, rec []byte) {
	h := &c.h[r]
	h.c.AuthFailures++
	c.dirFail(r, StatusFailed)
	h.skip(len(rec))
	h.c.SkippedRecords++
}

// handshake follows the handshake messages in p, a record's plaintext.
func (c *Conn) handshake(r int, p []byte, protected bool) {
	h := &c.h[r]
	hs := &h.hs
	for len(p) > 0 {
		if hs.nhdr < 4 {
			n := copy(hs.hdr[hs.nhdr:], p)
			hs.nhdr += n
			p = p[n:]
			if hs.nhdr < 4 {
				return
			}
			hs.typ = hs.hdr[0]
			hs.remain = int(hs.hdr[1])<<16 | int(hs.hdr[2])<<8 | int(hs.hdr[3])
			hs.want = 0
			switch {
			case protected:
			case r == client && hs.typ == 1:
				hs.want = min(hs.remain, helloMax) // random, session ID, ticket
			case r == server && hs.typ == 2:
				if hs.remain > helloMax {
					c.connFail(StatusMalformed)
					return
				}
				hs.want = hs.remain
			case r == server && hs.typ == 4:
				hs.want = min(hs.remain, helloMax) // a TLS 1.2 session ticket
			}
			hs.body = hs.body[:0]
		}
		n := min(len(p), hs.remain)
		if w := hs.want - len(hs.body); w > 0 {
			hs.body = append(hs.body, p[:min(n, w)]...)
		}
		hs.remain -= n
		p = p[n:]
		if hs.remain > 0 {
			return
		}
		hs.nhdr = 0
		c.message(r, hs.typ, hs.body, protected)
		if h.st != 0 {
			return
		}
	}
}

// message acts on one complete handshake message.
func (c *Conn) message(r int, typ uint8, body []byte, protected bool) {
	h := &c.h[r]
	switch {
	case !protected && r == client && typ == 1:
		if len(body) < 34 {
			c.connFail(StatusMalformed)
			return
		}
		if !c.haveCH {
			c.clientHello(body)
			c.haveCH, c.kick = true, true
		}
		h.hs.body = nil // not needed again
	case !protected && r == server && typ == 2 && !c.haveSH:
		c.serverHello(body)
		h.hs.body = nil // not needed again
	case !protected && r == server && typ == 4 && len(body) >= 6 && c.version == versionTLS12:
		// NewSessionTicket: lifetime, ticket.
		if t := body[6:]; len(t) > 0 && len(t) == int(binary.BigEndian.Uint16(body[4:])) {
			c.newTicket = sessionKey{kind: kindTicket, b: sha256.Sum256(t)}
			c.toLearn = true
			c.learn()
		}
		h.hs.body = nil
	case protected && c.suite.tls13:
		switch typ {
		case 20: // Finished
			h.finished = h.phase == 1
		case 24: // KeyUpdate: each direction follows its own
			h.update = h.phase == 2
		}
	case protected && (typ == 1 || typ == 2):
		c.renego = true // a TLS 1.2 hello under encryption: renegotiation
		c.dirFail(r, StatusUnsupported)
	}
}

// clientHello reads the client random and what the client offers to
// resume: a session ID, a session ticket (RFC 5077).
func (c *Conn) clientHello(b []byte) {
	copy(c.cr[:], b[2:34])
	if len(b) < 35 {
		return
	}
	n := int(b[34])
	p := 35 + n
	if n == 0 || n > 32 || p > len(b) {
		return
	}
	c.sid = sessionKey{kind: kindSessionID, n: uint8(n)}
	copy(c.sid.b[:], b[35:p])
	if p+2 > len(b) {
		return
	}
	p += 2 + int(binary.BigEndian.Uint16(b[p:])) // cipher suites
	if p+1 > len(b) {
		return
	}
	p += 1 + int(b[p]) // compression methods
	if p+2 > len(b) {
		return
	}
	for ext := extensionBlock(b, p); ; {
		t, body, rest, ok := nextExtension(ext)
		if !ok {
			break
		}
		if t == 35 && len(body) > 0 { // session_ticket
			c.ticket = sessionKey{kind: kindTicket, b: sha256.Sum256(body)}
		}
		ext = rest
	}
}

// extensionBlock is a hello's extensions, whose 2-byte length is at p of b,
// cut to that length (or to b).
func extensionBlock(b []byte, p int) []byte {
	ext := b[p+2:]
	if n := int(binary.BigEndian.Uint16(b[p:])); n < len(ext) {
		ext = ext[:n]
	}
	return ext
}

// nextExtension reads the first extension of ext: its type, its body and
// what follows; ok is false when no whole extension is left.
func nextExtension(ext []byte) (typ uint16, body, rest []byte, ok bool) {
	if len(ext) < 4 {
		return 0, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(ext[2:]))
	if 4+n > len(ext) {
		return 0, nil, nil, false
	}
	return binary.BigEndian.Uint16(ext), ext[4 : 4+n], ext[4+n:], true
}

// learn gives the key log the master secret of the TLS 1.2 session this
// connection made or was issued a ticket for, once a record has shown the
// secret to be right.
func (c *Conn) learn() {
	if !c.toLearn || !c.verified {
		return
	}
	c.toLearn = false
	m := c.keys.sec.s[LabelClientRandom].bytes()
	if c.newSID.kind != 0 && !c.resumed {
		c.kl.learnSession(&c.newSID, m)
	}
	if c.newTicket.kind != 0 {
		c.kl.learnSession(&c.newTicket, m)
	}
}

// serverHello reads the negotiated version and suite (RFC 8446 4.1.3, RFC
// 5246 7.4.1.3).
func (c *Conn) serverHello(b []byte) {
	if len(b) < 38 || 35+int(b[34])+3 > len(b) {
		c.connFail(StatusMalformed)
		return
	}
	v := binary.BigEndian.Uint16(b)
	random := [32]byte(b[2:34])
	p := 35 + int(b[34])
	id := binary.BigEndian.Uint16(b[p:])
	p += 3
	if p+2 <= len(b) {
		for ext := extensionBlock(b, p); ; {
			t, body, rest, ok := nextExtension(ext)
			if !ok {
				break
			}
			if t == 43 && len(body) == 2 { // supported_versions
				v = binary.BigEndian.Uint16(body)
			}
			ext = rest
		}
	}
	if random == hrrRandom {
		return // HelloRetryRequest: the real ServerHello follows
	}
	c.sr, c.version, c.suiteID = random, v, id
	c.haveSH, c.kick = true, true
	if n := int(b[34]); v == versionTLS12 && n > 0 && n <= 32 {
		c.newSID = sessionKey{kind: kindSessionID, n: uint8(n)}
		copy(c.newSID.b[:], b[35:35+n])
		c.resumed = c.newSID == c.sid
		c.toLearn = !c.resumed
	}
	c.suite = findSuite(v, id)
	if c.suite == nil {
		c.connFail(StatusUnsupported)
		return
	}
	if c.suite.tls13 {
		for r := range c.h {
			c.h[r].phase, c.h[r].seq = 1, 0
			c.h[r].hs.reset()
		}
	}
}

// GoString keeps %#v of a Conn short; it never shows key material anyway.
func (c *Conn) GoString() string {
	s := c.Stats()
	return fmt.Sprintf("&tlsdecrypt.Conn{Status: %q, Version: %#04x, Suite: %#04x}", s.Reason(), s.Version, s.Suite)
}
