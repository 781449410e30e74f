package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"flag"
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

// makeOpenSSLTranscript runs s_server and s_client through a relay that
// records what each sends, typing lines into both; "K" asks for a
// KeyUpdate both ways, "k" for one from the sender only.
func makeOpenSSLTranscript(t *testing.T, path string, args []string) {
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

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serverAddr := l.Addr().String()
	l.Close()
	srv := exec.Command("openssl", append([]string{"s_server", "-accept", serverAddr,
		"-cert", filepath.Join(dir, "cert.pem"), "-key", filepath.Join(dir, "key.pem")}, args...)...)
	srvIn, _ := srv.StdinPipe()
	var srvOut bytes.Buffer
	srv.Stdout, srv.Stderr = &srvOut, &srvOut
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	defer srv.Process.Kill()
	time.Sleep(500 * time.Millisecond)

	tr := &transcript{}
	relay, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
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

	keylog := filepath.Join(dir, "client.keylog")
	cli := exec.Command("openssl", append([]string{"s_client", "-connect", relay.Addr().String(),
		"-keylogfile", keylog}, args...)...)
	cliIn, _ := cli.StdinPipe()
	var cliOut bytes.Buffer
	cli.Stdout, cli.Stderr = &cliOut, &cliOut
	if err := cli.Start(); err != nil {
		t.Fatal(err)
	}
	pause := func() { time.Sleep(300 * time.Millisecond) }
	send := func(w io.Writer, d Dir, line string) {
		io.WriteString(w, line)
		if line != "K\n" && line != "k\n" {
			tr.sent[d] = append(tr.sent[d], line...)
		}
		pause()
	}
	pause()
	send(cliIn, FromClient, "STARTUP from the client\n")
	send(srvIn, FromServer, "READY from the server\n")
	send(cliIn, FromClient, strings.Repeat("0123456789abcdef", 150)+"\n")
	send(srvIn, FromServer, strings.Repeat("fedcba9876543210", 180)+"\n")
	if args[0] == "-tls1_3" {
		// A line that starts with Q, R, K or k is a command to s_client.
		send(srvIn, FromServer, "K\n") // the server updates and asks the client to
		send(cliIn, FromClient, "request after the server's key update, with the client's\n")
		send(srvIn, FromServer, "RESULT after both key updates\n")
		send(srvIn, FromServer, "k\n") // the server alone
		send(srvIn, FromServer, "EVENT after the server's second update\n")
		send(cliIn, FromClient, "request again\n")
	}
	cliIn.Close()
	cli.Wait()
	pause()
	srv.Process.Kill()
	srv.Wait()
	relay.Close()
	wg.Wait()
	kl, err := os.ReadFile(keylog)
	if err != nil {
		t.Fatalf("%v\nclient:\n%s\nserver:\n%s", err, cliOut.Bytes(), srvOut.Bytes())
	}
	tr.keylog.Write(kl)
	if testing.Verbose() {
		t.Logf("client:\n%s\nserver:\n%s", cliOut.Bytes(), srvOut.Bytes())
	}
	text := tr.encode()
	text = append([]byte("# openssl s_client and s_server "+strings.Join(args, " ")+" ("+opensslVersion()+"), through a recording relay\n"), text...)
	if err := os.WriteFile(path, text, 0o644); err != nil {
		t.Fatal(err)
	}
}

func opensslVersion() string {
	b, _ := exec.Command("openssl", "version").Output()
	return strings.TrimSpace(string(b))
}
