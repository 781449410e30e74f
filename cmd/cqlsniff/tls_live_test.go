package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

// tlsDial connects with TLS, the client logging its secrets to keylog
// (appended, as SSLKEYLOGFILE is).
func tlsDial(keylog io.Writer, cfg *tls.Config) func(string) (net.Conn, error) {
	return func(addr string) (net.Conn, error) {
		c := cfg.Clone()
		c.InsecureSkipVerify = true
		c.KeyLogWriter = keylog
		return tls.Dial("tcp4", addr, c)
	}
}

// TestLiveTLS captures TLS clients on lo with cqlsniff's --keylog path: the
// key log does not exist when the capture starts; each client appends its
// secrets while it shakes hands, after the capture began. Every request
// must be decrypted and paired, and the unbuffered TLS client flagged
// (from the decrypted frames), the buffered one not.
func TestLiveTLS(t *testing.T) {
	for _, v := range []struct {
		name string
		cfg  *tls.Config
	}{
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}},
		{"TLS 1.2 ChaCha20", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305}}},
	} {
		t.Run(v.name, func(t *testing.T) { liveTLS(t, v.cfg) })
	}
}

func liveTLS(t *testing.T, ccfg *tls.Config) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	src := openLive(t, capture.LiveConfig{Interface: "lo", Ports: []uint16{port}})

	keyPath := filepath.Join(t.TempDir(), "keys.log")
	kl := tlsdecrypt.NewKeyLog(0)
	if err := kl.Load(keyPath); err == nil {
		t.Fatal("the key log exists before the clients start")
	}
	cfg := analyze.DefaultConfig()
	cfg.Ports = []uint16{port}
	cfg.KeyLog, cfg.KeyLogRefresh = kl, true
	p := analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx, 0) }()

	scfg := &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	phases := []*phase{
		{name: "unbuffered", rounds: 20, inFlight: 64, perWrite: 1},
		{name: "batched", rounds: 20, inFlight: 16, perWrite: 16},
	}
	served := make(chan error, len(phases))
	go func() {
		for _, ph := range phases {
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			served <- serveCQL(tls.Server(c, scfg), ph.inFlight)
		}
	}()
	time.Sleep(200 * time.Millisecond) // the capture is running before anything connects
	keys, err := os.OpenFile(keyPath, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer keys.Close()
	var total uint64
	for _, ph := range phases {
		ph.dial = tlsDial(keys, ccfg)
		if err := ph.run(ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		total += ph.requests()
	}
	for deadline := time.Now().Add(20 * time.Second); ; {
		p.Snapshots().Request()
		time.Sleep(20 * time.Millisecond)
		if r := p.Snapshots().Latest(); r != nil && r.Totals.Responses >= total {
			break
		}
		if time.Now().After(deadline) {
			r := p.Snapshots().Latest()
			for _, c := range r.Connections {
				t.Logf("%s: %+v", c.Client, c.TLS)
			}
			t.Fatalf("the pipeline saw %+v after 20s", r.Totals)
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	rep := p.Report("lo")
	if rep.Totals.Requests != total || rep.Totals.Responses != total || rep.Totals.Decrypted != 2 {
		t.Errorf("totals %+v, sent %d requests on 2 TLS connections", rep.Totals, total)
	}
	for _, ph := range phases {
		var cr *analyze.ConnReport
		for _, c := range rep.Connections {
			if c.Client == ph.client {
				cr = c
			}
		}
		if cr == nil {
			t.Fatalf("%s: connection %s not in the report", ph.name, ph.client)
		}
		if cr.TLS == nil || !cr.TLS.Decrypted || cr.Requests != ph.requests() || cr.Responses != ph.requests() {
			t.Errorf("%s: TLS %+v, %d requests, %d responses (sent %d)", ph.name, cr.TLS, cr.Requests, cr.Responses, ph.requests())
		}
		flagged := slices.Contains(cr.DiagnosisCodes, analyze.CodeClientUnbuffered)
		if flagged != (ph.perWrite == 1) {
			t.Errorf("%s: diagnoses %v (client frames/segment %.2f, frames/record %+v)", ph.name, cr.DiagnosisCodes,
				cr.ClientSegments.FramesPerSegment, cr.ClientSegments.TLS)
		}
		t.Logf("%s: %s %s, %d requests decrypted, client frames/record %.2f, late records %d", ph.name, cr.TLS.Version,
			cr.TLS.CipherSuite, cr.Requests, cr.ClientSegments.TLS.FramesPerRecord, cr.TLS.LateRecords)
	}
}
