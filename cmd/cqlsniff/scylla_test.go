package main

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func str(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

// multimap builds a [string multimap] of single-valued keys.
func multimap(kv ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = append(b, str(kv[i])...)
		b = append(b, 0, 1)
		b = append(b, str(kv[i+1])...)
	}
	return b
}

// TestScyllaAndErrorDetails: a ScyllaDB SUPPORTED on the shard-aware port
// gives the connection's shard (client port 40000 % 12 shards = 4), and a
// Write_timeout's details reach the log.
func TestScyllaAndErrorDetails(t *testing.T) {
	supported := multimap("SCYLLA_SHARD", "3", "SCYLLA_NR_SHARDS", "12",
		"SCYLLA_SHARDING_ALGORITHM", "biased-token-round-robin", "SCYLLA_RATE_LIMIT_ERROR", "ERROR_CODE=61440")
	q := "INSERT INTO t (k) VALUES (1)"
	qBody := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	qBody = append(append(qBody, q...), 0x00, 0x04, 0x00)
	// 00 00 11 00: Write_timeout, message, consistency QUORUM, received 1, block_for 2, write_type SIMPLE
	wt := binary.BigEndian.AppendUint32(nil, 0x1100)
	wt = append(wt, str("Operation timed out")...)
	wt = append(wt, 0x00, 0x04)
	wt = binary.BigEndian.AppendUint32(wt, 1)
	wt = binary.BigEndian.AppendUint32(wt, 2)
	wt = append(wt, str("SIMPLE")...)
	data := tcpPcapPort(19042,
		frame(0x04, 0, 0, 0x05, nil),       // OPTIONS
		frame(0x84, 0, 0, 0x06, supported), // SUPPORTED
		frame(0x04, 0, 1, 0x07, qBody),
		frame(0x84, 0, 1, 0x00, wt),
	)
	dir := t.TempDir()
	path := filepath.Join(dir, "scylla.pcap")
	os.WriteFile(path, data, 0o644)
	r := report(t, mustRead(t, path))
	if len(r.Connections) != 1 || r.Connections[0].Scylla == nil {
		t.Fatalf("no scylla info: %+v", r.Connections)
	}
	if sc := r.Connections[0].Scylla; sc.Shards != 12 || sc.Shard != 4 || !sc.ShardAwarePort || sc.ShardingAlgorithm != "biased-token-round-robin" {
		t.Errorf("scylla %+v", sc)
	}
	// A second connection to the node, begun before the capture: no
	// OPTIONS/SUPPORTED of its own. It gets the node's shard count, and its
	// shard from its source port on the shard-aware port.
	second := tcpPcapClient(40007, 19042, frame(0x04, 0, 1, 0x07, qBody), frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1}))
	both := filepath.Join(dir, "scylla2.pcap")
	os.WriteFile(both, append(append([]byte(nil), data...), second[24:]...), 0o644)
	r2 := report(t, mustRead(t, both))
	if len(r2.Connections) != 2 {
		t.Fatalf("%d connections", len(r2.Connections))
	}
	for _, c := range r2.Connections {
		if c.Client == "10.0.0.1:40007" {
			if sc := c.Scylla; sc == nil || sc.Shards != 12 || sc.Shard != 40007%12 || !sc.FromNode || !sc.ShardAwarePort {
				t.Errorf("second connection's scylla %+v", sc)
			}
		}
	}
	var text strings.Builder
	if err := run(t.Context(), []string{"-r", both, "--report", "text"}, nil, &text, &strings.Builder{}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "ScyllaDB shards") || !strings.Contains(text.String(), "node info from another connection") {
		t.Errorf("the text report lacks the shards:\n%s", text.String())
	}

	logPath := filepath.Join(dir, "log.jsonl")
	var out, errb strings.Builder
	if err := run(t.Context(), []string{"-r", path, "--report", "json", "--log", logPath}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	log, _ := os.ReadFile(logPath)
	for _, want := range []string{`"error_code":"WRITE_TIMEOUT"`, `"error_consistency":"QUORUM"`, `"received":1`, `"block_for":2`, `"write_type":"SIMPLE"`} {
		if !strings.Contains(string(log), want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}
