package main

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// TestAnalysisFlags: the flags that set analyze.Config reach it. What the
// analysis does with each setting is tested in analyze (TestOtherPortsAndNoise,
// TestSecretsNeverShown); here only that -p, --only-ports, --show-values,
// --hash-values and --hash-key change what comes out.
func TestAnalysisFlags(t *testing.T) {
	// 04 00 00 01 07 LL LL LL LL: v4 QUERY on stream 1
	//   00 00 00 1b "SELECT v FROM t WHERE k = ?"
	//   00 01 01 00 01 00 00 00 01 2a: consistency ONE, flags VALUES, one value: 0x2a
	// 84 00 00 01 08 00 00 00 04 00 00 00 01: v4 RESULT Void
	q := "SELECT v FROM t WHERE k = ?"
	body := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	body = append(append(body, q...), 0x00, 0x01, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x2a)
	query := append([]byte{0x04, 0x00, 0x00, 0x01, 0x07}, binary.BigEndian.AppendUint32(nil, uint32(len(body)))...)
	query = append(query, body...)
	void := []byte{0x84, 0x00, 0x00, 0x01, 0x08, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x01}
	var pcap bytes.Buffer
	if err := synth.WriteConversation(&pcap, 9042, time.Time{}, []synth.Segment{
		{FromClient: true, Payload: query},
		{At: 100 * time.Microsecond, Payload: void},
	}); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "query.pcap")
	if err := os.WriteFile(path, pcap.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	runJSON := func(args ...string) (*analyze.Report, string) {
		t.Helper()
		logPath := filepath.Join(t.TempDir(), "log.jsonl")
		var out, errb bytes.Buffer
		args = append([]string{"-r", path, "--report", "json", "--log", logPath}, args...)
		if err := run(t.Context(), args, nil, &out, &errb); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, errb.String())
		}
		var rep analyze.Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatal(err)
		}
		return &rep, string(mustRead(t, logPath))
	}

	if rep, _ := runJSON("-p", "7777"); rep.Totals.Connections != 1 {
		t.Errorf("-p 7777: %d connections, want the one on 9042 found anyway", rep.Totals.Connections)
	}
	if rep, _ := runJSON("-p", "7777", "--only-ports"); rep.Totals.Connections != 0 {
		t.Errorf("-p 7777 --only-ports: %d connections, want 0", rep.Totals.Connections)
	}
	if _, log := runJSON(); strings.Contains(log, `"values"`) || strings.Contains(log, "query_text") || !strings.Contains(log, `"opcode":"QUERY"`) {
		t.Errorf("no value flag: %s", log)
	}
	if _, log := runJSON("--show-values"); !strings.Contains(log, `"values":["0x2a"]`) || !strings.Contains(log, `"query_text":"SELECT v FROM t WHERE k = ?"`) {
		t.Errorf("--show-values: %s", log)
	}
	hashed := regexp.MustCompile(`"values":\["#[0-9a-f]+"\]`)
	_, h1 := runJSON("--hash-values", "--hash-key", "k")
	_, h2 := runJSON("--hash-values", "--hash-key", "k")
	_, other := runJSON("--hash-values", "--hash-key", "another key")
	v1, v2, v3 := hashed.FindString(h1), hashed.FindString(h2), hashed.FindString(other)
	if v1 == "" || v1 != v2 || v1 == v3 || strings.Contains(h1, "0x2a") {
		t.Errorf("--hash-values --hash-key: %q, same key %q, another key %q", v1, v2, v3)
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
