package analyze

import (
	"fmt"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// TLS connections. With a key log (Config.KeyLog) each direction's records
// are decrypted (package tlsdecrypt) and the plaintext takes the same path
// as a plain connection's bytes: frames, pairing, latency, batching and
// diagnoses. The plaintext of the records that completed in one TCP segment
// is treated as that segment's payload, so frames per segment keep their
// meaning. Whatever the keys, the record layer itself is counted: most TLS
// stacks (Go's crypto/tls, OpenSSL, Java's SSLEngine up to 16 KiB) turn one
// application write into one record, so records are the writes the wire
// cannot otherwise show.

// recWalk follows one direction's TLS record boundaries without
// decrypting anything.
type recWalk struct {
	hdr     [5]byte
	nhdr    int
	left    int  // body bytes still to come of the current record
	lost    bool // bytes that are not TLS records: counting stopped
	records uint64
	bytes   uint64    // record bytes, headers included
	segs    uint64    // TCP segments
	tcp     uint64    // their bytes
	buckets [6]uint64 // segments by the records starting in them (as frames: 0, 1, 2-3, 4-7, 8-15, 16+)

	// Keyless batching evidence: segments that carried exactly one small
	// whole record and left within BackToBack of this side's previous
	// segment, with nothing from the other side in between — two writes
	// of something that could have been one (see tlsUnbuffered).
	lastTS   int64
	haveLast bool
	b2b      uint64
	b2bBytes uint64
}

// smallRecord is the largest record (header and AEAD overhead included)
// counted as carrying about one request: a buffered client's records
// carry many.
const smallRecord = 600

// walk counts the records of one segment; it returns the records starting
// in it and, when exactly one whole record made up the segment, its length.
func (r *recWalk) walk(b []byte) (starts, single int) {
	r.segs++
	r.tcp += uint64(len(b))
	if r.lost {
		return 0, 0
	}
	atStart := r.left == 0 && r.nhdr == 0
	for len(b) > 0 {
		if r.left > 0 {
			n := min(r.left, len(b))
			r.left -= n
			b = b[n:]
			continue
		}
		n := copy(r.hdr[r.nhdr:], b)
		r.nhdr += n
		b = b[n:]
		if r.nhdr < 5 {
			break
		}
		r.nhdr = 0
		if r.hdr[0] < 20 || r.hdr[0] > 24 || r.hdr[1] != 3 {
			r.lost = true
			return starts, 0
		}
		l := int(r.hdr[3])<<8 | int(r.hdr[4])
		if l > 1<<14+2048 {
			r.lost = true
			return starts, 0
		}
		r.records++
		r.bytes += uint64(5 + l)
		r.left = l
		starts++
		single = 5 + l
	}
	r.buckets[bucket(starts)]++
	if !atStart || starts != 1 || r.left != 0 || r.nhdr != 0 {
		single = 0
	}
	return starts, single
}

// tlsState is a TLS connection's decryption and record counting.
type tlsState struct {
	dec      *tlsdecrypt.Conn // nil without a key log
	walk     [2]recWalk       // by flow direction
	lastDir  capture.Dir      // the direction of the latest data segment
	haveLast bool
	late     uint64 // records decrypted only once their keys arrived
}

// tlsData handles one data segment of a TLS connection.
func (c *conn) tlsData(d capture.Dir, b []byte, ts int64) {
	t := c.tlsSt
	if t == nil {
		t = &tlsState{}
		c.tlsSt = t
		if kl := c.a.cfg.KeyLog; kl != nil {
			t.dec = tlsdecrypt.NewConn(kl, c.onPlain)
			c.a.keyLogNewConn()
		}
	}
	rw := &t.walk[d]
	_, single := rw.walk(b)
	if single > 0 && single <= smallRecord && rw.haveLast && ts-rw.lastTS <= c.a.cfg.BackToBack &&
		t.haveLast && t.lastDir == d {
		rw.b2b++
		rw.b2bBytes += uint64(single)
	}
	rw.lastTS, rw.haveLast = ts, true
	t.lastDir, t.haveLast = d, true

	if t.dec == nil {
		return
	}
	dir := tlsdecrypt.FromClient
	if c.rolesKnown && d != c.cdir {
		dir = tlsdecrypt.FromServer
	}
	a := c.a
	if a.cfg.KeyLogRefresh && ts-a.keyLogAt >= keyLogRefreshEvery && t.dec.Status() == tlsdecrypt.StatusNoKeys {
		a.keyLogAt = ts
		_ = a.cfg.KeyLog.Refresh()
	}
	a.plain = a.plain[:0]
	t.dec.Feed(dir, b, ts)
	if len(a.plain) == 0 {
		return // handshake records, or no keys (yet)
	}
	c.cqlData(d, a.plain, ts)
}

// keyLogRefreshEvery is how often (packet time) a live capture re-reads the
// key log while a connection waits for its keys.
const keyLogRefreshEvery = int64(20e6)

// onPlain receives a decrypted application_data record (tlsdecrypt's emit).
func (c *conn) onPlain(info tlsdecrypt.RecordInfo, plain []byte) {
	t := c.tlsSt
	if info.Late {
		t.late++
	}
	c.a.plain = append(c.a.plain, plain...)
}

// keyLogNewConn refreshes the key log when a TLS connection starts, so a
// live capture finds the secrets of a connection opened after it began
// (the client appends them while it shakes hands).
func (a *Analyzer) keyLogNewConn() {
	if a.cfg.KeyLogRefresh {
		_ = a.cfg.KeyLog.Refresh()
	}
}

// tlsGap: bytes were lost. Record boundaries are gone for good in that
// direction (and with them the decryption's sequence numbers).
func (c *conn) tlsGap(d capture.Dir, lost int) {
	t := c.tlsSt
	if t == nil {
		return
	}
	t.walk[d].lost = true
	if t.dec != nil {
		dir := tlsdecrypt.FromClient
		if c.rolesKnown && d != c.cdir {
			dir = tlsdecrypt.FromServer
		}
		t.dec.Gap(dir, lost)
	}
}

// TLSReport is what is known of a TLS connection's encryption.
type TLSReport struct {
	Version     string `json:"version,omitempty"`      // "TLS 1.3", from the ServerHello (with a key log)
	CipherSuite string `json:"cipher_suite,omitempty"` // from the ServerHello (with a key log)
	// Decrypted: application data was decrypted with the key log, so the
	// connection's CQL figures are real.
	Decrypted bool `json:"decrypted"`
	// Status says why not, or how far it got: "decrypting", "no key log",
	// "no keys in the key log", "handshake not captured" (the capture began
	// after it: no keys can be matched), "unsupported: TLS 1.1", "failed:
	// ...", "bytes lost in the capture", "gave up waiting for keys".
	Status       string `json:"status"`
	LateRecords  uint64 `json:"late_records,omitempty"` // decrypted only once their keys arrived (live)
	AuthFailures uint64 `json:"auth_failures,omitempty"`
	SkippedBytes uint64 `json:"skipped_bytes,omitempty"` // record bytes not decrypted
}

// TLSWrites is the record layer of one direction: most TLS stacks make one
// record of each application write.
type TLSWrites struct {
	Records           uint64            `json:"records"`     // all records: handshake, alerts, application data
	AppRecords        uint64            `json:"app_records"` // application_data records decrypted (with a key log)
	RecordsPerSegment float64           `json:"records_per_segment"`
	BytesPerRecord    float64           `json:"bytes_per_record"` // on the wire, header and AEAD overhead included
	Distribution      map[string]uint64 `json:"distribution"`     // TCP segments by the records starting in them
	// FramesPerRecord is CQL frames per record once decrypted: a buffered
	// sender puts many in one record, an unbuffered one about one.
	FramesPerRecord float64 `json:"frames_per_record,omitempty"`
	// BackToBackSingle counts segments that carried one small whole record
	// (about one request) and left within --back-to-back of this side's
	// previous segment with nothing from the other side in between.
	BackToBackSingle uint64 `json:"back_to_back_single"`
	RecordSyncLost   bool   `json:"record_sync_lost,omitempty"`
}

// report gives the direction's record figures; appRecords and frames are
// the application_data records decrypted and the CQL frames they carried
// (0 without keys).
func (r *recWalk) report(appRecords, frames uint64) *TLSWrites {
	w := &TLSWrites{Records: r.records, AppRecords: appRecords, Distribution: distribution(&r.buckets), BackToBackSingle: r.b2b, RecordSyncLost: r.lost}
	if r.segs > 0 {
		w.RecordsPerSegment = round2(float64(r.records) / float64(r.segs))
	}
	if r.records > 0 {
		w.BytesPerRecord = round2(float64(r.bytes) / float64(r.records))
	}
	if appRecords > 0 && frames > 0 {
		w.FramesPerRecord = round2(float64(frames) / float64(appRecords))
	}
	return w
}

// tlsReport fills a report's TLS figures.
func (c *conn) tlsReport(r *ConnReport) {
	t := c.tlsSt
	if t == nil {
		return
	}
	tr := &TLSReport{Status: "no key log"}
	var app [2]uint64 // by flow direction
	if t.dec != nil {
		st := t.dec.Stats()
		for d := range app {
			dir := tlsdecrypt.FromClient
			if c.rolesKnown && capture.Dir(d) != c.cdir {
				dir = tlsdecrypt.FromServer
			}
			app[d] = st.Dirs[dir].AppRecords
		}
		tr.Status = st.Reason()
		tr.Decrypted = c.w[0].frames+c.w[1].frames > 0
		if st.Version != 0 {
			tr.Version = tlsdecrypt.VersionName(st.Version)
		}
		if st.Suite != 0 {
			tr.CipherSuite = tlsdecrypt.SuiteName(st.Suite)
		}
		tr.LateRecords = t.late
		for _, d := range st.Dirs {
			tr.AuthFailures += d.AuthFailures
			tr.SkippedBytes += d.SkippedBytes
		}
	}
	r.TLS = tr
	cd := c.cdir
	if !c.rolesKnown {
		cd = 0
	}
	r.ClientWrites.TLS = t.walk[cd].report(app[cd], c.w[cd].frames)
	r.ServerWrites.TLS = t.walk[cd.Other()].report(app[cd.Other()], c.w[cd.Other()].frames)
	if !tr.Decrypted {
		// Nothing of CQL is known: the TCP figures are the segments'.
		for _, p := range []struct {
			w *Writes
			d capture.Dir
		}{{&r.ClientWrites, cd}, {&r.ServerWrites, cd.Other()}} {
			p.w.Segments, p.w.Bytes = t.walk[p.d].segs, t.walk[p.d].tcp
		}
	}
}

// The keyless unbuffered-writes evidence: a client that sends small
// records, each alone in its segment, back to back with no answer between
// them, made two writes of what could have been one (two requests in
// flight together). Records are writes for most TLS stacks.
const (
	minTLSSplits     = 30
	minTLSSplitShare = 0.3
)

// tlsUnbuffered is the client-unbuffered-writes finding from the records of
// a connection that could not be decrypted.
func (c *conn) tlsUnbuffered(cr *ConnReport) (Diagnosis, bool) {
	tw := cr.ClientWrites.TLS
	if tw == nil || cr.TLS == nil || cr.TLS.Decrypted || tw.BackToBackSingle < minTLSSplits ||
		float64(tw.BackToBackSingle) < minTLSSplitShare*float64(tw.Records) {
		return Diagnosis{}, false
	}
	why := "no key log was given"
	if cr.TLS.Status != "no key log" {
		why = "it could not be decrypted: " + cr.TLS.Status
	}
	msg := fmt.Sprintf("client %s sends most requests in their own write, judging by its TLS records (the connection is encrypted and %s, so the CQL inside is not seen): "+
		"%d of its %d records (%.0f%%) were small (at most %d bytes, about one request), alone in their TCP segment, and left within %s of its previous one with no answer from the server in between, "+
		"so two requests were in flight together yet went out in two writes (most TLS stacks make one record of each write). "+
		"Give cqlsniff the client's key log (--keylog) to see the requests themselves. ",
		cr.Client, why, tw.BackToBackSingle, tw.Records, 100*float64(tw.BackToBackSingle)/float64(tw.Records), smallRecord, fmtDur(c.a.cfg.BackToBack))
	return Diagnosis{Code: CodeClientUnbuffered, Client: cr.Client, Server: cr.Server, Mechanism: "tls-records",
		Message: msg + bufferingAdvice(cr.Driver, cr.DriverVersion, cr.Encrypted)}, true
}
