package synth

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/gopacket/gopacket/pcapgo"
)

// base is a small workload with everything that makes pairing interesting:
// many requests in flight, jittered service times, server batching.
func base() Config {
	return Config{
		Connections: 3,
		Requests:    300,
		InFlight:    16,
		ClientBatch: 1,
		ServerBatch: 8,
		Autocork:    0.25,
		ServiceTime: 100 * time.Microsecond,
		WriteGap:    3 * time.Microsecond,
		RTT:         10 * time.Microsecond,
		RowsSize:    200,
		Seed:        7,
	}
}

var cases = []struct {
	name string
	mod  func(*Config)
}{
	{"unbuffered", func(c *Config) {}},
	{"buffered", func(c *Config) { c.ClientBatch, c.ClientFlush = 16, 200*time.Microsecond }},
	{"buffered-flush0", func(c *Config) { c.ClientBatch = 8 }},
	{"nagle", func(c *Config) { c.Nagle = true }},
	{"server-unbatched", func(c *Config) { c.ServerBatch, c.Autocork = 1, 0 }},
	{"handshake-lz4-mixed-errors-big-rows", func(c *Config) {
		c.Handshake, c.Compression, c.Mix, c.ErrorRate, c.RowsSize = true, "lz4", MixMixed, 0.2, 150000
	}},
	{"snappy-query-small-mss", func(c *Config) {
		c.Compression, c.Mix, c.MSS, c.RowsSize = "snappy", MixQuery, 1000, 5000
	}},
	{"handshake-nagle-zero-delays", func(c *Config) {
		c.Handshake, c.Nagle, c.RTT, c.WriteGap, c.ServiceTime = true, true, 0, 0, 0
	}},
	{"one-request", func(c *Config) { c.Requests, c.InFlight, c.Handshake = 1, 4, true }},

	// Protocol v5: segments after STARTUP/READY, or from the first byte
	// mid-connection; RowsSize above 131071 makes envelopes span segments.
	{"v5-unbuffered", func(c *Config) { c.Protocol = 5 }},
	{"v5-buffered-handshake", func(c *Config) {
		c.Protocol, c.Handshake, c.ClientBatch, c.ClientFlush = 5, true, 16, 200*time.Microsecond
	}},
	{"v5-handshake-lz4-mixed-errors-big-rows", func(c *Config) {
		c.Protocol, c.Handshake, c.Compression, c.Mix, c.ErrorRate, c.RowsSize = 5, true, "lz4", MixMixed, 0.2, 200000
	}},
	{"v5-lz4-query-small-mss-big-rows", func(c *Config) {
		c.Protocol, c.Compression, c.Mix, c.MSS, c.RowsSize = 5, "lz4", MixQuery, 1000, 300000
	}},
	{"v5-server-writes-over-one-segment", func(c *Config) { c.Protocol, c.RowsSize, c.ServerBatch = 5, 40000, 16 }},
	{"v5-handshake-nagle-zero-delays", func(c *Config) {
		c.Protocol, c.Handshake, c.Nagle, c.RTT, c.WriteGap, c.ServiceTime = 5, true, true, 0, 0, 0
	}},
	{"v5-one-request-lz4", func(c *Config) { c.Protocol, c.Compression, c.Requests, c.InFlight, c.Handshake = 5, "lz4", 1, 4, true }},
}

// TestCaptureIsConsistent checks every case packet by packet, byte by byte
// and frame by frame.
func TestCaptureIsConsistent(t *testing.T) {
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base()
			tc.mod(&cfg)
			st, out := generate(t, cfg)
			res := check(t, cfg, out)
			if err := cfg.normalize(); err != nil {
				t.Fatal(err)
			}

			hs := 0
			if cfg.Handshake {
				hs = 2 // OPTIONS, STARTUP
			}
			wantReq := (cfg.Requests + hs) * cfg.Connections
			if res.requests != wantReq || st.Requests != wantReq {
				t.Errorf("request frames: decoded %d, Stats %d, want %d", res.requests, st.Requests, wantReq)
			}
			if res.responses != wantReq || st.Responses != wantReq {
				t.Errorf("response frames: decoded %d, Stats %d, want %d", res.responses, st.Responses, wantReq)
			}
			if st.Packets != res.packets || st.DataSegments != res.data ||
				st.ClientSegments != res.seg[cli] || st.ServerSegments != res.seg[srv] {
				t.Errorf("Stats %+v disagree with the capture: packets %d, data %d, client %d, server %d",
					st, res.packets, res.data, res.seg[cli], res.seg[srv])
			}
			if st.Bytes != int64(len(out)) {
				t.Errorf("Stats.Bytes %d, wrote %d", st.Bytes, len(out))
			}
			if cfg.Handshake && (res.syn != cfg.Connections || res.fin != 2*cfg.Connections) {
				t.Errorf("handshake: %d SYN-ACKs and %d FINs for %d connections", res.syn, res.fin, cfg.Connections)
			}
			if !cfg.Handshake && res.syn+res.fin != 0 {
				t.Errorf("mid-connection capture has %d SYN and %d FIN", res.syn, res.fin)
			}
			if cfg.Nagle && res.nagleViolations != 0 {
				t.Errorf("%d small client segments sent with client data unacknowledged", res.nagleViolations)
			}
			if cfg.ClientBatch == 1 && st.ClientWrites != st.Requests {
				t.Errorf("unbuffered client made %d writes for %d frames", st.ClientWrites, st.Requests)
			}
			if cfg.ClientBatch > 1 && st.ClientWrites >= st.Requests {
				t.Errorf("buffered client made %d writes for %d frames", st.ClientWrites, st.Requests)
			}
			if cfg.ServerBatch == 1 && st.ServerWrites != st.Responses {
				t.Errorf("ServerBatch 1 made %d writes for %d responses", st.ServerWrites, st.Responses)
			}
			if cfg.InFlight > 1 && cfg.Requests > 100 && cfg.ServiceTime > 0 && res.outOfOrder == 0 {
				t.Error("no response overtook an earlier request")
			}
			if cfg.RowsSize > cfg.MSS && res.spanning == 0 {
				t.Error("no frame spans segments although RowsSize > MSS")
			}
			if cfg.ErrorRate > 0 && res.errors == 0 {
				t.Error("no ERROR frames")
			}
			if st.ClientV5 != res.v5segs[cli] || st.ServerV5 != res.v5segs[srv] {
				t.Errorf("Stats count %d/%d v5 segments, capture has %d/%d", st.ClientV5, st.ServerV5, res.v5segs[cli], res.v5segs[srv])
			}
			if cfg.Protocol == 5 {
				checkV5(t, cfg, st, res)
			}
			t.Logf("%+v; out of order %d, spanning %d, errors %d; v5: sliced %d (%d envelopes), lz4 compressed %d, as is %d",
				st, res.outOfOrder, res.spanning, res.errors, res.sliced, res.sliceEnv, res.lz4Comp, res.lz4As)
		})
	}
}

// checkV5 checks what a v5 capture's segments say about the writes that
// made them: one self-contained segment per write of small envelopes, more
// when a write exceeds a segment, slices for envelopes beyond 131071 bytes.
func checkV5(t *testing.T, cfg Config, st Stats, res result) {
	t.Helper()
	hs := 0
	if cfg.Handshake {
		hs = 2 * cfg.Connections // OPTIONS and STARTUP writes, SUPPORTED and READY writes
	}
	// Requests are small: one segment per framed client write.
	if st.ClientV5 != st.ClientWrites-hs {
		t.Errorf("%d client v5 segments for %d framed writes", st.ClientV5, st.ClientWrites-hs)
	}
	switch big := cfg.RowsSize + cfg.RowsSize/2; {
	case big+1024 < maxSegPayload/cfg.ServerBatch:
		if st.ServerV5 != st.ServerWrites-hs {
			t.Errorf("%d server v5 segments for %d framed writes", st.ServerV5, st.ServerWrites-hs)
		}
	case st.ServerV5 <= st.ServerWrites-hs:
		t.Errorf("%d server v5 segments for %d framed writes of up to %d bytes", st.ServerV5, st.ServerWrites-hs, big*cfg.ServerBatch)
	}
	if cfg.RowsSize > maxSegPayload && (res.sliced == 0 || res.sliceEnv == 0) {
		t.Errorf("RowsSize %d but no envelope sliced", cfg.RowsSize)
	}
	if cfg.Compression == "lz4" && cfg.Requests > 1 && (res.lz4Comp == 0 || res.lz4As == 0) {
		t.Errorf("lz4: %d compressed and %d stored segments, want some of each", res.lz4Comp, res.lz4As)
	}
}

// TestBatchingShowsInSegments checks the property the analyzer diagnoses:
// unbuffered clients send about one frame per segment, buffered ones many.
func TestBatchingShowsInSegments(t *testing.T) {
	cfg := base()
	cfg.Autocork = 0
	cfg.Requests = 2000
	cfg.InFlight = 64
	un, _ := generate(t, cfg)
	if r := float64(un.Requests) / float64(un.ClientSegments); r != 1 {
		t.Errorf("unbuffered, no autocork: %.2f frames per client segment, want 1", r)
	}
	cfg.Autocork = 0.25
	ac, _ := generate(t, cfg)
	if r := float64(ac.Requests) / float64(ac.ClientSegments); r <= 1.05 || r > 1.6 {
		t.Errorf("unbuffered, autocork 0.25: %.2f frames per client segment", r)
	}
	cfg.ClientBatch, cfg.ClientFlush = 64, 200*time.Microsecond
	bu, _ := generate(t, cfg)
	if r := float64(bu.Requests) / float64(bu.ClientSegments); r < 4 {
		t.Errorf("buffered: %.2f frames per client segment, want ≥ 4", r)
	}
	cfg.ClientBatch, cfg.Nagle = 1, true
	na, _ := generate(t, cfg)
	if r := float64(na.Requests) / float64(na.ClientSegments); r < 4 || na.ClientWrites != na.Requests {
		t.Errorf("Nagle: %.2f frames per client segment, %d writes for %d frames", r, na.ClientWrites, na.Requests)
	}
}

// TestNagleCheckDetects makes sure the Nagle invariant is not vacuous: a
// client with TCP_NODELAY does send with data outstanding.
func TestNagleCheckDetects(t *testing.T) {
	cfg := base()
	_, out := generate(t, cfg)
	if res := check(t, cfg, out); res.nagleViolations == 0 {
		t.Error("NODELAY client never sent with data unacknowledged")
	}
}

func TestDeterministic(t *testing.T) {
	cfg := base()
	cfg.Handshake, cfg.Compression, cfg.ErrorRate = true, "lz4", 0.1
	_, a := generate(t, cfg)
	_, b := generate(t, cfg)
	if !bytes.Equal(a, b) {
		t.Fatal("same Seed, different output")
	}
	v5 := cfg
	v5.Protocol, v5.RowsSize = 5, 200000
	_, a5 := generate(t, v5)
	_, b5 := generate(t, v5)
	if !bytes.Equal(a5, b5) {
		t.Fatal("v5: same Seed, different output")
	}
	cfg.Seed++
	_, c := generate(t, cfg)
	if bytes.Equal(a, c) {
		t.Fatal("different Seed, same output")
	}
}

func TestTimestamps(t *testing.T) {
	cfg := base()
	cfg.Start = time.Date(2025, 3, 4, 5, 6, 7, 890, time.UTC)
	_, out := generate(t, cfg)
	r, err := pcapgo.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Resolution().ToDuration() != time.Nanosecond {
		t.Errorf("resolution %v, want ns", r.Resolution())
	}
	_, ci, err := r.ReadPacketData()
	if err != nil {
		t.Fatal(err)
	}
	if d := ci.Timestamp.Sub(cfg.Start); d < 0 || d > time.Millisecond {
		t.Errorf("first packet %v after Start", d)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, mod := range []func(*Config){
		func(c *Config) { c.Mix = "batch" },
		func(c *Config) { c.Compression = "zstd" },
		func(c *Config) { c.MSS = MaxMSS + 1 },
		func(c *Config) { c.Autocork = 1.5 },
		func(c *Config) { c.ErrorRate = -0.1 },
		func(c *Config) { c.InFlight = 40000 },
		func(c *Config) { c.WriteGap = -time.Microsecond },
		func(c *Config) { c.Requests = -1 },
		func(c *Config) { c.Protocol = 3 },
		func(c *Config) { c.Protocol = 6 },
		func(c *Config) { c.Protocol, c.Compression = 5, "snappy" },
	} {
		cfg := base()
		mod(&cfg)
		var buf bytes.Buffer
		if _, err := Write(&buf, cfg); err == nil || buf.Len() != 0 {
			t.Errorf("%+v: err %v, %d bytes written", cfg, err, buf.Len())
		}
	}
}

func TestWriteError(t *testing.T) {
	cfg := base()
	boom := errors.New("boom")
	if _, err := Write(failAfter{n: 5000, err: boom}, cfg); !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
}

type failAfter struct {
	n   int
	err error
}

func (f failAfter) Write(p []byte) (int, error) { return 0, f.err }

func BenchmarkWrite(b *testing.B) {
	for _, bc := range []struct {
		name string
		mod  func(*Config)
	}{
		{"unbuffered", func(c *Config) {}},
		{"buffered", func(c *Config) { c.ClientBatch, c.ClientFlush = 32, 200*time.Microsecond }},
		{"lz4", func(c *Config) { c.Compression = "lz4" }},
		{"v5", func(c *Config) { c.Protocol = 5 }},
		{"v5-lz4", func(c *Config) { c.Protocol, c.Compression = 5, "lz4" }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			cfg := Config{
				Connections: 20, Requests: 5000, InFlight: 64, ClientBatch: 1, ServerBatch: 16,
				Autocork: 0.25, ServiceTime: 100 * time.Microsecond, WriteGap: 3 * time.Microsecond,
				RTT: 10 * time.Microsecond, RowsSize: 200, Seed: 1,
			}
			bc.mod(&cfg)
			b.ReportAllocs()
			var packets, n int64
			for b.Loop() {
				st, err := Write(io.Discard, cfg)
				if err != nil {
					b.Fatal(err)
				}
				packets += int64(st.Packets)
				n += st.Bytes
			}
			b.ReportMetric(float64(packets)/b.Elapsed().Seconds(), "packets/s")
			b.SetBytes(n / int64(b.N))
		})
	}
}

func generate(t testing.TB, cfg Config) (Stats, []byte) {
	t.Helper()
	var buf bytes.Buffer
	st, err := Write(&buf, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st, buf.Bytes()
}
