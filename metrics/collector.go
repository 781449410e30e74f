package metrics

import (
	"cmp"
	"math/bits"
	"slices"
	"strconv"
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

	conns, spare []*connState // sorted by connection id
	cur, delta   connCounters

	clients, servers, drivers *labelSet
	unknownDriver             *slot
	codes                     codeSet
	groups                    map[groupKey]*group
	maxGroups                 int

	stmts      map[stmtKey]*stmtState
	labeled    []*stmtState
	stmtLabels map[string]bool // opcode + "\x00" + label in use
	others     map[string]*series
	order      []stmtRef
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
		cfg:        cfg,
		snaps:      snapshots,
		now:        time.Now,
		d:          newDescs(),
		clients:    newLabelSet(cfg.MaxClients, reclaimAfter),
		servers:    newLabelSet(maxServers, reclaimAfter),
		drivers:    newLabelSet(maxDrivers, reclaimAfter),
		groups:     make(map[groupKey]*group),
		maxGroups:  groupsPerClient * cfg.MaxClients,
		stmts:      make(map[stmtKey]*stmtState),
		stmtLabels: make(map[string]bool),
		others:     make(map[string]*series),
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
	c.update(r, c.now())
	c.last = r
	c.out = c.emit(r, make([]prometheus.Metric, 0, len(c.out))) // the old one may still be in use
	return c.out
}

// connCounters are the cumulative figures of one connection that feed
// counters.
type connCounters struct {
	requests, responses uint64
	errors              []uint64 // by ERROR code (index in Collector.codes); nil while there are none
	lat                 [nLat]uint64
	latSumUS            float64 // mean × count: rounded, so kept from going down
	writes              [2]writeHist
	sys                 [2]sysCounts // the kernel's counts of the client's and the server's socket calls
	sysSeen             [2]bool      // sys[s] measured (in this report, for cur; ever, for a connection's last)
	// Time attribution, in µs: the connection's span, its time with nothing
	// outstanding, and outstanding requests × time.
	spanUS, idleUS, outstandingUS uint64
}

// sysCounts are one end's socket calls that moved data, and their bytes.
type sysCounts struct {
	sends, recvs, sendBytes, recvBytes uint64
}

// Values of the side label of the socket call counters (index in
// connCounters.sys).
var sides = [2]string{"client", "server"}

type writeHist struct {
	buckets [6]uint64 // segments carrying 0, 1, 2-3, 4-7, 8-15, 16+ frame starts
	frames  uint64
}

var distKeys = [6]string{"0", "1", "2-3", "4-7", "8-15", "16+"}

func (k *connCounters) fill(cr *analyze.ConnReport, codes *codeSet) {
	k.requests, k.responses = cr.Requests, cr.Responses
	k.errors = k.errors[:0]
	if cr.Errors > 0 || len(cr.ErrorsByCode) > 0 {
		codes.learn(cr.ErrorsByCode)
		var sum uint64
		for name, n := range cr.ErrorsByCode {
			i := codes.get(name)
			k.errors = grow(k.errors, i+1)
			k.errors[i] += n
			sum += n
		}
		if cr.Errors > sum {
			// Not broken down (a report from before errors_by_code).
			i := codes.get(unknownCode)
			k.errors = grow(k.errors, i+1)
			k.errors[i] += cr.Errors - sum
		}
	}
	k.lat = [nLat]uint64{}
	fillBars(&k.lat, cr.Latency.Histogram)
	k.latSumUS = cr.Latency.Mean * float64(cr.Latency.Count)
	k.spanUS, k.idleUS, k.outstandingUS = 0, 0, 0
	if t := cr.Timing; t != nil {
		k.spanUS, k.idleUS, k.outstandingUS = uint64(t.SpanS*1e6), uint64(t.IdleS*1e6), uint64(t.OutstandingRequestS*1e6)
	}
	fillWrites(&k.writes[0], &cr.ClientWrites)
	fillWrites(&k.writes[1], &cr.ServerWrites)
	for s, sr := range [2]*analyze.SyscallReport{cr.ClientSyscalls, cr.ServerSyscalls} {
		k.sysSeen[s] = sr != nil
		k.sys[s] = sysCounts{}
		if sr != nil {
			k.sys[s] = sysCounts{sr.Sends, sr.Recvs, sr.SendBytes, sr.RecvBytes}
		}
	}
}

// grow returns s extended with zeros to at least n elements.
func grow(s []uint64, n int) []uint64 {
	for len(s) < n {
		s = append(s, 0)
	}
	return s
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

func fillWrites(w *writeHist, src *analyze.Writes) {
	for i, k := range distKeys {
		w.buckets[i] = src.Distribution[k]
	}
	w.frames = src.Frames
}

// advance puts into d what grew from k to cur, makes k cur and reports
// whether anything grew. A figure that went down (it cannot, for one
// connection, except the kernel's counts of a socket that was closed and
// whose address pair was used again) adds nothing. A side whose kernel
// counts are missing from cur (no longer in the kernel's table) keeps its
// last figures, so that they are not counted twice if they come back.
func (k *connCounters) advance(cur, d *connCounters) bool {
	grew := false
	step := func(last *uint64, now uint64, out *uint64) {
		*out = 0
		if now > *last {
			*out = now - *last
			grew = true
		}
		*last = now
	}
	step(&k.requests, cur.requests, &d.requests)
	step(&k.responses, cur.responses, &d.responses)
	step(&k.spanUS, cur.spanUS, &d.spanUS)
	step(&k.idleUS, cur.idleUS, &d.idleUS)
	step(&k.outstandingUS, cur.outstandingUS, &d.outstandingUS)
	k.errors = grow(k.errors, len(cur.errors))
	d.errors = grow(d.errors[:0], len(cur.errors))
	clear(d.errors)
	for i, n := range cur.errors {
		step(&k.errors[i], n, &d.errors[i])
	}
	for s := range k.sys {
		d.sysSeen[s] = cur.sysSeen[s]
		if !cur.sysSeen[s] {
			d.sys[s] = sysCounts{}
			continue
		}
		if !k.sysSeen[s] {
			k.sysSeen[s] = true
			grew = true // the series appear, even at zero
		}
		l, c, o := &k.sys[s], &cur.sys[s], &d.sys[s]
		step(&l.sends, c.sends, &o.sends)
		step(&l.recvs, c.recvs, &o.recvs)
		step(&l.sendBytes, c.sendBytes, &o.sendBytes)
		step(&l.recvBytes, c.recvBytes, &o.recvBytes)
	}
	for i := range k.lat {
		step(&k.lat[i], cur.lat[i], &d.lat[i])
	}
	for s := range k.writes {
		for i := range k.writes[s].buckets {
			step(&k.writes[s].buckets[i], cur.writes[s].buckets[i], &d.writes[s].buckets[i])
		}
		step(&k.writes[s].frames, cur.writes[s].frames, &d.writes[s].frames)
	}
	d.latSumUS = 0
	if cur.latSumUS > k.latSumUS {
		d.latSumUS = cur.latSumUS - k.latSumUS
		k.latSumUS = cur.latSumUS
		grew = true
	}
	return grew
}

// connState is what the Collector remembers of a connection in the
// latest report: enough to turn its cumulative figures into increments of
// its group's series.
type connState struct {
	id            uint64
	client, start string // with id, the connection's identity
	ip            string
	prev          *analyze.ConnReport // this connection's report in the previous build
	last          *connCounters       // nil once retired
	lastChange    time.Time
	g             *group // cached; re-resolved when its group is gone
}

func (st *connState) retired() bool { return st.last == nil }

type groupKey struct{ client, server, driver *slot }

// group is the series of one (client IP, server, driver).
type group struct {
	key      groupKey
	labels   []string // client, server, driver, driver_version
	created  time.Time
	dead     bool // a label value was reclaimed: the group is gone
	overflow bool // some label is "other": its connections look for a label of their own at each build

	requests, responses uint64
	errors              []uint64 // by ERROR code (index in Collector.codes)
	lat                 latHist
	writes              [2]writeHist
	sys                 [2]sysCounts
	sysSeen             [2]bool // some connection's side was measured: its series exist
	// Time attribution summed over the group's connections, µs.
	spanUS, idleUS, outstandingUS uint64

	// Gauges, valid when gaugeBuild is the current build.
	gaugeBuild   uint64
	open         int
	inflWeighted float64 // Σ mean in-flight × requests
	inflRequests uint64
	inflMax      int
	diagnoses    []string
}

type latHist struct {
	counts [nLat]uint64
	sumUS  float64
}

func (g *group) touch(now time.Time) {
	g.key.client.lastActive = now
	g.key.server.lastActive = now
	g.key.driver.lastActive = now
}

func (g *group) add(d *connCounters) {
	g.requests += d.requests
	g.responses += d.responses
	g.spanUS += d.spanUS
	g.idleUS += d.idleUS
	g.outstandingUS += d.outstandingUS
	if len(d.errors) > 0 {
		g.errors = grow(g.errors, len(d.errors))
		for i, n := range d.errors {
			g.errors[i] += n
		}
	}
	for s := range g.sys {
		if d.sysSeen[s] {
			g.sysSeen[s] = true
			a, b := &g.sys[s], &d.sys[s]
			a.sends += b.sends
			a.recvs += b.recvs
			a.sendBytes += b.sendBytes
			a.recvBytes += b.recvBytes
		}
	}
	for i, n := range d.lat {
		g.lat.counts[i] += n
	}
	g.lat.sumUS += d.latSumUS
	for s := range g.writes {
		for i, n := range d.writes[s].buckets {
			g.writes[s].buckets[i] += n
		}
		g.writes[s].frames += d.writes[s].frames
	}
}

func (g *group) gauge(cr *analyze.ConnReport, live bool, build uint64) {
	if g.gaugeBuild != build {
		g.gaugeBuild = build
		g.open, g.inflWeighted, g.inflRequests, g.inflMax = 0, 0, 0, 0
		g.diagnoses = g.diagnoses[:0]
	}
	if live {
		g.open++
	}
	g.inflWeighted += cr.InFlight.Mean * float64(cr.Requests)
	g.inflRequests += cr.Requests
	g.inflMax = max(g.inflMax, cr.InFlight.Max)
	for _, code := range cr.DiagnosisCodes {
		if !slices.Contains(g.diagnoses, code) {
			g.diagnoses = append(g.diagnoses, code)
		}
	}
}

type stmtKey struct{ opcode, text string }

// stmtState follows one statement of the report.
type stmtState struct {
	key         stmtKey
	last        stmtCounters
	series      *series // its own series while labelled
	pinnedOther bool    // the analyzer's own "(other … statements)"
	totalMS     float64 // ranking key of the current build
	build       uint64
}

type stmtCounters struct {
	count, errors uint64
	lat           [nLat]uint64
	totalMS       float64
}

type stmtRef struct {
	st *stmtState
	s  *analyze.StmtReport
}

// series is the counters of one (opcode, statement) label pair.
type series struct {
	opcode, label string
	created       time.Time
	count, errors uint64
	lat           latHist
}

// update folds report r into the accumulators. now is the wall clock, for
// the idle and linger rules only: figures come from the report.
func (c *Collector) update(r *analyze.Report, now time.Time) {
	c.build++
	if r.Source != c.source || r.Packets < c.packets {
		// Another pipeline: connection ids and statement counts start
		// again. The series keep their values and go on from there.
		c.conns = nil
		for _, st := range c.stmts {
			st.last = stmtCounters{}
		}
	}
	c.source, c.packets = r.Source, r.Packets
	c.updateConns(r.Connections, now)
	c.updateStatements(r, now)
}

func (c *Collector) updateConns(conns []*analyze.ConnReport, now time.Time) {
	byID := func(a, b *analyze.ConnReport) int { return cmp.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(conns, byID) {
		conns = slices.SortedStableFunc(slices.Values(conns), byID)
	}
	old, next := c.conns, c.spare[:0]
	j := 0
	for _, cr := range conns {
		// Connections that left the report were counted up to their
		// last report: their increments stay in their groups.
		for j < len(old) && old[j].id < cr.ID {
			j++
		}
		var st *connState
		if j < len(old) && old[j].id == cr.ID {
			st = old[j]
			j++
			if st.client != cr.Client || st.start != cr.Start {
				st = nil
			}
		}
		if st == nil {
			st = &connState{id: cr.ID, client: cr.Client, start: cr.Start, ip: clientIP(cr.Client), last: &connCounters{}}
		}
		next = append(next, st)
		c.updateConn(st, cr, now)
	}
	clear(old)
	c.conns, c.spare = next, old[:0]
}

func (c *Collector) updateConn(st *connState, cr *analyze.ConnReport, now time.Time) {
	// A closed connection's report is built once and then shared by
	// every later report; a live one's is rebuilt each time. So the same
	// pointer twice means closed, whatever Closed says.
	frozen := cr == st.prev
	st.prev = cr
	var g *group
	if !st.retired() {
		c.cur.fill(cr, &c.codes)
		if st.last.advance(&c.cur, &c.delta) || st.lastChange.IsZero() {
			st.lastChange = now
			g = c.group(st, cr, now)
			g.add(&c.delta)
		}
		if cr.Closed != "open" || frozen {
			st.last = nil // final figures counted
		}
	}
	live := !st.retired()
	if live || now.Sub(st.lastChange) < linger {
		if g == nil {
			g = c.group(st, cr, now)
		}
		g.gauge(cr, live, c.build)
	}
}

// group returns the group of a connection, creating its label values and
// group on first use.
func (c *Collector) group(st *connState, cr *analyze.ConnReport, now time.Time) *group {
	if g := st.g; g != nil && !g.dead && !g.overflow {
		g.touch(now)
		return g
	}
	cl, ev := c.clients.get(st.ip, now, c.build, addressLabel)
	c.evict(ev)
	sv, ev := c.servers.get(cr.Server, now, c.build, addressLabel)
	c.evict(ev)
	dr := c.unknownDriver
	if cr.Driver != "" || cr.DriverVersion != "" {
		dr, ev = c.drivers.get(cr.Driver+"\x00"+cr.DriverVersion, now, c.build, driverLabels)
		c.evict(ev)
	}
	key := groupKey{cl, sv, dr}
	g := c.groups[key]
	if g == nil && len(c.groups) >= c.maxGroups {
		key = groupKey{c.clients.other, c.servers.other, c.drivers.other}
		g = c.groups[key]
	}
	if g == nil {
		g = &group{key: key, created: now, labels: []string{key.client.label, key.server.label, key.driver.label, key.driver.label2}}
		g.overflow = cl == c.clients.other || sv == c.servers.other || dr == c.drivers.other || key.client == c.clients.other
		c.groups[key] = g
	}
	st.g = g
	g.touch(now)
	return g
}

// addressLabel is the label value of a client IP or a server address.
func addressLabel(raw string) (string, string) { return labelValue(raw, maxStatementLabel), "" }

func driverLabels(raw string) (string, string) {
	name, version, _ := cutNUL(raw)
	if name == "" {
		name = "unknown"
	}
	return labelValue(name, maxDriverLabel), labelValue(version, maxDriverLabel)
}

func cutNUL(s string) (string, string, bool) {
	for i := 0; i < len(s); i++ {
		if s[i] == 0 {
			return s[:i], s[i+1:], true
		}
	}
	return s, "", false
}

// evict drops the groups of a reclaimed label value.
func (c *Collector) evict(sl *slot) {
	if sl == nil {
		return
	}
	for k, g := range c.groups {
		if k.client == sl || k.server == sl || k.driver == sl {
			g.dead = true
			delete(c.groups, k)
		}
	}
}

func (c *Collector) updateStatements(r *analyze.Report, now time.Time) {
	order := c.order[:0]
	for i := range r.Statements {
		s := &r.Statements[i]
		k := stmtKey{s.Opcode, s.Statement}
		st := c.stmts[k]
		if st == nil {
			st = &stmtState{key: k, pinnedOther: s.Statement == "(other "+s.Opcode+" statements)"}
			c.stmts[k] = st
		}
		st.build = c.build
		st.totalMS = s.TotalMS
		order = append(order, stmtRef{st, s})
	}
	byTotal := func(a, b stmtRef) int { return cmp.Compare(b.st.totalMS, a.st.totalMS) }
	if !slices.IsSortedFunc(order, byTotal) {
		slices.SortStableFunc(order, byTotal)
	}
	c.rank(order, now)

	var cur stmtCounters
	for _, ref := range order {
		st, s := ref.st, ref.s
		cur.count, cur.errors, cur.totalMS = s.Count, s.Errors, s.TotalMS
		cur.lat = [nLat]uint64{}
		fillBars(&cur.lat, s.Latency.Histogram)
		to := st.series
		if to == nil {
			to = c.other(s.Opcode, now)
		}
		to.advance(&st.last, &cur)
	}
	clear(order)
	c.order = order[:0]

	if len(c.stmts) > len(r.Statements) {
		// Statements that left the report (a new pipeline): forget them.
		for k, st := range c.stmts {
			if st.build != c.build {
				if st.series != nil {
					c.unlabel(st)
				}
				delete(c.stmts, k)
			}
		}
	}
}

// rank gives the statements with the most total time their own label
// values, with hysteresis (swapFactor).
func (c *Collector) rank(order []stmtRef, now time.Time) {
	for _, ref := range order {
		st := ref.st
		if st.series != nil || st.pinnedOther {
			continue
		}
		if len(c.labeled) < c.cfg.MaxStatements {
			c.label(st, now)
			continue
		}
		w := c.labeled[0]
		for _, l := range c.labeled[1:] {
			if l.totalMS < w.totalMS {
				w = l
			}
		}
		if st.totalMS <= swapFactor*w.totalMS {
			break // the rest have less total time still
		}
		c.unlabel(w)
		c.label(st, now)
	}
}

func (c *Collector) label(st *stmtState, now time.Time) {
	l := labelValue(st.key.text, maxStatementLabel)
	if l == otherLabel || c.stmtLabels[st.key.opcode+"\x00"+l] {
		base := l + "#" + shortHash(st.key.text)
		l = base
		for i := 2; c.stmtLabels[st.key.opcode+"\x00"+l]; i++ {
			l = base + "-" + strconv.Itoa(i)
		}
	}
	c.stmtLabels[st.key.opcode+"\x00"+l] = true
	st.series = &series{opcode: st.key.opcode, label: l, created: now}
	c.labeled = append(c.labeled, st)
}

func (c *Collector) unlabel(st *stmtState) {
	delete(c.stmtLabels, st.key.opcode+"\x00"+st.series.label)
	st.series = nil
	i := slices.Index(c.labeled, st)
	c.labeled[i] = c.labeled[len(c.labeled)-1]
	c.labeled[len(c.labeled)-1] = nil
	c.labeled = c.labeled[:len(c.labeled)-1]
}

func (c *Collector) other(opcode string, now time.Time) *series {
	s := c.others[opcode]
	if s == nil {
		s = &series{opcode: opcode, label: otherLabel, created: now}
		c.others[opcode] = s
	}
	return s
}

// advance adds what grew from last to cur to s, and makes last cur.
func (s *series) advance(last, cur *stmtCounters) {
	if cur.count > last.count {
		s.count += cur.count - last.count
	}
	if cur.errors > last.errors {
		s.errors += cur.errors - last.errors
	}
	for i, n := range cur.lat {
		if n > last.lat[i] {
			s.lat.counts[i] += n - last.lat[i]
		}
	}
	if cur.totalMS > last.totalMS {
		s.lat.sumUS += (cur.totalMS - last.totalMS) * 1e3
		last.totalMS = cur.totalMS
	}
	last.count, last.errors, last.lat = cur.count, cur.errors, cur.lat
}
