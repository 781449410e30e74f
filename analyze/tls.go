package analyze

import (
	"fmt"
	"time"

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
	app     bool // the current record is application data
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
func (r *recWalk) walk(b []byte) (starts, single int, appData bool) {
	r.segs++
	r.tcp += uint64(len(b))
	if r.lost {
		return 0, 0, false
	}
	atStart := r.left == 0 && r.nhdr == 0
	for len(b) > 0 {
		if r.left > 0 {
			n := min(r.left, len(b))
			r.left -= n
			b = b[n:]
			appData = appData || r.app
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
			return starts, 0, appData
		}
		l := int(r.hdr[3])<<8 | int(r.hdr[4])
		if l > 1<<14+2048 {
			r.lost = true
			return starts, 0, appData
		}
		r.app = r.hdr[0] == 23
		appData = appData || r.app
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
	return starts, single, appData
}

// tlsState is a TLS connection's decryption and record counting.
type tlsState struct {
	dec      *tlsdecrypt.Conn // nil without a key log
	walk     [2]recWalk       // by flow direction
	lastDir  capture.Dir      // the direction of the latest data segment
	haveLast bool
	late     uint64 // records decrypted only once their keys arrived
	gaveUp   string // the status with which the decrypter was let go (offline, no keys)
}

// tlsData handles one data segment of a TLS connection.
func (c *conn) tlsData(d capture.Dir, b []byte, ts int64) {
	t := c.tlsSt
	a := c.a
	if t == nil {
		t = &tlsState{}
		c.tlsSt = t
		if kl := a.cfg.KeyLog; kl != nil {
			t.dec = tlsdecrypt.NewConn(kl, c.onPlain)
		}
	}
	rw := &t.walk[d]
	starts, single, appData := rw.walk(b)
	if single > 0 && single <= smallRecord && rw.haveLast && time.Duration(ts-rw.lastTS) <= a.cfg.BackToBack &&
		t.haveLast && t.lastDir == d {
		rw.b2b++
		rw.b2bBytes += uint64(single)
	}
	rw.lastTS, rw.haveLast = ts, true
	t.lastDir, t.haveLast = d, true

	if t.dec == nil {
		return
	}
	if a.cfg.KeyLogRefresh && ts-a.keyLogAt >= keyLogRefreshEvery {
		if st := t.dec.Status(); st == tlsdecrypt.StatusNoKeys || st == tlsdecrypt.StatusHandshake {
			// Live: the client may have written this connection's secrets
			// since the last read.
			a.keyLogAt = ts
			_ = a.cfg.KeyLog.Refresh()
		}
	}
	a.plain = a.plain[:0]
	a.plainDir, a.plainTS = d, ts
	t.dec.Feed(c.tlsDir(d), b, ts)
	switch {
	case len(a.plain) > 0:
		c.cqlData(d, a.plain, ts)
	case appData && starts == 0 && c.w[d].frames > 0:
		// Only the middle of a record: a segment that continues a frame.
		w := &c.w[d]
		w.segments++
		w.buckets[0]++
	}
	if !a.cfg.KeyLogRefresh && t.dec.Status() == tlsdecrypt.StatusNoKeys {
		// Offline the key log will not grow: let the records waiting for
		// keys go (up to 64 KiB a direction) and keep only the verdict.
		t.gaveUp = t.dec.Stats().Reason()
		t.dec = nil
	}
}

// tlsDir is a flow direction as the decrypter names it.
func (c *conn) tlsDir(d capture.Dir) tlsdecrypt.Dir {
	if c.rolesKnown && d != c.cdir {
		return tlsdecrypt.FromServer
	}
	return tlsdecrypt.FromClient
}

// flowDir is the flow direction of a decrypter's direction.
func (c *conn) flowDir(d tlsdecrypt.Dir) capture.Dir {
	cd := c.cdir
	if !c.rolesKnown {
		cd = 0
	}
	if d == tlsdecrypt.FromServer {
		return cd.Other()
	}
	return cd
}

// onPlain receives a decrypted application_data record (tlsdecrypt's emit).
// The records that complete in the segment being fed make up that
// segment's payload. A record decrypted late — its keys arrived after it,
// or it belongs to the other direction, drained when the keys came — goes
// to the CQL stream of its own direction at its own time, outside the
// batching evidence (it says nothing of how its segment was written).
func (c *conn) onPlain(info tlsdecrypt.RecordInfo, plain []byte) {
	t, a := c.tlsSt, c.a
	d := c.flowDir(info.Dir)
	if info.Late || d != a.plainDir {
		t.late++
		c.cqlFrames(d, plain, info.EndTS)
		return
	}
	a.plain = append(a.plain, plain...)
}

// keyLogRefreshEvery is how often (packet time) a live capture re-reads the
// key log while a connection waits for its keys.
const keyLogRefreshEvery = int64(20e6)

// tlsGap: bytes were lost. Record boundaries are gone for good in that
// direction (and with them the decryption's sequence numbers).
func (c *conn) tlsGap(d capture.Dir, lost int) {
	t := c.tlsSt
	if t == nil {
		return
	}
	t.walk[d].lost = true
	if t.dec != nil {
		t.dec.Gap(c.tlsDir(d), lost)
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

// TLSRecordStats is the record layer of one direction: most TLS stacks make one
// record of each application write.
type TLSRecordStats struct {
	Records           uint64            `json:"records"`     // all records: handshake, alerts, application data
	AppRecords        uint64            `json:"app_records"` // application_data records decrypted (with a key log)
	RecordsPerSegment float64           `json:"records_per_segment"`
	BytesPerRecord    float64           `json:"bytes_per_record"` // on the wire, header and AEAD overhead included
	WireBytes         uint64            `json:"wire_bytes"`       // TCP payload bytes: what the kernel's send and receive counts cover
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
func (r *recWalk) report(appRecords, frames uint64) *TLSRecordStats {
	w := &TLSRecordStats{Records: r.records, AppRecords: appRecords, WireBytes: r.tcp, Distribution: distribution(&r.buckets), BackToBackSingle: r.b2b, RecordSyncLost: r.lost}
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
	if t.gaveUp != "" {
		tr.Status = t.gaveUp
	}
	var app [2]uint64 // by flow direction
	if t.dec != nil {
		st := t.dec.Stats()
		for d := range app {
			app[d] = st.Dirs[c.tlsDir(capture.Dir(d))].AppRecords
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
	r.ClientSegments.TLS = t.walk[cd].report(app[cd], c.w[cd].frames)
	r.ServerSegments.TLS = t.walk[cd.Other()].report(app[cd.Other()], c.w[cd.Other()].frames)
	if !tr.Decrypted {
		// Nothing of CQL is known: the TCP figures are the segments'.
		for _, p := range []struct {
			w *SegmentStats
			d capture.Dir
		}{{&r.ClientSegments, cd}, {&r.ServerSegments, cd.Other()}} {
			p.w.Segments, p.w.Bytes = t.walk[p.d].segs, t.walk[p.d].tcp
		}
	}
}

// The keyless unbuffered-writes evidence: a client that sends small
// records, each alone in its segment, back to back with no answer between
// them, made two writes of what could have been one (two requests in
// flight together). Records are writes for most TLS stacks.
const (
	minTLSBackToBack      = 30
	minTLSBackToBackShare = 0.3
)

// tlsUnbuffered is the client-unbuffered-writes finding from the records of
// a connection that could not be decrypted.
func (c *conn) tlsUnbuffered(cr *ConnReport) (Diagnosis, bool) {
	tw := cr.ClientSegments.TLS
	if tw == nil || cr.TLS == nil || cr.TLS.Decrypted || tw.BackToBackSingle < minTLSBackToBack ||
		float64(tw.BackToBackSingle) < minTLSBackToBackShare*float64(tw.Records) {
		return Diagnosis{}, false
	}
	why, hint := "no key log was given", " Give cqlsniff the client's key log (--keylog) to see the requests themselves."
	switch {
	case cr.TLS.Status == "handshake not captured":
		why, hint = "its handshake was not captured, so no key can open it", ""
	case cr.TLS.Status != "no key log":
		why, hint = "it could not be decrypted ("+cr.TLS.Status+")", ""
	}
	msg := fmt.Sprintf("client %s sends its requests in many small writes, judging by its TLS records (the connection is encrypted and %s, so the CQL inside is not seen): "+
		"%d of its %d records (%.0f%%) were small (at most %d bytes: one request, or a few small ones), alone in their TCP segment, and left within %s of its previous one with no answer from the server in between, "+
		"so requests in flight together went out in separate writes (most TLS stacks make one record of each write).%s ",
		cr.Client, why, tw.BackToBackSingle, tw.Records, 100*float64(tw.BackToBackSingle)/float64(tw.Records), smallRecord, fmtDur(c.a.cfg.BackToBack), hint)
	return Diagnosis{Code: CodeClientUnbuffered, Client: cr.Client, Server: cr.Server, Mechanism: "tls-records",
		Message: msg + bufferingAdvice(cr.Driver, cr.DriverVersion, cr.Encrypted)}, true
}

// retryKeys re-reads a live key log and decrypts what connections waiting
// for their keys hold: a connection that fell quiet gets no packet to
// trigger it. Called when a report is built.
func (a *Analyzer) retryKeys() {
	if !a.cfg.KeyLogRefresh || a.cfg.KeyLog == nil {
		return
	}
	waiting := false
	for c := range a.live {
		if t := c.tlsSt; t != nil && t.dec != nil && t.dec.Status() == tlsdecrypt.StatusNoKeys {
			waiting = true
			break
		}
	}
	if !waiting {
		return
	}
	_ = a.cfg.KeyLog.Refresh()
	for c := range a.live {
		if t := c.tlsSt; t != nil && t.dec != nil && t.dec.Status() == tlsdecrypt.StatusNoKeys {
			a.plainDir = 2 // no segment is being fed: every record goes as a late one
			c.gen++
			t.dec.Retry()
		}
	}
}
