package analyze_test

import (
	"context"
	"math"
	"path/filepath"
	"slices"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/labcounts"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// kernelCounts reads the client's per-connection syscall counts that the
// lab recorded with bpftrace beside each capture (pcaps/*.json).
func kernelCounts(t *testing.T, pcap string) map[analyze.SocketKey]analyze.SocketCounts {
	t.Helper()
	m, err := labcounts.Read(pcap)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestExactDiagnoses joins the kernel's real counts of the lab's clients to
// their captures: the unbuffered verdict then rests on send calls per
// frame, Nagle no longer hides an unbuffered client, and a client that
// reads header and body apart (scylla 0.3.0) is found.
func TestExactDiagnoses(t *testing.T) {
	cases := []struct {
		file         string
		writes, read bool
		mechanism    string
	}{
		{"gocql-1.7.0-v4-unbuffered-c64", true, false, "autocorking"}, // 1.00 frames per send, 1.17 per segment
		{"gocql-1.7.0-v4-coalesced-c64", false, false, ""},
		{"cassandra-gocql-driver-2.1.2-v5-unbuffered-c64", true, false, "autocorking"}, // 1.00 per send, 1.10 per segment
		{"cassandra-gocql-driver-2.1.2-v5-coalesced-c64", false, false, ""},
		{"python-3.30.1-v5-nagle-c32", true, false, "nagle"},
		{"python-3.30.1-v5-nodelay-c1", false, false, ""},
		{"nodejs-4.10.0-default-c64", false, false, ""},
		{"scylla-rust-0.3.0-v4-c64", true, true, "autocorking"},
		{"scylla-rust-0.3.1-v4-c64", true, false, "autocorking"}, // 1.23 per send, 1.56 per segment; reads buffered
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			path := filepath.Join("..", "pcaps", c.file+".pcap")
			src, err := capture.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
			counts := kernelCounts(t, path)
			p.SetHost(analyze.SyscallCounts(counts))
			if err := p.Run(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			p.Finish()
			rep := p.Report(c.file)
			for _, cr := range rep.Connections {
				if cr.Requests < 100 {
					continue
				}
				if cr.ClientSyscalls == nil || cr.ClientSyscalls.FramesPerSend == nil {
					t.Fatalf("%s: no syscall figures joined", cr.Client)
				}
				if cr.ClientSyscalls.Partial {
					t.Errorf("%s: the kernel's bytes (%d sent, %d received) and the wire's (%d, %d) disagree",
						cr.Client, cr.ClientSyscalls.SendBytes, cr.ClientSyscalls.RecvBytes, cr.ClientSegments.Bytes, cr.ServerSegments.Bytes)
				}
				var writes, read bool
				var mech string
				for _, d := range cr.DiagnosisCodes {
					writes = writes || d == analyze.CodeClientUnbuffered
					read = read || d == analyze.CodeClientUnbufferedReads
				}
				for _, d := range rep.Diagnoses {
					if d.Client == cr.Client && d.Code == analyze.CodeClientUnbuffered {
						mech = d.Mechanism
					}
				}
				if writes != c.writes || read != c.read || (c.writes && mech != c.mechanism) {
					t.Errorf("%s: unbuffered writes %v (%q), reads %v; want %v (%q), %v — %.2f frames/send, %.2f recvs/frame, in flight %.1f",
						cr.Client, writes, mech, read, c.writes, c.mechanism, c.read, *cr.ClientSyscalls.FramesPerSend,
						*cr.ClientSyscalls.RecvsPerFrame, cr.InFlight.Mean)
				}
			}
		})
	}
}

// TestPartialSyscalls: when the kernel counted more traffic than the capture
// saw (kernel drops, a capture stopped while the client went on), the counts
// are marked partial, the ratios scaled by bytes, and no diagnosis rests on
// them: a coalescing client is not called unbuffered because the wire lost
// half its frames.
func TestPartialSyscalls(t *testing.T) {
	path := filepath.Join("..", "pcaps", "gocql-1.7.0-v4-coalesced-c64.pcap")
	run := func(counts map[analyze.SocketKey]analyze.SocketCounts) *analyze.ConnReport {
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
		p.SetHost(analyze.SyscallCounts(counts))
		if err := p.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		p.Finish()
		for _, cr := range p.Report("x").Connections {
			if cr.Requests >= 1000 {
				return cr
			}
		}
		t.Fatal("no busy connection")
		return nil
	}
	counts := kernelCounts(t, path)
	exact := run(counts)
	// Three times the traffic in the kernel's counters: calls and bytes alike.
	for k, c := range counts {
		c.Sends, c.SendBytes, c.Recvs, c.RecvBytes = 3*c.Sends, 3*c.SendBytes, 3*c.Recvs, 3*c.RecvBytes
		counts[k] = c
	}
	partial := run(counts)
	e, p := exact.ClientSyscalls, partial.ClientSyscalls
	if e.Partial || !p.Partial {
		t.Fatalf("partial: exact run %v, tripled run %v", e.Partial, p.Partial)
	}
	if math.Abs(*p.FramesPerSend-*e.FramesPerSend) > 0.02**e.FramesPerSend || math.Abs(*p.RecvsPerFrame-*e.RecvsPerFrame) > 0.02**e.RecvsPerFrame+0.01 {
		t.Errorf("scaled ratios %.2f frames/send, %.2f recvs/frame; the exact ones %.2f, %.2f",
			*p.FramesPerSend, *p.RecvsPerFrame, *e.FramesPerSend, *e.RecvsPerFrame)
	}
	// Now the kernel saw every send but the capture only one in 25 of the
	// client's frames (as with heavy drops): the raw ratio, ~0.8 frames per
	// send, would call a 20-frames-per-write client unbuffered.
	counts = kernelCounts(t, path)
	for k, c := range counts {
		c.Sends, c.SendBytes = 25*c.Sends, 25*c.SendBytes
		counts[k] = c
	}
	dropped := run(counts)
	if !dropped.ClientSyscalls.Partial || slices.Contains(dropped.DiagnosisCodes, analyze.CodeClientUnbuffered) {
		t.Errorf("wire lost frames: partial %v, diagnoses %v", dropped.ClientSyscalls.Partial, dropped.DiagnosisCodes)
	}
}

// TestTLSSyscalls joins the kernel's counts to a TLS capture of the lab:
// they cover the ciphertext, so the comparison of bytes uses the records'
// TCP bytes, not the plaintext. Decrypted, the verdict rests on the send
// calls per frame; without the key log, the records' evidence stands next
// to the counts.
func TestTLSSyscalls(t *testing.T) {
	path := filepath.Join("..", "pcaps", "gocql-1.7.0-v4-tls13-c64.pcap.gz")
	for _, withKeys := range []bool{true, false} {
		cfg := analyze.DefaultConfig()
		if withKeys {
			kl := tlsdecrypt.NewKeyLog(0)
			if err := kl.Load(filepath.Join("..", "pcaps", "gocql-1.7.0-v4-tls13-c64.keys")); err != nil {
				t.Fatal(err)
			}
			cfg.KeyLog = kl
		}
		src, err := capture.OpenFile(path)
		if err != nil {
			t.Fatal(err)
		}
		p := analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
		counts := kernelCounts(t, path)
		p.SetHost(analyze.SyscallCounts(counts))
		if err := p.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		p.Finish()
		rep := p.Report("tls")
		src.Close()
		var busy *analyze.ConnReport
		for _, c := range rep.Connections {
			if busy == nil || c.ClientSegments.TLS.Records > busy.ClientSegments.TLS.Records {
				busy = c
			}
		}
		s := busy.ClientSyscalls
		if s == nil || s.Partial {
			t.Fatalf("keys %v: kernel counts %+v (partial: the wire's bytes and the kernel's disagree)", withKeys, s)
		}
		flagged := false
		for _, d := range busy.DiagnosisCodes {
			flagged = flagged || d == analyze.CodeClientUnbuffered
		}
		if !flagged {
			t.Errorf("keys %v: diagnoses %v, want %s (%d sends)", withKeys, busy.DiagnosisCodes, analyze.CodeClientUnbuffered, s.Sends)
		}
		if withKeys && (s.FramesPerSend == nil || *s.FramesPerSend > 1.01) {
			t.Errorf("frames per send %v, the kernel counted %d sends for %d frames", s.FramesPerSend, s.Sends, busy.ClientSegments.Frames)
		}
	}
}
