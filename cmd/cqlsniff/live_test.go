package main

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/sockcount"
)

// The live tests capture CQL traffic that the test itself makes on the
// loopback device, with known write patterns, and check what the
// analyzer reports against what was sent. They need root (or
// CAP_NET_RAW) and AF_PACKET, and skip without them.

// openLive opens a live capture or skips the test where there is none.
func openLive(t *testing.T, cfg capture.LiveConfig) *capture.LiveSource {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	src, err := capture.OpenLive(cfg)
	if err != nil {
		for _, env := range []error{syscall.EPERM, syscall.EACCES, syscall.EAFNOSUPPORT, syscall.EPROTONOSUPPORT, capture.ErrLiveUnsupported} {
			if errors.Is(err, env) {
				t.Skipf("no live capture here: %v", err)
			}
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

const liveQuery = "SELECT v FROM ks.kv WHERE k = 42"

// queryFrame is a v4 QUERY request on stream:
//
//	04 00 ss ss 07 LL LL LL LL  header: v4 request, flags 0, stream, QUERY, body length
//	00 00 00 20 "SELECT ..."    [long string] query
//	00 01                       consistency ONE
//	00                          query flags
func queryFrame(stream uint16) []byte {
	body := binary.BigEndian.AppendUint32(nil, uint32(len(liveQuery)))
	body = append(body, liveQuery...)
	body = append(body, 0x00, 0x01, 0x00)
	f := []byte{0x04, 0x00, byte(stream >> 8), byte(stream), 0x07}
	f = binary.BigEndian.AppendUint32(f, uint32(len(body)))
	return append(f, body...)
}

// voidResult answers stream: 84 00 ss ss 08 00000004 00000001, a v4
// response, RESULT, kind Void.
func voidResult(stream uint16) []byte {
	return []byte{0x84, 0x00, byte(stream >> 8), byte(stream), 0x08, 0, 0, 0, 4, 0, 0, 0, 1}
}

const resultLen = 13

// exchangeTimeout bounds a test connection's life: a stuck exchange fails
// the test instead of hanging it.
const exchangeTimeout = 30 * time.Second

// serveCQL answers every QUERY on c with a Void RESULT, collecting batch
// answers before it writes them in one write.
func serveCQL(c net.Conn, batch int) error {
	defer c.Close()
	c.SetDeadline(time.Now().Add(exchangeTimeout))
	r := bufio.NewReader(c)
	var out []byte
	hdr := make([]byte, 9)
	for {
		if _, err := io.ReadFull(r, hdr); err != nil {
			if err == io.EOF && len(out) == 0 {
				return nil
			}
			return err
		}
		if hdr[0] != 0x04 || hdr[4] != 0x07 {
			return fmt.Errorf("server: not a v4 QUERY: % x", hdr)
		}
		if _, err := r.Discard(int(binary.BigEndian.Uint32(hdr[5:]))); err != nil {
			return err
		}
		out = append(out, voidResult(binary.BigEndian.Uint16(hdr[2:]))...)
		if len(out) == batch*resultLen {
			if _, err := c.Write(out); err != nil {
				return err
			}
			out = out[:0]
		}
	}
}

// phase is one connection's write pattern: rounds of inFlight requests,
// sent perWrite frames per write; the server answers a round in one write
// once it has read all of it, and the client reads every answer before
// the next round.
type phase struct {
	name             string
	rounds, inFlight int
	perWrite         int
	client           string // the client's address once run
	// dial connects; nil is plain TCP with TCP_NODELAY.
	dial func(addr string) (net.Conn, error)
}

func (ph *phase) run(addr string) error {
	dial := ph.dial
	if dial == nil {
		dial = func(addr string) (net.Conn, error) {
			c, err := net.Dial("tcp4", addr)
			if err != nil {
				return nil, err
			}
			// Go sets TCP_NODELAY by default; say so, the counts below
			// rely on it: no write waits for an ACK.
			return c, c.(*net.TCPConn).SetNoDelay(true)
		}
	}
	c, err := dial(addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(exchangeTimeout))
	ph.client = c.LocalAddr().String()
	answers := make([]byte, ph.inFlight*resultLen)
	var buf []byte
	for r := 0; r < ph.rounds; r++ {
		for s := 0; s < ph.inFlight; s++ {
			buf = append(buf, queryFrame(uint16(s))...)
			if (s+1)%ph.perWrite == 0 {
				if _, err := c.Write(buf); err != nil {
					return err
				}
				buf = buf[:0]
			}
		}
		if _, err := io.ReadFull(c, answers); err != nil {
			return err
		}
		for s := 0; s < ph.inFlight; s++ {
			if !bytes.Equal(answers[s*resultLen:(s+1)*resultLen], voidResult(uint16(s))) {
				return fmt.Errorf("%s: answer %d is % x", ph.name, s, answers[s*resultLen:(s+1)*resultLen])
			}
		}
	}
	return nil
}

func (ph *phase) requests() uint64 { return uint64(ph.rounds * ph.inFlight) }

// TestLivePipeline captures three connections with known write patterns
// through the whole pipeline, as `cqlsniff -i lo` will, and checks the
// report against what was sent; then analyses the dump the capture wrote
// (-w) offline and checks it gives the same report.
//
// Which numbers are exact, and why (loopback, TCP_NODELAY, every segment
// far below the MSS and the windows):
//
//   - "unbuffered": 64 requests in flight, one frame per write. The writes
//     follow each other within microseconds, so Linux's autocorking may
//     merge a write into the previous segment while that one is still
//     queued: client segments ≤ frames, not equal. What is certain is the
//     diagnosis. The server's answers are exact: it writes a round's 64 in
//     one write only after the client sent all of the round, and the client
//     reads them all before sending more, so nothing else of the server's
//     is queued and each write leaves as one segment of 64 frames.
//   - "batched": 16 frames per write, one write in flight. The client sends
//     the next write only after the answers to the previous one arrived,
//     when its previous segment has long left: nothing to merge with, and
//     640 bytes is one segment. Exactly 16 frames per segment each way.
//   - "one at a time": one frame per write, one request in flight: one
//     frame per segment each way, exactly, and no diagnosis (a client at
//     one request in flight has nothing to batch).
func TestLivePipeline(t *testing.T) { testLivePipeline(t, 1) }

// TestLivePipelineFanout is TestLivePipeline with three workers, each
// reading its own ring of a PACKET_FANOUT group.
func TestLivePipelineFanout(t *testing.T) { testLivePipeline(t, 3) }

// openFanout opens a fanout group of n rings or skips the test where
// there is none.
func openFanout(t *testing.T, cfg capture.LiveConfig, n int) []capture.Source {
	t.Helper()
	probe := cfg
	probe.Dump = nil
	openLive(t, probe).Close() // skips where live capture is impossible
	ms, err := capture.OpenLiveFanout(cfg, n)
	if err != nil {
		t.Skipf("no PACKET_FANOUT here: %v", err)
	}
	t.Cleanup(func() { ms[0].Close() })
	srcs := make([]capture.Source, n)
	for i, m := range ms {
		srcs[i] = m
	}
	return srcs
}

func testLivePipeline(t *testing.T, workers int) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	dumpPath := filepath.Join(t.TempDir(), "live.pcap")
	dump := capture.NewDumpFile(dumpPath)
	defer dump.Close()
	lc := capture.LiveConfig{Interface: "lo", Ports: []uint16{port}, Dump: dump}
	cfg := analyze.DefaultConfig()
	cfg.Ports = []uint16{port}
	var (
		src capture.Source
		p   *analyze.Pipeline
	)
	if workers == 1 {
		src = openLive(t, lc)
		p = analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	} else {
		srcs := openFanout(t, lc, workers)
		src = srcs[0] // closing one member closes the group
		p = analyze.NewFanoutPipeline(srcs, cfg, capture.DefaultAssemblerConfig())
	}
	// The kernel's count of the writes, where eBPF works: the wire cannot
	// show them exactly (concurrent one-frame writes share segments even
	// with autocorking off, when the previous one is still queued).
	tracer, err := sockcount.Open(sockcount.Config{Ports: []uint16{port}})
	if err != nil {
		t.Logf("no kernel counts: %s", sockcount.Explain(err))
		tracer = nil
	} else {
		defer tracer.Close()
		p.SetHost(hostReader(tracer, io.Discard))
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	if os.Getenv("CQLSNIFF_LIVE_BENCH_MODE") == "capture" && workers == 1 {
		// Capture alone, like tcpdump -w: read every packet, analyse none.
		go func() {
			var pkt capture.Packet
			for {
				switch err := src.Next(&pkt); {
				case err == nil, errors.Is(err, capture.ErrTimeout):
					if ctx.Err() != nil {
						runErr <- nil
						return
					}
				default:
					runErr <- err
					return
				}
			}
		}()
	} else {
		go func() { runErr <- p.Run(ctx, 0) }()
	}

	phases := []*phase{
		{name: "unbuffered", rounds: 20, inFlight: 64, perWrite: 1},
		{name: "batched", rounds: 20, inFlight: 16, perWrite: 16},
		{name: "one at a time", rounds: 100, inFlight: 1, perWrite: 1},
	}
	served := make(chan error, len(phases))
	go func() {
		for _, ph := range phases { // the phases connect one after the other
			c, err := ln.Accept()
			if err != nil {
				served <- err
				return
			}
			served <- serveCQL(c, ph.inFlight)
		}
	}()
	var total uint64
	for _, ph := range phases {
		if err := ph.run(ln.Addr().String()); err != nil {
			t.Fatal(err)
		}
		if err := <-served; err != nil {
			t.Fatal(err)
		}
		total += ph.requests()
	}

	// Wait until the pipeline has seen every answer (the kernel hands the
	// ring over in blocks, up to 50ms late), then stop it.
	for deadline := time.Now().Add(20 * time.Second); ; {
		p.Snapshots().Request()
		time.Sleep(20 * time.Millisecond)
		if r := p.Snapshots().Latest(); r != nil && r.Totals.Responses >= total {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline saw %+v after 20s", p.Snapshots().Latest().Totals)
		}
	}
	time.Sleep(100 * time.Millisecond) // the last FINs and ACKs
	cancel()
	select {
	case err := <-runErr:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the pipeline did not stop within 10s of its cancellation")
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}
	if err := dump.Close(); err != nil {
		t.Fatal(err)
	}
	rep := p.Report("lo")

	if rep.Dropped != 0 {
		t.Errorf("%d packets dropped by the kernel", rep.Dropped)
	}
	if rep.Totals.Requests != total || rep.Totals.Responses != total || rep.Totals.Unanswered != 0 || rep.Totals.Connections != len(phases) {
		t.Errorf("totals %+v, sent %d requests on %d connections", rep.Totals, total, len(phases))
	}
	// Retransmissions are not checked: they are real on loopback too. When
	// the receiver does not run for a few milliseconds (a loaded machine),
	// the sender's tail loss probe sends its last segment again, and the
	// capture rightly shows it twice. The counts below exclude them.
	if c := rep.Capture; c.Gaps != 0 || c.Desyncs != 0 || c.SkippedBytes != 0 || c.NotTCP != 0 || c.Malformed != 0 {
		t.Errorf("capture counters %+v", c)
	}
	conns := map[string]*analyze.ConnReport{}
	for _, cr := range rep.Connections {
		conns[cr.Client] = cr
	}
	for _, ph := range phases {
		cr := conns[ph.client]
		if cr == nil {
			t.Errorf("%s: no connection from %s in the report", ph.name, ph.client)
			continue
		}
		cw, sw := cr.ClientSegments, cr.ServerSegments
		t.Logf("%s: client %d frames in %d segments, server %d in %d, diagnoses %v, in flight %.1f/%d",
			ph.name, cw.Frames, cw.Segments, sw.Frames, sw.Segments, cr.DiagnosisCodes, cr.InFlight.Mean, cr.InFlight.Max)
		n := ph.requests()
		if cr.Requests != n || cr.Responses != n || cw.Frames != n || sw.Frames != n {
			t.Errorf("%s: %d requests, %d responses, %d/%d frames; sent %d", ph.name, cr.Requests, cr.Responses, cw.Frames, sw.Frames, n)
		}
		// The server always answers a whole round in one write.
		if sw.Segments != uint64(ph.rounds) || sw.FramesPerSegment != float64(ph.inFlight) {
			t.Errorf("%s: server %d segments (%.2f frames each), want %d of %d", ph.name, sw.Segments, sw.FramesPerSegment, ph.rounds, ph.inFlight)
		}
		unbuffered := slices.Contains(cr.DiagnosisCodes, analyze.CodeClientUnbuffered)
		if tracer != nil {
			// Exactly one send call per write the test made, on both ends.
			writes := uint64(ph.rounds * ph.inFlight / ph.perWrite)
			if cs := cr.ClientSyscalls; cs == nil || cs.Sends != writes || cs.FramesPerSend == nil || *cs.FramesPerSend != float64(ph.perWrite) {
				t.Errorf("%s: client syscalls %+v, want %d sends of %d frames", ph.name, cs, writes, ph.perWrite)
			}
			if ss := cr.ServerSyscalls; ss == nil || ss.Sends != uint64(ph.rounds) {
				t.Errorf("%s: server syscalls %+v, want %d sends", ph.name, ss, ph.rounds)
			}
		}
		switch ph.name {
		case "unbuffered":
			if cw.Segments > n || cw.Segments < uint64(ph.rounds) {
				t.Errorf("%s: %d client segments for %d frames", ph.name, cw.Segments, n)
			}
			if !unbuffered {
				t.Errorf("%s: no %s diagnosis: %v", ph.name, analyze.CodeClientUnbuffered, cr.DiagnosisCodes)
			}
		default:
			want := uint64(ph.rounds * ph.inFlight / ph.perWrite)
			if cw.Segments != want || cw.FramesPerSegment != float64(ph.perWrite) {
				t.Errorf("%s: client %d segments (%.2f frames each), want %d of %d", ph.name, cw.Segments, cw.FramesPerSegment, want, ph.perWrite)
			}
			if len(cr.DiagnosisCodes) != 0 {
				t.Errorf("%s: diagnoses %v, want none", ph.name, cr.DiagnosisCodes)
			}
		}
	}

	// The dump (-w) holds every captured frame: read offline it gives the
	// same report, but for the source's name and the kernel's drops.
	f, err := capture.OpenFile(dumpPath)
	if err != nil {
		t.Fatal(err)
	}
	var pkt capture.Packet
	for f.Next(&pkt) == nil {
	}
	f.Close()
	if got := f.Stats(); got.Records != rep.Packets || got.TCP != rep.Capture.TCPPackets {
		t.Errorf("dump holds %d records (%d TCP), the live capture read %d (%d)", got.Records, got.TCP, rep.Packets, rep.Capture.TCPPackets)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-r", dumpPath, "-p", strconv.Itoa(int(port)), "--report", "json", "--workers", "1"}, nil, &out, &errb); err != nil {
		t.Fatalf("cqlsniff -r on the dump: %v %s", err, errb.String())
	}
	var offline analyze.Report
	if err := json.Unmarshal(out.Bytes(), &offline); err != nil {
		t.Fatal(err)
	}
	// The live report without the kernel's counts, which a file cannot have.
	p.SetHost(nil)
	wire := p.Report("lo")
	offline.Source, offline.Dropped = wire.Source, wire.Dropped
	if workers > 1 {
		// The members number their packets apart and keep their own
		// clocks, and their records interleave in the dump: the
		// connections' ids and the capture's span differ; the rest not.
		for _, r := range []*analyze.Report{wire, &offline} {
			slices.SortFunc(r.Connections, func(a, b *analyze.ConnReport) int { return strings.Compare(a.Client, b.Client) })
			for i, c := range r.Connections {
				cp := *c
				cp.ID = uint64(i)
				r.Connections[i] = &cp
			}
			r.Start, r.End, r.DurationS = "", "", 0
		}
	}
	liveJSON, _ := json.Marshal(wire)
	offlineJSON, _ := json.Marshal(&offline)
	if !bytes.Equal(liveJSON, offlineJSON) {
		t.Errorf("the dump's report differs from the live one:\nlive:    %s\noffline: %s", liveJSON, offlineJSON)
	}
}

// TestLiveBench is the consumer side of scripts/live-bench.sh, not a test:
// it runs only with CQLSNIFF_LIVE_BENCH=1. It captures on lo (or
// CQLSNIFF_LIVE_BENCH_IFACE) the ports in CQLSNIFF_LIVE_BENCH_PORTS
// through the whole pipeline with a ring of CQLSNIFF_LIVE_BENCH_RING MiB
// (32), writing every frame to
// CQLSNIFF_LIVE_BENCH_DUMP when set, prints "ready" once the capture is
// open and stops when no packet came for CQLSNIFF_LIVE_BENCH_IDLE (1s)
// after the first. With CQLSNIFF_LIVE_BENCH_MODE=capture it only reads the
// packets (and writes the dump), as tcpdump -w does. Its last line is
// "result" and a JSON object: packets,
// kernel drops, requests and responses the analyzer paired, and the
// process's CPU time (user, system) per packet. CQLSNIFF_LIVE_BENCH_WORKERS
// (1) analysis workers read a PACKET_FANOUT group of as many rings.
func TestLiveBench(t *testing.T) {
	if os.Getenv("CQLSNIFF_LIVE_BENCH") != "1" {
		t.Skip("run by scripts/live-bench.sh")
	}
	iface := cmp.Or(os.Getenv("CQLSNIFF_LIVE_BENCH_IFACE"), "lo")
	var ports portList
	if err := ports.Set(cmp.Or(os.Getenv("CQLSNIFF_LIVE_BENCH_PORTS"), "9042")); err != nil {
		t.Fatal(err)
	}
	idle, err := time.ParseDuration(cmp.Or(os.Getenv("CQLSNIFF_LIVE_BENCH_IDLE"), "1s"))
	if err != nil {
		t.Fatal(err)
	}
	ring, err := strconv.Atoi(cmp.Or(os.Getenv("CQLSNIFF_LIVE_BENCH_RING"), "32"))
	if err != nil {
		t.Fatal(err)
	}
	lc := capture.LiveConfig{Interface: iface, Ports: ports, RingMB: ring}
	if path := os.Getenv("CQLSNIFF_LIVE_BENCH_DUMP"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		lc.Dump = f
	}
	workers, err := strconv.Atoi(cmp.Or(os.Getenv("CQLSNIFF_LIVE_BENCH_WORKERS"), "1"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := analyze.DefaultConfig()
	cfg.Ports = ports
	var (
		src  capture.Source
		srcs []capture.Source
		p    *analyze.Pipeline
	)
	if workers > 1 && os.Getenv("CQLSNIFF_LIVE_BENCH_MODE") != "capture" {
		flc := lc // the rings share the memory, as cqlsniff's do
		flc.RingMB = max(ring/workers, minMemberRingMB)
		srcs = openFanout(t, flc, workers)
		src = srcs[0]
		p = analyze.NewFanoutPipeline(srcs, cfg, capture.DefaultAssemblerConfig())
	} else {
		src = openLive(t, lc)
		srcs = []capture.Source{src}
		p = analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	}
	records := func() (n uint64) {
		for _, s := range srcs {
			n += s.Stats().Records
		}
		return n
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var before, after syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	fmt.Println("ready")
	runErr := make(chan error, 1)
	if os.Getenv("CQLSNIFF_LIVE_BENCH_MODE") == "capture" {
		// Capture alone, like tcpdump -w: read every packet, analyse none.
		go func() {
			var pkt capture.Packet
			for {
				switch err := src.Next(&pkt); {
				case err == nil, errors.Is(err, capture.ErrTimeout):
					if ctx.Err() != nil {
						runErr <- nil
						return
					}
				default:
					runErr <- err
					return
				}
			}
		}()
	} else {
		go func() { runErr <- p.Run(ctx, 0) }()
	}
	var last uint64
	lastChange := time.Now()
	for {
		time.Sleep(100 * time.Millisecond)
		n := records()
		if n != last {
			last, lastChange = n, time.Now()
		} else if n > 0 && time.Since(lastChange) > idle {
			break
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	p.Finish()
	src.Close()
	rep := p.Report(iface)
	cpu := func(a, b syscall.Timeval) float64 { return float64(b.Nano()-a.Nano()) / 1e9 }
	user, sys := cpu(before.Utime, after.Utime), cpu(before.Stime, after.Stime)
	res, _ := json.Marshal(map[string]any{
		"packets": rep.Packets, "dropped": rep.Dropped, "requests": rep.Totals.Requests, "responses": rep.Totals.Responses,
		"user_s": user, "sys_s": sys, "cpu_ns_per_packet": (user + sys) * 1e9 / float64(max(rep.Packets, 1)),
	})
	fmt.Printf("result %s\n", res)
}
