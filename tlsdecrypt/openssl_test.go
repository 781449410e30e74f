package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var updateOpenSSL = flag.Bool("update-openssl", false, "regenerate testdata/openssl-*.transcript with the openssl command")

// openSSLCases are exchanges between OpenSSL's s_client and s_server: a
// second, independent TLS stack, for what crypto/tls will not do on demand
// (TLS 1.3 with AES-256-GCM, KeyUpdate). Made with -update-openssl.
var openSSLCases = []struct {
	name  string
	args  []string // protocol and suite options for both ends
	suite uint16
	vers  uint16
}{
	{"tls13-aes256", []string{"-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384"}, tls.TLS_AES_256_GCM_SHA384, versionTLS13},
	{"tls13-chacha", []string{"-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"}, tls.TLS_CHACHA20_POLY1305_SHA256, versionTLS13},
	{"tls13-aes128", []string{"-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256"}, tls.TLS_AES_128_GCM_SHA256, versionTLS13},
	{"tls12-ecdhe-ecdsa-aes256", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384"}, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, versionTLS12},
}

// TestOpenSSLTranscripts decrypts the OpenSSL exchanges in testdata. Each
// has application data both ways and, in TLS 1.3, a KeyUpdate by the server
// asking the client to update too, then one by the server alone.
func TestOpenSSLTranscripts(t *testing.T) {
	for _, tc := range openSSLCases {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join("testdata", "openssl-"+tc.name+".transcript")
			if *updateOpenSSL {
				makeOpenSSLTranscript(t, path, tc.args)
			}
			text, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			tr := decodeTranscript(t, text)
			checkTranscript(t, tr, tc.vers, tc.suite)
			if tc.vers != versionTLS13 {
				return
			}
			kl := NewKeyLog(0)
			kl.ReadFrom(bytes.NewReader(tr.keylog.Bytes()))
			c, _, _ := decryptAll(t, kl, tr.segments(0))
			s := c.Stats()
			if s.Dirs[FromClient].KeyUpdates != 1 || s.Dirs[FromServer].KeyUpdates != 2 {
				t.Errorf("key updates: client %d, server %d; want 1 and 2", s.Dirs[FromClient].KeyUpdates, s.Dirs[FromServer].KeyUpdates)
			}
		})
	}
}

// TestOpenSSLResumption decrypts resumed sessions: TLS 1.2 by session ID
// (no tickets), with the key log of the first connection only, and TLS 1.3
// with 0-RTT data, which is skipped.
func TestOpenSSLResumption(t *testing.T) {
	cases := []struct {
		name string
		args []string
		more []string // the second client's arguments
	}{
		{"tls12-session-id", []string{"-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256", "-no_ticket"}, []string{"-sess_in", "DIR/sess.pem"}},
		{"tls13-early-data", []string{"-tls1_3", "-early_data"}, []string{"-sess_in", "DIR/sess.pem", "-early_data", "DIR/early.txt"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			paths := [2]string{}
			for i := range paths {
				paths[i] = filepath.Join("testdata", fmt.Sprintf("openssl-%s-%d.transcript", tc.name, i+1))
			}
			if *updateOpenSSL {
				trs := runOpenSSL(t, tc.args, [][]string{{"-sess_out", "DIR/sess.pem"}, tc.more}, func(i int, send sender) {
					send(FromClient, fmt.Sprintf("request on connection %d\n", i+1))
					send(FromServer, fmt.Sprintf("response on connection %d\n", i+1))
				})
				for i, tr := range trs {
					writeOpenSSLTranscript(t, paths[i], append(tc.args, map[int][]string{0: {"-sess_out", "sess.pem"}, 1: tc.more}[i]...), tr)
				}
			}
			var trs [2]*transcript
			for i, p := range paths {
				text, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				trs[i] = decodeTranscript(t, text)
			}
			switch tc.name {
			case "tls12-session-id":
				kl := keyLogOf(t, trs[0]) // the first connection's keys only
				decryptAll(t, kl, trs[0].segments(0))
				checkTranscriptWith(t, kl, trs[1], versionTLS12, tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256)
			case "tls13-early-data":
				c, got, _ := decryptAll(t, keyLogOf(t, trs[1]), trs[1].segments(0))
				s := c.Stats()
				checkConsistent(t, s)
				if s.Status != StatusDecrypting || s.Dirs[FromClient].SkippedRecords == 0 || s.Dirs[FromClient].AuthFailures != 0 ||
					!bytes.Equal(got[FromClient], trs[1].sent[FromClient]) || !bytes.Equal(got[FromServer], trs[1].sent[FromServer]) {
					t.Errorf("%s: %+v", s.Reason(), s.Dirs)
				}
			}
		})
	}
}

// makeOpenSSLTranscript runs s_server and s_client through a relay that
// records what each sends, typing lines into both; "K" asks for a
// KeyUpdate both ways, "k" for one from the sender only.
func makeOpenSSLTranscript(t *testing.T, path string, args []string) {
	tls13 := args[0] == "-tls1_3"
	trs := runOpenSSL(t, args, [][]string{nil}, func(_ int, send sender) {
		send(FromClient, "STARTUP from the client\n")
		send(FromServer, "READY from the server\n")
		send(FromClient, strings.Repeat("0123456789abcdef", 150)+"\n")
		send(FromServer, strings.Repeat("fedcba9876543210", 180)+"\n")
		if tls13 {
			// A line that starts with Q, R, K or k is a command to s_client.
			send(FromServer, "K\n") // the server updates and asks the client to
			send(FromClient, "request after the server's key update, with the client's\n")
			send(FromServer, "RESULT after both key updates\n")
			send(FromServer, "k\n") // the server alone
			send(FromServer, "EVENT after the server's second update\n")
			send(FromClient, "request again\n")
		}
	})
	writeOpenSSLTranscript(t, path, args, trs[0])
}

func writeOpenSSLTranscript(t *testing.T, path string, args []string, tr *transcript) {
	text := tr.encode()
	text = append([]byte("# openssl s_client and s_server "+strings.Join(args, " ")+" ("+opensslVersion()+"), through a recording relay\n"), text...)
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
}

// sender types a line into the client's or the server's standard input.
type sender func(d Dir, line string)

// runOpenSSL starts one s_server with args, and one s_client per element
// of clients (extra client arguments, "DIR" standing for a directory they
// share, where early.txt holds 0-RTT data) through a recording relay, each
// running script. The clients get args too, but for the server's
// -early_data.
func runOpenSSL(t *testing.T, args []string, clients [][]string, script func(i int, send sender)) []*transcript {
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("no openssl command")
	}
	certs(t)
	dir := t.TempDir()
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: ecdsaCert.Certificate[0]})
	keyDER, err := x509.MarshalPKCS8PrivateKey(ecdsaCert.PrivateKey)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	os.WriteFile(filepath.Join(dir, "cert.pem"), certPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "key.pem"), keyPEM, 0o600)
	os.WriteFile(filepath.Join(dir, "early.txt"), []byte("early data from the client\n"), 0o600)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverAddr := l.Addr().String()
	l.Close()
	srvArgs := []string{"s_server", "-accept", serverAddr,
		"-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem")}
	srv := exec.Command("openssl", append(srvArgs, args...)...)
	srvIn, _ := srv.StdinPipe()
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	time.Sleep(500 * time.Millisecond)

	var trs []*transcript
	for i, extra := range clients {
		tr := &transcript{}
		trs = append(trs, tr)
		relay, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			cc, err := relay.Accept()
			if err != nil {
				return
			}
			sc, err := net.Dial("tcp", serverAddr)
			if err != nil {
				cc.Close()
				return
			}
			pipe := func(dst, src net.Conn, d Dir) {
				buf := make([]byte, 64<<10)
				for {
					n, err := src.Read(buf)
					if n > 0 {
						tr.mu.Lock()
						tr.writes = append(tr.writes, write{d, bytes.Clone(buf[:n])})
						tr.mu.Unlock()
						dst.Write(buf[:n])
					}
					if err != nil {
						dst.(*net.TCPConn).CloseWrite()
						return
					}
				}
			}
			var pw sync.WaitGroup
			pw.Add(2)
			go func() { defer pw.Done(); pipe(sc, cc, FromClient) }()
			go func() { defer pw.Done(); pipe(cc, sc, FromServer) }()
			pw.Wait()
			cc.Close()
			sc.Close()
		}()

		keylog := filepath.Join(dir, fmt.Sprintf("client%d.keylog", i))
		cliArgs := []string{"s_client", "-connect", relay.Addr().String(), "-keylogfile", keylog}
		for _, a := range args {
			if a != "-early_data" {
				cliArgs = append(cliArgs, a)
			}
		}
		for _, a := range extra {
			cliArgs = append(cliArgs, strings.ReplaceAll(a, "DIR", dir))
		}
		cli := exec.Command("openssl", cliArgs...)
		cliIn, _ := cli.StdinPipe()
		var cliOut bytes.Buffer
		cli.Stdout, cli.Stderr = &cliOut, &cliOut
		if err := cli.Start(); err != nil {
			t.Fatal(err)
		}
		pause := func() { time.Sleep(300 * time.Millisecond) }
		pause()
		script(i, func(d Dir, line string) {
			w := io.Writer(cliIn)
			if d == FromServer {
				w = srvIn
			}
			io.WriteString(w, line)
			if line != "K\n" && line != "k\n" {
				tr.sent[d] = append(tr.sent[d], line...)
			}
			pause()
		})
		cliIn.Close()
		cli.Wait()
		pause()
		relay.Close()
		wg.Wait()
		kl, err := os.ReadFile(keylog)
		if err != nil {
			t.Fatalf("%v\nclient:\n%s\nserver:\n%s", err, cliOut.Bytes(), srvOut.Bytes())
		}
		tr.keylog.Write(kl)
		if testing.Verbose() {
			t.Logf("client %d:\n%s", i, cliOut.Bytes())
		}
	}
	srv.Process.Kill()
	srv.Wait()
	if testing.Verbose() {
		t.Logf("server:\n%s", srvOut.Bytes())
	}
	return trs
}

func opensslVersion() string {
	b, _ := exec.Command("openssl", "version").Output()
	return strings.TrimSpace(string(b))
}
