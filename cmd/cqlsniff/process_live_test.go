package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/sockcount"
)

// The process CPU test: a client in another process (this test binary run
// again, as TestProcessLiveClient) that spends a known share of CPU per
// response, a fake server in this one, and the live pipeline as cqlsniff
// runs it headless, with the kernel's socket counts naming both processes.

const (
	procClientEnv = "CQLSNIFF_PROCESS_CLIENT" // the server's address, for the client process
	procInFlight  = 32
	procBurn      = 60 * time.Microsecond   // the client's work per response
	procRun       = 2500 * time.Millisecond // the client's traffic
	// procLinger: the client stays, idle, long enough after its last
	// request for the sampler (every procInterval) to read it at least
	// once more before it exits.
	procLinger   = 1200 * time.Millisecond
	procInterval = 400 * time.Millisecond
	procResult   = "process-client-result"
)

// procClientResult is what the client says of itself: its CPU time by
// getrusage from before it connected to after its last answer.
type procClientResult struct {
	PID      int    `json:"pid"`
	Client   string `json:"client"`
	Requests uint64 `json:"requests"`
	CPUNs    int64  `json:"cpu_ns"`
}

// TestLiveProcessCPU: cqlsniff's CPU per request for the client's process
// agrees with the client's own getrusage, though the client has exited
// before the report; the server's process (this one) is measured too.
func TestLiveProcessCPU(t *testing.T) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	src := openLive(t, capture.LiveConfig{Interface: "lo", Ports: []uint16{port}})
	tracer, err := sockcount.Open(sockcount.Config{Ports: []uint16{port}})
	if err != nil {
		t.Skipf("no kernel counts, so no process ids: %s", sockcount.Explain(err))
	}
	defer tracer.Close()

	cfg := analyze.DefaultConfig()
	cfg.Ports = []uint16{port}
	p := analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	var said bytes.Buffer // written while reports are built, read after Run ends
	p.SetHost(hostReader(tracer, &said))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- runHeadless(ctx, p, &options{interval: procInterval}, io.Discard) }()

	served := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			served <- err
			return
		}
		served <- serveCQL(c, 1) // each answer in its own write, at once
	}()

	// The capture's AF_PACKET socket is opened without SOCK_CLOEXEC
	// (gopacket's afpacket): the client would inherit it, and hold a socket
	// that is not its CQL connection.
	closeOnExec(t)
	cctx, ccancel := context.WithTimeout(ctx, 30*time.Second)
	defer ccancel()
	cmd := exec.CommandContext(cctx, os.Args[0], "-test.run=^TestProcessLiveClient$", "-test.count=1")
	cmd.Env = append(os.Environ(), procClientEnv+"="+ln.Addr().String())
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil {
		t.Fatalf("client: %v\n%s%s", err, out.String(), errOut.String())
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	var res procClientResult
	for _, line := range strings.Split(out.String(), "\n") {
		if js, ok := strings.CutPrefix(line, procResult+" "); ok {
			if err := json.Unmarshal([]byte(js), &res); err != nil {
				t.Fatal(err)
			}
		}
	}
	if res.Requests == 0 || res.PID != cmd.Process.Pid {
		t.Fatalf("client said %+v (pid %d):\n%s", res, cmd.Process.Pid, out.String())
	}

	// Let the pipeline see the last packets (the ring hands them over up
	// to 50 ms late), then stop it and build the final report, as run does.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if r := p.Snapshots().Latest(); r != nil && r.Totals.Responses >= res.Requests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline saw %+v, the client made %d requests", p.Snapshots().Latest().Totals, res.Requests)
		}
	}
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	rep := p.Report("lo")
	if said.Len() > 0 {
		t.Errorf("cqlsniff said: %s", said.String())
	}

	var cr *analyze.ConnReport
	for _, c := range rep.Connections {
		if c.Client == res.Client {
			cr = c
		}
	}
	if cr == nil {
		t.Fatalf("no connection from %s in the report", res.Client)
	}
	cp, sp := cr.ClientProcess, cr.ServerProcess
	if cp == nil || sp == nil {
		t.Fatalf("client process %+v, server process %+v (syscalls %+v, %+v)", cp, sp, cr.ClientSyscalls, cr.ServerSyscalls)
	}
	own := float64(res.CPUNs) / 1e3 / float64(res.Requests)
	t.Logf("client pid %d: %d requests, getrusage %.1f µs of CPU per request; cqlsniff %.1f µs (%.3f s CPU over %d requests in %.2f s, %.2f cores, busiest thread %s %.2f, %d threads, %d other sockets, exited %v)",
		res.PID, res.Requests, own, cp.CPUPerReqUS, cp.CPUS, cp.Requests, cp.WindowS, cp.Cores, cp.BusiestThread,
		cp.BusiestThreadShare, cp.Threads, cp.OtherSockets, cp.Exited)
	t.Logf("server pid %d (%s): %.1f µs per request, %.2f cores, %d other sockets", sp.PID, sp.Comm, sp.CPUPerReqUS, sp.Cores, sp.OtherSockets)
	if cp.PID != uint32(res.PID) || !cp.Exited {
		t.Errorf("client process pid %d exited %v, want pid %d, exited", cp.PID, cp.Exited, res.PID)
	}
	if cp.WindowS < 1 || cp.Requests == 0 || cp.Requests > res.Requests {
		t.Errorf("client window %.2f s with %d requests of its %d", cp.WindowS, cp.Requests, res.Requests)
	}
	if math.Abs(cp.CPUPerReqUS-own) > 0.3*own {
		t.Errorf("cqlsniff says %.1f µs of CPU per request for the client, its getrusage %.1f", cp.CPUPerReqUS, own)
	}
	// Its work is one goroutine's, but Go moves it from thread to thread:
	// no one thread need do most of it.
	if cp.BusiestThreadShare <= 0 || cp.BusiestThreadShare > cp.Cores+0.01 || cp.OtherSockets != 0 {
		t.Errorf("client busiest thread share %.2f, other sockets %d", cp.BusiestThreadShare, cp.OtherSockets)
	}
	// The server is this process, which also holds the listener and the
	// capture's packet socket: its CPU is not all CQL work, and the report
	// says so.
	if sp.PID != uint32(os.Getpid()) || sp.Exited || sp.CPUS <= 0 || sp.OtherSockets < 1 {
		t.Errorf("server process %+v, want pid %d, alive, with CPU and other sockets", sp, os.Getpid())
	}
}

// closeOnExec marks every file descriptor of this process past stderr
// close-on-exec.
func closeOnExec(t *testing.T) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range fds {
		if fd, err := strconv.Atoi(e.Name()); err == nil && fd > 2 {
			syscall.CloseOnExec(fd)
		}
	}
}

// TestProcessLiveClient is the client process of TestLiveProcessCPU, not a
// test of its own: it runs only when that test starts it.
func TestProcessLiveClient(t *testing.T) {
	addr := os.Getenv(procClientEnv)
	if addr == "" {
		t.Skip("the client process of TestLiveProcessCPU")
	}
	if err := procClient(addr); err != nil {
		t.Fatal(err)
	}
}

// procClient keeps procInFlight requests in flight, one write each, and
// spends procBurn of CPU on each answer before it sends the next request,
// for procRun; then prints its getrusage CPU time and request count and
// stays idle for procLinger.
func procClient(addr string) error {
	cpu := func() int64 {
		var ru syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return ru.Utime.Nano() + ru.Stime.Nano()
	}
	start := cpu()
	c, err := net.Dial("tcp4", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(exchangeTimeout))
	queries := make([][]byte, procInFlight)
	for s := range queries {
		queries[s] = queryFrame(uint16(s))
		if _, err := c.Write(queries[s]); err != nil {
			return err
		}
	}
	r := bufio.NewReader(c)
	resp := make([]byte, resultLen)
	end := time.Now().Add(procRun)
	var n uint64
	for inFlight := procInFlight; inFlight > 0; {
		if _, err := io.ReadFull(r, resp); err != nil {
			return err
		}
		n++
		for t0 := time.Now(); time.Since(t0) < procBurn; {
		}
		if time.Now().After(end) {
			inFlight--
			continue
		}
		if _, err := c.Write(queries[binary.BigEndian.Uint16(resp[2:])]); err != nil {
			return err
		}
	}
	js, _ := json.Marshal(procClientResult{PID: os.Getpid(), Client: c.LocalAddr().String(), Requests: n, CPUNs: cpu() - start})
	fmt.Printf("%s %s\n", procResult, js)
	time.Sleep(procLinger)
	return nil
}
