package analyze

import (
	"encoding/binary"
	"strings"
	"testing"
)

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
	r, log := runWithLog(t, data, DefaultConfig())
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
	_, r2 := runPipeline(t, append(append([]byte(nil), data...), second[24:]...), DefaultConfig())
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
	if err := r2.WriteText(&text, 20); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(text.String(), "ScyllaDB shards") || !strings.Contains(text.String(), "node info from another connection") {
		t.Errorf("the text report lacks the shards:\n%s", text.String())
	}

	for _, want := range []string{`"error_code":"WRITE_TIMEOUT"`, `"error_consistency":"QUORUM"`, `"received":1`, `"block_for":2`, `"write_type":"SIMPLE"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}
}
