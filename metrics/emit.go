package metrics

import (
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// Label names.
var (
	groupLabels     = []string{"client", "server", "driver", "driver_version"}
	directionLabels = []string{"client", "server", "driver", "driver_version", "direction"}
	diagnosisLabels = []string{"client", "server", "driver", "driver_version", "code"}
	errorLabels     = diagnosisLabels
	sideLabels      = []string{"client", "server", "driver", "driver_version", "side"}
	stmtLabels      = []string{"opcode", "statement"}
)

// Values of the direction label of cqlsniff_frames_per_segment.
var directions = [2]string{"client_to_server", "server_to_client"}

// diagnosisCodes are the values of the code label of
// cqlsniff_diagnosis_active: every diagnosis analyze makes
// (TestDiagnosisCodes checks the list against analyze's constants).
var diagnosisCodes = []string{
	analyze.CodeClientUnbuffered, analyze.CodeServerUnbuffered, analyze.CodeClientNagle,
	analyze.CodeClientUnbufferedReads, analyze.CodeServerUnbufferedReads, analyze.CodeClientBound,
}

type descs struct {
	requests, responses, errors *prometheus.Desc
	duration                    *prometheus.Desc
	framesPerSegment            *prometheus.Desc
	framesPerWrite              *prometheus.Desc // deprecated: framesPerSegment's old name
	openConns                   *prometheus.Desc
	inFlightMean, inFlightMax   *prometheus.Desc
	activeTime, idleTime        *prometheus.Desc
	outstanding                 *prometheus.Desc
	diagnosis                   *prometheus.Desc
	sendCalls, recvCalls        *prometheus.Desc
	sendBytes, recvBytes        *prometheus.Desc
	stmtRequests, stmtErrors    *prometheus.Desc
	stmtDuration                *prometheus.Desc
	packets, bytes, dropped     *prometheus.Desc
	lastPacket                  *prometheus.Desc
}

func newDescs() descs {
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc("cqlsniff_"+name, help, labels, nil)
	}
	return descs{
		requests: d("requests_total",
			"CQL requests sent by clients (complete request frames), by client IP, server address and driver.", groupLabels),
		responses: d("responses_total",
			"CQL responses paired with their request, by client IP, server address and driver.", groupLabels),
		errors: d("errors_total",
			"ERROR responses, by client IP, server address, driver and ERROR code (the protocol's name, e.g. READ_TIMEOUT; "+
				"unreadable: a body that could not be read; other: beyond the cap of "+strconv.Itoa(maxErrorCodes)+" codes). "+
				"A code's series appears at its first error.", errorLabels),
		duration: d("request_duration_seconds",
			"Time from the packet that completed a request to the packet that completed its response, seen where the capture runs. "+
				"Classic buckets are the report's power-of-two microsecond bars; the native histogram (schema 0) puts the bar up to 2^k µs "+
				"in the bucket up to 2^(k-20) s.", groupLabels),
		framesPerSegment: d("frames_per_segment",
			"CQL frames starting in each data-bearing TCP segment, by sender; the sum counts frames and the count segments. "+
				"A segment is the wire's estimate of one send call (the kernel's count is cqlsniff_socket_send_calls_total). "+
				"About 1 with many requests in flight means an unbuffered sender.", directionLabels),
		framesPerWrite: d("frames_per_write",
			"Deprecated: cqlsniff_frames_per_segment under its old name (it counts TCP segments, not write calls), "+
				"the same figures; it will be removed in a later release.", directionLabels),
		openConns: d("open_connections",
			"CQL connections open in the latest report.", groupLabels),
		inFlightMean: d("in_flight_requests_mean",
			"Requests outstanding on a connection when each request completed (itself included): mean over the requests of the "+
				"connections open or active in the last 5 minutes.", groupLabels),
		inFlightMax: d("in_flight_requests_max",
			"Requests outstanding on a connection when each request completed (itself included): maximum over the connections "+
				"open or active in the last 5 minutes.", groupLabels),
		activeTime: d("connection_active_seconds_total",
			"Time the connections of this client, server and driver were followed, each from its first request seen to its latest "+
				"exchange, summed over the connections (packet time).", groupLabels),
		idleTime: d("connection_idle_seconds_total",
			"Of cqlsniff_connection_active_seconds_total, the time with no request outstanding: the server had nothing to do for the "+
				"connection and the next move was the client's. Its rate over that of active seconds is the idle share; a large idle share "+
				"on connections that also keep many requests outstanding marks a client that cannot keep up (client-bound).", groupLabels),
		outstanding: d("outstanding_request_seconds_total",
			"Requests outstanding (sent, not yet answered) integrated over time, summed over the connections: its rate is the "+
				"time-weighted mean of requests outstanding (Little's law: request rate × mean latency).", groupLabels),
		diagnosis: d("diagnosis_active",
			"1 while a connection of this client, server and driver that is open or was active in the last 5 minutes carries "+
				"the diagnosis (code: "+strings.Join(diagnosisCodes, ", ")+").", diagnosisLabels),
		sendCalls: d("socket_send_calls_total",
			"Socket send calls that moved data, made by this side of the connections (client or server), by client IP, server address "+
				"and driver: the kernel's count, present only where it was measured (a live capture on the host of that side, with --syscalls, "+
				"the default, and the capabilities it needs).", sideLabels),
		recvCalls: d("socket_recv_calls_total",
			"Socket receive calls that moved data, made by this side of the connections, as cqlsniff_socket_send_calls_total.", sideLabels),
		sendBytes: d("socket_send_bytes_total",
			"Bytes this side of the connections sent in the calls of cqlsniff_socket_send_calls_total.", sideLabels),
		recvBytes: d("socket_recv_bytes_total",
			"Bytes this side of the connections received in the calls of cqlsniff_socket_recv_calls_total.", sideLabels),
		stmtRequests: d("statement_requests_total",
			"Answered requests by statement fingerprint (literals replaced by ?, EXECUTE by the prepared text). The statements "+
				"with the most total time have a label value of their own, the others share statement=\"other\".", stmtLabels),
		stmtErrors: d("statement_errors_total",
			"ERROR responses by statement fingerprint.", stmtLabels),
		stmtDuration: d("statement_duration_seconds",
			"Latency by statement fingerprint, buckets as in cqlsniff_request_duration_seconds.", stmtLabels),
		packets: d("captured_packets_total",
			"Packets read from the capture, CQL or not.", nil),
		bytes: d("captured_bytes_total",
			"Bytes of the packets read from the capture.", nil),
		dropped: d("dropped_packets_total",
			"Packets the kernel dropped before cqlsniff read them (always 0 for a file).", nil),
		lastPacket: d("last_packet_timestamp_seconds",
			"Capture time of the newest packet in the latest report, in Unix seconds: a live capture whose clock stops is idle or stuck.", nil),
	}
}

func (d *descs) all() []*prometheus.Desc {
	return []*prometheus.Desc{d.requests, d.responses, d.errors, d.duration, d.framesPerSegment, d.framesPerWrite, d.openConns,
		d.inFlightMean, d.inFlightMax, d.activeTime, d.idleTime, d.outstanding, d.diagnosis, d.sendCalls, d.recvCalls, d.sendBytes, d.recvBytes,
		d.stmtRequests, d.stmtErrors, d.stmtDuration, d.packets, d.bytes, d.dropped, d.lastPacket}
}

// Classic bucket bounds, shared by every histogram (read only).
var (
	latencyBounds = func() []*float64 {
		var b []*float64
		for k := latMinExp; k <= latMaxExp; k++ {
			b = append(b, new(float64(int64(1)<<k)/1e6))
		}
		return b
	}()
	frameBounds = map[float64]int{0: 0, 1: 1, 3: 2, 7: 3, 15: 4} // le → last distribution bucket included
)

// emitter collects metrics, turning construction errors into invalid
// metrics so that the scrape reports them and still serves the rest.
type emitter struct {
	out []prometheus.Metric
}

func (e *emitter) add(desc *prometheus.Desc, m prometheus.Metric, err error) {
	if err != nil {
		m = prometheus.NewInvalidMetric(desc, err)
	}
	e.out = append(e.out, m)
}

// counter emits a counter; created is when its series started from zero
// (zero: unknown, as for the capture's own counters).
func (e *emitter) counter(desc *prometheus.Desc, v uint64, created time.Time, labels ...string) {
	if created.IsZero() {
		m, err := prometheus.NewConstMetric(desc, prometheus.CounterValue, float64(v), labels...)
		e.add(desc, m, err)
		return
	}
	m, err := prometheus.NewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(v), created, labels...)
	e.add(desc, m, err)
}

// seconds emits a counter kept in µs.
func (e *emitter) seconds(desc *prometheus.Desc, us uint64, created time.Time, labels ...string) {
	m, err := prometheus.NewConstMetricWithCreatedTimestamp(desc, prometheus.CounterValue, float64(us)/1e6, created, labels...)
	e.add(desc, m, err)
}

func (e *emitter) gauge(desc *prometheus.Desc, v float64, labels ...string) {
	m, err := prometheus.NewConstMetric(desc, prometheus.GaugeValue, v, labels...)
	e.add(desc, m, err)
}

// latency emits h as one histogram with both classic buckets (for text and
// OpenMetrics scrapes, and Prometheus servers without native histograms)
// and native schema-0 buckets (for protobuf scrapes).
func (e *emitter) latency(desc *prometheus.Desc, h *latHist, created time.Time, labels ...string) {
	var count uint64
	native := make(map[int]int64)
	for k, n := range h.counts {
		if n > 0 {
			count += n
			native[k-nativeShift] += int64(n)
		}
	}
	sum := h.sumUS / 1e6
	nm, err := prometheus.NewConstNativeHistogram(desc, count, sum, native, nil, 0, 0,
		prometheus.DefNativeHistogramZeroThreshold, created, labels...)
	if err != nil {
		e.add(desc, nil, err)
		return
	}
	m := &dto.Metric{}
	if err := nm.Write(m); err != nil {
		e.add(desc, nil, err)
		return
	}
	// nm is ours alone and thrown away: its histogram gets the classic
	// buckets before anyone else can see it.
	buckets := make([]*dto.Bucket, len(latencyBounds))
	var cum uint64
	for k := 0; k < latMinExp; k++ {
		cum += h.counts[k]
	}
	for i, le := range latencyBounds {
		cum += h.counts[latMinExp+i]
		buckets[i] = &dto.Bucket{CumulativeCount: new(cum), UpperBound: le}
	}
	m.Histogram.Bucket = buckets
	e.out = append(e.out, &constMetric{desc: desc, m: m})
}

// constMetric is a metric written once: Write hands out shared, read-only
// parts, as client_golang's own constant metrics do.
type constMetric struct {
	desc *prometheus.Desc
	m    *dto.Metric
}

func (c *constMetric) Desc() *prometheus.Desc { return c.desc }

func (c *constMetric) Write(out *dto.Metric) error {
	out.Label = c.m.Label
	out.Histogram = c.m.Histogram
	return nil
}

func (e *emitter) frames(desc *prometheus.Desc, w *segmentHist, created time.Time, labels ...string) {
	var count uint64
	for _, n := range w.buckets {
		count += n
	}
	buckets := make(map[float64]uint64, len(frameBounds))
	for le, last := range frameBounds {
		var cum uint64
		for _, n := range w.buckets[:last+1] {
			cum += n
		}
		buckets[le] = cum
	}
	m, err := prometheus.NewConstHistogramWithCreatedTimestamp(desc, count, float64(w.frames), buckets, created, labels...)
	e.add(desc, m, err)
}

// emit builds the metrics of the current state (after update with r).
func (c *Collector) emit(r *analyze.Report, out []prometheus.Metric) []prometheus.Metric {
	e := emitter{out: out}
	d := &c.d
	for _, g := range c.groups {
		l := g.labels
		e.counter(d.requests, g.requests, g.created, l...)
		e.counter(d.responses, g.responses, g.created, l...)
		for i, n := range g.errors {
			if n > 0 {
				e.counter(d.errors, n, g.created, l[0], l[1], l[2], l[3], c.codes.labels[i])
			}
		}
		e.latency(d.duration, &g.lat, g.created, l...)
		e.seconds(d.activeTime, g.spanUS, g.created, l...)
		e.seconds(d.idleTime, g.idleUS, g.created, l...)
		e.seconds(d.outstanding, g.outstandingUS, g.created, l...)
		for s, dir := range directions {
			e.frames(d.framesPerSegment, &g.segments[s], g.created, l[0], l[1], l[2], l[3], dir)
			e.frames(d.framesPerWrite, &g.segments[s], g.created, l[0], l[1], l[2], l[3], dir)
		}
		for s, side := range sides {
			if g.sysSeen[s] {
				n := &g.sys[s]
				e.counter(d.sendCalls, n.sends, g.created, l[0], l[1], l[2], l[3], side)
				e.counter(d.recvCalls, n.recvs, g.created, l[0], l[1], l[2], l[3], side)
				e.counter(d.sendBytes, n.sendBytes, g.created, l[0], l[1], l[2], l[3], side)
				e.counter(d.recvBytes, n.recvBytes, g.created, l[0], l[1], l[2], l[3], side)
			}
		}
		open := 0
		if g.gaugeBuild == c.build {
			open = g.open
			if g.inflRequests > 0 {
				e.gauge(d.inFlightMean, math.Round(g.inflWeighted/float64(g.inflRequests)*100)/100, l...)
				e.gauge(d.inFlightMax, float64(g.inflMax), l...)
			}
			for _, code := range g.diagnoses {
				e.gauge(d.diagnosis, 1, l[0], l[1], l[2], l[3], code)
			}
		}
		e.gauge(d.openConns, float64(open), l...)
	}
	stmt := func(s *series) {
		e.counter(d.stmtRequests, s.count, s.created, s.opcode, s.label)
		e.counter(d.stmtErrors, s.errors, s.created, s.opcode, s.label)
		e.latency(d.stmtDuration, &s.lat, s.created, s.opcode, s.label)
	}
	for _, st := range c.labeled {
		stmt(st.series)
	}
	for _, s := range c.others {
		stmt(s)
	}
	e.counter(d.packets, r.Packets, time.Time{})
	e.counter(d.bytes, r.Bytes, time.Time{})
	e.counter(d.dropped, r.Dropped, time.Time{})
	if t, err := time.Parse(time.RFC3339Nano, r.End); err == nil {
		e.gauge(d.lastPacket, float64(t.UnixNano())/1e9)
	}
	return e.out
}
