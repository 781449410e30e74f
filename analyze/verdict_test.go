package analyze

import (
	"path/filepath"
	"testing"
)

// TestVerdicts checks the batching diagnoses on the real-driver captures in
// pcaps/ (made by lab/, with the kernel's count of the client's send calls
// in each capture's .json sidecar). Only connections that carried real
// traffic (over 100 requests) are judged; the drivers' control connections
// send a handful of requests at start-up.
func TestVerdicts(t *testing.T) {
	const (
		none       = ""
		unbuffered = CodeClientUnbuffered
		nagle      = CodeClientNagle
	)
	cases := []struct {
		file string
		want string // the diagnosis of every busy connection
	}{
		{"gocql-1.7.0-v4-unbuffered-c64", unbuffered},
		{"gocql-1.7.0-v4-unbuffered-lz4-c64", unbuffered},
		{"gocql-1.7.0-v4-unbuffered-c64-20conns", unbuffered},
		{"gocql-1.7.0-v4-coalesced-c64", none},
		{"gocql-1.7.0-v4-lz4-coalesced-c64", none},
		{"gocql-1.7.0-v4-snappy-coalesced-c64", none},
		{"gocql-1.7.0-v4-coalesced-c64-20conns", none},
		{"gocql-1.7.0-v4-c1", none},
		// cassandra-gocql-driver v2 on protocol v5: one frame per v5 segment
		// always; unbuffered it also writes each segment on its own, coalesced
		// it gathers ~14 segments into one writev (lz4: ~8).
		{"cassandra-gocql-driver-2.1.2-v5-unbuffered-c64", unbuffered},
		{"cassandra-gocql-driver-2.1.2-v5-coalesced-c64", none},
		{"cassandra-gocql-driver-2.1.2-v5-lz4-coalesced-c64", none},
		{"cassandra-gocql-driver-2.1.2-v5-c1", none},
		{"python-3.30.1-v4-nodelay-c32", unbuffered},
		{"python-3.30.1-v5-nodelay-c32", unbuffered},
		{"python-3.30.1-v5-lz4-nodelay-c32", unbuffered},
		{"python-3.30.1-v5-nagle-c32", nagle},
		{"python-3.30.1-v5-nodelay-c1", none},
		{"nodejs-4.10.0-threshold1-c64", unbuffered},
		{"nodejs-4.10.0-default-c64", none},
		{"nodejs-4.10.0-default-c1", none},
		{"java-driver-4.19.0-v4-coalesced-c64", none},
		{"java-driver-4.19.0-v4-passthrough-c64", unbuffered},
		{"java-driver-4.19.0-v5-coalesced-c64", none},
		{"java-driver-4.19.0-v5-passthrough-c64", unbuffered},
		{"scylla-rust-0.3.0-v4-c64", unbuffered},
		// 0.3.1 buffers only what is queued when its writer wakes; on this
		// 2-core machine that is usually one request: the kernel counted
		// 4,083 sends for 5,006 frames (1.23 per send), so the flag is right.
		{"scylla-rust-0.3.1-v4-c64", unbuffered},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			rep := runFile(t, filepath.Join("..", "pcaps", c.file+".pcap"), DefaultConfig())
			busy := 0
			for _, cr := range rep.Connections {
				if cr.Requests < 100 {
					continue
				}
				busy++
				var codes []string
				for _, d := range cr.DiagnosisCodes {
					if d == CodeClientBound {
						continue // not a batching verdict: see clientbound_test.go, against the clients' CPU
					}
					if d == CodeServerUnbuffered {
						t.Errorf("%s: Cassandra flagged %s", cr.Client, d)
						continue
					}
					codes = append(codes, d)
				}
				switch {
				case c.want == none && len(codes) > 0:
					t.Errorf("%s: flagged %v, want nothing (in flight %.1f, client frames/segment %.2f)",
						cr.Client, codes, cr.InFlight.Mean, cr.ClientSegments.FramesPerSegment)
				case c.want != none && (len(codes) != 1 || codes[0] != c.want):
					t.Errorf("%s: flagged %v, want %s (in flight %.1f, client frames/segment %.2f)",
						cr.Client, codes, c.want, cr.InFlight.Mean, cr.ClientSegments.FramesPerSegment)
				}
			}
			if busy == 0 {
				t.Fatal("no busy connection in the capture")
			}
		})
	}
}
