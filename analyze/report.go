package analyze

import (
	"cmp"
	"math/bits"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
)

// Report is the analysis of a whole capture (or of a live capture so far).
// Its JSON form is a stable contract: fields are added, never renamed.
type Report struct {
	Source    string  `json:"source"`
	Packets   uint64  `json:"packets"`
	Bytes     uint64  `json:"bytes"`
	Dropped   uint64  `json:"dropped"`
	Start     string  `json:"start,omitempty"`
	End       string  `json:"end,omitempty"`
	DurationS float64 `json:"duration_s"`
	Totals    Totals  `json:"totals"`
	// Latency is over every answered request of the capture.
	Latency     Latency         `json:"latency_us"`
	Connections []*ConnReport   `json:"connections"`
	Statements  []StmtReport    `json:"statements"`
	Opcodes     []OpReport      `json:"opcodes"`
	Diagnoses   []Diagnosis     `json:"diagnoses"`
	Capture     CaptureCounters `json:"capture"`
	Warnings    []string        `json:"warnings,omitempty"`

	made made // which pipeline made it, and when (Compare)
}

// made is a report's stamp: the pipeline that made it, and how many
// reports that pipeline had made before it, plus one. Zero for a report
// decoded from JSON or built by hand.
type made struct{ pipeline, n uint64 }

// Compare orders r and o if one pipeline made both: -1 if it made r
// first, +1 if it made o first, 0 if they are the same report. ok is false
// if they are of different pipelines, or either was not made by a pipeline
// (decoded from JSON, built by hand), or o is nil. (So r.Compare(r) tells
// whether a pipeline made r.)
//
// A reader of snapshots that can run concurrently (two scrapes of the
// metrics endpoint, say) may take the newer report first: Compare tells
// it that the other one is older, not a pipeline that started again.
func (r *Report) Compare(o *Report) (order int, ok bool) {
	if o == nil || r.made.pipeline == 0 || r.made.pipeline != o.made.pipeline {
		return 0, false
	}
	return cmp.Compare(r.made.n, o.made.n), true
}

// Totals sums the whole capture.
type Totals struct {
	Connections     int    `json:"connections"`
	Requests        uint64 `json:"requests"`
	Responses       uint64 `json:"responses"`
	Unanswered      uint64 `json:"unanswered"`
	Errors          uint64 `json:"errors"`
	Events          uint64 `json:"events"`
	OrphanResponses uint64 `json:"orphan_responses"` // answers to requests sent before the capture began
	StreamReuse     uint64 `json:"stream_reuse"`     // ids reused before their answer arrived
	Frames          uint64 `json:"frames"`
	Encrypted       int    `json:"encrypted_connections"`
	Decrypted       int    `json:"decrypted_connections"` // of those, decrypted with the key log
	NotCQL          uint64 `json:"non_cql_flows"`
	NotListed       uint64 `json:"connections_not_listed"` // closed connections beyond the report's cap (MaxClosed)
	// The frames and TCP segments of each direction over every connection
	// of the capture (listed or not): their ratios are the whole capture's
	// frames per segment.
	ClientFrames   uint64 `json:"client_frames"`
	ClientSegments uint64 `json:"client_segments"`
	ServerFrames   uint64 `json:"server_frames"`
	ServerSegments uint64 `json:"server_segments"`
	// The send calls the kernel counted (--syscalls) and the frames of the
	// same ends, over the listed connections where it counted them.
	ClientSendCalls  uint64 `json:"client_send_calls,omitempty"`
	ClientSendFrames uint64 `json:"client_send_frames,omitempty"`
	ServerSendCalls  uint64 `json:"server_send_calls,omitempty"`
	ServerSendFrames uint64 `json:"server_send_frames,omitempty"`
}

// CaptureCounters are the packet- and stream-level counters.
type CaptureCounters struct {
	TCPPackets      uint64 `json:"tcp_packets"`
	NotTCP          uint64 `json:"not_tcp"`
	Fragments       uint64 `json:"ip_fragments"`
	Malformed       uint64 `json:"malformed"`
	UnsupportedLink uint64 `json:"unsupported_link"`
	Retransmits     uint64 `json:"retransmissions"`
	OutOfOrder      uint64 `json:"out_of_order"`
	Gaps            uint64 `json:"gaps"`
	GapBytes        uint64 `json:"gap_bytes"`
	SkippedBytes    uint64 `json:"skipped_bytes"`
	Resyncs         uint64 `json:"resyncs"` // frame boundaries found again after losing them (a direction's first is not counted)
	Desyncs         uint64 `json:"desyncs"`
	Oversized       uint64 `json:"oversized_bodies"`
	DecompressErr   uint64 `json:"decompress_errors"`
	LostFrames      uint64 `json:"lost_frames"`
	V5Segments      uint64 `json:"v5_segments"`
	V5SegmentErrors uint64 `json:"v5_segment_errors"`
	Truncated       bool   `json:"truncated_file"`
}

// Latency summarises a latency histogram, in microseconds.
type Latency struct {
	// Histogram has one bar per power of two of microseconds (up to
	// UpToUS), empty bars left out.
	Histogram []Bar `json:"histogram,omitempty"`

	Count uint64  `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
	Mean  float64 `json:"mean"`
}

// InFlight is the number of outstanding requests on a connection, sampled
// at each request (the new one included).
type InFlight struct {
	Mean float64 `json:"mean"`
	Max  int     `json:"max"`
}

// SegmentStats is one direction of a connection as the wire shows it: its
// CQL frames and the TCP segments that carried them (how the sender batched
// them), the back-to-back and Nagle evidence, and the v5 and TLS layers in
// between. Segments are the wire's estimate of the sender's write calls;
// SyscallReport has the kernel's count of its send calls where measured.
type SegmentStats struct {
	Frames           uint64  `json:"frames"`
	Segments         uint64  `json:"segments"` // data-bearing TCP segments, retransmissions excluded
	FramesPerSegment float64 `json:"frames_per_segment"`
	// Distribution counts segments by the frames starting in them:
	// "0" is a segment that only continues a frame.
	Distribution   map[string]uint64 `json:"distribution"`
	SpanningFrames uint64            `json:"spanning_frames"`
	// Protocol v5 adds a layer: envelopes travel in v5 segments, which
	// travel in TCP segments. Absent on v3/v4 connections.
	V5          *V5SegmentStats `json:"v5,omitempty"`
	Bytes       uint64          `json:"bytes"`
	Retransmits uint64          `json:"retransmissions"`
	// BackToBack counts the segments that left within Config.BackToBack of
	// the previous one although both could have gone out together (see
	// diagnose.go), of the FrameStartSegments that start on a frame
	// boundary with a frame; BackToBackSingle those carrying one whole frame.
	BackToBack         uint64 `json:"back_to_back"`
	BackToBackSingle   uint64 `json:"back_to_back_single"`
	FrameStartSegments uint64 `json:"frame_start_segments"`
	// Nagle evidence: segments that left with earlier data still
	// unacknowledged, with all of it acknowledged, and (of the latter) right
	// after the ACK that released them.
	SentUnacked uint64 `json:"sent_unacked"`
	SentAcked   uint64 `json:"sent_acked"`
	AckClocked  uint64 `json:"ack_clocked"`
	// TLS is the record layer of an encrypted connection's direction.
	TLS *TLSRecordStats `json:"tls,omitempty"`
}

// V5SegmentStats is the two-layer batching of a v5 direction.
type V5SegmentStats struct {
	Segments             uint64            `json:"segments"`                // v5 segments
	FramesPerV5Segment   float64           `json:"frames_per_v5_segment"`   // envelopes per v5 segment
	V5SegmentsPerSegment float64           `json:"v5_segments_per_segment"` // v5 segments per TCP segment
	Distribution         map[string]uint64 `json:"distribution"`            // TCP segments by v5 segments starting in them
}

// ConnReport describes one connection.
type ConnReport struct {
	ID                  uint64 `json:"id"`
	Client              string `json:"client"`
	Server              string `json:"server"`
	ProtocolVersion     int    `json:"protocol_version"`
	Compression         string `json:"compression"`
	CompressionInferred bool   `json:"compression_inferred,omitempty"`
	Driver              string `json:"driver"`
	DriverVersion       string `json:"driver_version,omitempty"`
	Keyspace            string `json:"keyspace,omitempty"`
	Encrypted           bool   `json:"encrypted,omitempty"`
	// TLS describes an encrypted connection: decrypted or not, and why.
	TLS             *TLSReport `json:"tls,omitempty"`
	RolesFromPorts  bool       `json:"-"`
	Requests        uint64     `json:"requests"`
	Responses       uint64     `json:"responses"`
	Errors          uint64     `json:"errors"`
	Unanswered      uint64     `json:"unanswered"`
	OrphanResponses uint64     `json:"orphan_responses"`
	Events          uint64     `json:"events"`
	// ErrorsByCode and EventsByType break Errors and Events down (ERROR code
	// names as decode gives them, "unreadable" when the body could not be
	// read; EVENT types). Absent when there are none.
	ErrorsByCode map[string]uint64 `json:"errors_by_code,omitempty"`
	EventsByType map[string]uint64 `json:"events_by_type,omitempty"`
	StreamReuse  uint64            `json:"stream_reuse"`
	InFlight     InFlight          `json:"in_flight"`
	// Timing is where the connection's time went: requests outstanding over
	// time, the spans with none, the client's reaction to responses.
	Timing  *Timing `json:"timing,omitempty"`
	Latency Latency `json:"latency_us"`
	// ClientSegments and ServerSegments are what each end sent, as the wire
	// shows it. In JSON they are client_segments and server_segments, and
	// also, deprecated, client_writes and server_writes (report_json.go).
	ClientSegments SegmentStats `json:"client_writes"`
	ServerSegments SegmentStats `json:"server_writes"`
	// ClientSyscalls and ServerSyscalls are the kernel's counts of each
	// end's socket calls, present only when measured (live, with --syscalls,
	// on the host of that end).
	ClientSyscalls *SyscallReport `json:"client_syscalls,omitempty"`
	ServerSyscalls *SyscallReport `json:"server_syscalls,omitempty"`
	// ClientProcess and ServerProcess are the CPU of the process at each
	// end while the capture ran (live, with the kernel's counts naming it).
	ClientProcess *ProcessReport `json:"client_process,omitempty"`
	ServerProcess *ProcessReport `json:"server_process,omitempty"`
	// Scylla is what a ScyllaDB server said of this connection (SUPPORTED),
	// absent for Cassandra or when not captured.
	Scylla         *ScyllaConn `json:"scylla,omitempty"`
	DiagnosisCodes []string    `json:"diagnoses"`
	Start          string      `json:"start"`
	End            string      `json:"end"`
	DurationS      float64     `json:"duration_s"`
	RequestsPerSec float64     `json:"requests_per_s"`
	Closed         string      `json:"closed"` // fin, rst, idle, evicted, end (of capture), open

	diagnoses          []Diagnosis // from the wire; exact ones are derived per report (withSyscalls)
	rolesKnown         bool
	clientEP, serverEP capture.Endpoint
	// nodeLookup: the connection's own SUPPORTED was not captured; the
	// merger joins what its node said on another (with tabletHints).
	nodeLookup  bool
	tabletHints uint64
	lastTS      int64 // the connection's latest packet (Unix ns)
}

// ScyllaConn is the ScyllaDB shard information of a connection.
type ScyllaConn struct {
	Shard              int    `json:"shard"`  // the shard serving the connection (-1 unknown)
	Shards             int    `json:"shards"` // shards on the node
	ShardingAlgorithm  string `json:"sharding_algorithm,omitempty"`
	ShardAwarePort     bool   `json:"shard_aware_port"`     // the client chose its shard by source port (19042/19142)
	TabletRoutingHints uint64 `json:"tablet_routing_hints"` // responses telling the driver it hit a non-owning node or shard
	// FromNode: this connection's OPTIONS/SUPPORTED was not captured; the
	// figures are what the node said on another connection.
	FromNode bool `json:"from_node,omitempty"`
}

// StmtReport describes one statement fingerprint.
type StmtReport struct {
	Statement string  `json:"statement"`
	Opcode    string  `json:"opcode"`
	LWT       bool    `json:"lwt,omitempty"` // a conditional statement (ScyllaDB marks them)
	Count     uint64  `json:"count"`
	Errors    uint64  `json:"errors"`
	TotalMS   float64 `json:"total_ms"`
	Latency   Latency `json:"latency_us"`
}

// OpReport describes one request opcode.
type OpReport struct {
	Opcode  string  `json:"opcode"`
	Count   uint64  `json:"count"`
	Errors  uint64  `json:"errors"`
	Latency Latency `json:"latency_us"`
}

// Bar is one bar of a latency histogram: Count values in (previous UpToUS, UpToUS].
type Bar struct {
	UpToUS int64 `json:"up_to_us"`
	Count  int64 `json:"count"`
}

// latBars counts latencies (µs) in the report's power-of-two bars, kept
// beside each latency histogram: the bars of a report are then a copy of
// 28 counters instead of a walk over the histogram's ~2,700 buckets, whose
// only allocation-free reading hdrhistogram lacks (Export and
// Distribution copy them all). Bar k counts the values whose histogram
// bucket ends at or below 2^k µs, as folding the histogram would.
type latBars [28]uint64

// add counts a latency already recorded in the histogram beside.
func (b *latBars) add(us int64) {
	if us > maxRecordable || us < 0 {
		return // the histogram refused it too
	}
	// The bucket of us (hdrhistogram.New(1, 1e8, 2): 256 sub-buckets,
	// unit 1) spans 2^i values from a multiple of 2^i; the bar is the
	// power of two at or above its top.
	i := max(bits.Len64(uint64(us)|255)-8, 0)
	to := us>>i<<i + 1<<i - 1
	b[min(bits.Len64(uint64(to-1)), len(b)-1)]++
}

func (b *latBars) merge(o *latBars) {
	for i := range b {
		b[i] += o[i]
	}
}

// list gives the bars, empty ones left out.
func (b *latBars) list() []Bar {
	var out []Bar
	for k, n := range b {
		if n > 0 {
			out = append(out, Bar{UpToUS: 1 << k, Count: int64(n)})
		}
	}
	return out
}

// maxRecordable is the largest latency (µs) the histograms hold.
var maxRecordable = func() int64 {
	h := hdrhistogram.New(1, 100_000_000, 2)
	lo, hi := int64(100_000_000), int64(1)<<40
	for lo < hi { // the largest v with RecordValue(v) == nil
		mid := lo + (hi-lo+1)/2
		if h.RecordValue(mid) == nil {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}()

// summarize gives a histogram's figures; max and sum, the exact maximum and
// sum of the latencies in ns (0 when unknown), replace the histogram's
// bucket-rounded max and mean.
func summarize(h *hdrhistogram.Histogram, b *latBars, max, sum int64) Latency {
	if h == nil || h.TotalCount() == 0 {
		return Latency{}
	}
	l := Latency{
		Count:     uint64(h.TotalCount()),
		P50:       float64(h.ValueAtQuantile(50)),
		P90:       float64(h.ValueAtQuantile(90)),
		P99:       float64(h.ValueAtQuantile(99)),
		P999:      float64(h.ValueAtQuantile(99.9)),
		Histogram: b.list(),
	}
	// The histogram's max and mean each walk every bucket: only when the
	// exact figures are not known.
	if max <= 0 {
		l.Max = float64(h.Max())
	}
	if sum <= 0 {
		l.Mean = round2(h.Mean())
	}
	if max > 0 {
		// The exact maximum; percentiles (bucket upper bounds) never exceed it.
		l.Max = round2(float64(max) / 1e3)
		l.P50, l.P90, l.P99, l.P999 = min(l.P50, l.Max), min(l.P90, l.Max), min(l.P99, l.Max), min(l.P999, l.Max)
	}
	if sum > 0 {
		l.Mean = round2(float64(sum) / 1e3 / float64(l.Count))
	}
	return l
}

func round2(f float64) float64 { return float64(int64(f*100+0.5)) / 100 }

func (c *conn) report() *ConnReport {
	cdir := c.cdir
	client, server := c.key.Endpoints(cdir)
	r := &ConnReport{
		ID:                  c.id,
		Client:              client.String(),
		Server:              server.String(),
		ProtocolVersion:     int(c.version),
		Compression:         c.compression.String(),
		CompressionInferred: c.compInferred,
		Driver:              c.driver,
		DriverVersion:       c.driverVersion,
		Keyspace:            c.keyspace,
		Encrypted:           c.tls,
		Requests:            c.requests,
		Responses:           c.answered,
		Errors:              c.errors,
		Unanswered:          uint64(c.pending.len()) + c.reused,
		OrphanResponses:     c.orphans,
		Events:              c.events,
		ErrorsByCode:        c.errorsByCode(),
		EventsByType:        c.eventsByType(),
		StreamReuse:         c.reused,
		Latency:             c.latency(),
		ClientSegments:      segmentStats(&c.w[cdir]),
		ServerSegments:      segmentStats(&c.w[cdir.Other()]),
		Start:               rfc3339(c.first),
		End:                 rfc3339(c.last),
		DurationS:           float64(c.last-c.first) / 1e9,
		Closed:              "open",
	}
	if c.compression == decode.CompressionUnknown {
		r.Compression = "none"
		if c.w[0].frames+c.w[1].frames == 0 {
			r.Compression = "unknown"
		}
	}
	if c.closed {
		r.Closed = c.closeReason.String()
	}
	switch {
	case c.scyllaSeen:
		r.Scylla = scyllaConn(c.scylla, false, c.tabletHints, client, server)
	case c.rolesKnown:
		// Its own SUPPORTED was not captured: another connection's to the
		// same node may be, by the time of the report (merger.withNode).
		r.nodeLookup, r.tabletHints = true, c.tabletHints
	}
	if c.requests > 0 {
		r.InFlight = InFlight{Mean: round2(float64(c.inflSum) / float64(c.requests)), Max: c.inflMax}
	}
	r.Timing = c.tm.report(c.answered, r.Latency.Mean)
	if r.Timing != nil && c.rolesKnown {
		r.Timing.PathToClientUS = round2(float64(c.w[c.cdir.Other()].ackDelay.min) / 1e3)
	}
	c.tlsReport(r)
	if r.DurationS > 0 {
		r.RequestsPerSec = round2(float64(c.requests) / r.DurationS)
	}
	r.rolesKnown, r.clientEP, r.serverEP, r.lastTS = c.rolesKnown, client, server, c.last
	r.diagnoses = c.diagnose(r)
	r.DiagnosisCodes = codes(r.diagnoses)
	return r
}

// CaptureInfo is what the pipeline tells the report about the capture
// source: its name, what it counted (capture.SourceStats), and the span of
// its clock.
type CaptureInfo struct {
	Name        string
	Packets     uint64
	Bytes       uint64
	Dropped     uint64
	TCP         uint64
	NotTCP      uint64
	Fragments   uint64
	Malformed   uint64
	Unsupported uint64
	Truncated   bool
	First, Last int64 // the first packet's time and the latest
	Elapsed     int64 // the capture's duration: the spans its clock ran forward
	ClockJumps  uint64
}

// Report builds the report of everything seen so far. Connections still
// open are included as they stand. Call it from the goroutine that feeds
// the analyzer.
func (a *Analyzer) Report(src CaptureInfo, asm capture.AssemblerStats) *Report {
	return a.rep.merge([]*part{a.part(asm, false)}, src)
}

// addStreamStats adds a direction's stream counters to dst.
func addStreamStats(dst *decode.StreamStats, s decode.StreamStats) {
	// The first boundary a direction finds is its start, not a resync:
	// the report's resyncs count only the later ones.
	s.Syncs = max(s.Syncs, 1) - 1
	addStreamTotals(dst, &s)
}

func (c *conn) errorsByCode() map[string]uint64 {
	if len(c.errCodes) == 0 {
		return nil
	}
	m := make(map[string]uint64, len(c.errCodes))
	for code, n := range c.errCodes {
		name := code.String()
		if code == -1 {
			name = "unreadable"
		}
		m[name] += n
	}
	return m
}

func (c *conn) eventsByType() map[string]uint64 {
	var m map[string]uint64
	for kind, n := range c.eventKinds {
		if n > 0 {
			if m == nil {
				m = make(map[string]uint64)
			}
			m[eventNames[kind]] = n
		}
	}
	return m
}

// latency summarizes the connection's latencies, from its histogram or, for
// the few answers kept before it needs one, from a pooled one made for the
// occasion.
func (c *conn) latency() Latency {
	h := c.hist
	if h == nil && c.nfew > 0 {
		h = c.a.newHist()
		defer c.a.freeHist(h)
		for _, v := range c.few[:c.nfew] {
			_ = h.RecordValue(v)
		}
	}
	return summarize(h, &c.bars, c.latMax, c.latSum)
}

// scyllaConn is what a ScyllaDB node said of a connection, or (fromNode)
// on another connection to the same node: the shard itself is then known
// only on a shard-aware port.
func scyllaConn(info decode.ScyllaInfo, fromNode bool, hints uint64, client, server capture.Endpoint) *ScyllaConn {
	if fromNode {
		info.Shard = -1
	}
	sc := &ScyllaConn{Shard: info.Shard, Shards: info.NrShards, ShardingAlgorithm: string(info.ShardingAlgorithm),
		TabletRoutingHints: hints, FromNode: fromNode}
	if server.Port == 19042 || server.Port == 19142 || (info.ShardAwarePort > 0 && int(server.Port) == info.ShardAwarePort) {
		// The shard-aware port routes by the client's source port.
		sc.ShardAwarePort = true
		if sc.Shards > 0 {
			sc.Shard = int(client.Port) % sc.Shards
		}
	}
	return sc
}
