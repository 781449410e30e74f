package sockcount

import (
	"io"
	"net"
	"testing"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"
)

// benchWrites measures one 64-byte write(2) on a loopback TCP connection to a CQL port, with a
// reader draining the other end. With traced, the counting programs see every call on both ends,
// and the kernel's statistics give their own time per run.
func benchWrites(b *testing.B, traced bool) {
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	var tr *Tracer
	if traced {
		stats, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Skip(err)
		}
		defer stats.Close()
		if tr, err = Open(Config{Ports: []uint16{port}}); err != nil {
			b.Skip(Explain(err))
		}
		defer tr.Close()
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
		b.Fatal(err)
	}
	msg := queryFrame(0, 55)
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(msg); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	c.Close()
	if tr != nil {
		t, runs, err := tr.programTime()
		if err == nil && runs > 0 {
			b.ReportMetric(float64(t.Nanoseconds())/float64(runs), "ns/prog-run")
		}
	}
}

func BenchmarkWriteUntraced(b *testing.B) { benchWrites(b, false) }
func BenchmarkWriteTraced(b *testing.B)   { benchWrites(b, true) }

// BenchmarkWriteTracedSyscalls is BenchmarkWriteTraced with the fallback of kernels before 6.3.
func BenchmarkWriteTracedSyscalls(b *testing.B) {
	if !tracefsMounted() {
		b.Skip("tracefs is not mounted")
	}
	forceSyscallTracepoints = true
	defer func() { forceSyscallTracepoints = false }()
	benchWrites(b, true)
}

// BenchmarkRead reads a map of 10000 connections, as a UI refresh would late in a long session.
func BenchmarkRead(b *testing.B) {
	for _, batch := range []bool{true, false} {
		name := "batch"
		if !batch {
			name = "iterate"
		}
		b.Run(name, func(b *testing.B) {
			tr, err := Open(Config{Ports: []uint16{1}})
			if err != nil {
				b.Skip(Explain(err))
			}
			defer tr.Close()
			tr.noBatch = !batch
			for i := range 10000 {
				k := countersConnKey{LocalPort: uint16(i), RemotePort: 9042, Sk: uint64(i)}
				v := countersConnCounts{Sends: uint64(i), Pid: 1}
				copy(v.Comm[:], []int8{'j', 'a', 'v', 'a'})
				if err := tr.conns.Put(&k, &v); err != nil {
					b.Fatal(err)
				}
			}
			into := make(map[Key]Counts)
			b.ReportAllocs()
			for b.Loop() {
				if err := tr.Read(into); err != nil {
					b.Fatal(err)
				}
			}
			if len(into) != 10000 {
				b.Fatalf("read %d connections, want 10000", len(into))
			}
		})
	}
}
