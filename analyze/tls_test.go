package analyze

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/json"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// cqlConversation is an unbuffered client at 16 requests in flight: every
// request its own write 10 µs after the previous one, the server answering
// eight at a time in one write.
//
//	04 00 ss ss 07 LL LL LL LL  v4 QUERY on stream ss
//	00 00 00 1f "SELECT v FROM ks.kv WHERE k = 1"  00 01 00
//	84 00 ss ss 08 00 00 00 04 00 00 00 01   v4 RESULT Void
func cqlConversation(requests int) []synth.Segment {
	const q = "SELECT v FROM ks.kv WHERE k = 1"
	query := func(stream int) []byte {
		body := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
		body = append(body, q...)
		body = append(body, 0, 1, 0)
		f := []byte{4, 0, byte(stream >> 8), byte(stream), 7}
		f = binary.BigEndian.AppendUint32(f, uint32(len(body)))
		return append(f, body...)
	}
	void := func(stream int) []byte {
		return []byte{0x84, 0, byte(stream >> 8), byte(stream), 8, 0, 0, 0, 4, 0, 0, 0, 1}
	}
	var segs []synth.Segment
	at := time.Duration(0)
	sent := 0
	for sent < requests {
		// Up to 16 outstanding: send a burst, then answers in batches of 8.
		burst := min(16, requests-sent)
		for i := 0; i < burst; i++ {
			segs = append(segs, synth.Segment{FromClient: true, At: at, Payload: query(sent + i)})
			at += 10 * time.Microsecond
		}
		at += 300 * time.Microsecond
		for i := 0; i < burst; i += 8 {
			var b []byte
			for j := i; j < min(i+8, burst); j++ {
				b = append(b, void(sent+j)...)
			}
			segs = append(segs, synth.Segment{At: at, Payload: b})
			at += 50 * time.Microsecond
		}
		sent += burst
		at += 200 * time.Microsecond
	}
	return segs
}

// wireLog keeps, in order, the bytes each Write of either TLS side put on
// the wire.
type wireLog struct {
	mu      sync.Mutex
	entries []synth.Segment
}

type recorder struct {
	net.Conn
	log        *wireLog
	fromClient bool
}

func (r *recorder) Write(b []byte) (int, error) {
	r.log.mu.Lock()
	r.log.entries = append(r.log.entries, synth.Segment{FromClient: r.fromClient, Payload: bytes.Clone(b)})
	r.log.mu.Unlock()
	return r.Conn.Write(b)
}

func (l *wireLog) take() []synth.Segment {
	l.mu.Lock()
	defer l.mu.Unlock()
	e := l.entries
	l.entries = nil
	return e
}

func testCert(t testing.TB) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "cassandra"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), DNSNames: []string{"cassandra"}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsConversation carries the same application writes through a real
// crypto/tls connection: each write becomes what crypto/tls put on the
// wire for it (one record), at the same time; the handshake goes first.
// It returns the segments and the key log.
func tlsConversation(t testing.TB, plain []synth.Segment, cfg *tls.Config) ([]synth.Segment, []byte) {
	t.Helper()
	var keys bytes.Buffer
	cc, sc := net.Pipe()
	log := &wireLog{}
	crec, srec := &recorder{Conn: cc, log: log, fromClient: true}, &recorder{Conn: sc, log: log}
	ccfg := cfg.Clone()
	ccfg.InsecureSkipVerify = true
	ccfg.KeyLogWriter = &keys
	scfg := cfg.Clone()
	scfg.Certificates = []tls.Certificate{testCert(t)}
	client, server := tls.Client(crec, ccfg), tls.Server(srec, scfg)
	// Each side reads (and drops) what the other writes.
	var wg sync.WaitGroup
	for _, c := range []*tls.Conn{client, server} {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = io.Copy(io.Discard, c) }()
	}
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	// A TLS 1.3 server writes its session tickets once its handshake is
	// done: a first write from it makes sure they are out.
	time.Sleep(10 * time.Millisecond)
	var segs []synth.Segment
	at := time.Duration(0)
	for _, e := range log.take() { // the handshake's flights, a microsecond apart
		e.At = at
		segs = append(segs, e)
		at += time.Microsecond
	}
	base := at + 10*time.Microsecond
	for _, s := range plain {
		c := client
		if !s.FromClient {
			c = server
		}
		if _, err := c.Write(s.Payload); err != nil {
			t.Fatal(err)
		}
		for _, e := range log.take() {
			e.At = base + s.At
			segs = append(segs, e)
		}
	}
	client.Close()
	server.Close()
	wg.Wait()
	return segs, keys.Bytes()
}

func pcapOf(t testing.TB, port uint16, segs []synth.Segment) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := synth.WriteConversation(&b, port, time.Time{}, segs); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func reportOf(t *testing.T, data []byte, kl *tlsdecrypt.KeyLog) *ConnReport {
	t.Helper()
	cfg := DefaultConfig()
	cfg.KeyLog = kl
	_, r := runPipeline(t, data, cfg)
	if len(r.Connections) != 1 {
		t.Fatalf("%d connections", len(r.Connections))
	}
	return r.Connections[0]
}

// TestTLSDecryptsLikePlain: the same CQL writes in the clear and through
// crypto/tls (TLS 1.3, and TLS 1.2 with AES-GCM and ChaCha20-Poly1305),
// decrypted with the key log, give the same requests, responses, batching
// figures and diagnoses; without the key log only the record layer is
// known, and it still shows one record per write.
func TestTLSDecryptsLikePlain(t *testing.T) {
	plainSegs := cqlConversation(400)
	plain := reportOf(t, pcapOf(t, 9142, plainSegs), nil)
	if plain.Requests != 400 || plain.Responses != 400 || !slices.Contains(plain.DiagnosisCodes, CodeClientUnbuffered) {
		t.Fatalf("plain twin: %d requests, %d responses, %v", plain.Requests, plain.Responses, plain.DiagnosisCodes)
	}
	for _, c := range []struct {
		name    string
		cfg     *tls.Config
		version string
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, "TLS 1.3"},
		{"TLS 1.2 AES-128-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}, "TLS 1.2"},
		{"TLS 1.2 AES-256-GCM", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384}}, "TLS 1.2"},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}}, "TLS 1.2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			segs, keys := tlsConversation(t, plainSegs, c.cfg)
			data := pcapOf(t, 9142, segs)
			kl := tlsdecrypt.NewKeyLog(0)
			if _, err := kl.ReadFrom(bytes.NewReader(keys)); err != nil {
				t.Fatal(err)
			}
			got := reportOf(t, data, kl)
			if got.TLS == nil || !got.TLS.Decrypted || got.TLS.Version != c.version {
				t.Fatalf("TLS %+v", got.TLS)
			}
			if got.Requests != plain.Requests || got.Responses != plain.Responses || got.Latency.Count != plain.Latency.Count {
				t.Errorf("requests/responses/answered %d/%d/%d, plain %d/%d/%d", got.Requests, got.Responses, got.Latency.Count,
					plain.Requests, plain.Responses, plain.Latency.Count)
			}
			if got.ClientSegments.Frames != plain.ClientSegments.Frames || got.ClientSegments.FramesPerSegment != plain.ClientSegments.FramesPerSegment ||
				got.ServerSegments.FramesPerSegment != plain.ServerSegments.FramesPerSegment {
				t.Errorf("writes: client %+v server %+v; plain client %+v server %+v", got.ClientSegments, got.ServerSegments, plain.ClientSegments, plain.ServerSegments)
			}
			if !slices.Equal(got.DiagnosisCodes, plain.DiagnosisCodes) {
				t.Errorf("diagnoses %v, plain %v", got.DiagnosisCodes, plain.DiagnosisCodes)
			}
			if tw := got.ClientSegments.TLS; tw == nil || tw.FramesPerRecord != 1 || tw.Records < 400 {
				t.Errorf("client records %+v: want one request per record", tw)
			}

			// Without the key log: the record layer only.
			enc := reportOf(t, data, nil)
			if enc.TLS == nil || enc.TLS.Decrypted || enc.TLS.Status != "no key log" || enc.Requests != 0 {
				t.Errorf("without keys: TLS %+v, %d requests", enc.TLS, enc.Requests)
			}
			if tw := enc.ClientSegments.TLS; tw == nil || tw.Records != got.ClientSegments.TLS.Records || tw.RecordsPerSegment != 1 {
				t.Errorf("without keys, client records %+v", tw)
			}
			if !slices.Contains(enc.DiagnosisCodes, CodeClientUnbuffered) {
				t.Errorf("without keys: diagnoses %v, want %s from the records", enc.DiagnosisCodes, CodeClientUnbuffered)
			}
		})
	}
}

// labTLS is the TLS part of a lab sidecar: what tshark decrypted with the
// same key log, and the kernel's count of the client's send calls.
type labTLS struct {
	TLS struct {
		Negotiated map[string]int `json:"negotiated"`
		Tshark     struct {
			ClientFrames uint64 `json:"client_frames"`
			ServerFrames uint64 `json:"server_frames"`
		} `json:"tshark_decrypted"`
		FramesPerSend *float64 `json:"client_cql_frames_per_send_syscall"`
	} `json:"tls"`
}

// TestTLSCaptures runs the lab's TLS captures (real drivers against
// Cassandra with client encryption) with and without their key logs.
// With them: every frame tshark decrypted with the same key log is found,
// the negotiated version and suite are the ones tshark read, and the busy
// connection is called unbuffered exactly when the kernel counted about
// one send call per frame. Without them: the same verdict from the records.
func TestTLSCaptures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "pcaps", "*tls*.pcap.gz"))
	if len(files) < 8 {
		t.Fatalf("%d TLS captures in pcaps/", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".pcap.gz")
		t.Run(name, func(t *testing.T) {
			var side labTLS
			b, err := os.ReadFile(strings.TrimSuffix(f, ".pcap.gz") + ".json")
			if err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(b, &side); err != nil {
				t.Fatal(err)
			}
			keyed := analyseFile(t, f) // analyseFile loads NAME.keys
			busy := func(r *Report) *ConnReport {
				var best *ConnReport
				for _, c := range r.Connections {
					if tw := c.ClientSegments.TLS; tw != nil && (best == nil || tw.Records > best.ClientSegments.TLS.Records) {
						best = c
					}
				}
				return best
			}
			kb := busy(keyed)
			if side.TLS.Tshark.ClientFrames == 0 {
				// The capture began after the handshakes: nothing can be matched.
				if keyed.Totals.Decrypted != 0 || kb.TLS.Status != "handshake not captured" {
					t.Errorf("mid-stream: %d decrypted, status %q", keyed.Totals.Decrypted, kb.TLS.Status)
				}
			} else {
				wantFrames := side.TLS.Tshark.ClientFrames + side.TLS.Tshark.ServerFrames
				if strings.HasPrefix(name, "nodejs") {
					// The Node.js driver first offers protocol 0x42 (DSE v2) in a
					// STARTUP that Cassandra refuses with an ERROR: two frames
					// tshark's CQL dissector does not take for CQL.
					wantFrames += 2
				}
				if keyed.Totals.Frames != wantFrames ||
					keyed.Totals.Decrypted != keyed.Totals.Encrypted {
					t.Errorf("frames %d (tshark %d+%d), %d of %d connections decrypted", keyed.Totals.Frames,
						side.TLS.Tshark.ClientFrames, side.TLS.Tshark.ServerFrames, keyed.Totals.Decrypted, keyed.Totals.Encrypted)
				}
				if neg := kb.TLS.Version + " " + kb.TLS.CipherSuite; side.TLS.Negotiated[neg] == 0 {
					t.Errorf("negotiated %q, tshark saw %v", neg, side.TLS.Negotiated)
				}
				fps := side.TLS.FramesPerSend
				if fps == nil {
					t.Fatal("no kernel count of the client's sends in the sidecar")
				}
				want := *fps < maxUnbufferedFramesPerSend
				if got := slices.Contains(kb.DiagnosisCodes, CodeClientUnbuffered); got != want {
					t.Errorf("decrypted: unbuffered %v, the kernel counted %.2f frames per send (%v)", got, *fps, kb.DiagnosisCodes)
				}
			}
			// Without the key log: the records alone. A mid-stream capture's
			// client is the gocql TLS client of the others (1.00 frames per send).
			plain := analyseFileKeys(t, f, false)
			pb := busy(plain)
			want := strings.HasPrefix(name, "gocql") || strings.HasPrefix(name, "python")
			if fps := side.TLS.FramesPerSend; fps != nil {
				want = *fps < maxUnbufferedFramesPerSend
			}
			if got := slices.Contains(pb.DiagnosisCodes, CodeClientUnbuffered); got != want || pb.TLS.Status != "no key log" {
				t.Errorf("from the records: unbuffered %v, want %v (%+v, status %q)", got, want, pb.ClientSegments.TLS, pb.TLS.Status)
			}
		})
	}
}

// tlsCapture is a TLS 1.3 capture of n requests (cqlConversation through
// crypto/tls) and its key log, and the same in the clear.
func tlsCapture(tb testing.TB, n int) (enc, plain []byte, kl *tlsdecrypt.KeyLog) {
	segs := cqlConversation(n)
	tsegs, keys := tlsConversation(tb, segs, &tls.Config{MinVersion: tls.VersionTLS13})
	kl = tlsdecrypt.NewKeyLog(0)
	if _, err := kl.ReadFrom(bytes.NewReader(keys)); err != nil {
		tb.Fatal(err)
	}
	return pcapOf(tb, 9142, tsegs), pcapOf(tb, 9142, segs), kl
}

// TestPipelineTLSNoAllocs: decrypting adds no allocation per packet in the
// steady state.
func TestPipelineTLSNoAllocs(t *testing.T) {
	enc, _, kl := tlsCapture(t, 20000)
	src, err := capture.NewReaderSource(bytes.NewReader(enc))
	if err != nil {
		t.Fatal(err)
	}
	cfg := DefaultConfig()
	cfg.KeyLog = kl
	p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 5000); err != nil {
		t.Fatal(err)
	}
	limit := uint64(5000)
	allocs := testing.AllocsPerRun(5, func() {
		limit += 2000
		if err := p.Run(context.Background(), limit); err != nil {
			t.Fatal(err)
		}
	})
	if perPacket := allocs / 2000; perPacket > 0.001 {
		t.Fatalf("%.1f allocations per 2000 packets", allocs)
	}
	if r := p.Report("x"); r.Totals.Decrypted != 1 || r.Totals.Requests < 10000 {
		t.Fatalf("decrypted %d, requests %d", r.Totals.Decrypted, r.Totals.Requests)
	}
}

// BenchmarkPipelineTLS is the whole path over the same CQL traffic in the
// clear and inside TLS 1.3 (AES-128-GCM), decrypted with its key log: the
// difference is what decryption costs per packet.
func BenchmarkPipelineTLS(b *testing.B) {
	enc, plain, kl := tlsCapture(b, 20000)
	for _, c := range []struct {
		name string
		data []byte
		kl   *tlsdecrypt.KeyLog
	}{{"plain", plain, nil}, {"tls13-decrypted", enc, kl}, {"tls13-records-only", enc, nil}} {
		b.Run(c.name, func(b *testing.B) {
			var packets uint64
			b.ReportAllocs()
			b.SetBytes(int64(len(c.data)))
			for i := 0; i < b.N; i++ {
				src, err := capture.NewReaderSource(bytes.NewReader(c.data))
				if err != nil {
					b.Fatal(err)
				}
				cfg := DefaultConfig()
				cfg.KeyLog = c.kl
				p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
				if err := p.Run(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				packets = p.Report("x").Packets
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/float64(packets), "ns/packet")
		})
	}
}

// TestTLSLateKeys: live, the keys may reach the key log after the records
// they open (a key log copied from the client's host, a buffered writer,
// several connections starting at once). Records held for their keys must
// go to their own direction, at their own time, once the keys come — the
// same requests and responses as with the key log there from the start.
func TestTLSLateKeys(t *testing.T) {
	for _, name := range []string{"gocql-1.7.0-v4-tls13-c64", "python-3.30.1-v4-tls13-c32", "nodejs-4.10.0-tls13-c64"} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join("..", "pcaps", name+".pcap.gz")
			full := analyseFile(t, path)
			keys, err := os.ReadFile(filepath.Join("..", "pcaps", name+".keys"))
			if err != nil {
				t.Fatal(err)
			}
			late := uint64(0)
			for _, after := range []uint64{20, 60} {
				kpath := filepath.Join(t.TempDir(), "keys.log")
				if err := os.WriteFile(kpath, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				kl := tlsdecrypt.NewKeyLog(0)
				if err := kl.Load(kpath); err != nil {
					t.Fatal(err)
				}
				cfg := DefaultConfig()
				cfg.KeyLog, cfg.KeyLogRefresh = kl, true
				src, err := capture.OpenFile(path)
				if err != nil {
					t.Fatal(err)
				}
				p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
				if err := p.Run(context.Background(), after); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(kpath, keys, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := p.Run(context.Background(), 0); err != nil {
					t.Fatal(err)
				}
				if err := p.Finish(); err != nil {
					t.Fatal(err)
				}
				r := p.Report("late")
				src.Close()
				// Every connection still open when the keys came is decrypted
				// whole (one closed before them, like Node's refused protocol
				// probe, cannot be): the busy one gives the same figures.
				got, want := busiest(r), busiest(full)
				for _, c := range r.Connections {
					if c.TLS != nil {
						late += c.TLS.LateRecords
					}
				}
				if got.Requests != want.Requests || got.Responses != want.Responses || got.OrphanResponses != 0 ||
					got.Latency.Count != want.Latency.Count || r.Totals.OrphanResponses != 0 {
					t.Errorf("keys after packet %d: %d requests, %d responses, %d orphans, %d late records; with the keys from the start %d, %d, %d",
						after, got.Requests, got.Responses, got.OrphanResponses, got.TLS.LateRecords, want.Requests, want.Responses, want.OrphanResponses)
				}
				for _, c := range r.Connections {
					if c.TLS != nil && c.TLS.Decrypted && (c.OrphanResponses != 0 || c.Unanswered != 0) {
						t.Errorf("%s: %d orphan responses, %d unanswered: late records went astray", c.Client, c.OrphanResponses, c.Unanswered)
					}
				}
			}
			if late == 0 {
				t.Error("no record was decrypted late: the test does not test that")
			}
		})
	}
}
