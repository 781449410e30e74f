//go:build linux

package capture

import (
	"io"
	"net"
	"testing"
	"time"
)

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
