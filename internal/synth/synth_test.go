package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pierrec/lz4/v4"
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

// result is what check found in a capture.
type result struct {
	packets, data, syn, fin int
	seg                     [2]int
	requests, responses     int
	errors                  int
	outOfOrder              int
	spanning                int
	nagleViolations         int

	// Protocol 5.
	v5segs   [2]int // v5 segments per direction
	sliced   int    // non-self-contained segments
	sliceEnv int    // envelopes reassembled from slices
	lz4Comp  int    // lz4 segments with a compressed payload
	lz4As    int    // lz4 segments stored as is (U = 0)
}

// direction is one direction of a connection as seen in the capture.
type direction struct {
	synced   bool
	next     uint32 // expected seq of the next segment
	buf      []byte // stream bytes not yet framed
	pending  int    // bytes of buf's first frame seen before this segment
	ackValid bool
	ack      uint32 // highest ack sent in this direction
	sentData bool

	framed bool   // v5 segments from here on
	raw    []byte // v5: stream bytes not yet split into segments
	large  []byte // v5: slices of an envelope collected so far
	unfr   int    // envelopes seen before the switch
}

type connCheck struct {
	dir         [2]direction
	outstanding map[int16]uint8 // stream → request opcode
	order       []int16         // streams in request order, answered ones removed lazily
	answered    map[int16]bool
	comp        [2]bool          // frames in this direction are compressed from now on
	prepared    map[[16]byte]int // prepared id → bind count
	resultIDs   map[[16]byte][]byte
}

// check parses out with gopacket and walks every connection's byte streams.
func check(t *testing.T, cfg Config, out []byte) result {
	t.Helper()
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	var res result
	conns := map[string]*connCheck{}
	bodyComp := cfg.Compression != "" && cfg.Protocol == 4
	var last time.Time
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("packet %d: "+format, append([]any{res.packets}, args...)...)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		res.packets++
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			fail("capture length %d, length %d, data %d", ci.CaptureLength, ci.Length, len(data))
		}
		if ci.Timestamp.Before(last) {
			fail("timestamp %v before %v", ci.Timestamp, last)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			fail("decode error: %v", el.Error())
		}
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			fail("not IPv4/TCP: %v", p)
		}
		if int(ip.Length) != len(data)-14 || int(ip.IHL) != 5 {
			fail("IP length %d (IHL %d) in a %d-byte frame", ip.Length, ip.IHL, len(data))
		}
		if len(tcp.Payload) != int(ip.Length)-20-int(tcp.DataOffset)*4 {
			fail("TCP payload %d, IP says %d", len(tcp.Payload), int(ip.Length)-20-int(tcp.DataOffset)*4)
		}
		if _, v := ip.VerifyChecksum(); !v.Valid {
			fail("bad IP checksum %#x, want %#x", v.Actual, v.Correct)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		if err, v := tcp.VerifyChecksum(); err != nil || !v.Valid {
			fail("bad TCP checksum %#x, want %#x (%v)", v.Actual, v.Correct, err)
		}
		if len(tcp.Payload) > cfg.MSS {
			fail("payload %d > MSS %d", len(tcp.Payload), cfg.MSS)
		}

		d := cli
		cport, cip := tcp.SrcPort, ip.SrcIP
		if tcp.SrcPort == serverPort {
			d, cport, cip = srv, tcp.DstPort, ip.DstIP
		} else if tcp.DstPort != serverPort {
			fail("no port 9042: %v → %v", tcp.SrcPort, tcp.DstPort)
		}
		key := fmt.Sprintf("%v:%d", cip, cport)
		c := conns[key]
		if c == nil {
			c = &connCheck{
				outstanding: map[int16]uint8{},
				answered:    map[int16]bool{},
				comp:        [2]bool{bodyComp && !cfg.Handshake, bodyComp && !cfg.Handshake},
				prepared:    map[[16]byte]int{},
				resultIDs:   map[[16]byte][]byte{},
			}
			c.dir[cli].framed = cfg.Protocol == 5 && !cfg.Handshake
			c.dir[srv].framed = c.dir[cli].framed
			conns[key] = c
		}
		dir, peer := &c.dir[d], &c.dir[1-d]

		// Sequence numbers: every segment starts where the previous ended.
		if tcp.SYN {
			if dir.synced {
				fail("second SYN")
			}
			if d == srv {
				res.syn++
			}
			dir.synced, dir.next = true, tcp.Seq+1
		} else {
			if !dir.synced {
				if cfg.Handshake {
					fail("segment before SYN")
				}
				dir.synced, dir.next = true, tcp.Seq
			}
			if tcp.Seq != dir.next {
				fail("seq %d, want %d (dir %d)", tcp.Seq, dir.next, d)
			}
			dir.next += uint32(len(tcp.Payload))
			if tcp.FIN {
				res.fin++
				dir.next++
			}
		}
		if !tcp.ACK && !(tcp.SYN && d == cli) {
			fail("segment without ACK")
		}
		if tcp.ACK {
			if dir.ackValid && int32(tcp.Ack-dir.ack) < 0 {
				fail("ack went back from %d to %d", dir.ack, tcp.Ack)
			}
			if peer.synced && int32(tcp.Ack-peer.next) > 0 {
				fail("ack %d beyond what the peer sent (%d)", tcp.Ack, peer.next)
			}
			dir.ack, dir.ackValid = tcp.Ack, true
		}
		if len(tcp.Payload) == 0 {
			continue
		}
		res.data++
		res.seg[d]++
		if len(tcp.Payload) < cfg.MSS && !tcp.PSH {
			fail("short data segment without PSH")
		}
		// Nagle: a small client segment leaves only when the server has
		// acknowledged all earlier client data (seen earlier in the capture).
		if d == cli && len(tcp.Payload) < cfg.MSS && dir.sentData && !(peer.ackValid && peer.ack == tcp.Seq) {
			res.nagleViolations++
		}
		dir.sentData = true

		if len(dir.buf) > 0 || len(dir.raw) > 0 || len(dir.large) > 0 {
			res.spanning++ // a frame started in an earlier segment
		}
		payload := tcp.Payload
		if !dir.framed {
			dir.buf = append(dir.buf, payload...)
			n, err := frames(cfg, c, d, dir.buf, &res)
			if err != nil {
				fail("%v", err)
			}
			// frames stops at the v5 switch point: the rest is segments.
			payload = nil
			if dir.framed {
				payload = dir.buf[n:]
				n = len(dir.buf)
			}
			dir.buf = append(dir.buf[:0], dir.buf[n:]...)
		}
		if dir.framed && len(payload) > 0 {
			dir.raw = append(dir.raw, payload...)
			n, err := segments(cfg, c, d, dir.raw, &res)
			if err != nil {
				fail("%v", err)
			}
			dir.raw = append(dir.raw[:0], dir.raw[n:]...)
		}
	}
	for key, c := range conns {
		for d := range c.dir {
			if n := len(c.dir[d].buf) + len(c.dir[d].raw) + len(c.dir[d].large); n != 0 {
				t.Errorf("%s dir %d: %d bytes of an unfinished frame or segment", key, d, n)
			}
		}
		if len(c.outstanding) != 0 {
			t.Errorf("%s: %d requests never answered", key, len(c.outstanding))
		}
		// v5 switch point: OPTIONS and STARTUP, SUPPORTED and READY are
		// the only envelopes outside segments (§8.1).
		wantUnframed := 0
		if cfg.Protocol == 5 && cfg.Handshake {
			wantUnframed = 2
		}
		if cfg.Protocol == 5 && (c.dir[cli].unfr != wantUnframed || c.dir[srv].unfr != wantUnframed) {
			t.Errorf("%s: %d client and %d server envelopes before segments, want %d", key, c.dir[cli].unfr, c.dir[srv].unfr, wantUnframed)
		}
	}
	if len(conns) != cfg.Connections {
		t.Errorf("%d connections, want %d", len(conns), cfg.Connections)
	}
	return res
}

// frames decodes the complete envelopes at the start of b and returns how
// many bytes they took. Before the v5 switch point it stops right after the
// envelope that switches its direction to segments.
func frames(cfg Config, c *connCheck, d int, b []byte, res *result) (int, error) {
	used := 0
	unframed := !c.dir[d].framed
	for len(b)-used >= 9 && !(unframed && c.dir[d].framed) {
		h := b[used:]
		length := int(binary.BigEndian.Uint32(h[5:9]))
		if length > 256<<20 {
			return 0, fmt.Errorf("body length %d", length)
		}
		if len(h) < 9+length {
			break
		}
		ver, flags, stream, op := h[0], h[1], int16(binary.BigEndian.Uint16(h[2:4])), h[4]
		body := h[9 : 9+length]
		used += 9 + length
		if unframed {
			c.dir[d].unfr++
		}
		if want := byte(cfg.Protocol | d<<7); ver != want {
			return 0, fmt.Errorf("version byte %#x, want %#x", ver, want)
		}
		if flags&^flagCompression != 0 {
			return 0, fmt.Errorf("flags %#x", flags)
		}
		if stream < 0 {
			return 0, fmt.Errorf("stream %d", stream)
		}
		compressed := flags&flagCompression != 0
		// STARTUP is never compressed; everything after it is when negotiated.
		wantComp := c.comp[d] && !(d == cli && op == opStartup)
		if compressed != wantComp {
			return 0, fmt.Errorf("op %#x: compressed %v, want %v", op, compressed, wantComp)
		}
		if compressed {
			var err error
			if body, err = decompress(cfg.Compression, body); err != nil {
				return 0, fmt.Errorf("op %#x: %v", op, err)
			}
		}
		if d == cli {
			res.requests++
			if _, busy := c.outstanding[stream]; busy {
				return 0, fmt.Errorf("stream %d reused while outstanding", stream)
			}
			if err := checkRequest(cfg, c, op, body); err != nil {
				return 0, fmt.Errorf("request op %#x stream %d: %v", op, stream, err)
			}
			c.outstanding[stream] = op
			c.order = append(c.order, stream)
			delete(c.answered, stream)
			continue
		}
		res.responses++
		req, ok := c.outstanding[stream]
		if !ok {
			return 0, fmt.Errorf("response on stream %d with no request", stream)
		}
		delete(c.outstanding, stream)
		for len(c.order) > 0 && c.answered[c.order[0]] {
			delete(c.answered, c.order[0])
			c.order = c.order[1:]
		}
		if c.order[0] != stream {
			res.outOfOrder++
		}
		c.answered[stream] = true
		if op == opError {
			res.errors++
		}
		if err := checkResponse(cfg, c, req, op, body); err != nil {
			return 0, fmt.Errorf("response op %#x to %#x, stream %d: %v", op, req, stream, err)
		}
	}
	return used, nil
}

// segments walks the complete v5 segments at the start of b, checking
// header CRC24, payload CRC32 and layout, hands the envelopes they carry to
// frames, and returns how many bytes they took (§8.2–§8.5).
func segments(cfg Config, c *connCheck, d int, b []byte, res *result) (int, error) {
	lz := cfg.Compression == "lz4"
	used := 0
	for {
		sg, n, err := parseSegment(b[used:], lz)
		if err != nil || n == 0 {
			return used, err
		}
		used += n
		res.v5segs[d]++
		switch {
		case sg.compressed:
			res.lz4Comp++
		case lz:
			res.lz4As++
		}
		payload, sc := sg.payload, sg.selfContained
		dir := &c.dir[d]
		if sc {
			if len(dir.large) > 0 {
				return 0, errors.New("self-contained segment between the slices of an envelope")
			}
			k, err := frames(cfg, c, d, payload, res)
			if err != nil {
				return 0, err
			}
			if k != len(payload) {
				return 0, fmt.Errorf("self-contained segment: %d of %d bytes are whole envelopes", k, len(payload))
			}
			continue
		}
		// A slice of one envelope too big for a segment: every slice but
		// the last is filled to the maximum.
		res.sliced++
		dir.large = append(dir.large, payload...)
		if len(dir.large) < 9 {
			return 0, errors.New("first slice shorter than an envelope header")
		}
		total := 9 + int(binary.BigEndian.Uint32(dir.large[5:9]))
		if total <= maxSegPayload {
			return 0, fmt.Errorf("%d-byte envelope sliced although it fits a segment", total)
		}
		switch {
		case len(dir.large) > total:
			return 0, fmt.Errorf("slices carry %d bytes for a %d-byte envelope", len(dir.large), total)
		case len(dir.large) < total && len(payload) != maxSegPayload:
			return 0, fmt.Errorf("%d-byte slice before the last", len(payload))
		case len(dir.large) == total:
			if k, err := frames(cfg, c, d, dir.large, res); err != nil || k != total {
				return 0, fmt.Errorf("reassembled envelope: %d of %d bytes, %v", k, total, err)
			}
			res.sliceEnv++
			dir.large = dir.large[:0]
		}
	}
}

func decompress(alg string, body []byte) ([]byte, error) {
	switch alg {
	case "lz4":
		if len(body) < 4 {
			return nil, errors.New("lz4 body shorter than its length prefix")
		}
		n := binary.BigEndian.Uint32(body)
		out := make([]byte, n)
		m, err := lz4.UncompressBlock(body[4:], out)
		if err != nil || m != int(n) {
			return nil, fmt.Errorf("lz4: %d of %d bytes, %v", m, n, err)
		}
		return out, nil
	case "snappy":
		return snappy.Decode(nil, body)
	}
	return nil, errors.New("compressed frame without compression")
}

func checkRequest(cfg Config, c *connCheck, op uint8, body []byte) error {
	r := &rd{b: body}
	switch op {
	case opOptions:
	case opStartup:
		m := r.stringMap()
		if m["CQL_VERSION"] == "" || m["DRIVER_NAME"] != "synth" || m["COMPRESSION"] != cfg.Compression {
			return fmt.Errorf("STARTUP %v", m)
		}
		// v4: the server compresses bodies from its answer to STARTUP on
		// (§6.1). v5: the client frames everything after STARTUP (§8.1).
		c.comp[srv] = m["COMPRESSION"] != "" && cfg.Protocol == 4
		c.dir[cli].framed = cfg.Protocol == 5
	case opPrepare:
		q := r.longString()
		if !strings.Contains(q, "?") {
			return fmt.Errorf("PREPARE %q", q)
		}
		if cfg.Protocol == 5 {
			if f := r.int(); f != 0 {
				return fmt.Errorf("v5 PREPARE flags %#x", f)
			}
		}
	case opQuery:
		q := r.longString()
		if strings.Contains(q, "?") || !(strings.HasPrefix(q, "SELECT ") ||
			strings.HasPrefix(q, "INSERT ") || strings.HasPrefix(q, "UPDATE ")) {
			return fmt.Errorf("QUERY %q", q)
		}
		if n := r.queryParams(cfg.Protocol); n != 0 {
			return fmt.Errorf("QUERY with %d values", n)
		}
	case opExecute:
		var id [16]byte
		if copy(id[:], r.shortBytes()) != 16 {
			return errors.New("prepared id not 16 bytes")
		}
		want, ok := c.prepared[id]
		if !ok {
			return fmt.Errorf("EXECUTE of unknown id %x", id)
		}
		if cfg.Protocol == 5 {
			if rid := r.shortBytes(); !bytes.Equal(rid, c.resultIDs[id]) {
				return fmt.Errorf("EXECUTE result_metadata_id %x, Prepared said %x", rid, c.resultIDs[id])
			}
		}
		if n := r.queryParams(cfg.Protocol); n != want {
			return fmt.Errorf("EXECUTE with %d values, statement has %d", n, want)
		}
	default:
		return errors.New("unexpected request opcode")
	}
	return r.done()
}

func checkResponse(cfg Config, c *connCheck, req, op uint8, body []byte) error {
	r := &rd{b: body}
	switch {
	case req == opOptions && op == opSupported:
		m := r.stringMultimap()
		if len(m["COMPRESSION"]) == 0 || len(m["CQL_VERSION"]) == 0 {
			return fmt.Errorf("SUPPORTED %v", m)
		}
	case req == opStartup && op == opReady:
		c.comp[cli] = c.comp[srv]
		c.dir[srv].framed = cfg.Protocol == 5
	case req == opPrepare && op == opResult:
		if k := r.int(); k != resultPrepared {
			return fmt.Errorf("PREPARE answered by kind %d", k)
		}
		var id [16]byte
		if copy(id[:], r.shortBytes()) != 16 {
			return errors.New("prepared id not 16 bytes")
		}
		if cfg.Protocol == 5 {
			rid := r.shortBytes()
			if len(rid) != 16 {
				return fmt.Errorf("result_metadata_id %x", rid)
			}
			c.resultIDs[id] = bytes.Clone(rid)
		}
		c.prepared[id] = r.metadata(true)
		r.metadata(false)
	case (req == opQuery || req == opExecute) && op == opResult:
		switch k := r.int(); k {
		case resultVoid:
		case resultRows:
			cols := r.metadata(false)
			rows := r.int()
			if rows < 0 {
				return fmt.Errorf("rows_count %d", rows)
			}
			for range rows * int32(cols) {
				r.bytes()
			}
		default:
			return fmt.Errorf("result kind %d", k)
		}
	case (req == opQuery || req == opExecute) && op == opError:
		switch code := r.int(); code {
		case errReadTimeout:
			r.string()
			r.consistency()
			r.int()
			r.int()
			r.byte()
		case errWriteTimeout:
			r.string()
			r.consistency()
			r.int()
			r.int()
			if wt := r.string(); wt != "SIMPLE" && wt != "COUNTER" {
				return fmt.Errorf("write_type %q", wt)
			}
		default:
			return fmt.Errorf("error code %#x", code)
		}
	default:
		return errors.New("response does not answer its request")
	}
	return r.done()
}

// rd reads CQL primitives (cql-wire.md §5), remembering the first error.
type rd struct {
	b   []byte
	off int
	err error
}

func (r *rd) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.err = fmt.Errorf("need %d bytes at %d of %d", n, r.off, len(r.b))
		return nil
	}
	v := r.b[r.off : r.off+n]
	r.off += n
	return v
}

func (r *rd) byte() byte {
	if v := r.take(1); v != nil {
		return v[0]
	}
	return 0
}

func (r *rd) short() uint16 {
	if v := r.take(2); v != nil {
		return binary.BigEndian.Uint16(v)
	}
	return 0
}

func (r *rd) int() int32 {
	if v := r.take(4); v != nil {
		return int32(binary.BigEndian.Uint32(v))
	}
	return 0
}

func (r *rd) string() string     { return string(r.take(int(r.short()))) }
func (r *rd) longString() string { return string(r.take(int(r.int()))) }
func (r *rd) shortBytes() []byte { return r.take(int(r.short())) }

func (r *rd) bytes() []byte {
	n := r.int()
	if n < 0 {
		return nil
	}
	return r.take(int(n))
}

func (r *rd) consistency() {
	if c := r.short(); c > clLocalOne && r.err == nil {
		r.err = fmt.Errorf("consistency %#x", c)
	}
}

func (r *rd) stringMap() map[string]string {
	m := map[string]string{}
	for range r.short() {
		k := r.string()
		m[k] = r.string()
	}
	return m
}

func (r *rd) stringMultimap() map[string][]string {
	m := map[string][]string{}
	for range r.short() {
		k := r.string()
		for range r.short() {
			m[k] = append(m[k], r.string())
		}
	}
	return m
}

// queryParams reads v4 or v5 query parameters (§6.4) and returns the value
// count.
func (r *rd) queryParams(proto int) int {
	r.consistency()
	var flags int32
	if proto == 5 {
		flags = r.int()
	} else {
		flags = int32(r.byte())
	}
	if flags&^0x7F != 0 && r.err == nil {
		r.err = fmt.Errorf("query flags %#x", flags)
	}
	n := 0
	if flags&qfValues != 0 {
		n = int(r.short())
		for range n {
			if flags&0x40 != 0 {
				r.string()
			}
			if v := r.int(); v >= 0 {
				r.take(int(v))
			} else if v < -2 && r.err == nil {
				r.err = fmt.Errorf("value length %d", v)
			}
		}
	}
	if flags&qfPageSize != 0 {
		if p := r.int(); p <= 0 && r.err == nil {
			r.err = fmt.Errorf("page size %d", p)
		}
	}
	if flags&0x08 != 0 {
		r.bytes()
	}
	if flags&0x10 != 0 {
		r.consistency()
	}
	if flags&qfDefaultTS != 0 {
		r.take(8)
	}
	return n
}

// metadata reads prepared metadata (prepared = true, with pk indexes) or
// rows metadata (§6.9.1, §6.9.4) and returns columns_count.
func (r *rd) metadata(prepared bool) int {
	flags := r.int()
	cols := r.int()
	if (flags&^(mfGlobalTables|mfNoMetadata) != 0 || cols < 0) && r.err == nil {
		r.err = fmt.Errorf("metadata flags %#x, %d columns", flags, cols)
	}
	if prepared {
		for range r.int() {
			r.short()
		}
	}
	if flags&mfNoMetadata != 0 {
		return int(cols)
	}
	if flags&mfGlobalTables != 0 {
		r.string()
		r.string()
	}
	for range cols {
		if flags&mfGlobalTables == 0 {
			r.string()
			r.string()
		}
		if r.string() == "" && r.err == nil {
			r.err = errors.New("empty column name")
		}
		r.option(0)
	}
	return int(cols)
}

func (r *rd) option(depth int) {
	id := r.short()
	switch {
	case depth > 8:
		r.err = errors.New("type nesting too deep")
	case id == 0:
		r.string()
	case id >= 0x01 && id <= 0x14 && id != 0x0A:
	case id == 0x20 || id == 0x22:
		r.option(depth + 1)
	case id == 0x21:
		r.option(depth + 1)
		r.option(depth + 1)
	default:
		if r.err == nil {
			r.err = fmt.Errorf("type id %#x", id)
		}
	}
}

func (r *rd) done() error {
	if r.err == nil && r.off != len(r.b) {
		r.err = fmt.Errorf("%d trailing bytes", len(r.b)-r.off)
	}
	return r.err
}
