package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/pierrec/lz4/v4"

	"github.com/cqlsniff/cqlsniff/decode"
)

// TestSegmentBytes pins the segment encoder to the test vectors of
// cql-wire.md §8.4: one v5 OPTIONS envelope in a self-contained segment.
func TestSegmentBytes(t *testing.T) {
	const options = "05 00 0001 05 00000000 // v5 OPTIONS, stream 1, empty body"
	for _, tc := range []struct {
		name string
		comp int
		want string
	}{
		{"uncompressed", compNone, `
			09 00 02                 // H = 0x020009: 9 payload bytes, self-contained
			a4 c8 c1                 // CRC24 0xC1C8A4, low byte first
			` + options + `
			b5 55 74 86              // CRC32 0x867455B5 of the payload`},
		{"lz4 stored as is", compLZ4, `
			09 00 00 00 04           // H = 0x0400000009: 9 wire bytes, U = 0, self-contained
			c2 b8 95                 // CRC24 0x95B8C2
			` + options + `
			b5 55 74 86`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder(5, tc.comp, 0, 1)
			env := e.appendFrame(nil, item{kind: kOptions, stream: 1}, frameCtx{})
			got := e.appendSegment(nil, env, true)
			want, _ := fixture(t, tc.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("\n got % x\nwant % x", got, want)
			}
		})
	}
}

// TestSegmentsMatchDecode cross-checks the generator's CRCs and layouts
// with the decoder's independent implementation (which the generator does
// not use, so that a bug in one shows against the other).
func TestSegmentsMatchDecode(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		n := r.IntN(2000)
		if i%50 == 0 {
			n = maxSegPayload
		}
		p := make([]byte, n)
		for j := range p {
			p[j] = byte(r.Uint32()) // random: lz4 cannot shrink it
		}
		if got, want := crc24(p[:min(n, 5)]), decode.Crc24(p[:min(n, 5)]); got != want {
			t.Fatalf("crc24(% x) = %06x, decode says %06x", p[:min(n, 5)], got, want)
		}
		if got, want := segCrc32(p), decode.SegmentCrc32(p); got != want {
			t.Fatalf("segCrc32 of %d bytes = %08x, decode says %08x", n, got, want)
		}
		for _, comp := range []int{compNone, compLZ4} {
			sc := i%2 == 0
			e := newEncoder(5, comp, 0, 1)
			got := e.appendSegment(nil, p, sc)
			want := decode.AppendSegment(nil, p, comp == compLZ4, sc)
			if !bytes.Equal(got, want) {
				t.Fatalf("comp %d, %d bytes, self-contained %v: differs from decode.AppendSegment", comp, n, sc)
			}
			var h decode.SegmentHeader
			if k := decode.ParseSegmentHeader(got, comp == compLZ4, &h); k <= 0 || h.Length != n || h.SelfContained != sc || h.Uncompressed != 0 {
				t.Fatalf("decode.ParseSegmentHeader: %d, %+v", k, h)
			}
		}
	}
}

// TestWriteV5Layout checks how one write's envelopes become segments
// (§8.5): whole envelopes packed greedily into self-contained segments of
// at most 131071 bytes, an envelope larger than that in consecutive
// non-self-contained slices filled to the maximum, and each envelope's end
// mark at the end of the segment that completes it.
func TestWriteV5Layout(t *testing.T) {
	for _, comp := range []int{compNone, compLZ4} {
		for _, rows := range []int{0, 20000, 100000, 400000} {
			t.Run(fmt.Sprintf("comp%d-rows%d", comp, rows), func(t *testing.T) {
				items := make([]item, 12)
				for i := range items {
					items[i] = item{kind: kRowsNoMeta, stream: int16(i)}
					if i%3 == 1 {
						items[i].kind = kVoid
					}
				}
				e := newEncoder(5, comp, rows, 1)
				fc := frameCtx{tsMicros: 1, rng: rand.New(rand.NewPCG(3, 4))}
				out := e.appendWriteV5([]byte("prefix"), items, fc)
				ends := append([]int(nil), e.ends...)

				// The same envelopes, unframed, from the same random stream.
				var env []byte
				var envEnd []int
				fc.rng = rand.New(rand.NewPCG(3, 4))
				for _, it := range items {
					env = e.appendFrame(env, it, fc)
					envEnd = append(envEnd, len(env))
				}

				segs, err := walkSegments(out[len("prefix"):], comp == compLZ4)
				if err != nil {
					t.Fatal(err)
				}
				if e.segs != len(segs) {
					t.Errorf("encoder counted %d segments, %d written", e.segs, len(segs))
				}
				var joined []byte
				next := 0 // next envelope to end
				for i, s := range segs {
					start := len(joined)
					joined = append(joined, s.payload...)
					if len(s.payload) > maxSegPayload || len(s.payload) == 0 {
						t.Fatalf("segment %d: %d payload bytes", i, len(s.payload))
					}
					if s.selfContained {
						if !endsAt(envEnd, start) || !endsAt(envEnd, len(joined)) {
							t.Fatalf("self-contained segment %d [%d, %d) cuts an envelope", i, start, len(joined))
						}
						// Greedy: the next envelope did not fit as well.
						if i+1 < len(segs) && segs[i+1].selfContained &&
							len(s.payload)+envSize(env, len(joined)) <= maxSegPayload {
							t.Errorf("segment %d (%d bytes) closed although the next envelope fits", i, len(s.payload))
						}
					} else {
						k := envIndex(envEnd, start)
						size := envEnd[k] - envStart(envEnd, k)
						if size <= maxSegPayload {
							t.Fatalf("segment %d slices a %d-byte envelope", i, size)
						}
						if len(joined) < envEnd[k] && len(s.payload) != maxSegPayload {
							t.Fatalf("slice %d: %d bytes before the last", i, len(s.payload))
						}
					}
					for next < len(envEnd) && envEnd[next] <= len(joined) {
						if want := len("prefix") + s.end; ends[next] != want {
							t.Errorf("envelope %d: end mark %d, its segment ends at %d", next, ends[next], want)
						}
						next++
					}
				}
				if !bytes.Equal(joined, env) {
					t.Fatalf("segment payloads (%d bytes) are not the write's envelopes (%d bytes)", len(joined), len(env))
				}
				if len(ends) != len(items) {
					t.Fatalf("%d end marks for %d envelopes", len(ends), len(items))
				}
				t.Logf("%d envelopes, %d bytes → %d segments", len(items), len(env), len(segs))
			})
		}
	}
}

func endsAt(ends []int, off int) bool {
	if off == 0 {
		return true
	}
	for _, e := range ends {
		if e == off {
			return true
		}
	}
	return false
}

// envIndex returns the envelope holding byte off.
func envIndex(ends []int, off int) int {
	for i, e := range ends {
		if off < e {
			return i
		}
	}
	return len(ends)
}

func envStart(ends []int, i int) int {
	if i == 0 {
		return 0
	}
	return ends[i-1]
}

// envSize returns the size of the envelope starting at off in env (0 at the end).
func envSize(env []byte, off int) int {
	if off >= len(env) {
		return 0
	}
	return 9 + int(binary.BigEndian.Uint32(env[off+5:]))
}

// seg is one parsed v5 segment.
type seg struct {
	selfContained bool
	compressed    bool   // lz4 with U > 0
	payload       []byte // decompressed
	end           int    // offset after the trailer
}

// parseSegment reads the v5 segment at the start of b, checking header
// CRC24, padding bits, payload CRC32 and, with lz4, that the payload
// decompresses to exactly U bytes and was worth compressing (§8.2–§8.4). n
// is 0 when b does not hold the whole segment yet.
func parseSegment(b []byte, lz bool) (s seg, n int, err error) {
	hl := 6
	if lz {
		hl = 8
	}
	if len(b) < hl {
		return s, 0, nil
	}
	var v uint64
	for i := range hl - 3 {
		v |= uint64(b[i]) << (8 * i)
	}
	if got, want := uint32(b[hl-3])|uint32(b[hl-2])<<8|uint32(b[hl-1])<<16, crc24(b[:hl-3]); got != want {
		return s, 0, fmt.Errorf("segment header % x: CRC24 %06x, want %06x", b[:hl], got, want)
	}
	length, u := int(v&0x1FFFF), 0
	if lz {
		u, s.selfContained = int(v>>17&0x1FFFF), v>>34&1 != 0
		if v>>35 != 0 {
			return s, 0, fmt.Errorf("lz4 segment header %x: padding bits set", v)
		}
	} else {
		s.selfContained = v>>17&1 != 0
		if v>>18 != 0 {
			return s, 0, fmt.Errorf("segment header %x: padding bits set", v)
		}
	}
	if len(b) < hl+length+4 {
		return s, 0, nil
	}
	s.payload = b[hl : hl+length]
	if got, want := binary.LittleEndian.Uint32(b[hl+length:]), segCrc32(s.payload); got != want {
		return s, 0, fmt.Errorf("segment payload CRC32 %08x, want %08x", got, want)
	}
	if length == 0 {
		return s, 0, errors.New("empty segment")
	}
	if u > 0 {
		if length >= u {
			return s, 0, fmt.Errorf("lz4 segment compressed %d → %d bytes: should be stored as is", u, length)
		}
		out := make([]byte, u)
		m, err := lz4.UncompressBlock(s.payload, out)
		if err != nil || m != u {
			return s, 0, fmt.Errorf("lz4 segment: %d of %d bytes, %v", m, u, err)
		}
		s.payload, s.compressed = out, true
	}
	s.end = hl + length + 4
	return s, s.end, nil
}

// walkSegments parses b as whole v5 segments.
func walkSegments(b []byte, lz bool) ([]seg, error) {
	var out []seg
	off := 0
	for off < len(b) {
		s, n, err := parseSegment(b[off:], lz)
		if err != nil {
			return nil, fmt.Errorf("at %d: %w", off, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("at %d: %d bytes of an unfinished segment", off, len(b)-off)
		}
		s.end += off
		off += n
		out = append(out, s)
	}
	return out, nil
}
