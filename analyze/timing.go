package analyze

import (
	"math"
	"math/bits"
	"strconv"
	"time"
)

// timing attributes a connection's time: how many requests it had
// outstanding from moment to moment (packet time), how long it had none —
// the spans in which the server had nothing to do for it and the next move
// was the client's —, and how soon the client sent a request after a
// response reached the capture point. It answers "client or server?": a
// server that is the bottleneck keeps requests waiting, a client that is
// leaves the connection empty while it works.
//
// It is fed every request and response a connection pairs (after the
// pending table changed); the steady state allocates nothing.
type timing struct {
	started bool
	t0      int64   // the first request: the span starts there
	last    int64   // the latest event
	n       int     // requests outstanding since last
	area    float64 // ∑ outstanding × ns: its time-weighted mean is area/span
	idle    int64   // ns with nothing outstanding
	peak    int
	levels  [levelBuckets]int64 // ns spent at each level of outstanding requests (levelBucket)

	idleSince  int64     // when the connection last became empty
	gaps       [6]uint64 // idle gaps by length (gapBuckets)
	gapSum     int64
	gapMax     int64
	lastResp   int64 // the latest response since the last request (0: none)
	react      [6]uint64
	reactSum   int64
	reactMax   int64
	reactCount uint64
	series     *series
}

// gapBuckets are the upper bounds of the idle-gap and reaction-time
// buckets; the last bucket is everything longer.
var gapBuckets = [...]int64{100e3, 1e6, 10e6, 100e6, 1e9}

var gapLabels = [...]string{"<100µs", "100µs-1ms", "1-10ms", "10-100ms", "100ms-1s", ">=1s"}

func gapBucket(d int64) int {
	for i, b := range gapBuckets {
		if d < b {
			return i
		}
	}
	return len(gapBuckets)
}

// levelBuckets are 0, 1, 2-3, 4-7, ..., 16384-32767 and 32768+ requests
// outstanding.
const levelBuckets = 17

func levelBucket(n int) int { return min(bits.Len(uint(n)), levelBuckets-1) }

func levelLabel(i int) string {
	switch {
	case i == 0:
		return "0"
	case i == 1:
		return "1"
	case i == levelBuckets-1:
		return strconv.Itoa(1<<(i-1)) + "+"
	}
	return strconv.Itoa(1<<(i-1)) + "-" + strconv.Itoa(1<<i-1)
}

// shareAtLeast is the share of the span with at least 2^(i-1) requests
// outstanding (level bucket i and above).
func (t *timing) shareAtLeast(i int, span int64) float64 {
	var d int64
	for _, v := range t.levels[i:] {
		d += v
	}
	return float64(d) / float64(span)
}

// elapsed is b - a for b >= a, saturated at the largest int64: a
// capture's clock may be anywhere in int64, and the difference of two far
// apart times overflows.
func elapsed(a, b int64) int64 {
	if b <= a {
		return 0
	}
	return int64(min(uint64(b)-uint64(a), uint64(math.MaxInt64)))
}

// seriesAfter is the number of requests a connection makes before it gets
// a time series: most connections (control connections, short ones) never
// need one.
const seriesAfter = 256

// advance accounts the time up to ts at the current level.
func (t *timing) advance(ts int64) {
	if ts <= t.last {
		return
	}
	dt := elapsed(t.last, ts)
	t.area += float64(t.n) * float64(dt)
	t.levels[levelBucket(t.n)] += dt
	if t.n == 0 {
		t.idle += dt
	}
	if t.series != nil {
		t.series.add(t.last, ts, t.n)
	}
	t.last = ts
}

// request records a request sent at ts, after which n are outstanding.
func (t *timing) request(ts int64, n int, requests uint64) {
	if !t.started {
		t.started, t.t0, t.last = true, ts, ts
	}
	if t.n == 0 && ts > t.idleSince && t.idleSince != 0 {
		d := elapsed(t.idleSince, ts)
		t.gaps[gapBucket(d)]++
		t.gapSum += d
		t.gapMax = max(t.gapMax, d)
	}
	if t.lastResp != 0 && ts >= t.lastResp {
		d := elapsed(t.lastResp, ts)
		t.react[gapBucket(d)]++
		t.reactSum += d
		t.reactMax = max(t.reactMax, d)
		t.reactCount++
	}
	t.lastResp = 0
	t.advance(ts)
	t.n = n
	t.peak = max(t.peak, n)
	if t.series == nil && requests >= seriesAfter {
		t.series = &series{start: ts, width: seriesBin0}
	}
	if t.series != nil {
		t.series.request(ts)
	}
}

// response records a response completed at ts, after which n are
// outstanding.
func (t *timing) response(ts int64, n int) {
	if !t.started {
		return // answers to requests before the capture: nothing to attribute yet
	}
	t.advance(ts)
	t.n = n
	if n == 0 {
		t.idleSince = ts
	}
	t.lastResp = ts
	if t.series != nil {
		t.series.response(ts)
	}
}

// series is a connection's throughput and outstanding requests over time,
// in seriesBins bins that double in width as the capture goes on. Times are
// kept relative to start, in unsigned arithmetic: a capture's clock may sit
// anywhere in int64 (pcapng timestamps are whatever the file says).
type series struct {
	start int64
	width uint64
	n     int // bins used
	// The bin of the latest lookup and its bounds [lo, hi) in relative
	// time (hi 0: none): events come in time order, thousands to a bin,
	// and spare the 64-bit divisions of a lookup (five a request and its
	// response).
	cur    int
	lo, hi uint64
	resp   [seriesBins]uint64
	reqs   [seriesBins]uint64
	area   [seriesBins]float64
	idle   [seriesBins]uint64
}

const (
	seriesBins = 60
	seriesBin0 = uint64(10 * time.Millisecond)
	// seriesMaxWidth stops the folding: past it (about 36 years a bin) the
	// last bin takes whatever comes later.
	seriesMaxWidth = uint64(1) << 60
)

// rel is ts relative to the series' start (0 before it).
func (s *series) rel(ts int64) uint64 {
	if ts <= s.start {
		return 0
	}
	return uint64(ts) - uint64(s.start)
}

// bin returns the bin of a relative time, widening the bins until it fits.
func (s *series) bin(rel uint64) int {
	if rel >= s.lo && rel < s.hi {
		return s.cur
	}
	q := rel / s.width
	for q >= seriesBins && s.width < seriesMaxWidth {
		s.fold()
		q = rel / s.width
	}
	i := int(min(q, seriesBins-1))
	s.n = max(s.n, i+1)
	s.cur, s.lo, s.hi = i, 0, 0
	if over, hi := bits.Mul64(q+1, s.width); q < seriesBins && over == 0 {
		// (Not cached: the last of the widest bins, which takes all that
		// comes later, and a bin whose end does not fit in 64 bits.)
		s.lo, s.hi = q*s.width, hi
	}
	return i
}

// fold halves the resolution: bins 2i and 2i+1 become bin i.
func (s *series) fold() {
	for i := 0; i < seriesBins/2; i++ {
		s.resp[i] = s.resp[2*i] + s.resp[2*i+1]
		s.reqs[i] = s.reqs[2*i] + s.reqs[2*i+1]
		s.area[i] = s.area[2*i] + s.area[2*i+1]
		s.idle[i] = s.idle[2*i] + s.idle[2*i+1]
	}
	for i := seriesBins / 2; i < seriesBins; i++ {
		s.resp[i], s.reqs[i], s.area[i], s.idle[i] = 0, 0, 0, 0
	}
	s.width *= 2
	s.n = (s.n + 1) / 2
	s.hi = 0
}

func (s *series) request(ts int64)  { s.reqs[s.bin(s.rel(ts))]++ }
func (s *series) response(ts int64) { s.resp[s.bin(s.rel(ts))]++ }

// add spreads [from, to) at n outstanding over the bins it covers.
func (s *series) add(from, to int64, n int) {
	f, t := s.rel(from), s.rel(to)
	last := s.bin(t) // widen first, so that the bins below stay put
	for f < t {
		i, end := last, t
		if f < s.lo || s.hi == 0 {
			// f is before the last bin, or the last bin is not cached.
			i = int(min(f/s.width, uint64(last)))
			if i < last {
				end = min(uint64(i+1)*s.width, t)
			}
		}
		d := end - f
		s.area[i] += float64(n) * float64(d)
		if n == 0 {
			s.idle[i] += d
		}
		f = end
	}
}

// Timing is where a connection's time went, from the first request seen to
// its latest exchange (packet time).
type Timing struct {
	SpanS float64 `json:"span_s"`
	// OutstandingMean is the time-weighted mean of requests outstanding (by
	// Little's law rate × mean latency, which LittlesLaw gives as a check);
	// in_flight.mean instead samples the count at each request.
	OutstandingMean float64 `json:"outstanding_mean"`
	OutstandingPeak int     `json:"outstanding_peak"`
	// OutstandingTime is the share of the span spent at each level of
	// requests outstanding ("0", "1", "2-3", "4-7", ...; empty levels left
	// out): the concurrency the client really kept, over time.
	OutstandingTime map[string]float64 `json:"outstanding_time"`
	LittlesLaw      float64            `json:"littles_law"`
	// IdleShare is the share of the span with nothing outstanding: the
	// server had nothing to do for this connection and the next move was
	// the client's.
	IdleShare float64 `json:"idle_share"`
	// IdleS and OutstandingRequestS are the running sums behind IdleShare
	// and OutstandingMean (seconds; request-seconds), for counters.
	IdleS               float64  `json:"idle_s"`
	OutstandingRequestS float64  `json:"outstanding_request_s"`
	IdleGaps            GapStats `json:"idle_gaps"`
	// ServerTimeUS is the mean time from a request to its response (the
	// latency); ClientReaction the time from a response reaching the
	// capture point to the client's next request.
	ServerTimeUS float64 `json:"server_time_us"`
	// PathToClientUS is the shortest time from a server data segment to the
	// client's ACK that covered it: about zero when the capture is taken on
	// the client's host, the round trip to the client when it is taken on
	// the server's. That much of every idle gap is the network's, not the
	// client's (0: not measured).
	PathToClientUS float64   `json:"path_to_client_us"`
	ClientReaction GapStats  `json:"client_reaction"`
	Series         *TimeLine `json:"series,omitempty"`

	atLeast8 float64 // share of the span with 8 or more outstanding
}

// GapStats is a distribution of short spans of time.
type GapStats struct {
	Count        uint64            `json:"count"`
	MeanUS       float64           `json:"mean_us"`
	MaxUS        float64           `json:"max_us"`
	Distribution map[string]uint64 `json:"distribution"` // by length: <100µs, 100µs-1ms, 1-10ms, 10-100ms, 100ms-1s, >=1s
}

// TimeLine is a busy connection's throughput and concurrency over time, in
// bins of BinMS from Start (the connection's 256th request).
type TimeLine struct {
	Start       string    `json:"start"`
	BinMS       float64   `json:"bin_ms"`
	Requests    []float64 `json:"requests_per_s"`
	Responses   []float64 `json:"responses_per_s"`
	Outstanding []float64 `json:"outstanding"` // time-weighted mean in the bin
	Idle        []float64 `json:"idle_share"`
}

func gapStats(b *[6]uint64, sum, mx int64) GapStats {
	g := GapStats{Distribution: make(map[string]uint64, len(b))}
	for i, n := range b {
		g.Count += n
		g.Distribution[gapLabels[i]] = n
	}
	if g.Count > 0 {
		g.MeanUS = round2(float64(sum) / 1e3 / float64(g.Count))
	}
	g.MaxUS = round2(float64(mx) / 1e3)
	return g
}

// report gives the figures so far; rate and latency (mean, µs) are the
// connection's, for Little's law.
func (t *timing) report(answered uint64, latMeanUS float64) *Timing {
	if !t.started {
		return nil
	}
	span := elapsed(t.t0, t.last)
	r := &Timing{
		SpanS:               round3(float64(span) / 1e9),
		OutstandingPeak:     t.peak,
		IdleGaps:            gapStats(&t.gaps, t.gapSum, t.gapMax),
		IdleS:               float64(t.idle) / 1e9,
		OutstandingRequestS: t.area / 1e9,
		ServerTimeUS:        latMeanUS,
		ClientReaction:      gapStats(&t.react, t.reactSum, t.reactMax),
	}
	if span > 0 {
		r.OutstandingMean = round2(t.area / float64(span))
		r.IdleShare = round3(float64(t.idle) / float64(span))
		r.OutstandingTime = make(map[string]float64)
		for i, v := range t.levels {
			if v > 0 {
				r.OutstandingTime[levelLabel(i)] = round3(float64(v) / float64(span))
			}
		}
		r.atLeast8 = t.shareAtLeast(levelBucket(8), span)
		r.LittlesLaw = round2(float64(answered) / (float64(span) / 1e9) * latMeanUS / 1e6)
	}
	if s := t.series; s != nil && s.n > 0 {
		r.Series = s.report(s.rel(t.last))
	}
	return r
}

// report gives the bins up to the relative time end. The last bin is left
// out when the data covers less than half of it: its rates would rest on a
// sliver of time (a live snapshot cuts anywhere).
func (s *series) report(end uint64) *TimeLine {
	n := min(s.n, int(min(end/s.width, seriesBins-1))+1)
	widths := make([]float64, 0, n)
	for i := 0; i < n; i++ {
		w := s.width
		if lo := uint64(i) * s.width; end-lo < w {
			w = end - lo
		}
		if w == 0 || (i == n-1 && i > 0 && w < s.width/2) {
			break
		}
		widths = append(widths, float64(w))
	}
	n = len(widths)
	tl := &TimeLine{Start: rfc3339(s.start), BinMS: float64(s.width) / 1e6,
		Requests: make([]float64, n), Responses: make([]float64, n), Outstanding: make([]float64, n), Idle: make([]float64, n)}
	for i, w := range widths {
		tl.Requests[i] = round2(float64(s.reqs[i]) / (w / 1e9))
		tl.Responses[i] = round2(float64(s.resp[i]) / (w / 1e9))
		tl.Outstanding[i] = round2(s.area[i] / w)
		tl.Idle[i] = round3(float64(s.idle[i]) / w)
	}
	return tl
}
