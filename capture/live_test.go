//go:build linux

package capture

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Live tests capture on the loopback device. They need root (or
// CAP_NET_RAW) and an AF_PACKET socket, and skip without them.

// openLive opens a live capture for a test, or skips the test where live
// capture is not possible here. A root that still gets EPERM (a container
// without CAP_NET_RAW) or no AF_PACKET skips; any other failure fails.
func openLive(t *testing.T, cfg LiveConfig) *LiveSource {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	src, err := OpenLive(cfg)
	if err != nil {
		skipWithoutLive(t, err)
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

// skipWithoutLive skips the test if err says live capture is not possible
// here: a root that still gets EPERM (a container without CAP_NET_RAW), or
// no AF_PACKET.
func skipWithoutLive(t *testing.T, err error) {
	t.Helper()
	for _, env := range []error{syscall.EPERM, syscall.EACCES, syscall.EAFNOSUPPORT, syscall.EPROTONOSUPPORT, ErrLiveUnsupported} {
		if errors.Is(err, env) {
			t.Skipf("no live capture here: %v", err)
		}
	}
}

// pingPong runs a TCP exchange whose packets are known: the client sends
// n messages of size bytes, each in its own write, and waits for the
// server's reply (half the size) before the next, so every message and
// every reply is one segment. It returns the client's and server's
// addresses and the bytes each sent.
type pingPong struct {
	client, server       netip.AddrPort
	clientSent, servSent int
}

func runPingPong(t *testing.T, ln net.Listener, n, size int) pingPong {
	t.Helper()
	pp, err := exchange(ln, n, size)
	if err != nil {
		t.Fatal(err)
	}
	return pp
}

// exchange is runPingPong for other goroutines than the test's.
func exchange(ln net.Listener, n, size int) (pingPong, error) {
	done := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(30 * time.Second))
		buf := make([]byte, size)
		for i := 0; i < n; i++ {
			if _, err := io.ReadFull(c, buf); err != nil {
				done <- err
				return
			}
			if _, err := c.Write(buf[:size/2]); err != nil {
				done <- err
				return
			}
		}
		_, err = c.Read(buf) // the client's FIN
		if err != io.EOF {
			done <- fmt.Errorf("server: want EOF, got %v", err)
			return
		}
		done <- nil
	}()
	c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		return pingPong{}, err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	c.SetDeadline(time.Now().Add(30 * time.Second))
	msg := bytes.Repeat([]byte{'q'}, size)
	reply := make([]byte, size/2)
	for i := 0; i < n; i++ {
		if _, err := c.Write(msg); err != nil {
			return pingPong{}, err
		}
		if _, err := io.ReadFull(c, reply); err != nil {
			return pingPong{}, err
		}
	}
	pp := pingPong{
		client:     c.LocalAddr().(*net.TCPAddr).AddrPort(),
		server:     c.RemoteAddr().(*net.TCPAddr).AddrPort(),
		clientSent: n * size, servSent: n * size / 2,
	}
	c.Close()
	return pp, <-done
}

// seen is what a test read from a live source.
type seen struct {
	packets  int
	syn, fin [2]int // [0] client to server, [1] server to client
	payload  [2]int // bytes of distinct data segments
	dataSegs [2]int // distinct data segments
	// Data segments seen again: copied is a sighting within a millisecond
	// of the first, a second copy of the same packet (what a loopback
	// capture that keeps the outgoing copy shows); resent is later, a TCP
	// retransmission (a tail loss probe when the receiver was slow to
	// run), which the capture rightly shows.
	copied, resent int
	other          int // packets of other connections
	firstTS        int64
	ipv6           bool
}

// collect reads src until both sides' FINs were seen or the deadline
// passes.
func collect(t *testing.T, src Source, pp pingPong, deadline time.Duration) seen {
	t.Helper()
	var s seen
	first := [2]map[uint32]int64{{}, {}} // sequence number → first sighting
	end := time.Now().Add(deadline)
	var p Packet
	for time.Now().Before(end) && (s.fin[0] == 0 || s.fin[1] == 0) {
		err := src.Next(&p)
		if errors.Is(err, ErrTimeout) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		s.packets++
		d := -1
		switch {
		case p.SrcPort == pp.client.Port() && p.DstPort == pp.server.Port():
			d = 0
		case p.SrcPort == pp.server.Port() && p.DstPort == pp.client.Port():
			d = 1
		}
		if d < 0 {
			s.other++
			continue
		}
		if s.firstTS == 0 {
			s.firstTS = p.TS
		}
		s.ipv6 = p.IPv6
		if p.Flags&FlagSYN != 0 {
			s.syn[d]++
		}
		if p.Flags&FlagFIN != 0 {
			s.fin[d]++
		}
		if len(p.Payload) == 0 {
			continue
		}
		if ts, ok := first[d][p.Seq]; ok {
			if p.TS-ts < int64(time.Millisecond) {
				s.copied++
			} else {
				s.resent++
			}
			continue
		}
		first[d][p.Seq] = p.TS
		s.dataSegs[d]++
		s.payload[d] += len(p.Payload)
	}
	return s
}

// checkOnce asserts that every packet of the exchange was read exactly
// once: on loopback a capture that keeps both copies sees each segment
// twice.
func checkOnce(t *testing.T, s seen, pp pingPong, n int) {
	t.Helper()
	if s.syn != [2]int{1, 1} || s.fin[0] < 1 || s.fin[1] < 1 {
		t.Errorf("SYNs %v FINs %v, want one each way", s.syn, s.fin)
	}
	if s.payload != [2]int{pp.clientSent, pp.servSent} {
		t.Errorf("payload bytes %v, sent %d and %d", s.payload, pp.clientSent, pp.servSent)
	}
	if s.dataSegs != [2]int{n, n} || s.copied != 0 {
		t.Errorf("data segments %v (%d seen twice), want %d each way", s.dataSegs, s.copied, n)
	}
	if s.resent > 0 {
		t.Logf("%d TCP retransmissions", s.resent)
	}
	if s.other != 0 {
		t.Errorf("%d packets of other connections passed the filter", s.other)
	}
	if lag := time.Since(time.Unix(0, s.firstTS)); lag < 0 || lag > time.Minute {
		t.Errorf("first packet stamped %v ago", lag)
	}
}

func listen(t *testing.T, network, addr string) (net.Listener, uint16) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("cannot listen on %s: %v", addr, err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln, uint16(ln.Addr().(*net.TCPAddr).Port)
}

func TestLiveLoopbackEachPacketOnce(t *testing.T) {
	for _, iface := range []string{"lo", "any"} {
		t.Run(iface, func(t *testing.T) {
			ln, port := listen(t, "tcp4", "127.0.0.1:0")
			src := openLive(t, LiveConfig{Interface: iface, Ports: []uint16{port}})
			const n = 200
			pp := runPingPong(t, ln, n, 100)
			s := collect(t, src, pp, 10*time.Second)
			checkOnce(t, s, pp, n)
			st := src.Stats()
			if st.Records != uint64(s.packets) || st.TCP != st.Records || st.Dropped != 0 {
				t.Errorf("stats %+v after %d packets read", st, s.packets)
			}
			want := "Ethernet"
			if iface == "any" {
				want = "Raw" // SOCK_DGRAM: every packet starts at its IP header
			}
			if got := src.LinkType().String(); got != want {
				t.Errorf("link type %s, want %s", got, want)
			}
		})
	}
}

func TestLiveIPv6(t *testing.T) {
	ln, port := listen(t, "tcp6", "[::1]:0")
	src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}})
	const n = 50
	pp := runPingPong(t, ln, n, 64)
	s := collect(t, src, pp, 10*time.Second)
	checkOnce(t, s, pp, n)
	if !s.ipv6 {
		t.Error("IPv6 exchange decoded as IPv4")
	}
}

// TestLiveFilter runs three exchanges at once, on two ports and two
// loopback addresses, and captures one: by port, then by host.
func TestLiveFilter(t *testing.T) {
	lnA, portA := listen(t, "tcp4", "127.0.0.1:0")
	lnB, portB := listen(t, "tcp4", "127.0.0.1:0")
	lnC, portC := listen(t, "tcp4", "127.0.0.2:0")
	cases := []struct {
		name  string
		cfg   LiveConfig
		match func(a, b, c pingPong) pingPong
	}{
		{"port", LiveConfig{Interface: "lo", Ports: []uint16{portB}}, func(a, b, c pingPong) pingPong { return b }},
		{"host", LiveConfig{Interface: "lo", Ports: []uint16{portA, portB, portC}, Hosts: []netip.Addr{netip.MustParseAddr("127.0.0.2")}},
			func(a, b, c pingPong) pingPong { return c }},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := openLive(t, c.cfg)
			const n = 30
			var wg sync.WaitGroup
			var pp [3]pingPong
			var errs [3]error
			for i, ln := range []net.Listener{lnA, lnB, lnC} {
				wg.Add(1)
				go func() { defer wg.Done(); pp[i], errs[i] = exchange(ln, n, 80) }()
			}
			wg.Wait()
			if err := errors.Join(errs[:]...); err != nil {
				t.Fatal(err)
			}
			want := c.match(pp[0], pp[1], pp[2])
			s := collect(t, src, want, 10*time.Second)
			checkOnce(t, s, want, n)
		})
	}
}

func TestLiveTimeoutAndClose(t *testing.T) {
	_, port := listen(t, "tcp4", "127.0.0.1:0")
	src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, Timeout: 20 * time.Millisecond})
	var p Packet
	start := time.Now()
	if err := src.Next(&p); !errors.Is(err, ErrTimeout) {
		t.Fatalf("idle Next: %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < 15*time.Millisecond || d > 2*time.Second {
		t.Errorf("idle Next returned after %v, timeout 20ms", d)
	}

	// Close while Next waits: Next returns io.EOF, and Close waits for it
	// before the ring goes away.
	src2 := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, Timeout: 200 * time.Millisecond})
	errc := make(chan error, 1)
	go func() {
		var p Packet
		for {
			if err := src2.Next(&p); err != ErrTimeout {
				errc <- err
				return
			}
		}
	}()
	time.Sleep(50 * time.Millisecond)
	start = time.Now()
	if err := src2.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != io.EOF {
		t.Errorf("Next during Close: %v, want io.EOF", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Close took %v", d)
	}
	if err := src2.Next(&p); err != io.EOF {
		t.Errorf("Next after Close: %v, want io.EOF", err)
	}
	if err := src2.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if st := src2.Stats(); st.Records != 0 || st.Dropped != 0 {
		t.Errorf("stats after Close: %+v", st)
	}
}

// TestLiveStartsFiltered opens captures while other loopback traffic
// flows: nothing that arrived before the filter was attached may come
// out of Next.
func TestLiveStartsFiltered(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, err := net.Dial("udp4", udp.LocalAddr().String())
		if err != nil {
			return
		}
		defer out.Close()
		b := make([]byte, 64)
		for {
			select {
			case <-stop:
				return
			default:
				out.Write(b)
			}
		}
	}()
	go func() {
		b := make([]byte, 64)
		for {
			if _, _, err := udp.ReadFrom(b); err != nil {
				return
			}
		}
	}()
	_, port := listen(t, "tcp4", "127.0.0.1:0")
	for i := 0; i < 10; i++ {
		src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, RingMB: 2, Timeout: 5 * time.Millisecond})
		// Read until the ring is idle: what was there before the filter
		// has been skipped by then.
		var p Packet
		for idle := 0; idle < 3; {
			switch err := src.Next(&p); {
			case err == nil:
				t.Fatalf("open %d: a packet came out: %d -> %d", i, p.SrcPort, p.DstPort)
			case errors.Is(err, ErrTimeout):
				idle++
			default:
				t.Fatal(err)
			}
		}
		if st := src.Stats(); st.Records != 0 {
			t.Fatalf("open %d: %+v", i, st)
		}
		src.Close()
	}
	close(stop)
	wg.Wait()
}

func TestLiveDump(t *testing.T) {
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			ln, port := listen(t, "tcp4", "127.0.0.1:0")
			path := filepath.Join(t.TempDir(), "live."+format)
			dump := NewDumpFile(path)
			defer dump.Close()
			src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, Dump: dump, DumpFormat: format})
			if _, err := os.Stat(path); !os.IsNotExist(err) {
				t.Errorf("dump file exists before the first Next: %v", err)
			}
			const n = 100
			pp := runPingPong(t, ln, n, 200)
			var live []Packet
			s := collect(t, keeper{src, &live}, pp, 10*time.Second)
			checkOnce(t, s, pp, n)
			if err := src.Close(); err != nil {
				t.Fatal(err)
			}
			if err := dump.Close(); err != nil {
				t.Fatal(err)
			}

			f, err := OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			var back []Packet
			if _, err := collectAll(f, &back); err != io.EOF {
				t.Fatal(err)
			}
			if len(back) != len(live) || f.Stats().Records != src.Stats().Records {
				t.Fatalf("read back %d packets (%d records), captured %d (%d records)", len(back), f.Stats().Records, len(live), src.Stats().Records)
			}
			for i := range live {
				a, b := live[i], back[i]
				if a.TS != b.TS || a.Seq != b.Seq || a.SrcPort != b.SrcPort || !bytes.Equal(a.Payload, b.Payload) || a.WireLen != b.WireLen {
					t.Fatalf("packet %d differs: captured %+v, read back %+v", i, a, b)
				}
			}
			if tshark, err := exec.LookPath("tshark"); err == nil {
				out, err := exec.Command(tshark, "-n", "-r", path, "-T", "fields", "-e", "frame.number").Output()
				if err != nil {
					t.Fatalf("tshark: %v", err)
				}
				if got := strings.Count(string(out), "\n"); got != len(live) {
					t.Errorf("tshark reads %d frames, captured %d", got, len(live))
				}
			}
		})
	}
}

// keeper keeps a copy of every packet a Source hands out.
type keeper struct {
	Source
	pkts *[]Packet
}

func (r keeper) Next(p *Packet) error {
	err := r.Source.Next(p)
	if err == nil {
		c := *p
		c.Payload = append([]byte(nil), p.Payload...)
		*r.pkts = append(*r.pkts, c)
	}
	return err
}

func collectAll(src Source, out *[]Packet) (int, error) {
	r := keeper{src, out}
	var p Packet
	for {
		if err := r.Next(&p); err != nil {
			return len(*out), err
		}
	}
}

// TestLiveDropsCounted fills a small ring while nobody reads it: the
// kernel drops what does not fit, and Stats reports the drops, adding up
// the kernel's counter across reads (each read resets it).
func TestLiveDropsCounted(t *testing.T) {
	ln, port := listen(t, "tcp4", "127.0.0.1:0")
	src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, RingMB: 1})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }()
		}
	}()
	// Small writes, one segment each: several thousand packets, far more
	// than one 1 MiB block holds.
	blast := func() {
		c, err := net.Dial("tcp4", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		b := make([]byte, 1000)
		for i := 0; i < 5000; i++ {
			if _, err := c.Write(b); err != nil {
				t.Fatal(err)
			}
		}
	}
	blast()
	time.Sleep(2 * blockTimeout(DefaultTimeout))
	first := src.Stats().Dropped
	if first == 0 {
		t.Fatalf("no drops counted: %+v", src.Stats())
	}
	if again := src.Stats().Dropped; again != first {
		t.Errorf("drops went from %d to %d with no traffic", first, again)
	}
	blast()
	time.Sleep(2 * blockTimeout(DefaultTimeout))
	second := src.Stats().Dropped
	if second <= first {
		t.Errorf("drops went from %d to %d after more traffic into the full ring", first, second)
	}
	t.Logf("drops: %d, then %d", first, second)
	// What the ring held is still there to read.
	var p Packet
	if err := src.Next(&p); err != nil {
		t.Errorf("reading the full ring: %v", err)
	}
	src.Close()
	if st := src.Stats(); st.Dropped == 0 {
		t.Errorf("drops forgotten at Close: %+v", st)
	}
}

// TestLiveNoAllocs reads packets already waiting in the ring, with a dump
// being written, and counts allocations.
func TestLiveNoAllocs(t *testing.T) {
	ln, port := listen(t, "tcp4", "127.0.0.1:0")
	src := openLive(t, LiveConfig{Interface: "lo", Ports: []uint16{port}, Dump: io.Discard})
	var p Packet
	src.Next(&p) // the dump header
	runPingPong(t, ln, 400, 100)
	time.Sleep(2 * blockTimeout(DefaultTimeout)) // every block handed over
	allocs := testing.AllocsPerRun(500, func() {
		if err := src.Next(&p); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("%.2f allocations per packet", allocs)
	}
}

func TestLiveConfigErrors(t *testing.T) {
	cases := []struct {
		name string
		cfg  LiveConfig
		msg  string
	}{
		{"no interface", LiveConfig{}, "no interface"},
		{"no such interface", LiveConfig{Interface: "nosuch0"}, "nosuch0"},
		{"snaplen too long", LiveConfig{Interface: "lo", Snaplen: MaxRecordLen + 1}, "snap length"},
		{"ring too small", LiveConfig{Interface: "lo", RingMB: -1}, "ring size"},
		{"timeout below poll's resolution", LiveConfig{Interface: "lo", Timeout: time.Microsecond}, "timeout"},
		{"dump format", LiveConfig{Interface: "lo", DumpFormat: "erf"}, "dump format"},
		{"invalid host", LiveConfig{Interface: "lo", Hosts: []netip.Addr{{}}}, "host"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src, err := OpenLive(c.cfg)
			if err == nil {
				src.Close()
				t.Fatal("opened")
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("error %q does not mention %q", err, c.msg)
			}
		})
	}
}

// The privilege tests run the test binary again as a child process, so
// that what they change (the process's user) does not leak into the other
// tests. The child's part is selected by an environment variable.
const childEnv = "CQLSNIFF_LIVE_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "unprivileged":
		os.Exit(childUnprivileged())
	case "drop":
		os.Exit(childDrop())
	}
	os.Exit(3)
}

// childUnprivileged opens a capture as a user without privileges.
func childUnprivileged() int {
	_, err := OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{9042}})
	if err == nil {
		fmt.Println("opened without privilege")
		return 1
	}
	if !errors.Is(err, syscall.EPERM) {
		fmt.Printf("error does not wrap EPERM: %v\n", err)
		return 1
	}
	fmt.Printf("%v\n%s\n", err, PermissionHint(err))
	return 0
}

// childDrop opens a capture as root under (pretended) sudo, drops to the
// sudo user, then creates the dump, captures an exchange and checks it
// cannot become root again.
func childDrop() int {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return 1
	}
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	path := os.Getenv("CQLSNIFF_DUMP")
	dump := NewDumpFile(path)
	src, err := OpenLive(LiveConfig{Interface: "lo", Ports: []uint16{port}, Dump: dump})
	if err != nil {
		fmt.Println(err)
		return 1
	}
	if err := DropPrivileges(""); err != nil {
		fmt.Println(err)
		return 1
	}
	if os.Geteuid() == 0 || syscall.Setuid(0) == nil {
		fmt.Println("still root after DropPrivileges")
		return 1
	}
	if groups, err := os.Getgroups(); err != nil || slices.Contains(groups, 0) || os.Getegid() == 0 {
		fmt.Printf("still in group 0: egid %d, groups %v (%v)\n", os.Getegid(), groups, err)
		return 1
	}
	go func() {
		c, err := ln.Accept()
		if err == nil {
			io.Copy(io.Discard, c)
			c.Close()
		}
	}()
	c, err := net.Dial("tcp4", ln.Addr().String())
	if err != nil {
		fmt.Println(err)
		return 1
	}
	c.Write([]byte("after the drop"))
	c.Close()
	var p Packet
	got := 0
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && got == 0; {
		if err := src.Next(&p); err == nil && len(p.Payload) > 0 {
			got++
		}
	}
	// The kernel's counters are still readable without privilege.
	if _, _, err := src.tp.SocketStats(); err != nil {
		fmt.Printf("kernel statistics after dropping privileges: %v\n", err)
		return 1
	}
	src.Close()
	dump.Close()
	if got == 0 {
		fmt.Println("no data packet captured after dropping privileges")
		return 1
	}
	fmt.Printf("uid %d\n", os.Geteuid())
	return 0
}

// runChild runs this test binary as a child doing part, with the given
// credentials (nil: as this process).
func runChild(t *testing.T, part string, cred *syscall.Credential, env ...string) string {
	t.Helper()
	// The build directory of go test is private to root: the child
	// runs from a copy anyone may execute.
	dir, err := os.MkdirTemp("", "cqlsniff-live")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o777)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "live.test")
	data, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin)
	cmd.Env = append(append(os.Environ(), childEnv+"="+part), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child %s: %v\n%s", part, err, out)
	}
	return string(out)
}

const nobody = 65534

func TestLiveWithoutPrivilege(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to start a child as another user")
	}
	openLive(t, LiveConfig{Interface: "lo"}).Close() // skips where live capture is unavailable anyway
	out := runChild(t, "unprivileged", &syscall.Credential{Uid: nobody, Gid: nobody})
	if !strings.Contains(out, "operation not permitted") || !strings.Contains(out, "setcap") {
		t.Errorf("child said:\n%s", out)
	}
}

func TestLiveDropPrivileges(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root")
	}
	openLive(t, LiveConfig{Interface: "lo"}).Close()
	dir, err := os.MkdirTemp("", "cqlsniff-dump")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o777)
	path := filepath.Join(dir, "dropped.pcap")
	out := runChild(t, "drop", nil, "SUDO_UID="+strconv.Itoa(nobody), "SUDO_GID="+strconv.Itoa(nobody), "CQLSNIFF_DUMP="+path)
	if !strings.Contains(out, fmt.Sprintf("uid %d", nobody)) {
		t.Errorf("child said:\n%s", out)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); st.Uid != nobody || st.Gid != nobody {
		t.Errorf("dump file owned by %d:%d, want the sudo user %d:%d", st.Uid, st.Gid, nobody, nobody)
	}
	f, err := OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var pkts []Packet
	collectAll(f, &pkts)
	if len(pkts) == 0 {
		t.Error("the dump holds no packet")
	}
}
