// Command soakload is the traffic of scripts/soak.sh: a fake CQL server on
// loopback and, for a bounded time, clients that come and go (short
// connections from many loopback addresses, each a STARTUP and a few
// QUERYs) plus one long-lived connection that keeps several requests in
// flight. It exists to make cqlsniff see connection churn, not to model a
// real driver; the frames are the minimum a CQL v4 analyzer needs.
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:19042", "the fake server's `ADDR` (loopback only)")
	duration := flag.Duration("duration", time.Minute, "how long the clients run")
	churn := flag.Int("churn", 100, "short connections opened per second")
	clients := flag.Int("clients", 1000, "loopback source addresses the short connections come from (127.1.x.y)")
	statements := flag.Int("statements", 200, "distinct statement texts")
	busyRate := flag.Int("busy-rate", 1000, "requests per second on the long-lived connection")
	busyInFlight := flag.Int("busy-inflight", 8, "requests the long-lived connection keeps in flight")
	statsEvery := flag.Duration("stats", 10*time.Second, "print counts this often (stderr)")
	flag.Parse()

	if ip := net.ParseIP(hostOf(*addr)); ip == nil || !ip.IsLoopback() {
		fmt.Fprintf(os.Stderr, "soakload: %s is not a loopback address\n", *addr)
		os.Exit(2)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "soakload:", err)
		os.Exit(1)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, *duration)
	defer cancel()

	var st stats
	go serve(ctx, ln)
	var wg sync.WaitGroup
	wg.Go(func() { busy(ctx, *addr, *busyRate, *busyInFlight, &st) })
	wg.Go(func() { churnLoop(ctx, *addr, *churn, *clients, *statements, &st) })
	tick := time.NewTicker(*statsEvery)
	defer tick.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-tick.C:
		}
		fmt.Fprintf(os.Stderr, "soakload: %s short connections %d (failed %d), requests %d, busy requests %d\n",
			time.Now().Format("15:04:05"), st.conns.Load(), st.failed.Load(), st.requests.Load(), st.busy.Load())
	}
	ln.Close()
	wg.Wait()
}

type stats struct {
	conns, failed, requests, busy atomic.Int64
}

func hostOf(addr string) string {
	h, _, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	return h
}

// frame builds a v4 frame: version, flags 0, stream, opcode, length, body.
func frame(version byte, stream uint16, opcode byte, body []byte) []byte {
	b := []byte{version, 0}
	b = binary.BigEndian.AppendUint16(b, stream)
	b = append(b, opcode)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// readFrame reads one frame's stream, opcode and body (at most 1 MiB).
func readFrame(r io.Reader, buf []byte) (stream uint16, opcode byte, body []byte, err error) {
	var h [9]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	n := binary.BigEndian.Uint32(h[5:])
	if n > 1<<20 {
		return 0, 0, nil, fmt.Errorf("frame of %d bytes", n)
	}
	body = append(buf[:0], make([]byte, n)...)
	_, err = io.ReadFull(r, body)
	return binary.BigEndian.Uint16(h[2:]), h[4], body, err
}

func startup(driver string) []byte {
	opts := binary.BigEndian.AppendUint16(nil, 3)
	for _, kv := range [][2]string{{"CQL_VERSION", "3.0.0"}, {"DRIVER_NAME", driver}, {"DRIVER_VERSION", "1.0"}} {
		for _, s := range kv {
			opts = binary.BigEndian.AppendUint16(opts, uint16(len(s)))
			opts = append(opts, s...)
		}
	}
	return frame(0x04, 0, 0x01, opts)
}

// query is a QUERY body: [long string] text, consistency ONE, flags 0.
func query(text string) []byte {
	q := binary.BigEndian.AppendUint32(nil, uint32(len(text)))
	q = append(q, text...)
	return append(q, 0x00, 0x01, 0x00)
}

// serve answers STARTUP with READY and anything else with a Void RESULT,
// in order, on each connection until ctx ends.
func serve(ctx context.Context, ln net.Listener) {
	var conns sync.Map
	context.AfterFunc(ctx, func() {
		conns.Range(func(k, _ any) bool { k.(net.Conn).Close(); return true })
	})
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		conns.Store(c, nil)
		go func() {
			defer conns.Delete(c)
			defer c.Close()
			var buf []byte
			for {
				stream, op, body, err := readFrame(c, buf)
				if err != nil {
					return
				}
				buf = body
				resp := frame(0x84, stream, 0x08, []byte{0, 0, 0, 1}) // RESULT Void
				if op == 0x01 {
					resp = frame(0x84, stream, 0x02, nil) // READY
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}

// churnLoop opens rate short connections a second, each from one of
// clients loopback addresses, until ctx ends.
func churnLoop(ctx context.Context, addr string, rate, clients, statements int, st *stats) {
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	var wg sync.WaitGroup
	defer wg.Wait()
	sem := make(chan struct{}, 64) // bounded concurrency
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		select {
		case sem <- struct{}{}:
		default:
			st.failed.Add(1) // the server or the box is too slow: skip
			continue
		}
		n := rand.IntN(clients)
		src := &net.TCPAddr{IP: net.IPv4(127, 1, byte(n>>8), byte(n))}
		wg.Go(func() {
			defer func() { <-sem }()
			if err := short(ctx, addr, src, statements, st); err != nil {
				st.failed.Add(1)
				return
			}
			st.conns.Add(1)
		})
	}
}

// short is one short connection: STARTUP, one to five QUERYs one at a
// time, close.
func short(ctx context.Context, addr string, src *net.TCPAddr, statements int, st *stats) error {
	d := net.Dialer{LocalAddr: src, Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write(startup("soak-churn")); err != nil {
		return err
	}
	var buf []byte
	if _, _, buf, err = readFrame(c, buf); err != nil {
		return err
	}
	for i := range 1 + rand.IntN(5) {
		text := fmt.Sprintf("SELECT v FROM ks.t%d WHERE k = ?", rand.IntN(statements))
		if _, err := c.Write(frame(0x04, uint16(i+1), 0x07, query(text))); err != nil {
			return err
		}
		if _, _, buf, err = readFrame(c, buf); err != nil {
			return err
		}
		st.requests.Add(1)
	}
	return nil
}

// busy keeps one connection open with inflight requests outstanding,
// paced to rate a second, until ctx ends; it reconnects if it is cut.
func busy(ctx context.Context, addr string, rate, inflight int, st *stats) {
	for ctx.Err() == nil {
		c, err := (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, "tcp", addr)
		if err != nil {
			time.Sleep(time.Second)
			continue
		}
		busyConn(ctx, c, rate, inflight, st)
		c.Close()
	}
}

func busyConn(ctx context.Context, c net.Conn, rate, inflight int, st *stats) {
	stop := context.AfterFunc(ctx, func() { c.Close() })
	defer stop()
	if _, err := c.Write(startup("soak-busy")); err != nil {
		return
	}
	if _, _, _, err := readFrame(c, nil); err != nil {
		return
	}
	slots := make(chan uint16, inflight)
	for i := range inflight {
		slots <- uint16(i + 1)
	}
	// The reader gives each answered stream back.
	go func() {
		var buf []byte
		for {
			stream, _, body, err := readFrame(c, buf)
			if err != nil {
				return
			}
			buf = body
			st.busy.Add(1)
			slots <- stream
		}
	}()
	q := query("UPDATE ks.counters SET n = n + 1 WHERE k = ?")
	tick := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		var s uint16
		select {
		case s = <-slots:
		case <-ctx.Done():
			return
		}
		if _, err := c.Write(frame(0x04, s, 0x07, q)); err != nil {
			return
		}
	}
}
