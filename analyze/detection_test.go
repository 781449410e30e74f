package analyze

import (
	"strings"
	"testing"
)

// What is CQL and what is not: CQL found on any port, other protocols on a
// CQL port, TLS connections with no key log (seen only as records).

// TestOtherPortsAndNoise: CQL on a port outside Config.Ports (-p) is
// found from the direction bit of its frames (and ignored with OnlyPorts,
// --only-ports); HTTP on the CQL port is never reported as CQL.
func TestOtherPortsAndNoise(t *testing.T) {
	q := "SELECT * FROM t"
	qBody := queryBody(q)
	cql := tcpPcap(
		frame(0x04, 0, 7, 0x07, qBody),
		frame(0x84, 0, 7, 0x08, []byte{0, 0, 0, 1}),
	)
	// The capture uses server port 9042; with Ports 7777 that port is "other".
	cfg := DefaultConfig()
	cfg.Ports = []uint16{7777}
	if _, r := runPipeline(t, cql, cfg); len(r.Connections) != 1 || r.Connections[0].Server != "10.0.0.2:9042" || r.Totals.Requests != 1 {
		t.Errorf("CQL on an unlisted port not found: totals %+v connections %+v", r.Totals, r.Connections)
	}
	cfg.OnlyPorts = true
	if _, r := runPipeline(t, cql, cfg); r.Totals.Connections != 0 {
		t.Errorf("OnlyPorts did not ignore port 9042 traffic: totals %+v", r.Totals)
	}
	http := tcpPcap([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	if _, r := runPipeline(t, http, DefaultConfig()); r.Totals.Connections != 0 || r.Totals.Frames != 0 {
		t.Errorf("HTTP on 9042 reported as CQL: totals %+v", r.Totals)
	}
}

// TestTLSMidStream: a TLS connection caught after its handshake (only
// application-data records) is still an encrypted connection, not noise.
func TestTLSMidStream(t *testing.T) {
	rec := func(n int) []byte { return append([]byte{0x17, 0x03, 0x03, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	data := tcpPcap(append(rec(40), rec(30)...), rec(120), rec(33))
	_, r := runPipeline(t, data, DefaultConfig())
	if r.Totals.Encrypted != 1 || len(r.Connections) != 1 || !r.Connections[0].Encrypted || r.Totals.NotCQL != 0 {
		t.Errorf("totals %+v connections %+v", r.Totals, r.Connections)
	}
	// The same on a port that is not a CQL port (HTTPS): not listed at all.
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, make([]byte, 64)...)
	for _, d := range [][]byte{tcpPcapPort(443, append(rec(40), rec(30)...), rec(120)), tcpPcapPort(443, hello, rec(50))} {
		_, r := runPipeline(t, d, DefaultConfig())
		if r.Totals.Encrypted != 0 || len(r.Connections) != 0 || r.Totals.NotCQL != 1 {
			t.Errorf("TLS on 443: totals %+v connections %+v", r.Totals, r.Connections)
		}
	}
}

// TestTLS: a TLS connection on a CQL port is listed as encrypted, with
// TCP-level figures only.
func TestTLS(t *testing.T) {
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, make([]byte, 64)...)
	data := tcpPcap(hello, []byte{0x16, 0x03, 0x03, 0x00, 0x10, 0x02}, []byte{0x17, 0x03, 0x03, 0x00, 0x20})
	_, r := runPipeline(t, data, DefaultConfig())
	if r.Totals.Encrypted != 1 || len(r.Connections) != 1 || !r.Connections[0].Encrypted || r.Totals.Frames != 0 {
		t.Fatalf("totals %+v connections %+v", r.Totals, r.Connections)
	}
	// The TCP figures: two client segments (75 and 5 bytes), one server segment (6 bytes).
	c := r.Connections[0]
	if c.ClientSegments.Segments != 2 || c.ClientSegments.Bytes != 80 || c.ServerSegments.Segments != 1 || c.ServerSegments.Bytes != 6 || c.ClientSegments.Frames != 0 {
		t.Errorf("TCP figures: client %+v server %+v", c.ClientSegments, c.ServerSegments)
	}
}

// TestTLSOnlyText: the text report of a capture with only encrypted
// connections does not claim that no side sent frames one at a time: it
// could not look.
func TestTLSOnlyText(t *testing.T) {
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, make([]byte, 64)...)
	_, r := runPipeline(t, tcpPcap(hello, []byte{0x16, 0x03, 0x03, 0x00, 0x10, 0x02}, []byte{0x17, 0x03, 0x03, 0x00, 0x20}), DefaultConfig())
	var out strings.Builder
	if err := r.WriteText(&out, 20); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.Contains(s, "none: the connection is encrypted (TLS) and was not decrypted") || strings.Contains(s, "no side sent") {
		t.Errorf("text report:\n%s", s)
	}
}
