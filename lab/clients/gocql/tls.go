package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"os"
	"strings"
)

// tlsOptions are the client's TLS flags (issue 11: encrypted CQL). The lab Cassandra accepts TLS and
// plain CQL on the same port 9042 (client_encryption_options enabled + optional).
type tlsOptions struct {
	on      bool
	ca      string // PEM to trust (lab/.cache/tls/ca.pem); empty: InsecureSkipVerify
	keylog  string // NSS key log file (SSLKEYLOGFILE format) written through tls.Config.KeyLogWriter
	max     string // "", "1.2" or "1.3"
	ciphers string // "", "chacha", "aes128" or "aes256": the TLS 1.2 ECDHE-RSA suite to offer (TLS 1.3 suites are not configurable in Go)
}

// config builds the tls.Config shared by every connection (schema session and measured session), and
// the key log writer to close at exit (nil without -keylog).
func (o tlsOptions) config() (*tls.Config, io.Closer, error) {
	if !o.on {
		return nil, nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.ca != "" {
		pem, err := os.ReadFile(o.ca)
		if err != nil {
			return nil, nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, fmt.Errorf("-tls-ca %s: no certificate in it", o.ca)
		}
		c.RootCAs = pool // gocql sets ServerName to the host's address, 127.0.0.1: the cert's IP SAN
	} else {
		c.InsecureSkipVerify = true
	}
	switch o.max {
	case "", "1.3":
	case "1.2":
		c.MaxVersion = tls.VersionTLS12
	default:
		return nil, nil, fmt.Errorf("unknown -tls-max %q (1.2 or 1.3)", o.max)
	}
	switch o.ciphers {
	case "":
	case "chacha":
		c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256}
	case "aes128":
		c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}
	case "aes256":
		c.CipherSuites = []uint16{tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384}
	default:
		return nil, nil, fmt.Errorf("unknown -tls-ciphers %q (chacha, aes128 or aes256)", o.ciphers)
	}
	var closer io.Closer
	if o.keylog != "" {
		f, err := os.OpenFile(o.keylog, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return nil, nil, err
		}
		c.KeyLogWriter = f // test keys of throwaway lab sessions only
		closer = f
	}
	return c, closer, nil
}

func (o tlsOptions) describe() string {
	if !o.on {
		return ""
	}
	parts := []string{"tls"}
	if o.max != "" {
		parts = append(parts, "max "+o.max)
	}
	if o.ciphers != "" {
		parts = append(parts, "ciphers "+o.ciphers)
	}
	return strings.Join(parts, ", ")
}
