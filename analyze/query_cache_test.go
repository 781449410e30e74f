package analyze

import (
	"bytes"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
)

// queryPcap is one connection sending n QUERYs whose texts cycle through
// texts, each answered with a Void RESULT.
func queryPcap(texts []string, n int) []byte {
	pkts := []rpkt{
		{cport: 40000, sport: 9042, payload: frame(4, 0, 0, 0x01, multimap("CQL_VERSION", "3.0.0"))},
		{cport: 40000, sport: 9042, dir: 1, payload: frame(0x84, 0, 0, 0x02, nil)},
	}
	for i := range n {
		q := queryBody(texts[i%len(texts)])
		stream := uint16(i%100 + 1)
		pkts = append(pkts,
			rpkt{cport: 40000, sport: 9042, payload: frame(4, 0, stream, 0x07, q)},
			rpkt{cport: 40000, sport: 9042, dir: 1, payload: frame(0x84, 0, stream, 0x08, []byte{0, 0, 0, 1})})
	}
	return multiPcap(pkts)
}

// queryTexts: bind-marker texts that come back (more of them than a
// connection remembers), and texts with literals, two of which have the
// fingerprint of a bind-marker one.
var queryTexts = []string{
	"SELECT a FROM ks.t WHERE k = ?",
	"INSERT INTO ks.t (k, a) VALUES (?, ?)",
	"SELECT a FROM ks.t WHERE k = 5",
	"UPDATE ks.t SET a = ? WHERE k = ?",
	"SELECT a FROM ks.t WHERE k = 6",
	"SELECT a FROM ks.t WHERE k = ?",
	"DELETE FROM ks.t WHERE k = 'x'",
	"ALTER ROLE app WITH PASSWORD = 'hunter2'",
	"ALTER ROLE app WITH PASSWORD = 'hunter2'",
}

// TestQueryStatementCache: a QUERY named through the connection's cache of
// texts has the statement its fingerprint names, whichever text came
// before it.
func TestQueryStatementCache(t *testing.T) {
	const n = 700
	p, r := runPipeline(t, queryPcap(queryTexts, n), DefaultConfig())
	want := map[string]uint64{}
	for i := range n {
		want[string(Fingerprint(nil, []byte(queryTexts[i%len(queryTexts)])))]++
	}
	got := map[string]uint64{}
	for _, s := range r.Statements {
		if s.Opcode == "QUERY" {
			got[s.Statement] = s.Count
		}
	}
	if len(got) != len(want) {
		t.Errorf("statements %v, want %v", got, want)
	}
	for text, c := range want {
		if got[text] != c {
			t.Errorf("%q: %d, want %d", text, got[text], c)
		}
	}
	// Only texts without literals or comments are kept to name their
	// statements: a password sent twice in a row is not held.
	kept := 0
	for _, sh := range p.shards {
		for _, st := range sh.an.stmtList {
			if st.raw == nil {
				continue
			}
			kept++
			if _, hid := fingerprint(nil, st.raw); hid {
				t.Errorf("statement %q keeps the text %q, which has literals", st.text, st.raw)
			}
		}
	}
	if kept != 3 {
		t.Errorf("%d texts kept, want the 3 with bind markers only", kept)
	}
}

// BenchmarkQueryStatements: the pipeline over QUERYs of a few texts with
// bind markers, as drivers send unprepared statements with values.
func BenchmarkQueryStatements(b *testing.B) {
	data := queryPcap(queryTexts[:2], 20000)
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		src, err := capture.NewReaderSource(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig())
		if err := p.Run(b.Context(), 0); err != nil {
			b.Fatal(err)
		}
	}
}
