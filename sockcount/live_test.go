//go:build linux

package sockcount

import (
	"encoding/binary"
	"errors"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
)

// openOrSkip opens a Tracer on ports, skipping the test where counting cannot work: not root, or a
// kernel without what the programs need. Any other failure fails the test.
func openOrSkip(t *testing.T, ports ...uint16) *Tracer {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	tr, err := Open(Config{Ports: ports})
	switch {
	case errors.Is(err, ErrPermission), errors.Is(err, ErrNoBTF), errors.Is(err, ErrNoTracefs),
		errors.Is(err, ErrNoTracepoints), errors.Is(err, ErrUnsupportedOS):
		t.Skip(Explain(err))
	case err != nil:
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := tr.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return tr
}

// queryFrame returns a v4 QUERY request on stream id with a body of about bodyLen bytes:
//
//	04 00 SS SS 07 LL LL LL LL   version 4 request, flags 0, stream, opcode QUERY, body length
//	QQ QQ QQ QQ "SELECT ..."     [long string] query
//	00 01 00                     consistency ONE, no query flags
func queryFrame(stream uint16, bodyLen int) []byte {
	q := "SELECT v FROM kv WHERE k = 1" + strings.Repeat(" ", max(0, bodyLen-4-28-3))
	f := []byte{0x04, 0x00, 0, 0, 0x07, 0, 0, 0, 0}
	binary.BigEndian.PutUint16(f[2:], stream)
	f = binary.BigEndian.AppendUint32(f, uint32(len(q)))
	f = append(f, q...)
	f = append(f, 0x00, 0x01, 0x00)
	binary.BigEndian.PutUint32(f[5:], uint32(len(f)-9))
	return f
}

// voidResult is a v4 RESULT Void response on stream id:
//
//	84 00 SS SS 08 00 00 00 04   version 4 response, flags 0, stream, opcode RESULT, body length 4
//	00 00 00 01                  kind Void
func voidResult(stream uint16) []byte {
	f := []byte{0x84, 0x00, 0, 0, 0x08, 0, 0, 0, 4, 0, 0, 0, 1}
	binary.BigEndian.PutUint16(f[2:], stream)
	return f
}

// exchange is the traffic of one run of the live test, and what the kernel must have counted.
type exchange struct {
	client, server Counts
	clientEnd      capture.Endpoint
}

// runExchange connects a client to ln and sends CQL requests in three write patterns; the server
// reads every frame with two reads (its 9-byte header, then its body) and answers each pattern with
// one write of all its responses, which the client reads with one read. Every call is checked to
// have moved exactly the bytes asked for, so the expected counts are exact.
func runExchange(t *testing.T, ln net.Listener) exchange {
	t.Helper()
	const (
		single  = 100 // pattern 1: one frame per write
		batches = 10  // pattern 2: 16 frames per write
		perB    = 16
		split   = 50 // pattern 3: header and body in two writes
	)
	var ex exchange
	patterns := []int{single, batches * perB, split}

	serverErr := make(chan error, 1)
	go func() {
		serverErr <- func() error {
			c, err := ln.Accept()
			if err != nil {
				return err
			}
			defer c.Close()
			buf := make([]byte, 64<<10)
			stream := uint16(0)
			for _, frames := range patterns {
				var resp []byte
				for range frames {
					n, err := c.Read(buf[:9])
					if err != nil || n != 9 {
						return errors.Join(err, errors.New("short header read"))
					}
					body := int(binary.BigEndian.Uint32(buf[5:9]))
					n, err = c.Read(buf[:body])
					if err != nil || n != body {
						return errors.Join(err, errors.New("short body read"))
					}
					ex.server.Recvs += 2
					ex.server.RecvBytes += uint64(9 + body)
					resp = append(resp, voidResult(stream)...)
					stream++
				}
				if _, err := c.Write(resp); err != nil {
					return err
				}
				ex.server.Sends++
				ex.server.SendBytes += uint64(len(resp))
			}
			return nil
		}()
	}()

	c, err := net.Dial(ln.Addr().Network(), ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ex.clientEnd = endpointOf(c.LocalAddr())
	write := func(b []byte) {
		t.Helper()
		if n, err := c.Write(b); err != nil || n != len(b) {
			t.Fatalf("client write: %d of %d bytes, %v", n, len(b), err)
		}
		ex.client.Sends++
		ex.client.SendBytes += uint64(len(b))
	}
	readAnswers := func(frames int) {
		t.Helper()
		want := frames * len(voidResult(0))
		buf := make([]byte, want+1)
		n, err := c.Read(buf)
		if err != nil || n != want {
			t.Fatalf("client read: %d of %d bytes, %v", n, want, err)
		}
		ex.client.Recvs++
		ex.client.RecvBytes += uint64(n)
	}

	stream := uint16(0)
	for range single {
		write(queryFrame(stream, 40))
		stream++
	}
	readAnswers(single)
	for range batches {
		var b []byte
		for range perB {
			b = append(b, queryFrame(stream, 60)...)
			stream++
		}
		write(b)
	}
	readAnswers(batches * perB)
	for range split {
		f := queryFrame(stream, 200)
		write(f[:9])
		write(f[9:])
		stream++
	}
	readAnswers(split)

	if err := <-serverErr; err != nil {
		t.Fatalf("server: %v", err)
	}
	// The same figures by hand: 100 + 10 + 2×50 writes, 2 × (100 + 160 + 50) reads, one answer
	// per pattern each way.
	if ex.client.Sends != 210 || ex.client.Recvs != 3 || ex.server.Sends != 3 || ex.server.Recvs != 620 {
		t.Fatalf("the exchange made other calls than planned: %+v", ex)
	}
	return ex
}

func endpointOf(a net.Addr) capture.Endpoint {
	ap := a.(*net.TCPAddr).AddrPort()
	return capture.Endpoint{IP: ap.Addr().As16(), Port: ap.Port()}
}

func processComm(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/comm")
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSuffix(string(b), "\n")
}

// checkExchange runs the exchange over a listener on addr and compares the tracer's counts for both
// ends with the exact figures.
func checkExchange(t *testing.T, network, addr string) {
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s listener: %v", network, err)
	}
	defer ln.Close()
	serverEnd := endpointOf(ln.Addr())
	tr := openOrSkip(t, serverEnd.Port)
	t.Logf("counting from the %s", tr.Source())

	// Traffic on another port must not be counted.
	other, err := net.Listen(network, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	go func() {
		c, err := other.Accept()
		if err == nil {
			c.Write([]byte("not CQL"))
			c.Close()
		}
	}()
	if c, err := net.Dial(network, other.Addr().String()); err == nil {
		c.Write([]byte("hello"))
		c.Read(make([]byte, 16))
		c.Close()
	}

	ex := runExchange(t, ln)
	got := make(map[Key]Counts)
	if err := tr.Read(got); err != nil {
		t.Fatalf("Read: %v", err)
	}
	pid, comm := uint32(os.Getpid()), processComm(t)
	ex.client.PID, ex.client.Comm = pid, comm
	ex.server.PID, ex.server.Comm = pid, comm

	clientKey := Key{Local: ex.clientEnd, Remote: serverEnd}
	serverKey := Key{Local: serverEnd, Remote: ex.clientEnd}
	for _, c := range []struct {
		name string
		key  Key
		want Counts
	}{{"client", clientKey, ex.client}, {"server", serverKey, ex.server}} {
		if g := got[c.key]; g != c.want {
			t.Errorf("%s %v → %v:\n got %+v\nwant %+v", c.name, c.key.Local, c.key.Remote, g, c.want)
		} else {
			t.Logf("%s %v → %v: %+v", c.name, c.key.Local, c.key.Remote, g)
		}
	}
	mine := 0
	for _, c := range got {
		if c.PID == pid {
			mine++
		}
	}
	if mine != 2 {
		t.Errorf("Read returned %d connections of this process, want the client's and the server's ends only: %v", mine, got)
	}
	if clientKey.Flow() != serverKey.Flow() {
		t.Errorf("the two ends give two flow keys: %v, %v", clientKey.Flow(), serverKey.Flow())
	}
}

func TestLiveExactCountsIPv4(t *testing.T) { checkExchange(t, "tcp4", "127.0.0.1:0") }

func TestLiveExactCountsIPv6(t *testing.T) { checkExchange(t, "tcp6", "[::1]:0") }

// TestLiveSyscallTracepoints forces the fallback of kernels older than 6.3 and expects the same
// exact counts from it.
func TestLiveSyscallTracepoints(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to load eBPF programs")
	}
	if !tracefsMounted() {
		if err := exec.Command("mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing").Run(); err != nil {
			t.Skipf("tracefs not mounted and mounting it failed: %v", err)
		}
	}
	forceSyscallTracepoints = true
	defer func() { forceSyscallTracepoints = false }()
	t.Run("IPv4", func(t *testing.T) { checkExchange(t, "tcp4", "127.0.0.1:0") })
	t.Run("IPv6", func(t *testing.T) { checkExchange(t, "tcp6", "[::1]:0") })
}
