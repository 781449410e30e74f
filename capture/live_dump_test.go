//go:build linux

package capture

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

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
