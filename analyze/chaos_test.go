package analyze

import (
	"encoding/binary"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
)

// damage rewrites a little-endian µs/ns classic pcap, dropping, duplicating
// and swapping records at the given rates, as a lossy capture would.
func damage(t *testing.T, data []byte, drop, dup, swap float64, seed int64) []byte {
	t.Helper()
	if len(data) < 24 || binary.LittleEndian.Uint32(data) != 0xA1B2C3D4 && binary.LittleEndian.Uint32(data) != 0xA1B23C4D {
		t.Skip("not a little-endian classic pcap")
	}
	rng := rand.New(rand.NewSource(seed))
	var recs [][]byte
	for off := 24; off+16 <= len(data); {
		n := int(binary.LittleEndian.Uint32(data[off+8:]))
		if off+16+n > len(data) {
			break
		}
		recs = append(recs, data[off:off+16+n])
		off += 16 + n
	}
	out := append([]byte(nil), data[:24]...)
	for i := 0; i < len(recs); i++ {
		r := rng.Float64()
		switch {
		case r < drop:
			continue
		case r < drop+dup:
			out = append(out, recs[i]...)
		case r < drop+dup+swap && i+1 < len(recs):
			out = append(out, recs[i+1]...)
			recs[i+1] = recs[i]
			continue
		}
		out = append(out, recs[i]...)
	}
	return out
}

// TestDamagedCaptures: lost, duplicated and reordered packets never make
// the analysis fail or invent exchanges; 1% loss costs little more than the
// exchanges it touches; duplicates and reordering cost (almost) nothing.
func TestDamagedCaptures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "pcaps", "*-c64.pcap"))
	if len(files) == 0 {
		t.Fatal("no captures")
	}
	for _, f := range files[:4] {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		_, clean := runPipeline(t, data, DefaultConfig())
		for _, c := range []struct {
			name            string
			drop, dup, swap float64
		}{
			{"1% lost", 0.01, 0, 0},
			{"5% duplicated, 5% reordered", 0, 0.05, 0.05},
			{"everything", 0.02, 0.05, 0.05},
		} {
			t.Run(filepath.Base(f)+"/"+c.name, func(t *testing.T) {
				_, rep := runPipeline(t, damage(t, data, c.drop, c.dup, c.swap, 1), DefaultConfig())
				if rep.Totals.Responses > clean.Totals.Responses || rep.Totals.Requests > clean.Totals.Requests {
					t.Errorf("more exchanges than the clean capture: %+v vs %+v", rep.Totals, clean.Totals)
				}
				if c.drop == 0 {
					// A segment that arrives after the peer's ACK of it is
					// taken for lost (the ACK proves the peer has it), so
					// heavy reordering may cost a few frames; never more
					// than 1%.
					if rep.Totals.Responses < clean.Totals.Responses*99/100 {
						t.Errorf("nothing was lost, yet responses %d (clean %d), gaps %d", rep.Totals.Responses, clean.Totals.Responses, rep.Capture.Gaps)
					}
					if rep.Capture.Retransmits == clean.Capture.Retransmits {
						t.Errorf("duplicates not counted as retransmissions")
					}
				} else if rep.Capture.Gaps == 0 || rep.Totals.Responses < clean.Totals.Responses*8/10 {
					t.Errorf("loss: gaps %d, responses %d of %d", rep.Capture.Gaps, rep.Totals.Responses, clean.Totals.Responses)
				}
			})
		}
	}
}

// TestMidStreamV5Compression: a v5 capture that starts after STARTUP still
// says whether its segments are lz4, from the layout the decoder locked on.
func TestMidStreamV5Compression(t *testing.T) {
	for file, want := range map[string]string{
		"python-3.30.1-v5-lz4-nodelay-c32": "lz4",
		"python-3.30.1-v5-nodelay-c32":     "none",
	} {
		data, err := os.ReadFile(filepath.Join("..", "pcaps", file+".pcap"))
		if err != nil {
			t.Fatal(err)
		}
		// Keep the pcap header and the records from the 300th on.
		off := 24
		for i := 0; i < 300 && off+16 <= len(data); i++ {
			off += 16 + int(binary.LittleEndian.Uint32(data[off+8:]))
		}
		_, r := runPipeline(t, append(append([]byte(nil), data[:24]...), data[off:]...), DefaultConfig())
		busy := 0
		for _, c := range r.Connections {
			if c.Requests < 1000 {
				continue
			}
			busy++
			if c.ProtocolVersion != 5 || c.Compression != want || !c.CompressionInferred {
				t.Errorf("%s from record 300: %s v%d compression %q (inferred %v), want v5 %q", file, c.Client, c.ProtocolVersion, c.Compression, c.CompressionInferred, want)
			}
		}
		if busy != 1 {
			t.Errorf("%s: %d busy connections", file, busy)
		}
	}
}
