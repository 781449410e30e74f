package analyze

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/decode"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// runWorkers runs a capture through a pipeline with n workers and returns
// the report as JSON.
func runWorkers(tb testing.TB, data []byte, cfg Config, n int) (*Report, []byte) {
	tb.Helper()
	src, err := capture.NewReaderSource(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig(), Workers(n), Name("synthetic"))
	if err := p.Run(context.Background(), 0); err != nil {
		tb.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		tb.Fatal(err)
	}
	r := p.Report("synthetic")
	b, err := json.Marshal(r)
	if err != nil {
		tb.Fatal(err)
	}
	return r, b
}

// TestWorkersSameReport: however many workers share the connections, the
// report is the one a single worker makes (the goldens check the same on
// real captures: cmd/cqlsniff TestGolden).
func TestWorkersSameReport(t *testing.T) {
	cases := map[string]synth.Config{
		"unbuffered execute": {Connections: 23, Requests: 800, InFlight: 16, ClientBatch: 1, Seed: 1},
		"buffered lz4 handshake": {Connections: 17, Requests: 600, InFlight: 32, ClientBatch: 16, ClientFlush: 100 * time.Microsecond,
			Compression: "lz4", Handshake: true, Mix: synth.MixMixed, Seed: 2},
		"v5 errors": {Connections: 9, Requests: 500, InFlight: 8, Protocol: 5, ErrorRate: 0.05, Handshake: true, Seed: 3},
	}
	for name, sc := range cases {
		t.Run(name, func(t *testing.T) {
			data, st := genCapture(t, sc)
			one, want := runWorkers(t, data, DefaultConfig(), 1)
			if one.Totals.Requests != uint64(st.Requests) || len(one.Connections) != sc.Connections {
				t.Fatalf("one worker: %d requests, %d connections; generated %d, %d", one.Totals.Requests, len(one.Connections), st.Requests, sc.Connections)
			}
			for _, n := range []int{2, 4, 7} {
				if _, got := runWorkers(t, data, DefaultConfig(), n); !bytes.Equal(got, want) {
					t.Errorf("%d workers: the report differs from one worker's:\n%s", n, jsonDiff(want, got))
				}
			}
		})
	}
}

func jsonDiff(want, got []byte) string {
	w, g := string(want), string(got)
	i := 0
	for i < len(w) && i < len(g) && w[i] == g[i] {
		i++
	}
	from := max(i-200, 0)
	return "want …" + w[from:min(i+200, len(w))] + "\n got …" + g[from:min(i+200, len(g))]
}

// TestWorkersLog: with several workers the exchange log has every pair,
// each on a whole line of its own.
func TestWorkersLog(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 12, Requests: 2000, InFlight: 16, Seed: 4})
	var log bytes.Buffer
	cfg := DefaultConfig()
	cfg.Log = &log
	r, _ := runWorkers(t, data, cfg, 3)
	lines := 0
	sc := bufio.NewScanner(&log)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d is not one JSON object: %v: %.200s", lines+1, err, sc.Text())
		}
		lines++
	}
	if uint64(lines) != r.Totals.Responses || lines < st.Responses {
		t.Errorf("%d log lines, %d responses in the report, %d generated", lines, r.Totals.Responses, st.Responses)
	}
}

// TestWorkersSnapshots: snapshots asked for while several workers run are
// published, advance, and end equal to the final report; run with -race.
func TestWorkersSnapshots(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 8, Requests: 3000, InFlight: 8, Seed: 5})
	src, err := capture.NewReaderSource(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	snaps := &Snapshots{}
	p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(3), WithSnapshots(snaps), Name("snap"))
	var prev uint64
	for step := uint64(1); step <= 4; step++ {
		snaps.Request()
		if err := p.Run(context.Background(), step*uint64(st.Packets)/5); err != nil {
			t.Fatal(err)
		}
		r := snaps.Latest()
		if r == nil || r.Source != "snap" {
			t.Fatalf("step %d: no snapshot", step)
		}
		if r.Totals.Requests < prev {
			t.Errorf("step %d: requests went back from %d to %d", step, prev, r.Totals.Requests)
		}
		prev = r.Totals.Requests
	}
	if err := p.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	mid := p.Report("snap") // asked of running workers
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	p.Publish()
	last := snaps.Latest()
	if last.Totals.Requests != uint64(st.Requests) || mid.Totals.Requests != uint64(st.Requests) {
		t.Errorf("requests: mid-run report %d, final %d; generated %d", mid.Totals.Requests, last.Totals.Requests, st.Requests)
	}
}

// TestRegistryAcrossWorkers: an id prepared on a connection one worker owns
// names the EXECUTEs another worker sees, whether it learned the id before
// (at once) or only after (in the report).
func TestRegistryAcrossWorkers(t *testing.T) {
	a, b := New(DefaultConfig()), New(DefaultConfig())
	b.reg = a.reg
	early, late := []byte{0xaa, 0x01}, []byte{0xbb, 0x02}
	a.reg.learn(early, "SELECT v FROM t WHERE k = ?", false)
	if st := b.executeStatement(early, nil); st.text != "SELECT v FROM t WHERE k = ?" {
		t.Errorf("an id learned by another worker names %q", st.text)
	}
	st := b.executeStatement(late, nil)
	if st.text != "prepared 0xbb02" {
		t.Fatalf("an unknown id names %q", st.text)
	}
	st.count, st.total = 3, 3e6
	_ = st.hist.RecordValue(1000)
	a.reg.learn(late, "UPDATE t SET v = ? WHERE k = ?", true)
	r := a.rep.merge([]*part{a.part(capture.AssemblerStats{}, false), b.part(capture.AssemblerStats{}, false)}, CaptureInfo{})
	found := false
	for _, s := range r.Statements {
		if strings.Contains(s.Statement, "prepared 0x") {
			t.Errorf("still unnamed: %+v", s)
		}
		if s.Statement == "UPDATE t SET v = ? WHERE k = ?" && s.Opcode == decode.OpExecute.String() {
			found = s.Count == 3 && s.LWT
		}
	}
	if !found {
		t.Errorf("the late id's executions are not under its text (with its LWT mark): %+v", r.Statements)
	}
	name, _, ok := a.reg.resolve(decode.OpBatch, "BATCH LOGGED: prepared 0xbb02 ×2; prepared 0xcc03")
	if !ok || name != "BATCH LOGGED: UPDATE t SET v = ? WHERE k = ? ×2; prepared 0xcc03" {
		t.Errorf("batch resolved to %q, %v", name, ok)
	}
}

// TestShardOfSymmetric: both directions of a connection go to one worker,
// and connections spread over all of them.
func TestShardOfSymmetric(t *testing.T) {
	const n = 4
	var seen [n]int
	for i := 0; i < 1000; i++ {
		p := capture.Packet{SrcPort: uint16(40000 + i), DstPort: 9042}
		p.SrcIP[15], p.DstIP[15] = byte(i), 1
		q := capture.Packet{SrcPort: p.DstPort, DstPort: p.SrcPort, SrcIP: p.DstIP, DstIP: p.SrcIP}
		s := shardOf(&p, n)
		if shardOf(&q, n) != s {
			t.Fatalf("connection %d: its directions go to workers %d and %d", i, s, shardOf(&q, n))
		}
		seen[s]++
	}
	for s, c := range seen {
		if c < 150 {
			t.Errorf("worker %d got %d of 1000 connections: %v", s, c, seen)
		}
	}
}

// BenchmarkPipelineWorkers is the whole pipeline with 1 and 2 workers on
// the same capture (wall time per packet: on a machine with spare cores
// the second worker shows).
func BenchmarkPipelineWorkers(b *testing.B) {
	data, st := genCapture(b, synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, Seed: 1})
	for _, n := range []int{1, 2} {
		b.Run("workers="+string(rune('0'+n)), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for i := 0; i < b.N; i++ {
				runWorkers(b, data, DefaultConfig(), n)
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Packets)/float64(b.N), "ns/pkt")
		})
	}
}

// BenchmarkSnapshot is the cost of a snapshot at the scale of a busy host:
// 30,000 open connections and 5,000 statements. "part" is a worker's whole
// share ("cold" when every connection and statement changed since the last
// snapshot, "steady" when none did), which it builds partStep at a time
// between batches: "step" is the longest it stops at once. "report" is a whole report with 1 and 2
// workers (the parts, built at once by the workers, and the merge).
func BenchmarkSnapshot(b *testing.B) {
	data, _ := genCapture(b, synth.Config{Connections: 30000, Requests: 12, InFlight: 2, Mix: synth.MixMixed, Seed: 9})
	for _, n := range []int{1, 2} {
		src, err := capture.NewReaderSource(bytes.NewReader(data))
		if err != nil {
			b.Fatal(err)
		}
		p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(n))
		if err := p.Run(context.Background(), 0); err != nil { // no Finish: the connections stay open
			b.Fatal(err)
		}
		p.Report("bench") // a barrier: the workers are done with the capture
		// Statements: each worker's share of 5,000 (the workers wait for
		// a batch: the channel send of the next Report orders this).
		for i, s := range p.shards {
			for j := i; j < 5000; j += n {
				st := s.an.statement(decode.OpQuery, []byte("SELECT v FROM t"+itoa(j)+" WHERE k = ?"))
				st.count++
				_ = st.hist.RecordValue(int64(100 + j))
			}
		}
		if n == 1 {
			s := p.shards[0]
			touch := func() {
				for c := range s.an.live {
					c.gen++
				}
				for _, st := range s.an.stmtList {
					st.count++
				}
			}
			b.Run("workers=1/part/cold", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					touch()
					b.StartTimer()
					s.an.part(s.asm.Stats(), true)
				}
			})
			b.Run("workers=1/step/cold", func(b *testing.B) {
				// The longest a worker stops for a snapshot: its start
				// and the first slice of connections, all changed.
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					touch()
					b.StartTimer()
					s.an.newPartBuilder(s.asm.Stats(), true).step(partStep)
				}
			})
			b.Run("workers=1/part/steady", func(b *testing.B) {
				b.ReportAllocs()
				for i := 0; i < b.N; i++ {
					s.an.part(s.asm.Stats(), true)
				}
			})
		}
		b.Run("workers="+itoa(n)+"/report", func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if r := p.Report("bench"); len(r.Connections) != 30000 || len(r.Statements) < 5000 {
					b.Fatalf("%d connections, %d statements", len(r.Connections), len(r.Statements))
				}
			}
		})
		if err := p.Finish(); err != nil {
			b.Fatal(err)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestBarsLikeDistribution: the bars counted beside a histogram are the
// ones folding the histogram's own buckets (Distribution) gives.
func TestBarsLikeDistribution(t *testing.T) {
	h := hdrhistogram.New(1, 100_000_000, 2)
	var b latBars
	rec := func(v int64) {
		if h.RecordValue(v) == nil {
			b.add(v)
		} else if v <= maxRecordable {
			t.Fatalf("%d refused, max %d", v, maxRecordable)
		}
	}
	for i := int64(0); i < 20000; i++ {
		rec(1 + (i*i*7919)%(1+i*5000))
	}
	for _, v := range []int64{1, 2, 3, 255, 256, 257, 511, 512, 513, 1023, 1024, 1 << 20, 100_000_000, maxRecordable, maxRecordable + 1, 1 << 40} {
		rec(v)
	}
	var want []Bar
	for _, d := range h.Distribution() {
		if d.Count == 0 {
			continue
		}
		up := int64(1)
		for up < d.To {
			up <<= 1
		}
		if n := len(want); n > 0 && want[n-1].UpToUS == up {
			want[n-1].Count += d.Count
		} else {
			want = append(want, Bar{UpToUS: up, Count: d.Count})
		}
	}
	if got := b.list(); !reflect.DeepEqual(got, want) {
		t.Errorf("bars\n got %v\nwant %v", got, want)
	}
}

// TestSnapshotsWait: a snapshot asked for before the previous one's wait
// is over is put off, not dropped, and never stalls the packets.
func TestSnapshotsWait(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 4, Requests: 2000, InFlight: 8, Seed: 6})
	for _, n := range []int{1, 3} {
		src, err := capture.NewReaderSource(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(n))
		p.nextSnap.Store(time.Now().Add(time.Hour).UnixNano()) // as after a snapshot of an hour's cost
		p.Snapshots().Request()
		if err := p.Run(context.Background(), uint64(st.Packets/2)); err != nil {
			t.Fatal(err)
		}
		if r := p.Snapshots().Latest(); r != nil {
			t.Fatalf("workers=%d: a snapshot within the wait", n)
		}
		if !p.Snapshots().want.Load() {
			t.Fatalf("workers=%d: the request was dropped", n)
		}
		p.nextSnap.Store(0)
		if err := p.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		r := p.Snapshots().Latest()
		if r == nil || r.Totals.Requests == 0 {
			t.Fatalf("workers=%d: the request put off was not served after the wait: %v", n, r)
		}
		if p.nextSnap.Load() == 0 {
			t.Errorf("workers=%d: no wait set after a snapshot", n)
		}
		if err := p.Finish(); err != nil {
			t.Fatal(err)
		}
	}
}
