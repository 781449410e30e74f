package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// tcpPcap writes a classic pcap of Ethernet/IPv4/TCP packets carrying the
// given payloads, alternating client → server and server → client.
func tcpPcap(payloads ...[]byte) []byte { return tcpPcapPort(9042, payloads...) }

func tcpPcapPort(server uint16, payloads ...[]byte) []byte {
	return tcpPcapClient(40000, server, payloads...)
}

// tcpPcapClient is tcpPcapPort from the client port given.
func tcpPcapClient(client, server uint16, payloads ...[]byte) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xA1B2C3D4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1) // Ethernet
	seq := [2]uint32{1000, 5000}
	for i, pl := range payloads {
		dir := i % 2
		pkt := make([]byte, 14+20+20)
		binary.BigEndian.PutUint16(pkt[12:], 0x0800)
		ip := pkt[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(40+len(pl)))
		ip[8], ip[9] = 64, 6
		src, dst := []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}
		sport, dport := client, server
		if dir == 1 {
			src, dst, sport, dport = dst, src, dport, sport
		}
		copy(ip[12:], src)
		copy(ip[16:], dst)
		tcp := pkt[34:]
		binary.BigEndian.PutUint16(tcp[0:], sport)
		binary.BigEndian.PutUint16(tcp[2:], dport)
		binary.BigEndian.PutUint32(tcp[4:], seq[dir])
		binary.BigEndian.PutUint32(tcp[8:], seq[1-dir])
		tcp[12] = 5 << 4
		tcp[13] = 0x18 // PSH ACK
		seq[dir] += uint32(len(pl))
		pkt = append(pkt, pl...)
		b = binary.LittleEndian.AppendUint32(b, 1700000000)
		b = binary.LittleEndian.AppendUint32(b, uint32(i*100))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

func frame(ver, flags byte, stream uint16, op byte, body []byte) []byte {
	b := []byte{ver, flags, byte(stream >> 8), byte(stream), op}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// TestSecretsNeverShown: a SASL PLAIN AUTH_RESPONSE (user and password in
// clear) and a CREATE ROLE ... PASSWORD literal never reach the report or
// the log, even with --show-values or --hash-values.
func TestSecretsNeverShown(t *testing.T) {
	token := []byte("\x00cassandra\x00hunter2-secret")
	authBody := binary.BigEndian.AppendUint32(nil, uint32(len(token)))
	authBody = append(authBody, token...)
	q := "CREATE ROLE bob WITH PASSWORD = 'hunter2-secret' AND LOGIN = true"
	qBody := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	qBody = append(append(qBody, q...), 0x00, 0x01, 0x00)
	// A prepared ALTER ROLE with the password bound, and an error that
	// echoes a literal.
	alter := "ALTER ROLE bob WITH PASSWORD = ?"
	prep := append(binary.BigEndian.AppendUint32(nil, uint32(len(alter))), alter...)
	id := []byte{0x5e, 0xc2, 0xe7, 0x01}
	prepared := binary.BigEndian.AppendUint32(nil, 4) // RESULT Prepared
	prepared = append(append(prepared, 0, byte(len(id))), id...)
	prepared = binary.BigEndian.AppendUint32(prepared, 0) // metadata flags
	prepared = binary.BigEndian.AppendUint32(prepared, 1) // one column
	prepared = binary.BigEndian.AppendUint32(prepared, 0) // no partition key index
	prepared = append(append(append(append(prepared, str("system_auth")...), str("roles")...), str("salted_hash")...), 0, 0x0D)
	prepared = binary.BigEndian.AppendUint32(prepared, 4) // result metadata: No_metadata
	prepared = binary.BigEndian.AppendUint32(prepared, 0)
	secret := "hunter2-secret"
	exec := append(append([]byte{0, byte(len(id))}, id...), 0x00, 0x01, 0x01, 0x00, 0x01)
	exec = append(binary.BigEndian.AppendUint32(exec, uint32(len(secret))), secret...)
	bad := "INSERT INTO t (k) VALUES ('hunter2-secret')"
	badBody := append(binary.BigEndian.AppendUint32(nil, uint32(len(bad))), bad...)
	badBody = append(badBody, 0x00, 0x01, 0x00)
	echo := append(binary.BigEndian.AppendUint32(nil, 0x2200), str("Invalid STRING constant (hunter2-secret) for \"k\" of type int")...)
	data := tcpPcap(
		// 04 00 00 01 0f ...: v4 AUTH_RESPONSE on stream 1
		frame(0x04, 0, 1, 0x0F, authBody),
		// 84 00 00 01 10 00 00 00 04 ff ff ff ff: AUTH_SUCCESS, null token
		frame(0x84, 0, 1, 0x10, []byte{0xff, 0xff, 0xff, 0xff}),
		frame(0x04, 0, 2, 0x07, qBody),
		frame(0x84, 0, 2, 0x08, []byte{0, 0, 0, 1}),
		frame(0x04, 0, 3, 0x09, prep),
		frame(0x84, 0, 3, 0x08, prepared),
		frame(0x04, 0, 4, 0x0A, exec),
		frame(0x84, 0, 4, 0x08, []byte{0, 0, 0, 1}),
		frame(0x04, 0, 5, 0x07, badBody),
		frame(0x84, 0, 5, 0x00, echo),
	)
	path := filepath.Join(t.TempDir(), "auth.pcap")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, extra := range [][]string{nil, {"--hash-values"}} {
		logPath := filepath.Join(t.TempDir(), "log.jsonl")
		var out, errb bytes.Buffer
		args := append([]string{"-r", path, "--report", "json", "--log", logPath}, extra...)
		if err := run(context.Background(), args, nil, &out, &errb); err != nil {
			t.Fatal(err)
		}
		log, _ := os.ReadFile(logPath)
		all := out.String() + string(log) + errb.String()
		if strings.Contains(all, "hunter2") || strings.Contains(all, hex.EncodeToString([]byte("hunter2"))) {
			t.Errorf("%v: a secret reached the output:\n%s", extra, all)
		}
		if !strings.Contains(string(log), `"opcode":"AUTH_RESPONSE"`) || !strings.Contains(string(log), "PASSWORD = ?") {
			t.Errorf("%v: exchanges missing from the log:\n%s", extra, log)
		}
	}
	// --show-values shows literal query text, except password literals;
	// the AUTH_RESPONSE token stays hidden too.
	logPath := filepath.Join(t.TempDir(), "log.jsonl")
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-r", path, "--log", logPath, "--show-values"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(logPath)
	// (It shows the literal of the failed INSERT, and the error echoing it:
	// that is what was asked for. Not the password.)
	if strings.Contains(string(log), "PASSWORD = 'hunter2") || strings.Contains(string(log), hex.EncodeToString([]byte("hunter2"))) {
		t.Errorf("--show-values revealed a password:\n%s", log)
	}
	if !strings.Contains(string(log), `"values_withheld":"the statement sets a password"`) {
		t.Errorf("--show-values: the bound password is not withheld:\n%s", log)
	}
}

// TestOtherPortsAndNoise: CQL on a port outside -p is found from the
// direction bit of its frames (and ignored with --only-ports); HTTP on the
// CQL port is never reported as CQL.
func TestOtherPortsAndNoise(t *testing.T) {
	q := "SELECT * FROM t"
	qBody := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	qBody = append(append(qBody, q...), 0x00, 0x01, 0x00)
	cql := tcpPcap(
		frame(0x04, 0, 7, 0x07, qBody),
		frame(0x84, 0, 7, 0x08, []byte{0, 0, 0, 1}),
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "cql.pcap")
	os.WriteFile(path, cql, 0o644)
	// The capture uses server port 9042; with -p 7777 that port is "other".
	rep := func(args ...string) string {
		var out, errb bytes.Buffer
		if err := run(context.Background(), append([]string{"-r", path, "--report", "json"}, args...), nil, &out, &errb); err != nil {
			t.Fatal(err)
		}
		return out.String()
	}
	if got := rep("-p", "7777"); !strings.Contains(got, `"server": "10.0.0.2:9042"`) || !strings.Contains(got, `"requests": 1`) {
		t.Errorf("CQL on an unlisted port not found:\n%s", got)
	}
	if got := rep("-p", "7777", "--only-ports"); !strings.Contains(got, `"connections": 0`) {
		t.Errorf("--only-ports did not ignore port 9042 traffic:\n%s", got)
	}
	http := tcpPcap([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"))
	os.WriteFile(path, http, 0o644)
	if got := rep(); !strings.Contains(got, `"connections": 0`) || !strings.Contains(got, `"frames": 0`) {
		t.Errorf("HTTP on 9042 reported as CQL:\n%s", got)
	}
}

// TestStreamReuse: a stream id reused before its answer counts the first
// request as unanswered; the answer pairs with the newer request.
func TestStreamReuse(t *testing.T) {
	q := "SELECT 1"
	qBody := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	qBody = append(append(qBody, q...), 0x00, 0x01, 0x00)
	data := tcpPcap(
		frame(0x04, 0, 3, 0x07, qBody),
		frame(0x84, 0, 9, 0x08, []byte{0, 0, 0, 1}), // an answer to a request before the capture
		frame(0x04, 0, 3, 0x07, qBody),              // stream 3 again, unanswered so far
		frame(0x84, 0, 3, 0x08, []byte{0, 0, 0, 1}),
	)
	path := filepath.Join(t.TempDir(), "reuse.pcap")
	os.WriteFile(path, data, 0o644)
	r := report(t, mustRead(t, path))
	if r.Totals.Requests != 2 || r.Totals.Responses != 1 || r.Totals.StreamReuse != 1 || r.Totals.Unanswered != 1 || r.Totals.OrphanResponses != 1 {
		t.Errorf("totals %+v", r.Totals)
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestTLSMidStream: a TLS connection caught after its handshake (only
// application-data records) is still an encrypted connection, not noise.
func TestTLSMidStream(t *testing.T) {
	rec := func(n int) []byte { return append([]byte{0x17, 0x03, 0x03, byte(n >> 8), byte(n)}, make([]byte, n)...) }
	data := tcpPcap(append(rec(40), rec(30)...), rec(120), rec(33))
	path := filepath.Join(t.TempDir(), "tls-mid.pcap")
	os.WriteFile(path, data, 0o644)
	r := report(t, mustRead(t, path))
	if r.Totals.Encrypted != 1 || len(r.Connections) != 1 || !r.Connections[0].Encrypted || r.Totals.NotCQL != 0 {
		t.Errorf("totals %+v connections %+v", r.Totals, r.Connections)
	}
	// The same on a port that is not a CQL port (HTTPS): not listed at all.
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, make([]byte, 64)...)
	for _, d := range [][]byte{tcpPcapPort(443, append(rec(40), rec(30)...), rec(120)), tcpPcapPort(443, hello, rec(50))} {
		os.WriteFile(path, d, 0o644)
		r := report(t, mustRead(t, path))
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
	path := filepath.Join(t.TempDir(), "tls.pcap")
	os.WriteFile(path, data, 0o644)
	r := report(t, mustRead(t, path))
	if r.Totals.Encrypted != 1 || len(r.Connections) != 1 || !r.Connections[0].Encrypted || r.Totals.Frames != 0 {
		t.Fatalf("totals %+v connections %+v", r.Totals, r.Connections)
	}
	// The TCP figures: two client segments (75 and 5 bytes), one server segment (6 bytes).
	c := r.Connections[0]
	if c.ClientWrites.Segments != 2 || c.ClientWrites.Bytes != 80 || c.ServerWrites.Segments != 1 || c.ServerWrites.Bytes != 6 || c.ClientWrites.Frames != 0 {
		t.Errorf("TCP figures: client %+v server %+v", c.ClientWrites, c.ServerWrites)
	}
}

// TestTLSOnlyText: the text report of a capture with only encrypted
// connections does not claim that no side sent frames one at a time: it
// could not look.
func TestTLSOnlyText(t *testing.T) {
	hello := append([]byte{0x16, 0x03, 0x01, 0x00, 0x40, 0x01, 0x00, 0x00, 0x3c, 0x03, 0x03}, make([]byte, 64)...)
	path := filepath.Join(t.TempDir(), "tls.pcap")
	os.WriteFile(path, tcpPcap(hello, []byte{0x16, 0x03, 0x03, 0x00, 0x10, 0x02}, []byte{0x17, 0x03, 0x03, 0x00, 0x20}), 0o644)
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-r", path, "--report", "text"}, nil, &out, &errb); err != nil {
		t.Fatalf("%v: %s", err, errb.String())
	}
	if s := out.String(); !strings.Contains(s, "none: the connection is encrypted (TLS) and was not decrypted") || strings.Contains(s, "no side sent") {
		t.Errorf("text report:\n%s", s)
	}
}
