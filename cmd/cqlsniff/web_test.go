package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/metrics"
)

// webTLS is a throwaway PKI for the metrics endpoint's tests: a CA, a
// server certificate for 127.0.0.1 and localhost signed by it, and a web
// configuration with TLS and one basic-auth user.
type webTLS struct {
	dir      string
	config   string // the web configuration file
	caFile   string
	pool     *x509.CertPool
	user     string
	password string
	ca       *x509.Certificate
	caKey    *ecdsa.PrivateKey
}

// newWebTLS writes the CA, the server's certificate and key and a web
// configuration (with extra appended to it) to a temporary directory.
func newWebTLS(t testing.TB, extra string) *webTLS {
	t.Helper()
	w := &webTLS{dir: t.TempDir(), user: "prometheus", password: "scrape-me-" + rand.Text()}
	var err error
	if w.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "cqlsniff test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &w.caKey.PublicKey, w.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if w.ca, err = x509.ParseCertificate(caDER); err != nil {
		t.Fatal(err)
	}
	w.caFile = filepath.Join(w.dir, "ca.crt")
	w.pool = x509.NewCertPool()
	w.pool.AddCert(w.ca)
	writePEM(t, w.caFile, "CERTIFICATE", caDER)
	w.issue(t, "tls", x509.ExtKeyUsageServerAuth)
	hash, err := bcrypt.GenerateFromPassword([]byte(w.password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Relative paths are relative to the configuration file.
	w.config = filepath.Join(w.dir, "web-config.yml")
	cfg := fmt.Sprintf("tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n%sbasic_auth_users:\n  %s: %s\n", extra, w.user, hash)
	if err := os.WriteFile(w.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return w
}

// issue writes NAME.crt and NAME.key, a certificate for 127.0.0.1 and
// localhost signed by the CA, for a server or a client (usage).
func (w *webTLS) issue(t testing.TB, name string, usage x509.ExtKeyUsage) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "cqlsniff " + name},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, w.ca, &key.PublicKey, w.caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	writePEM(t, filepath.Join(w.dir, name+".crt"), "CERTIFICATE", der)
	writePEM(t, filepath.Join(w.dir, name+".key"), "PRIVATE KEY", keyDER)
}

func writePEM(t testing.TB, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// client is an HTTPS client that trusts the test CA.
func (w *webTLS) client() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.pool}}}
}

// webGet fetches url with the given basic-auth credentials (none when user
// is empty) and returns the status code.
func webGet(t testing.TB, c *http.Client, url, user, password string) (int, error) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, nil
}

// checkWebAuth checks what the web configuration promises on a metrics
// endpoint at addr: 401 without credentials or with wrong ones, 200 with
// the right ones, and no answer over plain HTTP.
func checkWebAuth(t testing.TB, w *webTLS, addr string) {
	t.Helper()
	url := "https://" + addr + "/metrics"
	c := w.client()
	for _, tc := range []struct {
		name, user, password string
		want                 int
	}{
		{"no credentials", "", "", http.StatusUnauthorized},
		{"wrong password", w.user, "not-" + w.password, http.StatusUnauthorized},
		{"unknown user", "admin", w.password, http.StatusUnauthorized},
		{"right credentials", w.user, w.password, http.StatusOK},
	} {
		code, err := webGet(t, c, url, tc.user, tc.password)
		if err != nil || code != tc.want {
			t.Errorf("%s: status %d (%v), want %d", tc.name, code, err, tc.want)
		} else {
			t.Logf("https %s: %d", tc.name, code)
		}
	}
	// Plain HTTP, even with the right credentials: the server wants a TLS
	// handshake; Go's TLS server answers a plain request with a bare 400.
	req, _ := http.NewRequest("GET", "http://"+addr+"/metrics", nil)
	req.SetBasicAuth(w.user, w.password)
	if resp, err := (&http.Client{Timeout: 10 * time.Second}).Do(req); err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || bytes.Contains(body, []byte("cqlsniff_")) {
			t.Errorf("plain HTTP: status %d, %q, want 400 and no metrics", resp.StatusCode, body)
		} else {
			t.Logf("plain http: %d %q", resp.StatusCode, bytes.TrimSpace(body))
		}
	} else {
		t.Logf("plain http: %v", err)
	}
	// A client that does not trust the CA does not get through either.
	if _, err := webGet(t, &http.Client{Timeout: 10 * time.Second}, url, w.user, w.password); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Errorf("a client without the CA: %v, want a certificate error", err)
	}
}

func TestWebConfigServe(t *testing.T) {
	w := newWebTLS(t, "")
	if err := checkWebConfig(w.config, false); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveMetrics(ln, w.config, &analyze.Snapshots{}, metrics.Config{}, io.Discard)
	defer stop()
	checkWebAuth(t, w, ln.Addr().String())
}

func TestWebConfigClientCert(t *testing.T) {
	// The test CA signs the clients' certificates too.
	w := newWebTLS(t, "  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: ca.crt\n")
	w.issue(t, "client", x509.ExtKeyUsageClientAuth)
	if err := checkWebConfig(w.config, false); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	stop := serveMetrics(ln, w.config, &analyze.Snapshots{}, metrics.Config{}, io.Discard)
	defer stop()
	url := "https://" + ln.Addr().String() + "/metrics"
	if _, err := webGet(t, w.client(), url, w.user, w.password); err == nil {
		t.Error("no client certificate: got an answer")
	}
	cert, err := tls.LoadX509KeyPair(filepath.Join(w.dir, "client.crt"), filepath.Join(w.dir, "client.key"))
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: w.pool, Certificates: []tls.Certificate{cert}}}}
	if code, err := webGet(t, c, url, w.user, w.password); err != nil || code != 200 {
		t.Errorf("with a client certificate: %d %v, want 200", code, err)
	}
}

// TestWebConfigErrors: a bad web configuration is a usage error (exit 2)
// at start, on one line, before any capture is opened.
func TestWebConfigErrors(t *testing.T) {
	w := newWebTLS(t, "")
	write := func(name, s string) string {
		p := filepath.Join(w.dir, name)
		os.WriteFile(p, []byte(s), 0o600)
		return p
	}
	cases := []struct {
		name string
		file string
		msg  string
	}{
		{"missing file", filepath.Join(w.dir, "nope.yml"), "no such file"},
		{"not YAML", write("garbage.yml", "tls_server_config: [\n"), "yaml"},
		{"unknown field", write("unknown.yml", "tls_server_config:\n  cert_file: tls.crt\n  key_file: tls.key\n  certfile: x\n"), "certfile"},
		{"missing key", write("nokey.yml", "tls_server_config:\n  cert_file: tls.crt\n"), "key"},
		{"missing certificate file", write("nocert.yml", "tls_server_config:\n  cert_file: gone.crt\n  key_file: tls.key\n"), "gone.crt"},
		{"password not bcrypt", write("plain.yml", "basic_auth_users:\n  prometheus: secret\n"), "hash"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			// An interface that does not exist: the web configuration is
			// checked before the capture opens, so it is the error.
			err := run(context.Background(), []string{"-i", "nonexistent0", "--metrics", "127.0.0.1:0", "--web.config.file", c.file}, nil, io.Discard, io.Discard)
			if got := exitCode(err); got != 2 {
				t.Fatalf("exit %d (%v), want 2", got, err)
			}
			if !strings.Contains(err.Error(), "--web.config.file") || !strings.Contains(strings.ToLower(err.Error()), strings.ToLower(c.msg)) {
				t.Errorf("error %q does not say --web.config.file and %q", err, c.msg)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
	err := run(context.Background(), []string{"-r", sample, "--web.config.file", w.config}, nil, io.Discard, io.Discard)
	if exitCode(err) != 2 || !strings.Contains(err.Error(), "--metrics") {
		t.Errorf("--web.config.file without --metrics: %v, want a usage error", err)
	}
	// A good file with a replay: served, and the run ends normally.
	if err := run(context.Background(), []string{"-r", sample, "--report", "json", "--metrics", "127.0.0.1:0", "--web.config.file", w.config}, nil, io.Discard, io.Discard); err != nil {
		t.Errorf("a valid configuration: %v", err)
	}
}
