package analyze

import (
	"crypto/rand"
	"io"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// Config sets what the analyzer looks at and how much state it may keep.
type Config struct {
	// Ports are the server ports (9042, 9142, 19042, 19142 by default). On
	// other ports the direction bit of the first valid header tells which
	// side is the server.
	Ports []uint16
	// OnlyPorts ignores connections on other ports.
	OnlyPorts bool
	Stream    decode.StreamConfig
	// BackToBack is the longest pause between two writes of one side that
	// still counts as "sent back to back" (default 100µs).
	BackToBack time.Duration
	// AckClocked is the longest delay between an ACK and the data segment it
	// released for the segment to count as ack-clocked (default 30µs).
	AckClocked    time.Duration
	MaxStatements int // distinct statements kept; the rest are counted under "other"
	MaxPrepared   int // prepared ids remembered
	MaxPending    int // outstanding requests per connection
	MaxClosed     int // closed-connection summaries kept for the report
	// Log receives one JSON line per request/response pair when not nil.
	Log io.Writer
	// ShowValues puts bound values and the literal query text in the log
	// (each value capped at MaxValueBytes). HashValues puts a keyed hash of
	// each instead, so equal values can be matched without being revealed.
	// Neither ever applies to AUTH_RESPONSE tokens.
	ShowValues    bool
	HashValues    bool
	HashKey       []byte // HMAC key for HashValues; random per run when empty
	MaxValueBytes int    // default 64
	// KeyLog holds the TLS secrets (an NSS key log) with which TLS
	// connections are decrypted; nil leaves them encrypted (TCP and record
	// figures only). KeyLogRefresh re-reads it when a TLS connection
	// starts or waits for its keys (live capture: the file grows).
	KeyLog        *tlsdecrypt.KeyLog
	KeyLogRefresh bool
}

// DefaultPorts are the CQL ports of Cassandra and ScyllaDB (plain, TLS,
// shard-aware plain and TLS).
var DefaultPorts = []uint16{9042, 9142, 19042, 19142}

// DefaultConfig returns the defaults of the cqlsniff command.
func DefaultConfig() Config {
	return Config{
		Ports:         DefaultPorts,
		Stream:        decode.DefaultStreamConfig(),
		BackToBack:    100 * time.Microsecond,
		AckClocked:    30 * time.Microsecond,
		MaxStatements: 5000,
		MaxPrepared:   100000,
		MaxPending:    32768,
		MaxClosed:     5000,
	}
}

// Analyzer turns reassembled TCP flows into CQL exchanges and statistics.
// It implements capture.HandlerFactory. It is not safe for concurrent use.
type Analyzer struct {
	cfg Config

	live          map[*conn]struct{}
	closed        []*ConnReport // ring of the most recent closed connections
	closedNext    int
	closedDropped uint64 // closed connections no longer listed
	nextID        uint64

	stmts    map[string]*stmt
	stmtList []*stmt
	other    [256]*stmt
	prepared map[string]*stmt // prepared id → EXECUTE statement
	// reg is what connections teach about each other (prepared ids,
	// ScyllaDB nodes), shared by the analysis workers; regSeen is how many
	// of its prepared ids are copied into prepared.
	reg     *registry
	regSeen int
	known   map[string]prepared // the registry's ids, copied up to regSeen

	totals totals

	// Scratch state shared by all connections (single-threaded).
	req     decode.Request
	resp    decode.Response
	frame   decode.Frame
	key     []byte
	fp      []byte
	fpHid   bool // textStatement's fingerprint left out a literal or a comment
	fp2     []byte
	log     *exchangeLog
	hpool   []*hdrhistogram.Histogram
	ignored uint64 // flows that never looked like CQL

	closedStream decode.StreamStats // stream counters of closed connections
	closedSeg    segTotals          // frames and segments of closed connections

	plain    []byte      // TLS plaintext of the segment being fed (tls.go)
	plainDir capture.Dir // ... its direction
	plainTS  int64       // ... and time
	keyLogAt int64       // packet time of the last key log refresh

	// build is the part under way, if any (see partBuilder).
	build    *partBuilder
	buildSeq uint64
	// rep builds this analyzer's reports when it runs alone (a sharded
	// pipeline has one merger for all its workers).
	rep *merger
}

type totals struct {
	requests, responses, unanswered, errors, events, orphans, reused uint64
	frames                                                           uint64
}

type stmt struct {
	lwt    bool // a conditional (LWT) statement, as ScyllaDB marks them
	text   string
	op     decode.Opcode
	count  uint64
	errors uint64
	total  int64 // summed latency, ns
	max    int64 // the largest latency, ns
	hist   *hdrhistogram.Histogram
	bars   latBars
	// raw is the first QUERY text this statement was named from, if short
	// (see conn.queryStatement); nil if none.
	raw []byte
	// snap is a copy of hist for snapshots, made when count was snapCount.
	snap      *hdrhistogram.Histogram
	snapCount uint64
}

// New returns an analyzer.
func New(cfg Config) *Analyzer {
	d := DefaultConfig()
	if cfg.Ports == nil {
		cfg.Ports = d.Ports
	}
	if cfg.Stream.MaxPrefix == 0 {
		cfg.Stream = d.Stream
	}
	if cfg.BackToBack == 0 {
		cfg.BackToBack = d.BackToBack
	}
	if cfg.AckClocked == 0 {
		cfg.AckClocked = d.AckClocked
	}
	if cfg.MaxStatements == 0 {
		cfg.MaxStatements = d.MaxStatements
	}
	if cfg.MaxPrepared == 0 {
		cfg.MaxPrepared = d.MaxPrepared
	}
	if cfg.MaxPending == 0 {
		cfg.MaxPending = d.MaxPending
	}
	if cfg.MaxClosed == 0 {
		cfg.MaxClosed = d.MaxClosed
	}
	a := &Analyzer{
		cfg:      cfg,
		live:     make(map[*conn]struct{}),
		stmts:    make(map[string]*stmt),
		prepared: make(map[string]*stmt),
		reg:      newRegistry(cfg.MaxPrepared),
		key:      make([]byte, 0, 1024),
	}
	if cfg.MaxValueBytes == 0 {
		cfg.MaxValueBytes = 64
	}
	if cfg.HashValues && len(cfg.HashKey) == 0 {
		cfg.HashKey = make([]byte, 32)
		if _, err := rand.Read(cfg.HashKey); err != nil {
			panic("crypto/rand: " + err.Error()) // documented never to fail on Linux
		}
	}
	a.cfg = cfg
	a.rep = &merger{cfg: cfg, reg: a.reg}
	if cfg.Log != nil {
		a.log = newExchangeLog(cfg.Log)
		a.req.KeepValues = cfg.ShowValues || cfg.HashValues
	}
	return a
}

func (a *Analyzer) isServerPort(p uint16) bool {
	for _, q := range a.cfg.Ports {
		if q == p {
			return true
		}
	}
	return false
}

// NewFlow implements capture.HandlerFactory.
func (a *Analyzer) NewFlow(k capture.FlowKey, d capture.Dir, p *capture.Packet) capture.FlowHandler {
	sa, sb := a.isServerPort(k.A.Port), a.isServerPort(k.B.Port)
	if a.cfg.OnlyPorts && !sa && !sb {
		return nil
	}
	c := &conn{a: a, key: k, first: p.TS, last: p.TS, id: p.Num}
	if c.id == 0 {
		// A packet without a number (made by hand, not read from a
		// source): number the connections in order.
		a.nextID++
		c.id = a.nextID
	}
	switch {
	case sb && !sa:
		c.setRoles(0) // A is the client
	case sa && !sb:
		c.setRoles(1)
	default:
		c.guess = true
	}
	for dir := capture.Dir(0); dir < 2; dir++ {
		c.streams[dir].Init(a.cfg.Stream, c.rolesKnown && dir != c.cdir, c.rolesKnown)
	}
	a.live[c] = struct{}{}
	return c
}

// newHist returns a latency histogram in microseconds, 1µs to 100s, two
// significant digits (1% precision; about 20 KiB each).
func (a *Analyzer) newHist() *hdrhistogram.Histogram {
	if n := len(a.hpool); n > 0 {
		h := a.hpool[n-1]
		a.hpool = a.hpool[:n-1]
		h.Reset()
		return h
	}
	return hdrhistogram.New(1, 100_000_000, 2)
}

func (a *Analyzer) freeHist(h *hdrhistogram.Histogram) {
	if h != nil && len(a.hpool) < 64 {
		a.hpool = append(a.hpool, h)
	}
}

// statement returns the statement named by op and the text in a.key
// (already fingerprinted). Lookups of known statements allocate nothing.
func (a *Analyzer) statement(op decode.Opcode, text []byte) *stmt {
	a.key = append(a.key[:0], byte(op))
	a.key = append(a.key, text...)
	if s := a.stmts[string(a.key)]; s != nil {
		return s
	}
	if len(a.stmtList) >= a.cfg.MaxStatements {
		s := a.other[op]
		if s == nil {
			s = &stmt{text: otherName(op), op: op, hist: a.newHist()}
			a.other[op] = s
			a.stmtList = append(a.stmtList, s)
		}
		return s
	}
	s := &stmt{text: string(text), op: op, hist: a.newHist()}
	a.stmts[string(a.key)] = s
	a.stmtList = append(a.stmtList, s)
	return s
}

// preparedStmt returns the EXECUTE statement a prepared id names, nil if
// the id is unknown. The local map answers almost always; on a miss the
// ids other workers learned since the last look are copied in first.
func (a *Analyzer) preparedStmt(id []byte) *stmt {
	if s := a.prepared[string(id)]; s != nil {
		return s
	}
	a.syncKnown()
	e, ok := a.known[string(id)]
	if !ok || len(a.prepared) >= a.cfg.MaxPrepared {
		return nil
	}
	// Learned by another worker: the statement is made here only now that
	// this worker runs it (a histogram each).
	s := a.statement(decode.OpExecute, []byte(e.text))
	if s != a.other[decode.OpExecute] {
		s.lwt = s.lwt || e.lwt
	}
	a.prepared[string(id)] = s
	return s
}

// syncKnown copies the ids the registry learned since the last look.
func (a *Analyzer) syncKnown() {
	if n := int(a.reg.n.Load()); n != a.regSeen {
		if a.known == nil {
			a.known = make(map[string]prepared)
		}
		for _, e := range a.reg.since(a.regSeen) {
			a.known[e.id] = e.prepared
		}
		a.regSeen = n
	}
}

// preparedText returns the text a prepared id stands for, if known,
// without making its statement here (the id of a BATCH child, say).
func (a *Analyzer) preparedText(id []byte) (string, bool) {
	if s := a.prepared[string(id)]; s != nil {
		return s.text, s != a.other[decode.OpExecute]
	}
	a.syncKnown()
	e, ok := a.known[string(id)]
	return e.text, ok
}
