package analyze

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// publicCapture is a public capture by its path under pcaps/public/ (the
// Apache-2.0 and LGPL-3.0 ones, copied with their attribution) or, for the
// GPL-2.0 cqltrace captures that are not shipped, under the team's shared
// directory ../../shared/pcaps-public: without it their tests skip, naming
// the file. A missing capture that the repository ships is a failure.
func publicCapture(t *testing.T, rel string) string {
	t.Helper()
	if !strings.HasPrefix(rel, "jolynch-cqltrace") {
		p := filepath.Join("..", "pcaps", "public", rel)
		if !fileExists(p) {
			t.Fatalf("%s is missing from the repository", p)
		}
		return p
	}
	p := filepath.Join("..", "..", "shared", "pcaps-public", rel)
	if !fileExists(p) {
		t.Skipf("needs %s: the cqltrace captures are GPL-2.0 and not shipped (pcaps/public/README.md); the team's shared directory is not here", p)
	}
	return p
}

type logLine struct {
	TS            string  `json:"ts"`
	Client        string  `json:"client"`
	Server        string  `json:"server"`
	Stream        int     `json:"stream"`
	Opcode        string  `json:"opcode"`
	Statement     string  `json:"statement"`
	PreparedID    string  `json:"prepared_id"`
	Consistency   string  `json:"consistency"`
	LatencyUS     float64 `json:"latency_us"`
	Result        string  `json:"result"`
	ErrorCode     string  `json:"error_code"`
	Rows          *int    `json:"rows"`
	RequestBytes  int     `json:"request_bytes"`
	ResponseBytes int     `json:"response_bytes"`
}

// analyse runs a capture with the exchange log on and returns the report
// and the log's lines.
func analyse(t *testing.T, path string, cfg Config) (*Report, []logLine) {
	t.Helper()
	var log bytes.Buffer
	cfg.Log = &log
	rep := runFile(t, path, cfg)
	var lines []logLine
	sc := bufio.NewScanner(&log)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l logLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil {
			t.Fatalf("log line %q: %v", sc.Text(), err)
		}
		lines = append(lines, l)
	}
	return rep, lines
}

// TestPublicCapturesFrames checks that every public capture is read without
// error and that every CQL frame in it is decoded. The frame counts are the
// ones an independent header walk over each TCP stream found (SOURCES.md).
func TestPublicCapturesFrames(t *testing.T) {
	cases := []struct {
		file   string
		frames uint64
		conns  int
		nagle  int // connections flagged client-nagle
	}{
		{"elastic-beats/cassandra_compressed.pcap", 40, 2, 0},
		{"elastic-beats/cassandra_create_index.pcap", 16, 1, 0},
		{"elastic-beats/cassandra_create_keyspace.pcap", 8, 1, 0},
		{"elastic-beats/cassandra_create_table.pcap", 16, 1, 0},
		{"elastic-beats/cassandra_insert.pcap", 2, 1, 0},
		{"elastic-beats/cassandra_mixed_frame.pcap", 34, 2, 0},
		{"elastic-beats/cassandra_select.pcap", 2, 1, 0},
		{"elastic-beats/cassandra_select_via_index.pcap", 2, 1, 0},
		{"elastic-beats/cassandra_trace_err.pcap", 2, 1, 0},
		{"ntop-nDPI/cassandra.pcap", 6, 2, 0},
		{"ntop-nDPI/pre-2024-eb12929/cassandra.pcap", 225, 2, 0},
		{"jolynch-cqltrace/simple_v3.in", 72, 5, 0},
		// The Python driver of 2018 left TCP_NODELAY off: its three busy
		// connections show Nagle's algorithm at work (every request segment
		// waits for the ACK of the previous one).
		{"jolynch-cqltrace/longer_v3.in", 23588, 0, 3},
		{"arkime-arkime/cassandra1.pcap", 0, 0, 0}, // Thrift on 9160: not CQL
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			rep, _ := analyse(t, publicCapture(t, c.file), DefaultConfig())
			if rep.Totals.Frames != c.frames {
				t.Errorf("frames = %d, want %d", rep.Totals.Frames, c.frames)
			}
			if c.conns > 0 && rep.Totals.Connections != c.conns {
				t.Errorf("connections = %d, want %d", rep.Totals.Connections, c.conns)
			}
			if rep.Capture.Desyncs != 0 || rep.Capture.DecompressErr != 0 {
				t.Errorf("desyncs %d, decompression errors %d", rep.Capture.Desyncs, rep.Capture.DecompressErr)
			}
			nagle := 0
			for _, d := range rep.Diagnoses {
				if d.Code == CodeClientNagle {
					nagle++
				} else {
					t.Errorf("unexpected diagnosis %+v", d)
				}
			}
			if nagle != c.nagle {
				t.Errorf("%d connections flagged %s, want %d", nagle, CodeClientNagle, c.nagle)
			}
		})
	}
}

// TestPacketbeatPairs checks the request/response pairs packetbeat's own
// tests assert (opcode, stream, body lengths), plus the pairing packetbeat
// gets wrong on the compressed capture.
func TestPacketbeatPairs(t *testing.T) {
	type pair struct {
		stream            int
		opcode            string
		reqBody, respBody int
		result, errCode   string
	}
	cases := []struct {
		file string
		want pair
	}{
		{"cassandra_create_keyspace.pcap", pair{20, "QUERY", 124, 35, "schema_change", ""}},
		{"cassandra_create_table.pcap", pair{49, "QUERY", 98, 39, "schema_change", ""}},
		{"cassandra_insert.pcap", pair{252, "QUERY", 97, 4, "void", ""}},
		{"cassandra_select.pcap", pair{253, "QUERY", 41, 89, "rows", ""}},
		{"cassandra_select_via_index.pcap", pair{262, "QUERY", 63, 89, "rows", ""}},
		{"cassandra_create_index.pcap", pair{92, "QUERY", 51, 39, "schema_change", ""}},
		{"cassandra_trace_err.pcap", pair{275, "QUERY", 46, 53, "", "CONFIG_ERROR"}},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			_, lines := analyse(t, publicCapture(t, filepath.Join("elastic-beats", c.file)), DefaultConfig())
			for _, l := range lines {
				if l.Stream != c.want.stream {
					continue
				}
				got := pair{l.Stream, l.Opcode, l.RequestBytes - 9, l.ResponseBytes - 9, l.Result, l.ErrorCode}
				if got != c.want {
					t.Errorf("got %+v, want %+v", got, c.want)
				}
				return
			}
			t.Errorf("no exchange on stream %d in %+v", c.want.stream, lines)
		})
	}
	t.Run("compressed pairs by stream id", func(t *testing.T) {
		_, lines := analyse(t, publicCapture(t, filepath.Join("elastic-beats", "cassandra_compressed.pcap")), DefaultConfig())
		found := false
		for _, l := range lines {
			if strings.Contains(l.Statement, "system.local") && l.Stream == 0 {
				found = true
				if l.Result != "rows" || l.Rows == nil || *l.Rows != 1 {
					t.Errorf("system.local query: %+v (want 1 row)", l)
				}
			}
			if strings.Contains(l.Statement, "system.peers") && l.Rows != nil && *l.Rows != 0 {
				t.Errorf("system.peers query: %+v (want 0 rows)", l)
			}
		}
		if !found {
			t.Errorf("the system.local QUERY on stream 0 was not paired: %+v", lines)
		}
	})
}

// TestCqltraceLatencies checks that, for every request cqltrace lists in
// longer_v3.out, our log has the same client, statement (text, or the MD5
// prepared id) and latency to the microsecond.
func TestCqltraceLatencies(t *testing.T) {
	for _, name := range []string{"simple_v3", "longer_v3"} {
		t.Run(name, func(t *testing.T) {
			_, lines := analyse(t, publicCapture(t, filepath.Join("jolynch-cqltrace", name+".in")), DefaultConfig())
			have := map[string]int{}
			for _, l := range lines {
				st := l.Statement
				if l.PreparedID != "" {
					st = strings.ToUpper(l.PreparedID)
				}
				have[fmt.Sprintf("%s|%s|%d", l.Client, st, int64(l.LatencyUS+0.5))]++
			}
			f, err := os.Open(publicCapture(t, filepath.Join("jolynch-cqltrace", name+".out")))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			// cqltrace prints a request once per TCP segment of a response
			// that spans several (its tracer fires on each): a run of
			// identical client|statement lines is one request, and one of
			// them carries the true latency.
			type entry struct {
				who  string
				keys []string
			}
			var groups []entry
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				parts := strings.Split(sc.Text(), "|")
				if len(parts) != 5 {
					continue
				}
				sec, err := strconv.ParseFloat(parts[4], 64)
				if err != nil {
					t.Fatalf("bad line %q", sc.Text())
				}
				st := parts[1]
				if len(st) != 32 || strings.ContainsAny(st, " ") {
					st = string(Fingerprint(nil, []byte(st)))
				}
				who := parts[0] + "|" + st
				k := fmt.Sprintf("%s|%d", who, int64(sec*1e6+0.5))
				if n := len(groups); n > 0 && groups[n-1].who == who && strings.HasPrefix(parts[1], "SELECT * FROM system.") {
					groups[n-1].keys = append(groups[n-1].keys, k)
					continue
				}
				groups = append(groups, entry{who, []string{k}})
			}
			n, bad := len(groups), 0
		next:
			for _, g := range groups {
				for _, k := range g.keys {
					if have[k] > 0 {
						have[k]--
						continue next
					}
				}
				bad++
				if bad <= 5 {
					t.Errorf("no exchange for %v", g.keys)
				}
			}
			if n == 0 || bad > 0 {
				t.Errorf("%d of %d cqltrace lines unmatched", bad, n)
			}
		})
	}
}

// TestValuesPrivacy: bound values are absent by default, shown with
// ShowValues (cqltrace printed the same bytes as BINDS=...), hashed with
// HashValues (equal values, equal hashes for one key), and AUTH tokens never
// appear.
func TestValuesPrivacy(t *testing.T) {
	path := publicCapture(t, filepath.Join("jolynch-cqltrace", "simple_v3.in"))
	logOf := func(show, hash bool, key string) string {
		cfg := DefaultConfig()
		cfg.ShowValues, cfg.HashValues, cfg.HashKey = show, hash, []byte(key)
		var log bytes.Buffer
		cfg.Log = &log
		runFile(t, path, cfg)
		return log.String()
	}
	plain := logOf(false, false, "")
	if strings.Contains(plain, `"values"`) || strings.Contains(plain, "query_text") {
		t.Error("values in the log without ShowValues")
	}
	shown := logOf(true, false, "")
	// cqltrace: 0B790BCC6FE3CA56322F602C0FF88D2D|LOCAL_ONE|BINDS=30:35:31:36
	if !strings.Contains(shown, `"values":["0x30","0x35","0x31","0x36"]`) {
		t.Errorf("ShowValues: the batch EXECUTE's values are missing")
	}
	if !strings.Contains(shown, `"query_text":"SELECT * FROM system.local WHERE key='local'"`) {
		t.Errorf("ShowValues: literal query text missing")
	}
	h1 := logOf(false, true, "k")
	h2 := logOf(false, true, "k")
	if h1 != h2 || !strings.Contains(h1, `"values":["#`) || strings.Contains(h1, "0x30") {
		t.Errorf("HashValues: not stable for one key, or values leaked")
	}
}
