package main

import (
	"context"
	"encoding/json"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/syscalls"
)

// kernelCounts reads the client's per-connection syscall counts that the
// lab recorded with bpftrace beside each capture (pcaps/*.json).
func kernelCounts(t *testing.T, pcap string) map[syscalls.Key]syscalls.Counts {
	t.Helper()
	b, err := os.ReadFile(strings.TrimSuffix(pcap, ".pcap") + ".json")
	if err != nil {
		t.Fatal(err)
	}
	var side struct {
		ClientPID uint32 `json:"client_pid"`
		Kernel    struct {
			PerLocalPort map[string]struct {
				SendCalls uint64 `json:"send_calls"`
				SendBytes uint64 `json:"send_bytes"`
				RecvCalls uint64 `json:"recv_calls"`
				RecvBytes uint64 `json:"recv_bytes"`
			} `json:"per_local_port"`
		} `json:"kernel"`
	}
	if err := json.Unmarshal(b, &side); err != nil {
		t.Fatal(err)
	}
	lo := netip.MustParseAddr("127.0.0.1").As16()
	lo[10], lo[11] = 0xff, 0xff
	m := map[syscalls.Key]syscalls.Counts{}
	for port, c := range side.Kernel.PerLocalPort {
		n, _ := strconv.Atoi(port)
		k := syscalls.Key{Local: capture.Endpoint{IP: lo, Port: uint16(n)}, Remote: capture.Endpoint{IP: lo, Port: 9042}}
		m[k] = syscalls.Counts{Sends: c.SendCalls, Recvs: c.RecvCalls, SendBytes: c.SendBytes, RecvBytes: c.RecvBytes, PID: side.ClientPID, Comm: "client"}
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
			path := filepath.Join("..", "..", "pcaps", c.file+".pcap")
			src, err := capture.OpenFile(path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
			counts := kernelCounts(t, path)
			p.BeforeReport = func() { p.An.SetSyscalls(counts) }
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
