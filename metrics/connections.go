package metrics

import (
	"cmp"
	"slices"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// connGroups is what the Collector keeps to turn the cumulative figures of
// connections into increments of their (client IP, server, driver) groups'
// series.
type connGroups struct {
	conns, spare []*connState // sorted by connection id
	cur, delta   connCounters

	clients, servers, drivers *labelSet
	unknownDriver             *slot
	codes                     codeSet
	groups                    map[groupKey]*group
	maxGroups                 int
}

// connCounters are the cumulative figures of one connection that feed
// counters.
type connCounters struct {
	requests, responses uint64
	errors              []uint64 // by ERROR code (index in Collector.codes); nil while there are none
	lat                 [nLat]uint64
	latSumUS            float64 // mean × count: rounded, so kept from going down
	segments            [2]segmentHist
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

type segmentHist struct {
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
	fillSegments(&k.segments[0], &cr.ClientSegments)
	fillSegments(&k.segments[1], &cr.ServerSegments)
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

func fillSegments(w *segmentHist, src *analyze.SegmentStats) {
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
	for s := range k.segments {
		for i := range k.segments[s].buckets {
			step(&k.segments[s].buckets[i], cur.segments[s].buckets[i], &d.segments[s].buckets[i])
		}
		step(&k.segments[s].frames, cur.segments[s].frames, &d.segments[s].frames)
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
	last          *connCounters // nil once retired
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
	segments            [2]segmentHist
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
	for s := range g.segments {
		for i, n := range d.segments[s].buckets {
			g.segments[s].buckets[i] += n
		}
		g.segments[s].frames += d.segments[s].frames
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
	// (The same report may come twice: analyze reuses a connection's
	// report while it sees nothing new, open or closed.)
	var g *group
	if !st.retired() {
		c.cur.fill(cr, &c.codes)
		if st.last.advance(&c.cur, &c.delta) || st.lastChange.IsZero() {
			st.lastChange = now
			g = c.group(st, cr, now)
			g.add(&c.delta)
		}
		if cr.Closed != "open" {
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
