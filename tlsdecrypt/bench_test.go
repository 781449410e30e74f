package tlsdecrypt

import (
	"crypto/tls"
	"testing"
)

// benchStream is a client sending n application records of one size, as
// crypto/tls wrote them, cut into TCP segments (1448 bytes: one Ethernet
// MSS). The size must stay under the ~1.2 KiB that crypto/tls puts in a
// record for the first 128 KB of a connection.
type benchStream struct {
	kl      *KeyLog
	warm    []write  // the handshake and what came before the measured records
	segs    [][]byte // the client's application records, cut into segments
	records int
	bytes   int
	suite   uint16
}

func makeBenchStream(tb testing.TB, client *tls.Config, size, n, mss int) *benchStream {
	certs(tb)
	steps := make([]step, 0, n+1)
	for range n {
		steps = append(steps, step{FromClient, size})
	}
	steps = append(steps, step{FromServer, 10})
	tr := exchange(tb, client, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, steps)
	var idx []int
	for i, w := range tr.writes {
		if w.dir == FromClient && w.b[0] == ctAppData && len(w.b) >= size+5+16 && len(w.b) <= size+5+24 {
			idx = append(idx, i)
		}
	}
	idx = idx[len(idx)-n:]
	bs := &benchStream{kl: keyLogOf(tb, tr), warm: tr.writes[:idx[0]], records: n, suite: tr.state.CipherSuite}
	var stream []byte
	for _, i := range idx {
		stream = append(stream, tr.writes[i].b...)
	}
	bs.bytes = len(stream)
	for len(stream) > 0 {
		k := min(len(stream), mss)
		bs.segs = append(bs.segs, stream[:k])
		stream = stream[k:]
	}
	return bs
}

// start returns a Conn past the handshake, a function that feeds the
// stream once (and rewinds the sequence number so that it can be fed
// again), and a count of the plaintext delivered.
func (bs *benchStream) start(tb testing.TB) (*Conn, func(), *int) {
	plain := new(int)
	c := NewConn(bs.kl, func(_ RecordInfo, p []byte) { *plain += len(p) })
	for i, w := range bs.warm {
		c.Feed(w.dir, w.b, int64(i))
	}
	if s := c.Status(); s != StatusDecrypting {
		tb.Fatalf("after the handshake: %v", s)
	}
	seq := c.h[client].seq
	pass := func() {
		for _, s := range bs.segs {
			c.Feed(FromClient, s, 1)
		}
		c.h[client].seq = seq
	}
	return c, pass, plain
}

var benchConfigs = []struct {
	name   string
	client *tls.Config
}{
	{"tls13-aes128gcm", &tls.Config{InsecureSkipVerify: true}},
	{"tls12-chacha20", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}},
}

// TestSteadyStateAllocs: decrypting application records allocates nothing
// once a connection's buffers have grown.
func TestSteadyStateAllocs(t *testing.T) {
	for _, cfg := range benchConfigs {
		for _, size := range []int{100, 1024} {
			for _, mss := range []int{1448, 300} { // 300: most records span segments
				bs := makeBenchStream(t, cfg.client, size, 50, mss)
				c, pass, plain := bs.start(t)
				if allocs := testing.AllocsPerRun(10, pass); allocs != 0 {
					t.Errorf("%s, %d-byte records, %d-byte segments: %v allocations per pass", cfg.name, size, mss, allocs)
				}
				if s := c.Stats(); s.Status != StatusDecrypting || *plain != 11*50*size {
					t.Errorf("%s, %d-byte records: %s, %d bytes", cfg.name, size, s.Reason(), *plain)
				}
			}
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	for _, cfg := range benchConfigs {
		for _, size := range []int{100, 1024} {
			bs := makeBenchStream(b, cfg.client, size, 1000, 1448)
			if cfg.name == "tls13-aes128gcm" && bs.suite != tls.TLS_AES_128_GCM_SHA256 {
				b.Logf("crypto/tls chose %s here", SuiteName(bs.suite))
			}
			b.Run(cfg.name+"/"+map[int]string{100: "100B", 1024: "1KiB"}[size], func(b *testing.B) {
				_, pass, _ := bs.start(b)
				pass() // buffers grow to the records' size
				b.SetBytes(int64(bs.bytes))
				b.ReportAllocs()
				for b.Loop() {
					pass()
				}
				ns := float64(b.Elapsed().Nanoseconds()) / float64(b.N)
				b.ReportMetric(ns/float64(bs.records), "ns/record")
				b.ReportMetric(ns/float64(len(bs.segs)), "ns/segment")
			})
		}
	}
}
