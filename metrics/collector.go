package metrics

import (
	"math/bits"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// Config bounds the label values of the exposition. Zero fields take the
// defaults.
type Config struct {
	MaxStatements int // top-N statements by total time get their own label value; the rest "other" (default 50)
	MaxClients    int // distinct client addresses (IP only, never the ephemeral port) before "other" (default 200)
}

// Defaults of Config.
const (
	DefaultMaxStatements = 50
	DefaultMaxClients    = 200
)

// Bounds that Config does not expose. Server addresses and driver names
// are few in practice (a node's own ports on a server host, the cluster's
// nodes on a client host), but nothing on the wire limits them: a driver
// name is whatever the client sent in its STARTUP.
const (
	maxServers      = 256 // distinct server addresses before "other"
	maxDrivers      = 32  // distinct driver (name, version) pairs before "other"
	groupsPerClient = 4   // (client, server, driver) groups: at most groupsPerClient × MaxClients, then all "other"

	maxStatementLabel = 256 // bytes of statement text in a label value
	maxDriverLabel    = 96  // bytes of a driver name or version
	maxCodeLabel      = 64  // bytes of an ERROR code name

	// ERROR codes: decode names 22 codes, and reports add "unreadable"
	// (a body that could not be read); codes decode has no name for
	// ("ERROR_0x…", a server newer than decode or a corrupt frame) may
	// take maxUnnamedErrorCodes of the maxErrorCodes values, so that they
	// cannot crowd the named ones out. The rest share "other".
	maxErrorCodes        = 32
	maxUnnamedErrorCodes = 8

	// reclaimAfter is how long a client, server or driver label value must
	// have been idle (no change in its counters, no open or recent
	// connection) before a newcomer may take its place under a full cap.
	reclaimAfter = 15 * time.Minute
	// linger is how long a closed connection still counts for the gauges
	// (in-flight, diagnoses) after its last activity, so that a client
	// that reconnects does not blink out of a dashboard.
	linger = 5 * time.Minute
	// swapFactor is the hysteresis of the statement ranking: a statement
	// without a label of its own takes the place of the labelled one with
	// the least total time only once its own total time is this many
	// times larger, so that two statements of similar weight do not swap
	// labels at every scrape.
	swapFactor = 1.5
)

// Latency histograms. Reports give one bar per power of two of
// microseconds; bar k counts latencies up to 2^k µs.
const (
	nLat      = 32 // bars kept, 2^0 … 2^31 µs (36 minutes; longer ones join the last)
	latMinExp = 4  // first classic bucket: le = 2^4 µs = 16 µs
	latMaxExp = 25 // last finite classic bucket: le = 2^25 µs ≈ 33.6 s
	// nativeShift maps bar k to the native schema-0 bucket k-nativeShift,
	// (2^(k-21), 2^(k-20)] s. A power of two of microseconds is not one
	// of seconds (10^6 ≈ 2^19.93): the bar (2^(k-1), 2^k] µs is
	// (0.524, 1.049] × 2^(k-20) s, so 90.7% of it lies in that bucket and
	// the top of it, latencies up to 4.6% above the bucket's bound, is
	// counted there too. Native quantiles read at most 4.6% low, well
	// within a schema-0 bucket's factor of two.
	nativeShift = 20
)

// Collector turns analyze reports into Prometheus metrics. It implements
// prometheus.Collector; Handler serves it.
//
// Each scrape asks the pipeline for a fresh snapshot and uses the newest
// one published, which may be one refresh old: the pipeline answers asks
// between two packets, so capture never waits for a scrape. The metrics
// built from one report are kept until the next report, so concurrent or
// repeated scrapes of the same report cost nothing.
type Collector struct {
	cfg   Config
	snaps interface {
		Request()
		Latest() *analyze.Report
	}
	now func() time.Time
	d   descs

	mu    sync.Mutex
	last  *analyze.Report     // the report out was built from
	out   []prometheus.Metric // immutable once built
	build uint64

	// Identity of the pipeline, to notice a restart (counters from zero).
	source  string
	packets uint64

	connGroups // connections.go
	stmtSeries // statements.go
}

// NewCollector returns a collector reading the reports of snapshots
// (normally the pipeline's *analyze.Snapshots).
func NewCollector(cfg Config, snapshots interface {
	Request()
	Latest() *analyze.Report
}) *Collector {
	if cfg.MaxStatements <= 0 {
		cfg.MaxStatements = DefaultMaxStatements
	}
	if cfg.MaxClients <= 0 {
		cfg.MaxClients = DefaultMaxClients
	}
	c := &Collector{
		cfg:   cfg,
		snaps: snapshots,
		now:   time.Now,
		d:     newDescs(),
		connGroups: connGroups{
			clients:   newLabelSet(cfg.MaxClients, reclaimAfter),
			servers:   newLabelSet(maxServers, reclaimAfter),
			drivers:   newLabelSet(maxDrivers, reclaimAfter),
			groups:    make(map[groupKey]*group),
			maxGroups: groupsPerClient * cfg.MaxClients,
		},
		stmtSeries: stmtSeries{
			stmts:      make(map[stmtKey]*stmtState),
			stmtLabels: make(map[string]bool),
			others:     make(map[string]*series),
		},
	}
	c.unknownDriver = c.drivers.add("", "unknown")
	c.codes.index = make(map[string]int)
	return c
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range c.d.all() {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	c.snaps.Request()
	for _, m := range c.metrics(c.snaps.Latest()) {
		ch <- m
	}
}

// metrics returns the metrics of r, building them if r is new.
func (c *Collector) metrics(r *analyze.Report) []prometheus.Metric {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r == nil || r == c.last {
		return c.out
	}
	if c.last != nil {
		if order, same := r.Compare(c.last); same && order < 0 {
			// An older snapshot than the one folded last: a scrape that
			// took it and then waited for the lock while a later one
			// folded a newer report. Folding it would take every
			// connection back and count its requests again.
			return c.out
		}
	}
	c.update(r, c.now())
	c.last = r
	c.out = c.emit(r, make([]prometheus.Metric, 0, len(c.out))) // the old one may still be in use
	return c.out
}

// update folds report r into the accumulators. now is the wall clock, for
// the idle and linger rules only: figures come from the report.
func (c *Collector) update(r *analyze.Report, now time.Time) {
	c.build++
	_, same := r.Compare(c.last)
	_, stamped := r.Compare(r)
	if c.last != nil && !same && (stamped || r.Source != c.source || r.Packets < c.packets) {
		// Another pipeline: connection ids and statement counts start
		// again. The series keep their values and go on from there.
		// (Reports that do not say which pipeline made them, decoded
		// from JSON say, are told apart by their source and packets.)
		c.conns = nil
		for _, st := range c.stmts {
			st.last = stmtCounters{}
		}
	}
	c.source, c.packets = r.Source, r.Packets
	c.updateConns(r.Connections, now)
	c.updateStatements(r, now)
}

type latHist struct {
	counts [nLat]uint64
	sumUS  float64
}

func fillBars(dst *[nLat]uint64, bars []analyze.Bar) {
	for _, b := range bars {
		if b.Count > 0 {
			dst[barIndex(b.UpToUS)] += uint64(b.Count)
		}
	}
}

// barIndex is k for the bar up to 2^k µs (rounding up a bound that is not
// a power of two).
func barIndex(upToUS int64) int {
	if upToUS <= 1 {
		return 0
	}
	return min(bits.Len64(uint64(upToUS-1)), nLat-1)
}
