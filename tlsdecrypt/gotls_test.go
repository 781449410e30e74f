package tlsdecrypt

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// write is one Write call on the wire: what a TCP stack was handed.
type write struct {
	dir Dir
	b   []byte
}

// transcript is a captured TLS exchange: every write of either side in the
// order they happened, and the key log the client wrote.
type transcript struct {
	mu     sync.Mutex
	writes []write
	keylog bytes.Buffer
	sent   [2][]byte // application bytes each side sent
	state  tls.ConnectionState
}

// tap records what is written to a net.Conn. It logs before writing, so a
// reply can never be logged before what it answers.
type tap struct {
	net.Conn
	dir Dir
	t   *transcript
}

func (c *tap) Write(p []byte) (int, error) {
	c.t.mu.Lock()
	c.t.writes = append(c.t.writes, write{c.dir, bytes.Clone(p)})
	c.t.mu.Unlock()
	return c.Conn.Write(p)
}

// step is one application message of an exchange.
type step struct {
	dir  Dir
	size int
}

// defaultSteps exchange small messages, a 1 KiB one and one larger than a
// record, both ways.
var defaultSteps = []step{
	{FromClient, 9}, {FromServer, 100}, {FromClient, 1024}, {FromServer, 1},
	{FromClient, 40000}, {FromServer, 20000}, {FromClient, 100}, {FromServer, 3000},
	{FromClient, 1}, {FromClient, 16384}, {FromServer, 16385},
}

var (
	certOnce           sync.Once
	ecdsaCert, rsaCert tls.Certificate
)

func selfSigned(t testing.TB, key crypto.Signer) tls.Certificate {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "cassandra.test"},
		DNSNames:     []string{"cassandra.test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func certs(t testing.TB) {
	certOnce.Do(func() {
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			t.Fatal(err)
		}
		ecdsaCert, rsaCert = selfSigned(t, ek), selfSigned(t, rk)
	})
}

// exchange runs a real crypto/tls client and server over loopback TCP,
// sending the steps' messages, and returns what went over the wire.
func exchange(t testing.TB, client, server *tls.Config, steps []step) *transcript {
	t.Helper()
	tr := &transcript{}
	client.KeyLogWriter = &tr.keylog
	rng := mrand.New(mrand.NewPCG(1, 2))
	msgs := make([][]byte, len(steps))
	for i, s := range steps {
		msgs[i] = make([]byte, s.size)
		for j := range msgs[i] {
			msgs[i][j] = byte(rng.Uint32())
		}
		tr.sent[s.dir] = append(tr.sent[s.dir], msgs[i]...)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	// run plays one side's part of the script.
	run := func(c *tls.Conn, me Dir) error {
		for i, s := range steps {
			if s.dir == me {
				if _, err := c.Write(msgs[i]); err != nil {
					return err
				}
				continue
			}
			got := make([]byte, s.size)
			if _, err := io.ReadFull(c, got); err != nil {
				return err
			}
			if !bytes.Equal(got, msgs[i]) {
				t.Errorf("step %d: the TLS peer itself got different bytes", i)
			}
		}
		return nil
	}
	errc := make(chan error, 1)
	serve := func() error {
		nc, err := ln.Accept()
		if err != nil {
			return err
		}
		c := tls.Server(&tap{nc, FromServer, tr}, server)
		defer c.Close() // its close_notify is written before serve returns
		if err := run(c, FromServer); err != nil {
			return err
		}
		_, err = io.Copy(io.Discard, c) // until the client's close_notify
		return err
	}
	go func() { errc <- serve() }()
	nc, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := tls.Client(&tap{nc, FromClient, tr}, client)
	if err := run(c, FromClient); err != nil {
		t.Fatal(err)
	}
	tr.state = c.ConnectionState()
	c.Close()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	return tr
}

// segments cuts the transcript's writes into TCP-like segments: each write
// split at random points, consecutive writes of one side sometimes
// coalesced, as a TCP stack and the capture would see them.
func (tr *transcript) segments(seed uint64) []write {
	rng := mrand.New(mrand.NewPCG(seed, 7))
	var segs []write
	for i := 0; i < len(tr.writes); i++ {
		w := tr.writes[i]
		b := bytes.Clone(w.b)
		for i+1 < len(tr.writes) && tr.writes[i+1].dir == w.dir && rng.IntN(3) == 0 {
			i++
			b = append(b, tr.writes[i].b...)
		}
		for len(b) > 0 {
			n := len(b)
			switch rng.IntN(4) {
			case 0:
				n = min(n, 1+rng.IntN(8))
			case 1:
				n = min(n, 1448)
			case 2:
				n = min(n, 1+rng.IntN(3000))
			}
			segs = append(segs, write{w.dir, b[:n]})
			b = b[n:]
		}
	}
	return segs
}

// decryptAll feeds segments to a Conn and returns the plaintext per Dir.
func decryptAll(t testing.TB, kl *KeyLog, segs []write) (*Conn, [2][]byte, []RecordInfo) {
	t.Helper()
	var got [2][]byte
	var infos []RecordInfo
	var cur []byte
	c := NewConn(kl, func(info RecordInfo, plain []byte) {
		if info.WireLen < len(plain)+5+16 {
			t.Errorf("record of %d bytes on the wire gave %d bytes of plaintext", info.WireLen, len(plain))
		}
		if !info.Late && (info.End <= 0 || info.End > len(cur) || info.Start >= info.End || info.Start >= 0 && info.End-info.Start != info.WireLen) {
			t.Errorf("record offsets %d..%d in a segment of %d bytes, wire length %d", info.Start, info.End, len(cur), info.WireLen)
		}
		if (info.Start >= 0) != (info.Segments == 1) {
			t.Errorf("Start %d with Segments %d", info.Start, info.Segments)
		}
		got[info.Dir] = append(got[info.Dir], plain...)
		infos = append(infos, info)
	})
	for i, s := range segs {
		cur = s.b
		c.Feed(s.dir, s.b, int64(i))
	}
	return c, got, infos
}

func checkConsistent(t testing.TB, s Stats) {
	t.Helper()
	for d, ds := range s.Dirs {
		if ds.WireBytes != ds.DoneBytes+ds.SkippedBytes+ds.HeldBytes {
			t.Errorf("%v: %d bytes fed, %d done + %d skipped + %d held", Dir(d), ds.WireBytes, ds.DoneBytes, ds.SkippedBytes, ds.HeldBytes)
		}
		if ds.PlainBytes > ds.DoneBytes || ds.AppRecords > ds.Records {
			t.Errorf("%v: %d plaintext bytes of %d done, %d app records of %d", Dir(d), ds.PlainBytes, ds.DoneBytes, ds.AppRecords, ds.Records)
		}
	}
}

// checkTranscript decrypts tr cut several ways and compares with what was
// sent.
func checkTranscript(t *testing.T, tr *transcript, wantVersion, wantSuite uint16) {
	t.Helper()
	kl := NewKeyLog(0)
	if _, err := kl.ReadFrom(bytes.NewReader(tr.keylog.Bytes())); err != nil {
		t.Fatal(err)
	}
	checkTranscriptWith(t, kl, tr, wantVersion, wantSuite)
}

func checkTranscriptWith(t *testing.T, kl *KeyLog, tr *transcript, wantVersion, wantSuite uint16) {
	t.Helper()
	for seed := range uint64(5) {
		c, got, infos := decryptAll(t, kl, tr.segments(seed))
		s := c.Stats()
		checkConsistent(t, s)
		if s.Status != StatusDecrypting || s.Version != wantVersion || s.Suite != wantSuite {
			t.Fatalf("seed %d: %s, version %#x suite %#x; want decrypting %#x %#x", seed, s.Reason(), s.Version, s.Suite, wantVersion, wantSuite)
		}
		for d := range got {
			if !bytes.Equal(got[d], tr.sent[d]) {
				t.Errorf("seed %d: %v: decrypted %d bytes, sent %d (equal prefix %d)", seed, Dir(d), len(got[d]), len(tr.sent[d]), commonPrefix(got[d], tr.sent[d]))
			}
			if ds := s.Dirs[d]; ds.AuthFailures != 0 || ds.SkippedBytes != 0 || ds.HeldBytes != 0 || ds.Alerts > 1 {
				t.Errorf("seed %d: %v: %+v", seed, Dir(d), ds)
			}
		}
		if seed == 0 {
			t.Logf("%s %s: %d application records, %+v", VersionName(s.Version), SuiteName(s.Suite), len(infos), s.Dirs)
		}
	}
}

func commonPrefix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

func TestGoTLS13(t *testing.T) {
	certs(t)
	tr := exchange(t,
		&tls.Config{InsecureSkipVerify: true},
		&tls.Config{Certificates: []tls.Certificate{ecdsaCert}},
		defaultSteps)
	t.Logf("crypto/tls negotiated %s", SuiteName(tr.state.CipherSuite))
	checkTranscript(t, tr, versionTLS13, tr.state.CipherSuite)
}

func TestGoTLS12(t *testing.T) {
	certs(t)
	for _, tc := range []struct {
		suite uint16
		cert  *tls.Certificate
	}{
		{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, &ecdsaCert},
		{tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, &ecdsaCert},
		{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, &ecdsaCert},
		{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, &rsaCert},
		{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, &rsaCert},
		{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256, &rsaCert},
		{tls.TLS_RSA_WITH_AES_128_GCM_SHA256, &rsaCert},
		{tls.TLS_RSA_WITH_AES_256_GCM_SHA384, &rsaCert},
	} {
		t.Run(SuiteName(tc.suite), func(t *testing.T) {
			tr := exchange(t,
				&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tc.suite}},
				&tls.Config{Certificates: []tls.Certificate{*tc.cert}, CipherSuites: []uint16{tc.suite}},
				defaultSteps)
			checkTranscript(t, tr, versionTLS12, tc.suite)
		})
	}
}

// A transcript file is text, one item a line: "k " a key log line, "c " or
// "s " the hex of one write by the client or the server, "C " or "S " the
// hex of application data the client or server sent, "# " a comment.
// testdata/*.transcript are such files, from crypto/tls and OpenSSL.

func (tr *transcript) encode() []byte {
	var b bytes.Buffer
	if tr.state.Version != 0 {
		fmt.Fprintf(&b, "# crypto/tls (%s): %s %s\n", runtime.Version(), VersionName(tr.state.Version), SuiteName(tr.state.CipherSuite))
	}
	for _, l := range strings.Split(strings.TrimSpace(tr.keylog.String()), "\n") {
		fmt.Fprintf(&b, "k %s\n", l)
	}
	for _, w := range tr.writes {
		fmt.Fprintf(&b, "%c %x\n", "cs"[w.dir], w.b)
	}
	for d, p := range tr.sent {
		for len(p) > 0 {
			n := min(len(p), 4096)
			fmt.Fprintf(&b, "%c %x\n", "CS"[d], p[:n])
			p = p[n:]
		}
	}
	return b.Bytes()
}

func decodeTranscript(t testing.TB, text []byte) *transcript {
	t.Helper()
	tr := &transcript{}
	for i, line := range strings.Split(string(text), "\n") {
		if len(line) < 2 || line[0] == '#' {
			continue
		}
		kind, rest := line[0], line[2:]
		if kind == 'k' {
			tr.keylog.WriteString(rest + "\n")
			continue
		}
		b, err := hex.DecodeString(rest)
		if err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		switch kind {
		case 'c', 's':
			tr.writes = append(tr.writes, write{Dir(strings.IndexByte("cs", kind)), b})
		case 'C', 'S':
			d := strings.IndexByte("CS", kind)
			tr.sent[d] = append(tr.sent[d], b...)
		default:
			t.Fatalf("line %d: unknown item %q", i+1, kind)
		}
	}
	return tr
}

// TestGoTLS13ChaCha gets TLS_CHACHA20_POLY1305_SHA256 out of crypto/tls,
// which picks it for TLS 1.3 only without AES hardware: it runs the
// exchange in a child test binary with GODEBUG=cpu.aes=off.
func TestGoTLS13ChaCha(t *testing.T) {
	if out := os.Getenv("TLSDECRYPT_TRANSCRIPT"); out != "" {
		certs(t)
		tr := exchange(t, &tls.Config{InsecureSkipVerify: true},
			&tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
		if err := os.WriteFile(out, tr.encode(), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	out := filepath.Join(t.TempDir(), "chacha.transcript")
	cmd := exec.Command(os.Args[0], "-test.run=^TestGoTLS13ChaCha$", "-test.count=1")
	cmd.Env = append(os.Environ(), "GODEBUG=cpu.aes=off", "TLSDECRYPT_TRANSCRIPT="+out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, b)
	}
	text, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	tr := decodeTranscript(t, text)
	checkTranscript(t, tr, versionTLS13, tls.TLS_CHACHA20_POLY1305_SHA256)
}

// TestGoTLSHandshakeVariants covers handshakes that change what is on the
// wire: a HelloRetryRequest, client certificates, resumed sessions.
func TestGoTLSHandshakeVariants(t *testing.T) {
	certs(t)
	steps := []step{{FromClient, 100}, {FromServer, 5000}, {FromClient, 20000}}
	t.Run("tls13-hello-retry", func(t *testing.T) {
		// The client's first key share (X25519MLKEM768) is not one the
		// server takes: it asks again.
		tr := exchange(t, &tls.Config{InsecureSkipVerify: true},
			&tls.Config{Certificates: []tls.Certificate{ecdsaCert}, CurvePreferences: []tls.CurveID{tls.CurveP384}}, steps)
		if !tr.state.HelloRetryRequest {
			t.Fatal("no HelloRetryRequest")
		}
		checkTranscript(t, tr, versionTLS13, tr.state.CipherSuite)
	})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run("client-certificate-"+VersionName(v), func(t *testing.T) {
			tr := exchange(t,
				&tls.Config{InsecureSkipVerify: true, MaxVersion: v, Certificates: []tls.Certificate{rsaCert}},
				&tls.Config{Certificates: []tls.Certificate{ecdsaCert}, ClientAuth: tls.RequireAnyClientCert}, steps)
			checkTranscript(t, tr, v, tr.state.CipherSuite)
		})
		t.Run("resumed-"+VersionName(v), func(t *testing.T) {
			client := &tls.Config{InsecureSkipVerify: true, ServerName: "cassandra.test", MaxVersion: v, ClientSessionCache: tls.NewLRUClientSessionCache(4)}
			server := &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}
			first := exchange(t, client, server, steps)
			tr := exchange(t, client, server, steps)
			if !tr.state.DidResume {
				t.Fatal("the session was not resumed")
			}
			if v == tls.VersionTLS12 {
				// crypto/tls logs no CLIENT_RANDOM for a resumed TLS 1.2
				// session: it made no new master secret. Alone, it cannot
				// be decrypted; after the connection that was issued the
				// ticket, it can.
				kl := NewKeyLog(0)
				kl.ReadFrom(bytes.NewReader(tr.keylog.Bytes()))
				c, _, _ := decryptAll(t, kl, tr.segments(0))
				if s := c.Stats(); s.Status != StatusNoKeys {
					t.Fatalf("resumed TLS 1.2 alone: %s", s.Reason())
				}
				kl.ReadFrom(bytes.NewReader(first.keylog.Bytes()))
				decryptAll(t, kl, first.segments(0))
				if ks := kl.Stats(); ks.Sessions != 1 {
					t.Fatalf("sessions learned from the first connection: %+v", ks)
				}
				checkTranscriptWith(t, kl, tr, v, tr.state.CipherSuite)
				return
			}
			checkTranscript(t, tr, v, tr.state.CipherSuite)
		})
	}
}

var updateGo = flag.Bool("update-gotls", false, "regenerate testdata/gotls-*.transcript with crypto/tls")

// goTranscripts are crypto/tls exchanges kept in testdata: fuzz seeds and
// the package example read them.
var goTranscripts = []struct {
	name   string
	client *tls.Config
}{
	{"gotls-tls13-aes128", &tls.Config{InsecureSkipVerify: true}},
	{"gotls-tls12-chacha", &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}}},
}

// goSteps look like CQL on a new connection: OPTIONS, SUPPORTED, STARTUP,
// READY, a query and its rows.
var goSteps = []step{{FromClient, 9}, {FromServer, 60}, {FromClient, 30}, {FromServer, 9}, {FromClient, 120}, {FromServer, 2000}}

func TestGoTranscriptFiles(t *testing.T) {
	for _, g := range goTranscripts {
		path := filepath.Join("testdata", g.name+".transcript")
		if *updateGo {
			certs(t)
			tr := exchange(t, g.client, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, goSteps)
			if err := os.WriteFile(path, tr.encode(), 0o644); err != nil {
				t.Fatal(err)
			}
			// The key log alone, as SSLKEYLOGFILE would be, for the example.
			if err := os.WriteFile(strings.TrimSuffix(path, ".transcript")+".keylog", tr.keylog.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		text, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		tr := decodeTranscript(t, text)
		kl := keyLogOf(t, tr)
		c, got, _ := decryptAll(t, kl, tr.segments(0))
		if s := c.Stats(); s.Status != StatusDecrypting || !bytes.Equal(got[0], tr.sent[0]) || !bytes.Equal(got[1], tr.sent[1]) {
			t.Errorf("%s: %s", g.name, s.Reason())
		}
	}
}
