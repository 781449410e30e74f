package analyze

import (
	"cmp"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/internal/synth"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// analyseFile runs a capture file through the whole pipeline, with its key
// log (NAME.keys) when it has one.
func analyseFile(tb testing.TB, path string) *Report {
	tb.Helper()
	return analyseFileKeys(tb, path, true)
}

func analyseFileKeys(tb testing.TB, path string, useKeys bool) *Report {
	tb.Helper()
	cfg := DefaultConfig()
	// A TLS capture of the lab has its key log beside it.
	if keys := strings.TrimSuffix(strings.TrimSuffix(path, ".gz"), ".pcap") + ".keys"; useKeys && fileExists(keys) {
		kl := tlsdecrypt.NewKeyLog(0)
		if err := kl.Load(keys); err != nil {
			tb.Fatal(err)
		}
		cfg.KeyLog = kl
	}
	return runFile(tb, path, cfg)
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// labSidecar is the ground truth lab/run.py recorded beside a capture: the
// client's own throughput and CPU time, measured by the kernel (wait4).
type labSidecar struct {
	Requests  uint64  `json:"requests"`
	OpsPerS   float64 `json:"client_ops_per_s"`
	Duration  float64 `json:"client_duration_s"`
	ClientCPU *struct {
		UserS    float64 `json:"user_s"`
		SysS     float64 `json:"sys_s"`
		USPerReq float64 `json:"cpu_us_per_request"`
		// Phase is the client's CPU over its request phase, read from /proc
		// by lab/run.py every 50 ms: its busiest thread's CPU plus the time
		// it waited for a CPU, over the phase.
		Phase *struct {
			Cores               float64 `json:"cores"`
			BusiestThread       string  `json:"busiest_thread"`
			BusiestThreadDemand float64 `json:"busiest_thread_demand"`
			DemandCores         float64 `json:"demand_cores"`
		} `json:"phase"`
	} `json:"client_cpu"`
}

func readSidecar(tb testing.TB, pcap string) labSidecar {
	tb.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(strings.TrimSuffix(pcap, ".gz"), ".pcap") + ".json")
	if err != nil {
		tb.Fatal(err)
	}
	var s labSidecar
	if err := json.Unmarshal(b, &s); err != nil {
		tb.Fatal(err)
	}
	return s
}

// busiest is the connection with the most requests.
func busiest(r *Report) *ConnReport {
	var b *ConnReport
	for _, c := range r.Connections {
		if b == nil || c.Requests > b.Requests {
			b = c
		}
	}
	return b
}

// TestClientBoundFuturesUnordered is the story's second root cause,
// reproduced by lab/clients/rust-futures: scylla 0.3.1 with every
// in-flight request in one FuturesUnordered, polled from one task. With
// futures 0.3.18 each poll walks the whole ready list; 0.3.19 caps it. At
// 4096 in flight the broken client is the bottleneck — its own CPU per
// request (wait4, in the sidecar) is several times its twin's and its
// throughput far lower — and from the capture alone it must be flagged,
// its twin not. At 64 in flight the two behave alike: neither is.
func TestClientBoundFuturesUnordered(t *testing.T) {
	dir := filepath.Join("..", "pcaps")
	name := func(v, c string) string { return filepath.Join(dir, "scylla-rust-0.3.1-futures-"+v+"-"+c+".pcap.gz") }

	broken, fixed := readSidecar(t, name("0.3.18", "c4096")), readSidecar(t, name("0.3.19", "c4096"))
	if broken.ClientCPU == nil || fixed.ClientCPU == nil {
		t.Fatal("the c4096 sidecars have no client CPU: the ground truth is missing")
	}
	// The ground truth, measured by the kernel on the client, not on the wire.
	if broken.ClientCPU.USPerReq < 2*fixed.ClientCPU.USPerReq || broken.OpsPerS > 0.75*fixed.OpsPerS {
		t.Fatalf("sidecars: 0.3.18 %.1f µs/request at %.0f ops/s, 0.3.19 %.1f at %.0f: the capture pair does not show the bug",
			broken.ClientCPU.USPerReq, broken.OpsPerS, fixed.ClientCPU.USPerReq, fixed.OpsPerS)
	}
	for _, c := range []struct {
		version, conc string
		want          bool
	}{
		{"0.3.18", "c4096", true},
		{"0.3.19", "c4096", false},
		{"0.3.18", "c64", false},
		{"0.3.19", "c64", false},
	} {
		t.Run(c.version+"-"+c.conc, func(t *testing.T) {
			r := analyseFile(t, name(c.version, c.conc))
			b := busiest(r)
			got := slices.Contains(b.DiagnosisCodes, CodeClientBound)
			tm := b.Timing
			if got != c.want {
				t.Errorf("client-bound %v, want %v (outstanding %.1f of peak %d, idle %.0f%%, 8+ outstanding %.0f%% of the time)",
					got, c.want, tm.OutstandingMean, tm.OutstandingPeak, 100*tm.IdleShare, 100*tm.atLeast8)
			}
			if c.want {
				var msg string
				for _, d := range r.Diagnoses {
					if d.Code == CodeClientBound {
						msg = d.Message
					}
				}
				for _, w := range []string{"not its server, limits this connection", "nothing to do for it", "FuturesUnordered"} {
					if !strings.Contains(msg, w) {
						t.Errorf("message lacks %q: %s", w, msg)
					}
				}
			}
		})
	}
}

// TestClientBoundWithCPU: the client's measured process sharpens the
// wire's finding both ways.
func TestClientBoundWithCPU(t *testing.T) {
	conn := func(idle, kept float64) *ConnReport {
		return &ConnReport{Client: "10.0.0.1:5000", Server: "10.0.0.2:9042", Requests: 10000,
			Timing: &Timing{SpanS: 5, OutstandingPeak: 1000, OutstandingMean: kept * 1000, IdleShare: idle, atLeast8: 0.5}}
	}
	proc := func(demand, thread float64) *ProcessReport {
		return &ProcessReport{PID: 42, Comm: "client", WindowS: 5, Cores: demand, Demand: demand,
			BusiestThread: "worker", BusiestThreadShare: thread, BusiestThreadDemand: thread, CPUPerReqUS: 30}
	}
	for _, c := range []struct {
		name       string
		idle, kept float64
		p          *ProcessReport
		want       bool
	}{
		{"wire alone", 0.35, 0.05, nil, true},
		{"wire alone, little idle", 0.08, 0.05, nil, false},
		{"busy client confirms", 0.35, 0.05, proc(0.6, 0.5), true},
		{"idle client withdraws", 0.35, 0.05, proc(0.1, 0.08), false},
		{"saturated thread, little idle", 0.08, 0.05, proc(1.1, 0.97), true},
		{"saturated thread, server keeps up", 0.08, 0.9, proc(1.1, 0.97), false},
		{"saturated thread, never idle", 0.01, 0.05, proc(1.1, 0.97), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := conn(c.idle, c.kept)
			var ds []Diagnosis
			if d := clientBound(r, wireEvidence); d != nil {
				d.Message += clientBoundAdvice
				ds = append(ds, *d)
			}
			if c.p != nil {
				r.ClientProcess = c.p
				ds = processDiagnoses(r, ds)
			}
			got := len(ds) == 1 && ds[0].Code == CodeClientBound
			if got != c.want || len(ds) > 1 {
				t.Fatalf("diagnoses %+v, want client-bound %v", ds, c.want)
			}
			if got && c.p != nil && (!strings.Contains(ds[0].Message, "client (pid 42)") || ds[0].Mechanism != "cpu") {
				t.Errorf("the message does not give the process's CPU: %s", ds[0].Message)
			}
			if got && strings.Count(ds[0].Message, "Raising its concurrency") != 1 {
				t.Errorf("advice given %d times: %s", strings.Count(ds[0].Message, "Raising its concurrency"), ds[0].Message)
			}
		})
	}
}

// minTruthThreadDemand is the ground truth's line for a CPU-bound client: a
// thread that ran or waited to run at least this share of the request
// phase was never idle.
const minTruthThreadDemand = 0.85

// TestClientBoundGroundTruth runs every lab capture and checks each
// client-bound verdict against the client's own CPU in its sidecar: a
// client flagged must have had a thread that was never idle during its
// request phase (lab/run.py read it from /proc), or be the FuturesUnordered
// client whose twin shows the bug (TestClientBoundFuturesUnordered). A
// verdict on a capture without that ground truth fails too. Clients that
// are CPU-bound but not flagged (the wire's evidence was too weak) are
// logged, not failed: the diagnosis prefers silence to a false claim.
func TestClientBoundGroundTruth(t *testing.T) {
	dir := filepath.Join("..", "pcaps")
	files, _ := filepath.Glob(filepath.Join(dir, "*.pcap"))
	gz, _ := filepath.Glob(filepath.Join(dir, "*.pcap.gz"))
	files = append(files, gz...)
	if len(files) < 20 {
		t.Fatalf("only %d captures in %s", len(files), dir)
	}
	flaggedN, truthN := 0, 0
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".pcap")
		t.Run(name, func(t *testing.T) {
			side := readSidecar(t, f)
			r := analyseFile(t, f)
			b := busiest(r)
			flagged := slices.Contains(b.DiagnosisCodes, CodeClientBound)
			truth, known, why := false, false, "no client CPU in the sidecar"
			switch {
			case strings.Contains(name, "futures-0.3.18-c4096"):
				truth, known, why = true, true, "its futures 0.3.19 twin: a fraction of the CPU per request, more throughput"
			case side.ClientCPU != nil && side.ClientCPU.Phase != nil:
				p := side.ClientCPU.Phase
				truth, known = p.BusiestThreadDemand >= minTruthThreadDemand, true
				why = fmt.Sprintf("busiest thread %s ran or waited to run %.0f%% of the phase; %.2f cores used, %.2f wanted",
					p.BusiestThread, 100*p.BusiestThreadDemand, p.Cores, p.DemandCores)
			}
			if flagged {
				flaggedN++
			}
			if truth {
				truthN++
			}
			tm := b.Timing
			if tm == nil {
				if flagged {
					t.Errorf("client-bound without timing figures")
				}
				return // nothing decrypted: no CQL to judge
			}
			wire := fmt.Sprintf("idle %.0f%%, outstanding %.1f of %d", 100*tm.IdleShare, tm.OutstandingMean, tm.OutstandingPeak)
			switch {
			case flagged && !known:
				t.Errorf("client-bound without ground truth (%s; %s)", why, wire)
			case flagged && !truth:
				t.Errorf("client-bound, but the client was not CPU-bound: %s (%s)", why, wire)
			case !flagged && truth:
				t.Logf("not flagged although CPU-bound: %s (%s)", why, wire)
			}
		})
	}
	t.Logf("%d captures, %d flagged client-bound, %d CPU-bound by their sidecars", len(files), flaggedN, truthN)
}

// TestClientBoundDistantClient: a fast client far away (10 ms round trip)
// keeps 64 requests in flight; the server answers in 0.5 ms. Seen from the
// server's side the connection is idle most of the time — every answer
// takes half a round trip to reach the client and its next request as long
// to come back — but the client is not slow: more concurrency would raise
// the throughput. The idle gaps are the path's, and the client's ACKs of
// the server's data show how long that path is.
func TestClientBoundDistantClient(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 1, Requests: 5000, InFlight: 64, ClientBatch: 1, ServerBatch: 1,
		WriteGap: 3 * time.Microsecond, RTT: 10 * time.Millisecond, ServiceTime: 500 * time.Microsecond, Seed: 9})
	// The generator stamps each packet when its sender sends it; on the
	// server's host the client's packets are seen half a round trip later.
	_, rep := runPipeline(t, atServer(t, data, 5*time.Millisecond), DefaultConfig())
	b := busiest(rep)
	tm := b.Timing
	t.Logf("idle %.0f%%, outstanding %.1f of %d, idle gaps %.0f µs, path to the client %.0f µs",
		100*tm.IdleShare, tm.OutstandingMean, tm.OutstandingPeak, tm.IdleGaps.MeanUS, tm.PathToClientUS)
	if tm.IdleShare < minBoundIdle || tm.PathToClientUS < 5000 {
		t.Fatalf("the case does not test what it should: idle %.2f, path %.0f µs", tm.IdleShare, tm.PathToClientUS)
	}
	if slices.Contains(b.DiagnosisCodes, CodeClientBound) {
		t.Errorf("flagged client-bound: the idle time is the round trip to a fast client")
	}
	// Without the path's length the wire's other evidence would have said it.
	cp, tc := *b, *b.Timing
	tc.PathToClientUS = 0
	cp.Timing = &tc
	if clientBound(&cp, wireEvidence) == nil {
		t.Errorf("the rest of the evidence does not hold either: the test no longer tests the path")
	}
}

// atServer re-times a generated capture (classic pcap, ns, Ethernet/IPv4)
// as if taken on the server's host: the client's packets (from port
// 40000 and up) arrive owd after they were sent; records are put back in
// time order.
func atServer(t *testing.T, data []byte, owd time.Duration) []byte {
	t.Helper()
	type rec struct {
		ts int64
		b  []byte
	}
	var recs []rec
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		b := data[off : off+16+n]
		ts := int64(binary.LittleEndian.Uint32(b[0:]))*1e9 + int64(binary.LittleEndian.Uint32(b[4:]))
		if sport := binary.BigEndian.Uint16(b[16+14+20:]); sport >= 40000 {
			ts += int64(owd)
		}
		recs = append(recs, rec{ts, b})
		off += 16 + n
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return cmp.Compare(a.ts, b.ts) })
	out := append([]byte(nil), data[:24]...)
	for _, r := range recs {
		h := append([]byte(nil), r.b[:16]...)
		binary.LittleEndian.PutUint32(h[0:], uint32(r.ts/1e9))
		binary.LittleEndian.PutUint32(h[4:], uint32(r.ts%1e9))
		out = append(append(out, h...), r.b[16:]...)
	}
	return out
}
