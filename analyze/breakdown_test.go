package analyze

import (
	"encoding/binary"
	"fmt"
	"maps"
	"strings"
	"testing"
)

// TestErrorsAndEventsBreakdown: errors are counted by ERROR code and events
// by type, per connection.
func TestErrorsAndEventsBreakdown(t *testing.T) {
	query := queryBody
	invalid := append(binary.BigEndian.AppendUint32(nil, 0x2200), str("Undefined column name x")...)
	// Read_timeout: message, consistency ONE, received 0, block_for 1, data_present 0.
	timeout := append(binary.BigEndian.AppendUint32(nil, 0x1200), str("Operation timed out")...)
	timeout = binary.BigEndian.AppendUint32(append(timeout, 0x00, 0x01), 0)
	timeout = append(binary.BigEndian.AppendUint32(timeout, 1), 0)
	register := append([]byte{0, 2}, append(str("SCHEMA_CHANGE"), str("STATUS_CHANGE")...)...)
	schema := append(append(append(str("SCHEMA_CHANGE"), str("CREATED")...), str("KEYSPACE")...), str("ks")...)
	status := append(append(str("STATUS_CHANGE"), str("DOWN")...), 4, 10, 0, 0, 3, 0, 0, 0x23, 0x52)
	exists := append(binary.BigEndian.AppendUint32(nil, 0x2400), str("Cannot add existing table")...)
	exists = append(append(exists, str("ks")...), str("kv")...)
	unprepared := append(binary.BigEndian.AppendUint32(nil, 0x2500), str("Prepared query not found")...)
	unprepared = append(unprepared, 0, 4, 0xde, 0xad, 0xbe, 0xef)
	data := tcpPcap(
		frame(0x04, 0, 1, 0x0B, register),
		frame(0x84, 0, 1, 0x02, nil), // READY
		frame(0x04, 0, 2, 0x07, query("SELECT x FROM t")),
		frame(0x84, 0, 2, 0x00, invalid),
		cat(frame(0x04, 0, 3, 0x07, query("SELECT v FROM t")), frame(0x04, 0, 4, 0x07, query("SELECT v FROM u")),
			frame(0x04, 0, 5, 0x07, query("CREATE TABLE ks.kv (k int PRIMARY KEY)")), frame(0x04, 0, 6, 0x07, query("SELECT 1"))),
		cat(frame(0x84, 0, 0xFFFF, 0x0C, schema), frame(0x84, 0, 3, 0x00, timeout),
			frame(0x84, 0, 0xFFFF, 0x0C, status), frame(0x84, 0, 4, 0x00, timeout),
			frame(0x84, 0, 5, 0x00, exists), frame(0x84, 0, 6, 0x00, unprepared)),
	)
	r, log := runWithLog(t, data, DefaultConfig())
	if len(r.Connections) != 1 {
		t.Fatalf("%d connections", len(r.Connections))
	}
	c := r.Connections[0]
	if want := map[string]uint64{"INVALID": 1, "READ_TIMEOUT": 2, "ALREADY_EXISTS": 1, "UNPREPARED": 1}; c.Errors != 5 || !maps.Equal(c.ErrorsByCode, want) {
		t.Errorf("errors %d by code %v, want 5 %v", c.Errors, c.ErrorsByCode, want)
	}
	// The log carries each code's fields.
	for _, want := range []string{
		`"error_code":"READ_TIMEOUT","error_message":"Operation timed out","error_consistency":"ONE","received":0,"block_for":1,"data_present":false`,
		`"keyspace":"ks","table":"kv"`,
		`"unprepared_id":"deadbeef"`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
	if want := map[string]uint64{"SCHEMA_CHANGE": 1, "STATUS_CHANGE": 1}; c.Events != 2 || !maps.Equal(c.EventsByType, want) {
		t.Errorf("events %d by type %v, want 2 %v", c.Events, c.EventsByType, want)
	}
}

// TestLargeStatements: a QUERY or BATCH longer than the 64 KiB body prefix
// kept is still named (by the text it starts with; by its first statement
// and the count its header gives), not "(undecodable)", and the same
// statement keeps the same name however long its values.
func TestLargeStatements(t *testing.T) {
	big := "SELECT * FROM ks.t WHERE k IN (" + strings.Repeat("1, ", 30000) + "2)"
	query := binary.BigEndian.AppendUint32(nil, uint32(len(big)))
	query = append(append(query, big...), 0x00, 0x01, 0x00)
	batch := []byte{1, 0x07, 0xD0} // UNLOGGED, 2000 statements
	for i := range 2000 {
		q := fmt.Sprintf("INSERT INTO ks.kv (k, v) VALUES (%d, 'value number %d')", i, i)
		batch = append(binary.BigEndian.AppendUint32(append(batch, 0), uint32(len(q))), q...)
		batch = append(batch, 0, 0)
	}
	batch = append(batch, 0x00, 0x01, 0x00)
	var payloads [][]byte
	for _, req := range [][]byte{frame(0x04, 0, 1, 0x07, query), frame(0x04, 0, 2, 0x0D, batch)} {
		for len(req) > 0 { // client segments of 60000 bytes; the server only acknowledges
			n := min(len(req), 60000)
			payloads = append(payloads, req[:n], nil)
			req = req[n:]
		}
	}
	payloads = append(payloads, nil, cat(frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1}), frame(0x84, 0, 2, 0x08, []byte{0, 0, 0, 1})))
	_, log := runWithLog(t, tcpPcap(payloads...), DefaultConfig())
	for _, want := range []string{
		`"statement":"SELECT * FROM ks.t WHERE k IN (?+`,
		`… (over 64 KiB)"`,
		`"statement":"BATCH UNLOGGED: INSERT INTO ks.kv (k, v) VALUES (?+) … (2000 statements, over 64 KiB)"`,
		`"batch_children":2000`,
	} {
		if !strings.Contains(log, want) {
			t.Errorf("the log lacks %s:\n%s", want, log)
		}
	}
	if strings.Contains(log, "undecodable") {
		t.Errorf("a large statement was not named:\n%s", log)
	}
}
