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
