package analyze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// genCapture makes a synthetic capture in memory.
func genCapture(tb testing.TB, cfg synth.Config) ([]byte, synth.Stats) {
	tb.Helper()
	var buf bytes.Buffer
	st, err := synth.Write(&buf, cfg)
	if err != nil {
		tb.Fatal(err)
	}
	return buf.Bytes(), st
}

// TestSyntheticVerdicts runs the diagnosis over generated traffic whose
// write pattern is known exactly. (The real-driver captures in pcaps/ are
// the stronger check: see TestVerdicts.)
func TestSyntheticVerdicts(t *testing.T) {
	base := synth.Config{Connections: 2, Requests: 3000, InFlight: 64, ServerBatch: 16, Autocork: 0.25,
		WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Seed: 7}
	cases := []struct {
		name   string
		mod    func(c *synth.Config)
		client string
		server string
	}{
		{"unbuffered client", func(c *synth.Config) { c.ClientBatch = 1 }, CodeClientUnbuffered, ""},
		{"buffered client", func(c *synth.Config) { c.ClientBatch = 64; c.ClientFlush = 200 * time.Microsecond }, "", ""},
		{"buffered client flushing at once", func(c *synth.Config) { c.ClientBatch = 64 }, "", ""},
		{"one request in flight", func(c *synth.Config) { c.ClientBatch = 1; c.InFlight = 1 }, "", ""},
		{"nagle", func(c *synth.Config) { c.ClientBatch = 1; c.Nagle = true }, CodeClientNagle, ""},
		{"unbuffered server", func(c *synth.Config) { c.ClientBatch = 64; c.ClientFlush = 200 * time.Microsecond; c.ServerBatch = 1 }, "", CodeServerUnbuffered},
		{"unbuffered lz4", func(c *synth.Config) { c.ClientBatch = 1; c.Compression = "lz4" }, CodeClientUnbuffered, ""},
		{"buffered snappy with handshake", func(c *synth.Config) {
			c.ClientBatch = 64
			c.ClientFlush = 200 * time.Microsecond
			c.Compression = "snappy"
			c.Handshake = true
		}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := base
			c.mod(&cfg)
			data, st := genCapture(t, cfg)
			_, rep := runPipeline(t, data, DefaultConfig())
			if rep.Totals.Requests != uint64(st.Requests) || rep.Totals.Responses != uint64(st.Responses) {
				t.Errorf("requests %d responses %d, generated %d / %d", rep.Totals.Requests, rep.Totals.Responses, st.Requests, st.Responses)
			}
			for _, cr := range rep.Connections {
				var cl, sv string
				for _, code := range cr.DiagnosisCodes {
					if code == CodeServerUnbuffered {
						sv = code
					} else {
						cl = code
					}
				}
				if cl != c.client || sv != c.server {
					t.Errorf("%s: client %q server %q, want %q %q\n%+v\n%+v", cr.Client, cl, sv, c.client, c.server, cr.ClientSegments, cr.ServerSegments)
				}
			}
		})
	}
}

// TestPipelineNoAllocs: the steady state allocates nothing per packet.
func TestPipelineNoAllocs(t *testing.T) {
	for _, c := range []struct {
		name        string
		protocol    int
		compression string
	}{
		{"v4", 4, ""}, {"v4 lz4", 4, "lz4"}, {"v4 snappy", 4, "snappy"},
		{"v5", 5, ""}, {"v5 lz4", 5, "lz4"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := synth.Config{Connections: 4, Requests: 20000, InFlight: 32, ClientBatch: 1, ServerBatch: 8,
				WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 50 * time.Microsecond,
				Mix: synth.MixMixed, Seed: 3, Protocol: c.protocol, Compression: c.compression}
			data, _ := genCapture(t, cfg)
			src, err := capture.NewReaderSource(bytes.NewReader(data))
			if err != nil {
				t.Fatal(err)
			}
			p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig())
			// Warm up: connections, statements, histograms and buffers get made.
			if err := p.Run(context.Background(), 20000); err != nil {
				t.Fatal(err)
			}
			limit := uint64(20000)
			allocs := testing.AllocsPerRun(5, func() {
				limit += 5000
				if err := p.Run(context.Background(), limit); err != nil {
					t.Fatal(err)
				}
			})
			if perPacket := allocs / 5000; perPacket > 0.001 {
				t.Fatalf("%.1f allocations per 5000 packets", allocs)
			}
		})
	}
}

// BenchmarkPipeline measures the whole path (pcap records → TCP
// reassembly → CQL frames → pairing, histograms, batching) on one core
// over unbuffered small-frame traffic, the worst case for packet rate.
func BenchmarkPipeline(b *testing.B) {
	for _, bc := range []struct {
		name string
		cfg  synth.Config
	}{
		{"unbuffered-execute", synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, ServerBatch: 16, Autocork: 0.25,
			WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Seed: 1}},
		{"buffered-mixed", synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 64, ClientFlush: 200 * time.Microsecond,
			ServerBatch: 16, WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Mix: synth.MixMixed, RowsSize: 300, Seed: 1}},
		{"unbuffered-lz4", synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, ServerBatch: 16, Autocork: 0.25,
			WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Compression: "lz4", Seed: 1}},
	} {
		data, st := genCapture(b, bc.cfg)
		b.Run(bc.name+"/minimal-reader", func(b *testing.B) {
			// The yardstick of the issue: walk the pcap records and the
			// Ethernet/IPv4/TCP headers to the first CQL byte, nothing else.
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				br := bufio.NewReaderSize(bytes.NewReader(data), 1<<20)
				br.Discard(24)
				sum := 0
				for {
					hdr, err := br.Peek(16)
					if err != nil {
						break
					}
					n := int(binary.LittleEndian.Uint32(hdr[8:12]))
					br.Discard(16)
					rec, _ := br.Peek(n)
					if len(rec) >= 34 && binary.BigEndian.Uint16(rec[12:14]) == 0x0800 && rec[23] == 6 {
						tcp := 14 + int(rec[14]&0x0F)*4
						if off := tcp + int(rec[tcp+12]>>4)*4; off < len(rec) {
							sum += int(rec[off])
						}
					}
					br.Discard(n)
				}
				if sum == 0 {
					b.Fatal("no CQL byte seen")
				}
			}
			b.ReportMetric(float64(st.Packets)*float64(b.N)/b.Elapsed().Seconds()/1e6, "Mpkt/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Packets)/float64(b.N), "ns/pkt")
		})
		b.Run(bc.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
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

// TestSnapshots: a reader's request is answered by the pipeline goroutine
// at its next packet with an immutable report.
func TestSnapshots(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 2, Requests: 500, InFlight: 4, Seed: 2})
	src, err := capture.NewReaderSource(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig(), Name("snap"))
	if p.Snapshots().Latest() != nil {
		t.Fatal("a report before any was asked for")
	}
	p.Snapshots().Request()
	if err := p.Run(context.Background(), uint64(st.Packets/2)); err != nil {
		t.Fatal(err)
	}
	first := p.Snapshots().Latest()
	if first == nil || first.Source != "snap" {
		t.Fatalf("no snapshot published: %+v", first)
	}
	p.Snapshots().Request()
	if err := p.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	p.Publish()
	last := p.Snapshots().Latest()
	if last == first || last.Totals.Requests <= first.Totals.Requests {
		t.Errorf("snapshots did not advance: %d then %d requests", first.Totals.Requests, last.Totals.Requests)
	}
}

// TestCompressionGuessed: without STARTUP in the capture, the algorithm is
// found from the first compressed body and every body is decoded.
func TestCompressionGuessed(t *testing.T) {
	for _, comp := range []string{"lz4", "snappy"} {
		data, st := genCapture(t, synth.Config{Connections: 2, Requests: 300, InFlight: 8, Compression: comp, Mix: synth.MixMixed, Seed: 5})
		_, rep := runPipeline(t, data, DefaultConfig())
		if rep.Totals.Requests != uint64(st.Requests) || rep.Capture.DecompressErr != 0 {
			t.Errorf("%s: requests %d of %d, decompression errors %d", comp, rep.Totals.Requests, st.Requests, rep.Capture.DecompressErr)
		}
		for _, c := range rep.Connections {
			if c.Compression != comp || !c.CompressionInferred {
				t.Errorf("%s: connection says %q (inferred %v)", comp, c.Compression, c.CompressionInferred)
			}
		}
		for _, s := range rep.Statements {
			if strings.Contains(s.Statement, "undecodable") {
				t.Errorf("%s: %q", comp, s.Statement)
			}
		}
	}
}

// TestClosedConnections: a connection ended by FIN says so, and beyond
// MaxClosed the most recent closed connections are listed while the totals
// still count every one.
func TestClosedConnections(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 6, Requests: 50, InFlight: 2, Handshake: true, Seed: 9})
	cfg := DefaultConfig()
	cfg.MaxClosed = 4
	_, rep := runPipeline(t, data, cfg)
	if len(rep.Connections) != 4 || rep.Totals.Connections != 6 || rep.Totals.NotListed != 2 {
		t.Fatalf("%d listed, totals %+v", len(rep.Connections), rep.Totals)
	}
	for _, c := range rep.Connections {
		if c.Closed != "fin" {
			t.Errorf("%s closed %q, want fin", c.Client, c.Closed)
		}
		if c.ID <= 2 {
			t.Errorf("connection %d listed, but only the 4 most recent should be", c.ID)
		}
	}
}

// TestMaxPending: a connection never holds more than MaxPending outstanding
// requests; the rest are not paired (and not counted), and the analysis
// goes on.
func TestMaxPending(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 1, Requests: 2000, InFlight: 64, ClientBatch: 1,
		ServerBatch: 16, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Seed: 3})
	cfg := DefaultConfig()
	_, full := runPipeline(t, data, cfg)
	cfg.MaxPending = 8
	_, capped := runPipeline(t, data, cfg)
	if len(full.Connections) != 1 || len(capped.Connections) != 1 {
		t.Fatalf("connections: %d and %d, want 1", len(full.Connections), len(capped.Connections))
	}
	f, c := full.Connections[0], capped.Connections[0]
	if f.InFlight.Max <= 8 || f.Requests != uint64(st.Requests) {
		t.Fatalf("uncapped: in flight max %d, %d requests of %d; the test needs more than 8 in flight", f.InFlight.Max, f.Requests, st.Requests)
	}
	if c.InFlight.Max != 8 {
		t.Errorf("capped at 8: in flight max %d", c.InFlight.Max)
	}
	if c.Requests >= f.Requests || c.Requests < 8 {
		t.Errorf("capped at 8: %d requests paired of %d", c.Requests, f.Requests)
	}
	if c.Responses > c.Requests {
		t.Errorf("capped: %d responses for %d requests", c.Responses, c.Requests)
	}
}

// TestClockJumps: a file spliced from captures with other clocks lasts the
// sum of its spans, not the distance between its extreme times; small steps
// back (reordering) change nothing.
func TestClockJumps(t *testing.T) {
	const s = int64(time.Second)
	var c clock
	for _, ts := range []int64{
		1450889498 * s, 1450889498*s + s/100, 1450889498*s + s/200, // 10 ms, a 5 ms step back
		69 * s, 69*s + s/50, // a jump back 45 years, then 20 ms
		29 * s, 29*s + s/1000, // another, then 1 ms
	} {
		c.tick(ts)
	}
	first, _, got, jumps := c.span()
	if want := s/100 + s/50 + s/1000; got != want || jumps != 2 {
		t.Errorf("elapsed %v with %d jumps, want %v with 2", time.Duration(got), jumps, time.Duration(want))
	}
	if first != 1450889498*s {
		t.Errorf("first %d", first)
	}
}
