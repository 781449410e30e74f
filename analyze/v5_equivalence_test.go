package analyze

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/pierrec/lz4/v4"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// The same simulated workload written as protocol v4 and as v5 differs
// only in envelope details and the v5 segment layer: the analyzer must find
// the same exchanges in both.

// exchange is one line of the exchange log, as far as it must not depend on
// the protocol version. Byte counts do (v5 bodies and framing are larger).
type exchange struct {
	TS         string  `json:"ts"`
	Client     string  `json:"client"`
	Stream     int     `json:"stream"`
	Opcode     string  `json:"opcode"`
	Statement  string  `json:"statement"`
	PreparedID string  `json:"prepared_id"`
	Result     string  `json:"result"`
	ErrorCode  string  `json:"error_code"`
	Rows       *int    `json:"rows"`
	LatencyUS  float64 `json:"latency_us"`
}

// key identifies an exchange across runs: a client's request at a time on a
// stream.
func (e exchange) key() string { return e.Client + " " + e.TS + " " + fmt.Sprint(e.Stream) }

// same compares what the brief of the log promises: stream, opcode,
// statement and result (plus error code, prepared id and row count).
func (e exchange) same(o exchange) bool {
	return e.Stream == o.Stream && e.Opcode == o.Opcode && e.Statement == o.Statement &&
		e.Result == o.Result && e.ErrorCode == o.ErrorCode && e.PreparedID == o.PreparedID &&
		(e.Rows == nil) == (o.Rows == nil) && (e.Rows == nil || *e.Rows == *o.Rows)
}

func (e exchange) String() string {
	rows := "-"
	if e.Rows != nil {
		rows = fmt.Sprint(*e.Rows)
	}
	return fmt.Sprintf("%s %s stream %d %s %q → %s%s rows %s", e.TS, e.Client, e.Stream, e.Opcode, e.Statement, e.Result, e.ErrorCode, rows)
}

// runLogged runs the pipeline over data with the exchange log on and
// returns the report and the exchanges ordered by client, then request time.
func runLogged(tb testing.TB, data []byte) (*Report, []exchange) {
	tb.Helper()
	var log bytes.Buffer
	cfg := DefaultConfig()
	cfg.Log = &log
	_, rep := runPipeline(tb, data, cfg)
	var ex []exchange
	sc := bufio.NewScanner(&log)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var e exchange
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			tb.Fatalf("log line %q: %v", sc.Text(), err)
		}
		ex = append(ex, e)
	}
	// RFC 3339 with nanoseconds trims trailing zeros: compare as times.
	at := func(e exchange) int64 {
		t, err := time.Parse(time.RFC3339Nano, e.TS)
		if err != nil {
			tb.Fatal(err)
		}
		return t.UnixNano()
	}
	slices.SortStableFunc(ex, func(a, b exchange) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(at(a), at(b)), cmp.Compare(a.Stream, b.Stream))
	})
	return rep, ex
}

// byClient splits ordered exchanges per connection.
func byClient(ex []exchange) map[string][]exchange {
	m := map[string][]exchange{}
	for _, e := range ex {
		m[e.Client] = append(m[e.Client], e)
	}
	return m
}

// v5Base is a small but busy workload: many requests in flight, jittered
// service times (answers out of order), server batching, some errors.
func v5Base() synth.Config {
	return synth.Config{
		Connections: 3, Requests: 400, InFlight: 16, ClientBatch: 1, ServerBatch: 8, Autocork: 0.25,
		ServiceTime: 100 * time.Microsecond, WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond,
		ErrorRate: 0.05, RowsSize: 300, Seed: 11,
	}
}

var v5Cases = []struct {
	name string
	mod  func(*synth.Config)
}{
	{"execute-unbuffered-handshake", func(c *synth.Config) { c.Handshake = true }},
	{"execute-unbuffered-lz4-handshake-big-rows", func(c *synth.Config) {
		c.Handshake, c.Compression, c.RowsSize, c.Requests = true, "lz4", 200000, 150
	}},
	{"query-buffered-handshake-big-rows", func(c *synth.Config) {
		c.Mix, c.ClientBatch, c.ClientFlush, c.Handshake, c.RowsSize, c.Requests = synth.MixQuery, 16, 200*time.Microsecond, true, 200000, 150
	}},
	{"mixed-buffered-lz4-handshake", func(c *synth.Config) {
		c.Mix, c.ClientBatch, c.ClientFlush, c.Compression, c.Handshake = synth.MixMixed, 16, 200*time.Microsecond, "lz4", true
	}},
	{"mixed-unbuffered-midstream", func(c *synth.Config) { c.Mix = synth.MixMixed }},
	{"execute-buffered-lz4-midstream-big-rows", func(c *synth.Config) {
		c.ClientBatch, c.ClientFlush, c.Compression, c.RowsSize, c.Requests = 16, 200*time.Microsecond, "lz4", 200000, 150
	}},
	{"query-unbuffered-lz4-midstream", func(c *synth.Config) { c.Mix, c.Compression = synth.MixQuery, "lz4" }},
	{"mixed-buffered-midstream-big-rows", func(c *synth.Config) {
		c.Mix, c.ClientBatch, c.ClientFlush, c.RowsSize, c.Requests = synth.MixMixed, 16, 200*time.Microsecond, 200000, 150
	}},
}

// midstreamSkip is how many leading exchanges per connection a v5 capture
// that starts mid-connection may miss while the decoder hunts for segment
// boundaries by CRC24.
const midstreamSkip = 3

func TestV5Equivalence(t *testing.T) {
	for _, tc := range v5Cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := v5Base()
			tc.mod(&cfg)
			cfg.Protocol = 4
			d4, st4 := genCapture(t, cfg)
			cfg.Protocol = 5
			d5, st5 := genCapture(t, cfg)
			if st4.Requests != st5.Requests || st4.Responses != st5.Responses {
				t.Fatalf("generator: v4 %d/%d frames, v5 %d/%d", st4.Requests, st4.Responses, st5.Requests, st5.Responses)
			}
			if cfg.RowsSize > decode.MaxSegmentPayload && st5.ServerV5 <= st5.ServerWrites {
				t.Fatalf("no result spans v5 segments: %d segments for %d server writes", st5.ServerV5, st5.ServerWrites)
			}
			r4, ex4 := runLogged(t, d4)
			r5, ex5 := runLogged(t, d5)

			// Totals and the v4 baseline itself.
			if r4.Totals.Requests != uint64(st4.Requests) || r4.Totals.Responses != uint64(st4.Responses) {
				t.Errorf("v4: %d requests, %d responses; generated %d", r4.Totals.Requests, r4.Totals.Responses, st4.Requests)
			}
			if r5.Capture.V5SegmentErrors != 0 {
				t.Errorf("v5: %d segment errors in a clean capture", r5.Capture.V5SegmentErrors)
			}
			if want := uint64(st5.ClientV5 + st5.ServerV5); r5.Capture.V5Segments != want {
				t.Errorf("v5: report counts %d v5 segments, generated %d", r5.Capture.V5Segments, want)
			}
			if cfg.Handshake {
				if r4.Totals.Requests != r5.Totals.Requests || r4.Totals.Responses != r5.Totals.Responses || r4.Totals.Errors != r5.Totals.Errors {
					t.Errorf("totals: v4 %d requests %d responses %d errors, v5 %d %d %d",
						r4.Totals.Requests, r4.Totals.Responses, r4.Totals.Errors, r5.Totals.Requests, r5.Totals.Responses, r5.Totals.Errors)
				}
			}

			// Exchanges, per connection in request order.
			c4, c5 := byClient(ex4), byClient(ex5)
			if len(c4) != cfg.Connections || len(c5) != cfg.Connections {
				t.Fatalf("exchanges on %d (v4) and %d (v5) connections, want %d", len(c4), len(c5), cfg.Connections)
			}
			for client, l4 := range c4 {
				l5 := c5[client]
				skip := len(l4) - len(l5)
				switch {
				case cfg.Handshake && skip != 0:
					t.Errorf("%s: %d exchanges in v4, %d in v5", client, len(l4), len(l5))
					continue
				case skip < 0 || skip > midstreamSkip:
					t.Errorf("%s: %d exchanges in v4, %d in v5 (at most %d may be missed mid-stream)", client, len(l4), len(l5), midstreamSkip)
					continue
				}
				for i, e5 := range l5 {
					e4 := l4[i+skip]
					// The simulation sends the same writes at the same
					// instants in both captures, so times match too.
					if !e4.same(e5) || e4.TS != e5.TS || e4.LatencyUS != e5.LatencyUS {
						t.Errorf("%s exchange %d:\nv4 %v (%.3fµs)\nv5 %v (%.3fµs)", client, i+skip, e4, e4.LatencyUS, e5, e5.LatencyUS)
						break
					}
				}
			}

			// Per connection: diagnoses, version, two-layer batching.
			conns4 := map[string]*ConnReport{}
			for _, cr := range r4.Connections {
				conns4[cr.Client] = cr
			}
			for _, cr := range r5.Connections {
				cr4 := conns4[cr.Client]
				if cr4 == nil {
					t.Errorf("v5 connection %s not in v4", cr.Client)
					continue
				}
				if !slices.Equal(cr.DiagnosisCodes, cr4.DiagnosisCodes) {
					t.Errorf("%s: diagnoses v4 %q, v5 %q", cr.Client, cr4.DiagnosisCodes, cr.DiagnosisCodes)
				}
				if cr.ProtocolVersion != 5 || cr4.ProtocolVersion != 4 {
					t.Errorf("%s: protocol_version %d (v5 capture), %d (v4 capture)", cr.Client, cr.ProtocolVersion, cr4.ProtocolVersion)
				}
				if cr.ClientSegments.V5 == nil || cr.ServerSegments.V5 == nil {
					t.Errorf("%s: client_segments.v5 %v, server_segments.v5 %v", cr.Client, cr.ClientSegments.V5, cr.ServerSegments.V5)
				} else if fps := cr.ClientSegments.V5.FramesPerV5Segment; cfg.ClientBatch == 1 && (fps < 1 || fps > 1.02) {
					// 1, but the ratio also counts the unframed OPTIONS
					// and STARTUP of a captured handshake.
					t.Errorf("%s: unbuffered client: %.2f envelopes per v5 segment", cr.Client, fps)
				}
				if cr4.ClientSegments.V5 != nil {
					t.Errorf("%s: v4 connection with client_segments.v5", cr.Client)
				}
				if cfg.Handshake && cr.Compression != cmp.Or(cfg.Compression, "none") {
					t.Errorf("%s: compression %q, want %q", cr.Client, cr.Compression, cmp.Or(cfg.Compression, "none"))
				}
			}
			t.Logf("%d exchanges; v5: %d segments, %d packets (v4 %d)", len(ex5), r5.Capture.V5Segments, st5.Packets, st4.Packets)
		})
	}
}

// TestV5CorruptSegment flips one byte inside the payload of one v5
// segment of the server direction: the decoder must drop what that segment
// carries (its CRC32 fails), count it, and read everything else as before.
// A corrupted self-contained segment loses its envelopes; a corrupted later
// slice loses the one envelope it is part of (§8.5).
func TestV5CorruptSegment(t *testing.T) {
	for _, tc := range []struct {
		comp  string
		slice bool // corrupt the second slice of a large envelope
	}{{"", false}, {"lz4", false}, {"", true}, {"lz4", true}} {
		t.Run(fmt.Sprintf("compression=%s/slice=%v", cmp.Or(tc.comp, "none"), tc.slice), func(t *testing.T) {
			cfg := v5Base()
			cfg.Protocol, cfg.Handshake, cfg.Compression, cfg.Mix = 5, true, tc.comp, synth.MixMixed
			if tc.slice {
				cfg.RowsSize, cfg.Requests = 200000, 150
			}
			data, _ := genCapture(t, cfg)
			_, clean := runLogged(t, data)

			bad := bytes.Clone(data)
			client, streams := corruptServerSegment(t, bad, tc.comp == "lz4", tc.slice, 40)
			rep, ex := runLogged(t, bad)

			if rep.Capture.V5SegmentErrors < 1 {
				t.Errorf("v5_segment_errors %d after corrupting a segment", rep.Capture.V5SegmentErrors)
			}
			want := map[string]exchange{}
			for _, e := range clean {
				want[e.key()] = e
			}
			for _, e := range ex {
				w, ok := want[e.key()]
				switch {
				case !ok:
					t.Errorf("exchange not in the clean capture: %v", e)
				case !w.same(e):
					t.Errorf("exchange differs:\nclean   %v\ncorrupt %v", w, e)
				}
				delete(want, e.key())
			}
			// What is left is what the corrupted segment carried.
			var lost []int
			for _, e := range want {
				if e.Client != client {
					t.Errorf("lost an exchange of another connection: %v", e)
				}
				lost = append(lost, e.Stream)
			}
			slices.Sort(lost)
			slices.Sort(streams)
			if !slices.Equal(lost, streams) {
				t.Errorf("lost exchanges on streams %v, the corrupted segment answered streams %v", lost, streams)
			}
			t.Logf("corrupted a segment of %s answering streams %v; v5_segment_errors %d", client, streams, rep.Capture.V5SegmentErrors)
		})
	}
}

// corruptServerSegment flips a payload byte of the nth self-contained v5
// segment (slice: of the nth slice after a first one) that the server sends
// on the first connection of the capture (classic pcap, as synth writes
// it), and returns that connection's client address and the stream ids of
// the responses the segment carries (part of).
func corruptServerSegment(t *testing.T, data []byte, lz, slice bool, nth int) (string, []int) {
	t.Helper()
	// Reassemble the server's byte stream, remembering where each byte
	// lives in the file. The generator never reorders or retransmits.
	var stream []byte
	var where []int // file offset of stream[i]
	client := ""
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		pkt := data[off+16 : off+16+n]
		off += 16 + n
		ip := pkt[14:]
		tcp := ip[int(ip[0]&0x0F)*4:]
		sport, dport := binary.BigEndian.Uint16(tcp[0:]), binary.BigEndian.Uint16(tcp[2:])
		payload := tcp[int(tcp[12]>>4)*4 : int(binary.BigEndian.Uint16(ip[2:]))-int(ip[0]&0x0F)*4]
		if sport != 9042 || len(payload) == 0 {
			continue
		}
		to := fmt.Sprintf("%d.%d.%d.%d:%d", ip[16], ip[17], ip[18], ip[19], dport)
		if client == "" {
			client = to
		}
		if to != client {
			continue
		}
		base := off - n + (len(pkt) - len(tcp)) + int(tcp[12]>>4)*4
		for i := range payload {
			where = append(where, base+i)
		}
		stream = append(stream, payload...)
	}
	// SUPPORTED and READY are unframed (§8.1); segments follow.
	pos := 0
	for range 2 {
		pos += decode.HeaderLen + int(binary.BigEndian.Uint32(stream[pos+5:]))
	}
	seen := 0
	large, largeStream := 0, 0 // bytes of a sliced envelope still to come, its stream
	for pos < len(stream) {
		var h decode.SegmentHeader
		if decode.ParseSegmentHeader(stream[pos:], lz, &h) <= 0 {
			t.Fatalf("no v5 segment header at offset %d of the server stream", pos)
		}
		payload := stream[pos+h.Size : pos+h.Size+h.Length]
		plain := payload
		if h.Uncompressed > 0 {
			plain = make([]byte, h.Uncompressed)
			if _, err := lz4.UncompressBlock(payload, plain); err != nil {
				t.Fatal(err)
			}
		}
		var streams []int
		switch {
		case h.SelfContained:
			for p := 0; p < len(plain); p += decode.HeaderLen + int(binary.BigEndian.Uint32(plain[p+5:])) {
				streams = append(streams, int(int16(binary.BigEndian.Uint16(plain[p+2:]))))
			}
		case large == 0: // first slice
			large = decode.HeaderLen + int(binary.BigEndian.Uint32(plain[5:])) - len(plain)
			largeStream = int(int16(binary.BigEndian.Uint16(plain[2:])))
		default:
			large -= len(plain)
			streams = []int{largeStream}
		}
		if h.SelfContained != slice && len(streams) > 0 {
			if seen++; seen == nth {
				data[where[pos+h.Size+h.Length/2]] ^= 0x5A
				return client, streams
			}
		}
		pos += h.Size + h.Length + 4
	}
	t.Fatalf("the server sent fewer than %d segments of the kind wanted", nth)
	return "", nil
}

// BenchmarkPipelineV5 compares the packet rate of the pipeline on the same
// unbuffered traffic as v4 and as v5 (one v5 segment per envelope on the
// client side: the worst case for the segment layer).
func BenchmarkPipelineV5(b *testing.B) {
	for _, comp := range []string{"", "lz4"} {
		for _, proto := range []int{4, 5} {
			cfg := synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, ServerBatch: 16, Autocork: 0.25,
				WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond,
				Compression: comp, Protocol: proto, Seed: 1}
			data, st := genCapture(b, cfg)
			b.Run(fmt.Sprintf("unbuffered-execute%s/v%d", map[string]string{"lz4": "-lz4"}[comp], proto), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				b.ReportAllocs()
				for b.Loop() {
					src, err := capture.NewReaderSource(bytes.NewReader(data))
					if err != nil {
						b.Fatal(err)
					}
					p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig())
					if err := p.Run(context.Background(), 0); err != nil {
						b.Fatal(err)
					}
					p.Finish()
				}
				b.ReportMetric(float64(st.Packets)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpkt/s")
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Packets)/float64(b.N), "ns/pkt")
			})
		}
	}
}
