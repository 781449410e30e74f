package analyze

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

// shardOfConn is the worker (of n) a connection from cport to sport goes to.
func shardOfConn(t testing.TB, cport, sport uint16, n int) int {
	src, err := capture.NewReaderSource(bytes.NewReader(multiPcap([]rpkt{{cport: cport, sport: sport, payload: []byte{1}}})))
	if err != nil {
		t.Fatal(err)
	}
	var p capture.Packet
	if err := src.Next(&p); err != nil {
		t.Fatal(err)
	}
	return shardOf(&p, n)
}

// portsOn finds k client ports (to sport) on worker w of n, none in skip.
func portsOn(t testing.TB, w, n, k int, sport uint16, from uint16) []uint16 {
	var out []uint16
	for p := from; len(out) < k; p++ {
		if shardOfConn(t, p, sport, n) == w {
			out = append(out, p)
		}
	}
	return out
}

func runN(t testing.TB, data []byte, cfg Config, acfg capture.AssemblerConfig, n int) (*Report, string) {
	var log bytes.Buffer
	if cfg.ShowValues || cfg.HashValues {
		cfg.Log = &log
	}
	src, err := capture.NewReaderSource(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	p := NewPipeline(src, cfg, acfg, Workers(n))
	if err := p.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	return p.Report("x"), log.String()
}

func filler(cport, sport uint16, k int) []rpkt {
	var out []rpkt
	for i := 0; i < k; i++ {
		out = append(out, rpkt{cport: cport, sport: sport, dir: i % 2})
	}
	return out
}

// TestPasswordAcrossWorkers: the password of an EXECUTE of a prepared
// "ALTER ROLE ... PASSWORD = ?" is withheld with one worker and with three,
// where the id is prepared on a connection another worker owns.
func TestPasswordAcrossWorkers(t *testing.T) {
	const n = 3
	x := portsOn(t, 0, n, 1, 9042, 40000)[0]
	y := portsOn(t, 1, n, 2, 9042, 41000)
	alter := "ALTER ROLE bob WITH PASSWORD = ?"
	prep := append(binary.BigEndian.AppendUint32(nil, uint32(len(alter))), alter...)
	id := []byte{0x5e, 0xc2, 0xe7, 0x01}
	prepared := binary.BigEndian.AppendUint32(nil, 4)
	prepared = append(append(prepared, 0, byte(len(id))), id...)
	prepared = binary.BigEndian.AppendUint32(prepared, 0)
	prepared = binary.BigEndian.AppendUint32(prepared, 1)
	prepared = binary.BigEndian.AppendUint32(prepared, 0)
	prepared = append(append(append(append(prepared, str("system_auth")...), str("roles")...), str("salted_hash")...), 0, 0x0D)
	prepared = binary.BigEndian.AppendUint32(prepared, 4)
	prepared = binary.BigEndian.AppendUint32(prepared, 0)
	secret := "hunter2-secret"
	exec := append(append([]byte{0, byte(len(id))}, id...), 0x00, 0x01, 0x01, 0x00, 0x01)
	exec = append(binary.BigEndian.AppendUint32(exec, uint32(len(secret))), secret...)
	pk := []rpkt{
		{cport: x, sport: 9042, dir: 0, payload: frame(0x04, 0, 3, 0x09, prep)},
		{cport: x, sport: 9042, dir: 1, payload: frame(0x84, 0, 3, 0x08, prepared)},
		{cport: y[0], sport: 9042, dir: 0, payload: frame(0x04, 0, 4, 0x0A, exec)},
		{cport: y[0], sport: 9042, dir: 1, payload: frame(0x84, 0, 4, 0x08, []byte{0, 0, 0, 1})},
	}
	pk = append(pk, filler(y[1], 9042, 3000)...) // fills worker 1's batches: they go before worker 0's
	data := multiPcap(pk)
	cfg := DefaultConfig()
	cfg.ShowValues = true
	for _, w := range []int{1, n} {
		_, log := runN(t, data, cfg, capture.DefaultAssemblerConfig(), w)
		leaked := strings.Contains(log, hex.EncodeToString([]byte("hunter2")))
		t.Logf("workers=%d leaked=%v\n%s", w, leaked, log)
		if leaked {
			t.Errorf("workers=%d: the password reached the log", w)
		}
	}
}

// TestScyllaNodeAcrossWorkers: a connection without its own SUPPORTED
// closes after another connection to the node told its shards.
func TestScyllaNodeAcrossWorkers(t *testing.T) {
	const n = 3
	x := portsOn(t, 0, n, 1, 19042, 40000)[0]
	y := portsOn(t, 1, n, 2, 19042, 41000)
	supported := multimap("SCYLLA_SHARD", "3", "SCYLLA_NR_SHARDS", "12", "SCYLLA_SHARDING_ALGORITHM", "biased-token-round-robin")
	q := "SELECT 1"
	qBody := queryBody(q)
	pk := []rpkt{
		{cport: x, sport: 19042, dir: 0, payload: frame(0x04, 0, 0, 0x05, nil)},
		{cport: x, sport: 19042, dir: 1, payload: frame(0x84, 0, 0, 0x06, supported)},
		{cport: y[0], sport: 19042, dir: 0, payload: frame(0x04, 0, 1, 0x07, qBody)},
		{cport: y[0], sport: 19042, dir: 1, payload: frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1})},
		{cport: y[0], sport: 19042, dir: 0, fin: true},
		{cport: y[0], sport: 19042, dir: 1, fin: true},
	}
	pk = append(pk, filler(y[1], 19042, 3000)...)
	data := multiPcap(pk)
	var js [2][]byte
	for i, w := range []int{1, n} {
		r, _ := runN(t, data, DefaultConfig(), capture.DefaultAssemblerConfig(), w)
		for _, c := range r.Connections {
			if strings.HasSuffix(c.Client, ":"+itoa(int(y[0]))) {
				t.Logf("workers=%d: %s closed=%s scylla=%+v", w, c.Client, c.Closed, c.Scylla)
			}
		}
		js[i], _ = json.Marshal(r)
	}
	if !bytes.Equal(js[0], js[1]) {
		t.Errorf("reports differ:\n%s", jsonDiff(js[0], js[1]))
	}
}

// TestMaxClosedShared: fewer closed connections than MaxClosed are all
// listed, by one worker or by several counting together.
func TestMaxClosedShared(t *testing.T) {
	q := "SELECT 1"
	qBody := queryBody(q)
	var pk []rpkt
	// 9 connections, 6 of them on worker 0 of 3.
	ports := append(portsOn(t, 0, 3, 6, 9042, 40000), portsOn(t, 1, 3, 3, 9042, 42000)...)
	for _, c := range ports {
		pk = append(pk,
			rpkt{cport: c, sport: 9042, dir: 0, payload: frame(0x04, 0, 1, 0x07, qBody)},
			rpkt{cport: c, sport: 9042, dir: 1, payload: frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1})},
			rpkt{cport: c, sport: 9042, dir: 0, fin: true},
			rpkt{cport: c, sport: 9042, dir: 1, fin: true})
	}
	data := multiPcap(pk)
	cfg := DefaultConfig()
	cfg.MaxClosed = 9
	for _, w := range []int{1, 3} {
		r, _ := runN(t, data, cfg, capture.DefaultAssemblerConfig(), w)
		t.Logf("workers=%d: %d listed, %d not listed", w, len(r.Connections), r.Totals.NotListed)
		if len(r.Connections) != 9 {
			t.Errorf("workers=%d: %d of 9 connections listed (MaxClosed 9)", w, len(r.Connections))
		}
	}
}

// TestMaxFlowsShared: fewer open connections than MaxFlows are never
// evicted, by one worker or by several counting together.
func TestMaxFlowsShared(t *testing.T) {
	q := "SELECT 1"
	qBody := queryBody(q)
	var pk []rpkt
	ports := append(portsOn(t, 0, 3, 4, 9042, 40000), portsOn(t, 1, 3, 2, 9042, 42000)...)
	for _, c := range ports {
		pk = append(pk,
			rpkt{cport: c, sport: 9042, dir: 0, payload: frame(0x04, 0, 1, 0x07, qBody)},
			rpkt{cport: c, sport: 9042, dir: 1, payload: frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1})})
	}
	data := multiPcap(pk)
	acfg := capture.DefaultAssemblerConfig()
	acfg.MaxFlows = 6
	for _, w := range []int{1, 3} {
		r, _ := runN(t, data, DefaultConfig(), acfg, w)
		ev := 0
		for _, c := range r.Connections {
			if c.Closed == "evicted" {
				ev++
			}
		}
		t.Logf("workers=%d: %d connections, %d evicted", w, len(r.Connections), ev)
		if ev > 0 {
			t.Errorf("workers=%d: %d of 6 connections evicted with MaxFlows 6", w, ev)
		}
	}
}

// TestBatchNameAcrossWorkers: a BATCH of long prepared statements is
// named alike whether its ids were learned on its own worker or another.
func TestBatchNameAcrossWorkers(t *testing.T) {
	const n = 3
	x := portsOn(t, 0, n, 1, 9042, 40000)[0]
	y := portsOn(t, 1, n, 2, 9042, 41000)
	var pk []rpkt
	var ids [][]byte
	for i := 0; i < 3; i++ {
		text := "INSERT INTO ks.t" + itoa(i) + " (" + strings.Repeat("col, ", 50) + "k) VALUES (?)"
		body := append(binary.BigEndian.AppendUint32(nil, uint32(len(text))), text...)
		id := []byte{0xa0, byte(i)}
		ids = append(ids, id)
		res := binary.BigEndian.AppendUint32(nil, 4)
		res = append(append(res, 0, byte(len(id))), id...)
		res = binary.BigEndian.AppendUint32(res, 0)
		res = binary.BigEndian.AppendUint32(res, 0)
		res = binary.BigEndian.AppendUint32(res, 0)
		res = binary.BigEndian.AppendUint32(res, 4)
		res = binary.BigEndian.AppendUint32(res, 0)
		pk = append(pk,
			rpkt{cport: x, sport: 9042, dir: 0, payload: frame(0x04, 0, uint16(i+1), 0x09, body)},
			rpkt{cport: x, sport: 9042, dir: 1, payload: frame(0x84, 0, uint16(i+1), 0x08, res)})
	}
	batch := []byte{0, 0, 3}
	for _, id := range ids {
		batch = append(batch, 1, 0, byte(len(id)))
		batch = append(batch, id...)
		batch = append(batch, 0, 0)
	}
	batch = append(batch, 0, 1, 0) // ONE, no flags
	pk = append(pk,
		rpkt{cport: y[0], sport: 9042, dir: 0, payload: frame(0x04, 0, 9, 0x0D, batch)},
		rpkt{cport: y[0], sport: 9042, dir: 1, payload: frame(0x84, 0, 9, 0x08, []byte{0, 0, 0, 1})})
	pk = append(pk, filler(y[1], 9042, 3000)...)
	data := multiPcap(pk)
	var names [2]string
	for i, w := range []int{1, n} {
		r, _ := runN(t, data, DefaultConfig(), capture.DefaultAssemblerConfig(), w)
		for _, s := range r.Statements {
			if s.Opcode == "BATCH" {
				names[i] = s.Statement
			}
		}
	}
	if names[0] != names[1] {
		t.Errorf("BATCH named\n one worker:    %q\n three workers: %q", names[0], names[1])
	}
}

// TestBarsOverflow: merged latency bars do not wrap (they once counted
// in 32 bits).
func TestBarsOverflow(t *testing.T) {
	var a, b latBars
	a[9], b[9] = 3e9, 3e9
	a.merge(&b)
	if got := a.list(); got[0].Count != 6e9 {
		t.Errorf("6e9 values in a bar counted %d", got[0].Count)
	}
}

// endless is a fanout member that makes packets until closed.
type endless struct {
	i      int
	n      uint64
	closed atomic.Bool
	port   uint16
}

func (e *endless) Next(p *capture.Packet) error {
	if e.closed.Load() {
		return io.EOF
	}
	e.n++
	*p = capture.Packet{TS: 1700000000e9 + int64(e.n)*1000, Num: e.n, SrcPort: e.port, DstPort: 9042, Flags: capture.FlagACK, Seq: uint32(e.n)}
	p.SrcIP[15], p.DstIP[15] = 1, 2
	if e.n%1000 == 0 {
		time.Sleep(time.Microsecond)
	}
	return nil
}
func (e *endless) Close() error               { e.closed.Store(true); return nil }
func (e *endless) Stats() capture.SourceStats { return capture.SourceStats{} }

// TestFanoutSnapshotRace: snapshots of a running fanout pipeline; run
// with -race.
func TestFanoutSnapshotRace(t *testing.T) {
	ms := []*endless{{port: 40000}, {port: 40001}}
	srcs := []capture.Source{ms[0], ms[1]}
	p := NewFanoutPipeline(srcs, DefaultConfig(), capture.DefaultAssemblerConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx, 0) }()
	for i := 0; i < 20; i++ {
		p.Snapshots().Request()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if p.Snapshots().Latest() == nil {
		t.Error("no snapshot")
	}
	p.Finish()
}

// TestMaxStatementsPerWorker: each worker keeps MaxStatements of its own,
// and the report still names at most MaxStatements.
func TestMaxStatementsPerWorker(t *testing.T) {
	var pk []rpkt
	ports := append(append(portsOn(t, 0, 3, 2, 9042, 40000), portsOn(t, 1, 3, 2, 9042, 42000)...), portsOn(t, 2, 3, 2, 9042, 44000)...)
	for i, c := range ports {
		q := "SELECT v FROM t" + itoa(i) + " WHERE k = 1"
		qBody := queryBody(q)
		pk = append(pk,
			rpkt{cport: c, sport: 9042, dir: 0, payload: frame(0x04, 0, 1, 0x07, qBody)},
			rpkt{cport: c, sport: 9042, dir: 1, payload: frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1})})
	}
	data := multiPcap(pk)
	cfg := DefaultConfig()
	cfg.MaxStatements = 2
	for _, w := range []int{1, 3} {
		r, _ := runN(t, data, cfg, capture.DefaultAssemblerConfig(), w)
		var names []string
		for _, s := range r.Statements {
			names = append(names, s.Statement)
		}
		t.Logf("workers=%d: %d statements %q", w, len(names), names)
		named, count := 0, uint64(0)
		for _, s := range r.Statements {
			if !isOther(s.Statement) {
				named++
			}
			count += s.Count
		}
		if named > cfg.MaxStatements || count != uint64(len(ports)) {
			t.Errorf("workers=%d: %d named statements (MaxStatements %d), %d requests counted of %d", w, named, cfg.MaxStatements, count, len(ports))
		}
	}
}

// TestFanoutOneMember: a fanout group of one member; run with -race.
func TestFanoutOneMember(t *testing.T) {
	m := &endless{port: 40000}
	p := NewFanoutPipeline([]capture.Source{m}, DefaultConfig(), capture.DefaultAssemblerConfig())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- p.Run(ctx, 0) }()
	for i := 0; i < 20; i++ {
		p.Snapshots().Request()
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	<-done
	p.Finish()
}

// TestScyllaAtEnd: no filler, both connections open to the end: the node
// is joined when the report is made, so no worker's Flush order matters.
func TestScyllaAtEnd(t *testing.T) {
	const n = 3
	x := portsOn(t, 0, n, 1, 19042, 40000)[0]
	y := portsOn(t, 1, n, 1, 19042, 41000)[0]
	supported := multimap("SCYLLA_SHARD", "3", "SCYLLA_NR_SHARDS", "12")
	q := "SELECT 1"
	qBody := queryBody(q)
	data := multiPcap([]rpkt{
		{cport: x, sport: 19042, dir: 0, payload: frame(0x04, 0, 0, 0x05, nil)},
		{cport: x, sport: 19042, dir: 1, payload: frame(0x84, 0, 0, 0x06, supported)},
		{cport: y, sport: 19042, dir: 0, payload: frame(0x04, 0, 1, 0x07, qBody)},
		{cport: y, sport: 19042, dir: 1, payload: frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1})},
	})
	r1, _ := runN(t, data, DefaultConfig(), capture.DefaultAssemblerConfig(), 1)
	one, _ := json.Marshal(r1)
	diff := 0
	for i := 0; i < 300; i++ {
		r, _ := runN(t, data, DefaultConfig(), capture.DefaultAssemblerConfig(), n)
		if b, _ := json.Marshal(r); !bytes.Equal(one, b) {
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("three workers' report differed from one's in %d of 300 runs", diff)
	}
}
