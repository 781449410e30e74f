package sockcount

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// The lab tests run the real gocql client of lab/clients/gocql against the lab's Cassandra on
// 127.0.0.1:9042 (lab/README.md). They are off unless CQLSNIFF_LAB_GOCQL names the built client:
//
//	lab/cassandra/start.sh
//	(cd lab/clients/gocql && GOMODCACHE=$PWD/../../.cache/gomod GOFLAGS=-modcacherw GOWORK=off go build -o gocql-client .)
//	CQLSNIFF_LAB_GOCQL=$PWD/lab/clients/gocql/gocql-client go test ./sockcount -run Lab -v -timeout 30m
//	lab/cassandra/stop.sh
func labClient(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("CQLSNIFF_LAB_GOCQL")
	if bin == "" {
		t.Skip("set CQLSNIFF_LAB_GOCQL to the lab's gocql client, with Cassandra on 127.0.0.1:9042 (lab/README.md)")
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	c, err := net.DialTimeout("tcp", "127.0.0.1:9042", time.Second)
	if err != nil {
		t.Skipf("no Cassandra on 127.0.0.1:9042: %v", err)
	}
	c.Close()
	return bin
}

// gocqlArgs is the unbuffered gocql run of issue #6: WriteCoalesceWaitTime 0, 64 in flight.
func gocqlArgs(n int) []string {
	return []string{"-n", strconv.Itoa(n), "-c", "64", "-conns", "1", "-coalesce", "0", "-compression", "none"}
}

type clientSummary struct {
	Requests   int64   `json:"requests"`
	Errors     int64   `json:"errors"`
	DurationS  float64 `json:"duration_s"`
	OpsPerS    float64 `json:"ops_per_s"`
	LocalPorts []int   `json:"local_ports"`
}

// heldClient starts the client held at the door: sh waits for a line on its standard input, then
// execs the client, which so keeps sh's pid. It returns the command, known pid, and the release.
func heldClient(t *testing.T, bin string, args []string) (*exec.Cmd, *bytes.Buffer, func()) {
	t.Helper()
	cmd := exec.Command("sh", append([]string{"-c", `read _ && exec "$0" "$@"`, bin}, args...)...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd, &out, func() { io.WriteString(stdin, "go\n"); stdin.Close() }
}

func summaryOf(t *testing.T, out *bytes.Buffer) clientSummary {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	var s clientSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil {
		t.Fatalf("client summary: %v in %q", err, out.String())
	}
	if s.Errors != 0 {
		t.Fatalf("client had %d errors", s.Errors)
	}
	return s
}

// bpftraceScript counts, independently of the Tracer, the calls of one pid on sockets whose remote
// port is 9042 (skc_dport holds it in network order: 0x5223 read little-endian), by local port.
const bpftraceScript = `
tracepoint:sock:sock_send_length /pid == PID && args->ret > 0/ {
  $sk = (struct sock *)args->sk;
  if ($sk->__sk_common.skc_dport == 0x5223) {
    @sends[$sk->__sk_common.skc_num] = count();
    @send_bytes[$sk->__sk_common.skc_num] = sum(args->ret);
  }
}
tracepoint:sock:sock_recv_length /pid == PID && args->ret > 0/ {
  $sk = (struct sock *)args->sk;
  if ($sk->__sk_common.skc_dport == 0x5223) {
    @recvs[$sk->__sk_common.skc_num] = count();
    @recv_bytes[$sk->__sk_common.skc_num] = sum(args->ret);
  }
}
`

// startBpftrace runs the script for pid and waits until its probes are attached; the returned
// function stops it and returns its maps by local port.
func startBpftrace(t *testing.T, dir string, pid int) func() map[uint16]Counts {
	t.Helper()
	script := filepath.Join(dir, "sock.bt")
	if err := os.WriteFile(script, []byte(strings.ReplaceAll(bpftraceScript, "PID", strconv.Itoa(pid))), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("bpftrace", "-f", "json", script)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("bpftrace: %v", err)
	}
	lines := make(chan string, 16)
	go func() {
		s := bufio.NewScanner(stdout)
		s.Buffer(make([]byte, 1<<20), 1<<24)
		for s.Scan() {
			lines <- s.Text()
		}
		close(lines)
	}()
	for l := range lines {
		if strings.Contains(l, `"attached_probes"`) {
			break
		}
	}
	return func() map[uint16]Counts {
		cmd.Process.Signal(syscall.SIGINT)
		got := make(map[uint16]Counts)
		for l := range lines {
			var m struct {
				Type string                       `json:"type"`
				Data map[string]map[string]uint64 `json:"data"`
			}
			if json.Unmarshal([]byte(l), &m) != nil || m.Type != "map" {
				continue
			}
			for name, entries := range m.Data {
				for port, v := range entries {
					p, _ := strconv.Atoi(port)
					c := got[uint16(p)]
					switch name {
					case "@sends":
						c.Sends = v
					case "@send_bytes":
						c.SendBytes = v
					case "@recvs":
						c.Recvs = v
					case "@recv_bytes":
						c.RecvBytes = v
					}
					got[uint16(p)] = c
				}
			}
		}
		cmd.Wait()
		return got
	}
}

func startTcpdump(t *testing.T, pcap string) func() {
	t.Helper()
	cmd := exec.Command("tcpdump", "-i", "lo", "-s", "0", "-B", "65536", "-U", "-w", pcap, "tcp port 9042")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Skipf("tcpdump: %v", err)
	}
	s := bufio.NewScanner(stderr)
	for s.Scan() && !strings.Contains(s.Text(), "listening on") {
	}
	go io.Copy(io.Discard, stderr)
	return func() {
		time.Sleep(2 * time.Second) // let tcpdump drain the ring before SIGINT drops what is left
		cmd.Process.Signal(syscall.SIGINT)
		cmd.Wait()
	}
}

// wireFrames returns the frames cqlsniff counts in each direction of every connection of the
// capture, by the client's port.
func wireFrames(t *testing.T, pcap string) map[uint16][2]int {
	t.Helper()
	args := []string{"run", "../cmd/cqlsniff"}
	if bin := os.Getenv("CQLSNIFF_BIN"); bin != "" { // a built cqlsniff instead of this tree's
		args = []string{bin}
	}
	cmd := exec.Command(args[0], append(args[1:], "-r", pcap, "--report", "json")...)
	if args[0] == "run" {
		cmd = exec.Command("go", append(args, "-r", pcap, "--report", "json")...)
	}
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("cqlsniff: %v", err)
	}
	// The deprecated keys client_writes and server_writes, which a
	// CQLSNIFF_BIN from before client_segments also writes.
	var rep struct {
		Connections []struct {
			Client         string `json:"client"`
			ClientSegments struct {
				Frames int `json:"frames"`
			} `json:"client_writes"`
			ServerSegments struct {
				Frames int `json:"frames"`
			} `json:"server_writes"`
		} `json:"connections"`
	}
	if err := json.Unmarshal(out, &rep); err != nil {
		t.Fatal(err)
	}
	frames := make(map[uint16][2]int)
	for _, c := range rep.Connections {
		_, port, _ := net.SplitHostPort(c.Client)
		p, _ := strconv.Atoi(port)
		frames[uint16(p)] = [2]int{c.ClientSegments.Frames, c.ServerSegments.Frames}
	}
	return frames
}

// TestLabGocqlAgainstBpftrace runs gocql unbuffered at 64 in flight with the Tracer, an independent
// bpftrace script and tcpdump attached together: the Tracer's counts for the client's connections
// must equal bpftrace's, and the client's busy connection must show exactly one request frame (as
// cqlsniff counts them in the capture) per send call.
func TestLabGocqlAgainstBpftrace(t *testing.T) { labAgainstBpftrace(t) }

// TestLabGocqlAgainstBpftraceSyscalls is the same with the fallback of kernels before 6.3.
func TestLabGocqlAgainstBpftraceSyscalls(t *testing.T) {
	if !tracefsMounted() {
		t.Skip("tracefs is not mounted")
	}
	forceSyscallTracepoints = true
	defer func() { forceSyscallTracepoints = false }()
	labAgainstBpftrace(t)
}

func labAgainstBpftrace(t *testing.T) {
	bin := labClient(t)
	dir := t.TempDir()
	stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil {
		t.Fatalf("enabling BPF run-time statistics: %v", err)
	}
	defer stats.Close()
	tr := openOrSkip(t, 9042)
	t.Logf("tracer counting from the %s", tr.Source())

	cmd, out, release := heldClient(t, bin, gocqlArgs(5000))
	pid := cmd.Process.Pid
	stopBpftrace := startBpftrace(t, dir, pid)
	pcap := filepath.Join(dir, "gocql.pcap")
	stopTcpdump := startTcpdump(t, pcap)
	release()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("client: %v", err)
	}
	summary := summaryOf(t, out)
	stopTcpdump()
	independent := stopBpftrace()

	got := make(map[Key]Counts)
	start := time.Now()
	if err := tr.Read(got); err != nil {
		t.Fatal(err)
	}
	readTime := time.Since(start)
	progTime, runs, err := tr.programTime()
	if err != nil {
		t.Fatal(err)
	}
	frames := wireFrames(t, pcap)

	mine := make(map[uint16]Counts)
	server := make(map[uint16]Counts) // Cassandra's end, by the client's port
	for k, c := range got {
		switch {
		case c.PID == uint32(pid) && k.Remote.Port == 9042:
			if want := filepath.Base(bin); c.Comm != want[:min(len(want), 15)] {
				t.Errorf("client port %d: comm %q, want %q", k.Local.Port, c.Comm, want)
			}
			c.PID, c.Comm = 0, "" // bpftrace's maps are the pid's already
			mine[k.Local.Port] = c
		case k.Local.Port == 9042:
			server[k.Remote.Port] = c
		}
	}
	busy, total := uint16(0), Counts{}
	for port, c := range mine {
		if b := independent[port]; b != c {
			t.Errorf("client port %d: tracer %+v, bpftrace %+v", port, c, b)
		}
		if c.Sends > mine[busy].Sends {
			busy = port
		}
		total.Sends += c.Sends
		total.Recvs += c.Recvs
		total.SendBytes += c.SendBytes
		total.RecvBytes += c.RecvBytes
	}
	if len(mine) != len(independent) {
		t.Errorf("tracer saw %d client connections, bpftrace %d", len(mine), len(independent))
	}
	t.Logf("gocql: %d requests at 64 in flight, %.0f ops/s, pid %d (%s), %d connections", summary.Requests, summary.OpsPerS, pid, filepath.Base(bin), len(mine))
	t.Logf("all client connections: tracer %+v", total)
	for port, c := range mine {
		t.Logf("  client port %d: tracer %+v, bpftrace %+v, request frames on the wire %d", port, c, independent[port], frames[port][0])
	}
	c, f := mine[busy], frames[busy]
	perSend := float64(f[0]) / float64(c.Sends)
	t.Logf("busy connection %d: %d request frames / %d sends = %.2f frames per send; %d recvs for %d response frames (%.2f recvs per frame)",
		busy, f[0], c.Sends, perSend, c.Recvs, f[1], float64(c.Recvs)/float64(f[1]))
	if s := server[busy]; s.Sends > 0 {
		t.Logf("  Cassandra's end (pid %d %s): %d sends for %d response frames (%.2f frames per send), %d recvs",
			s.PID, s.Comm, s.Sends, f[1], float64(f[1])/float64(s.Sends), s.Recvs)
	}
	if uint64(f[0]) != c.Sends || math.Abs(perSend-1) > 1e-9 {
		t.Errorf("busy connection %d: %d request frames for %d sends, want exactly one per send", busy, f[0], c.Sends)
	}
	t.Logf("tracer cost: %d program runs, %v in the kernel (%.0f ns per run); Read of %d entries took %v",
		runs, progTime, float64(progTime.Nanoseconds())/float64(max(runs, 1)), len(got), readTime)
}

// TestLabGocqlOverhead runs the same client alternately without and with the Tracer attached, three
// times each, and logs the throughput of every run (the machine is noisy) with the Tracer's own cost:
// the kernel time of its programs (BPF run-time statistics on during the run) and the time its user
// side spends reading the map once a second, as a UI would.
func TestLabGocqlOverhead(t *testing.T) {
	bin := labClient(t)
	const n = 50000
	run := func() clientSummary {
		cmd, out, release := heldClient(t, bin, gocqlArgs(n))
		release()
		if err := cmd.Wait(); err != nil {
			t.Fatalf("client: %v", err)
		}
		return summaryOf(t, out)
	}
	run() // warm Cassandra up
	traced := func(i int) clientSummary {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			t.Fatalf("enabling BPF run-time statistics: %v", err)
		}
		defer stats.Close()
		tr := openOrSkip(t, 9042)
		defer tr.Close()
		stop, done := make(chan struct{}), make(chan struct{})
		readTime, reads := time.Duration(0), 0
		go func() {
			defer close(done)
			counts := make(map[Key]Counts)
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				select {
				case <-tick.C:
				case <-stop:
					return
				}
				start := time.Now()
				tr.Read(counts)
				readTime += time.Since(start)
				reads++
			}
		}()
		s := run()
		close(stop)
		<-done
		progTime, progRuns, err := tr.programTime()
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("run %d with the tracer:    %.0f ops/s; %d program runs, %v in the kernel (%.0f ns per run, %.2f%% of one core over the client's %.2f s); %d reads of the map, %v",
			i, s.OpsPerS, progRuns, progTime, float64(progTime.Nanoseconds())/float64(max(progRuns, 1)),
			100*progTime.Seconds()/s.DurationS, s.DurationS, reads, readTime)
		return s
	}
	// Alternating ABBAAB, so that a drift of the machine or of Cassandra over the runs does not
	// land on one side.
	var without, with []float64
	for i, tracer := range []bool{false, true, true, false, false, true} {
		if tracer {
			with = append(with, traced(i+1).OpsPerS)
			continue
		}
		s := run()
		t.Logf("run %d without the tracer: %.0f ops/s", i+1, s.OpsPerS)
		without = append(without, s.OpsPerS)
	}
	mean := func(v []float64) float64 {
		s := 0.0
		for _, x := range v {
			s += x
		}
		return s / float64(len(v))
	}
	t.Logf("mean: without %.0f ops/s, with %.0f ops/s (%+.1f%%)", mean(without), mean(with), 100*(mean(with)/mean(without)-1))
}
