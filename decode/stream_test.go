package decode

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"testing"
)

// env builds an envelope: version byte (with direction bit), flags, stream, opcode, body.
func env(ver, flags byte, stream int16, op Opcode, body []byte) []byte {
	b := []byte{ver, flags, 0, 0, byte(op), 0, 0, 0, 0}
	binary.BigEndian.PutUint16(b[2:], uint16(stream))
	binary.BigEndian.PutUint32(b[5:], uint32(len(body)))
	return append(b, body...)
}

func queryBody(q string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	b = append(b, q...)
	return append(b, 0x00, 0x01, 0x00) // consistency ONE, no flags
}

type got struct {
	stream int16
	op     Opcode
	body   string
	segs   int
	lost   bool
}

func drain(s *Stream, out []got) []got {
	var f Frame
	for s.Next(&f) {
		out = append(out, got{f.Header.Stream, f.Header.Opcode, string(f.Body), f.TCPSegments, f.Lost})
	}
	return out
}

func requests(n int) ([]byte, []got) {
	var all []byte
	var want []got
	for i := 0; i < n; i++ {
		body := queryBody("SELECT * FROM t WHERE k = " + string(rune('a'+i%26)))
		all = append(all, env(0x04, 0, int16(i), OpQuery, body)...)
		want = append(want, got{int16(i), OpQuery, string(body), 1, false})
	}
	return all, want
}

func TestStreamEveryChunking(t *testing.T) {
	all, want := requests(5)
	for cut := 1; cut < len(all); cut++ {
		s := NewStream(DefaultStreamConfig())
		s.DirKnown = true
		var out []got
		s.Feed(all[:cut], 1)
		out = drain(s, out)
		s.Feed(all[cut:], 2)
		out = drain(s, out)
		if len(out) != len(want) {
			t.Fatalf("cut %d: got %d frames, want %d", cut, len(out), len(want))
		}
		for i := range out {
			if out[i].stream != want[i].stream || out[i].body != want[i].body {
				t.Fatalf("cut %d frame %d: got %+v want %+v", cut, i, out[i], want[i])
			}
		}
	}
}

func TestStreamByteAtATime(t *testing.T) {
	all, want := requests(3)
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	var out []got
	for i := range all {
		s.Feed(all[i:i+1], int64(i))
		out = drain(s, out)
	}
	if len(out) != len(want) {
		t.Fatalf("got %d frames, want %d", len(out), len(want))
	}
	for i := range out {
		if out[i].body != want[i].body || out[i].segs != len(all)/len(want) {
			t.Errorf("frame %d: %+v", i, out[i])
		}
	}
}

func TestStreamMidStreamStart(t *testing.T) {
	all, want := requests(4)
	first := len(env(0x04, 0, 0, OpQuery, queryBody("SELECT * FROM t WHERE k = a")))
	// The capture starts 5 bytes into the first frame; the segment holds the
	// rest of it and three whole frames.
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	s.Feed(all[5:], 1)
	out := drain(s, nil)
	if len(out) != 3 || out[0].stream != want[1].stream {
		t.Fatalf("got %+v", out)
	}
	if st := s.Stats(); st.SkippedBytes != uint64(first-5) || st.Syncs != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestStreamDirectionLearned(t *testing.T) {
	// 84 00 00 07 08 00 00 00 04 | 00 00 00 01: v4 response, stream 7, RESULT Void
	resp := []byte{0x84, 0, 0, 7, 0x08, 0, 0, 0, 4, 0, 0, 0, 1}
	s := NewStream(DefaultStreamConfig())
	s.Feed(resp, 1)
	out := drain(s, nil)
	if len(out) != 1 || !s.Response || !s.DirKnown {
		t.Fatalf("out %+v response=%v known=%v", out, s.Response, s.DirKnown)
	}
}

func TestStreamGapInsideBodyKeepsSync(t *testing.T) {
	big := bytes.Repeat([]byte{0xAB}, 3000)
	rows := append([]byte{0, 0, 0, 2}, big...)
	f1 := env(0x84, 0, 1, OpResult, rows)
	f2 := env(0x84, 0, 2, OpResult, []byte{0, 0, 0, 1})
	s := NewStream(DefaultStreamConfig())
	s.Response, s.DirKnown = true, true
	s.Feed(f1[:1000], 1)
	out := drain(s, nil)
	s.Gap(1000) // lost packet in the middle of the rows
	out = drain(s, out)
	s.Feed(append(append([]byte{}, f1[2000:]...), f2...), 2)
	out = drain(s, out)
	if len(out) != 2 || out[0].stream != 1 || !out[0].lost || out[1].stream != 2 || out[1].lost {
		t.Fatalf("got %+v", out)
	}
}

func TestStreamGapAcrossFramesResyncs(t *testing.T) {
	all, _ := requests(6)
	n := len(all) / 6
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	s.Feed(all[:n+3], 1) // one frame and 3 bytes of the next
	out := drain(s, nil)
	s.Gap(n) // the rest of frame 2 and 3 bytes of frame 3 are lost
	s.Feed(all[2*n+3:], 2)
	out = drain(s, out)
	if len(out) != 4 || out[0].stream != 0 || out[1].stream != 3 {
		t.Fatalf("got %+v", out)
	}
}

func TestStreamGarbageNeverYieldsFrames(t *testing.T) {
	// HTTP, Thrift and internode traffic must never look like CQL.
	inputs := [][]byte{
		[]byte("GET /index.html HTTP/1.1\r\nHost: x\r\n\r\n"),
		{0x00, 0x00, 0x00, 0x25, 0x80, 0x01, 0x00, 0x01, 0x00, 0x00, 0x00, 0x0c, 's', 'e', 't', '_'},
		{0xca, 0x55, 0x2d, 0xfa, 0x00, 0x00, 0x00, 0x0c, 0x01, 0x02, 0x03, 0x04},
	}
	for _, in := range inputs {
		s := NewStream(DefaultStreamConfig())
		s.Feed(in, 1)
		if out := drain(s, nil); len(out) != 0 {
			t.Errorf("%q: frames %+v", in, out)
		}
	}
}

func TestStreamLargeBodyKeepsPrefix(t *testing.T) {
	cfg := DefaultStreamConfig()
	cfg.MaxPrefix = 100
	body := bytes.Repeat([]byte{1}, 1000)
	f := env(0x84, 0, 3, OpResult, append([]byte{0, 0, 0, 2}, body...))
	s := NewStream(cfg)
	s.Response, s.DirKnown = true, true
	s.Feed(f[:500], 1)
	var fr Frame
	if s.Next(&fr) {
		t.Fatal("frame before its end")
	}
	s.Feed(f[500:], 2)
	if !s.Next(&fr) || !fr.Partial || len(fr.Body) != 100 || fr.Start != 1 || fr.End != 2 || fr.TCPSegments != 2 {
		t.Fatalf("frame %+v (body %d)", fr.Header, len(fr.Body))
	}
}

func TestStreamNoAllocs(t *testing.T) {
	all, _ := requests(16)
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	var f Frame
	half := len(all)/2 + 3
	feed := func() {
		s.Feed(all[:half], 1)
		for s.Next(&f) {
		}
		s.Feed(all[half:], 2)
		for s.Next(&f) {
		}
	}
	feed()
	if n := testing.AllocsPerRun(100, feed); n != 0 {
		t.Fatalf("%v allocations per run", n)
	}
}

func BenchmarkStreamSmallFrames(b *testing.B) {
	all, _ := requests(64)
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	var f Frame
	b.ReportAllocs()
	b.SetBytes(int64(len(all)))
	for i := 0; i < b.N; i++ {
		s.Feed(all, int64(i))
		for s.Next(&f) {
		}
	}
}

// FuzzStream feeds arbitrary bytes in arbitrary chunks, with gaps. Frames
// that come out must have plausible headers and bodies no longer than
// declared; nothing may panic.
func FuzzStream(f *testing.F) {
	all, _ := requests(3)
	f.Add(all, uint8(7), false)
	f.Add(append([]byte{0x84, 0, 0, 7, 0x08, 0, 0, 0, 4, 0, 0, 0, 1}, all...), uint8(3), true)
	f.Add([]byte{0x04, 0x01, 0, 1, 0x07, 0x7f, 0xff, 0xff, 0xff}, uint8(1), false)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, gaps bool) {
		s := NewStream(DefaultStreamConfig())
		c := int(chunk%64) + 1
		var fr Frame
		for i := 0; i < len(data); i += c {
			end := i + c
			if end > len(data) {
				end = len(data)
			}
			if gaps && (i/c)%5 == 4 {
				s.Gap(end - i)
				continue
			}
			s.Feed(data[i:end], int64(i))
			for s.Next(&fr) {
				if !fr.Header.Plausible(fr.Header.Response) {
					t.Fatalf("implausible header %+v", fr.Header)
				}
				if !fr.Compressed && len(fr.Body) > int(fr.Header.Length) {
					t.Fatalf("body %d > length %d", len(fr.Body), fr.Header.Length)
				}
			}
		}
	})
}

// v5 builds the client side of a v5 connection: an unframed STARTUP, then
// self-contained segments of `per` QUERY envelopes each, then one large
// QUERY split over non-self-contained segments.
func v5Client(n, per int, lz bool) (startupLen int, all []byte, want []int16) {
	return v5ClientBig(n, per, lz, 300000)
}

func v5ClientBig(n, per int, lz bool, bigLen int) (startupLen int, all []byte, want []int16) {
	startup := env(0x05, 0, 0, OpStartup, []byte{0, 1, 0, 11, 'C', 'Q', 'L', '_', 'V', 'E', 'R', 'S', 'I', 'O', 'N', 0, 5, '3', '.', '0', '.', '0'})
	all = append(all, startup...)
	startupLen = len(startup)
	var payload []byte
	for i := 1; i <= n; i++ {
		payload = append(payload, env(0x05, 0, int16(i), OpQuery, queryBody("SELECT 1"))...)
		want = append(want, int16(i))
		if i%per == 0 || i == n {
			all = AppendSegment(all, payload, lz, true)
			payload = payload[:0]
		}
	}
	big := env(0x05, 0, 999, OpQuery, queryBody(string(bytes.Repeat([]byte{'x'}, bigLen))))
	slice := MaxSegmentPayload
	if bigLen < slice {
		slice = bigLen / 3 // small inputs still exercise non-self-contained segments
	}
	for off := 0; off < len(big); off += slice {
		end := min(off+slice, len(big))
		all = AppendSegment(all, big[off:end], lz, false)
	}
	want = append(want, 999)
	return startupLen, all, want
}

func TestStreamV5(t *testing.T) {
	for _, lz := range []bool{false, true} {
		for _, chunk := range []int{1, 7, 1460, 65483, 1 << 20} {
			t.Run(fmt.Sprintf("lz4=%v/chunk=%d", lz, chunk), func(t *testing.T) {
				_, all, want := v5Client(40, 8, lz)
				s := NewStream(DefaultStreamConfig())
				s.DirKnown = true
				var got []int16
				var f Frame
				for off := 0; off < len(all); off += chunk {
					s.Feed(all[off:min(off+chunk, len(all))], int64(off))
					for s.Next(&f) {
						if f.Header.Opcode == OpStartup {
							s.SwitchToSegments(lz)
							continue
						}
						got = append(got, f.Header.Stream)
					}
				}
				if fmt.Sprint(got) != fmt.Sprint(want) {
					t.Fatalf("streams %v, want %v", got, want)
				}
				if st := s.Stats(); st.V5SegmentErrors != 0 || st.V5Segments != 5+3 || !s.V5() {
					t.Errorf("stats %+v", st)
				}
			})
		}
	}
}

func TestStreamV5MidStreamAndCorruption(t *testing.T) {
	startupLen, all, want := v5Client(40, 8, false)
	segs := all[startupLen:]
	// Start 3 bytes into the first segment: the envelopes of the first
	// segment still chain (they are found as plain envelopes), and the
	// segment layer locks on at the next header whose CRC24 checks.
	s := NewStream(DefaultStreamConfig())
	s.DirKnown = true
	var got []int16
	var f Frame
	s.Feed(segs[3:], 1)
	for s.Next(&f) {
		got = append(got, f.Header.Stream)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) || !s.V5() {
		t.Fatalf("mid-stream: streams %v, want %v", got, want)
	}
	// A corrupted payload byte in the second segment: only its envelopes are lost.
	bad := append([]byte{}, segs...)
	first := 6 + 8*len(env(0x05, 0, 1, OpQuery, queryBody("SELECT 1"))) + 4
	bad[first+20] ^= 0xFF
	s = NewStream(DefaultStreamConfig())
	s.DirKnown = true
	s.SwitchToSegments(false)
	s.Feed(bad, 1)
	got = got[:0]
	for s.Next(&f) {
		got = append(got, f.Header.Stream)
	}
	wantBad := append(append([]int16{}, want[:8]...), want[16:]...)
	if fmt.Sprint(got) != fmt.Sprint(wantBad) || s.Stats().V5SegmentErrors != 1 {
		t.Fatalf("corrupt: streams %v, want %v (stats %+v)", got, wantBad, s.Stats())
	}
}

// FuzzStreamV5 feeds arbitrary bytes to a stream already switched to v5
// segments (either layout), in arbitrary chunks: segment headers, CRCs,
// lengths, lz4 payloads and the envelopes inside are all attacker-chosen.
func FuzzStreamV5(f *testing.F) {
	startupLen, all, _ := v5ClientBig(12, 5, false, 300)
	f.Add(all[startupLen:], uint8(13), false)
	_, allLZ, _ := v5ClientBig(12, 5, true, 300)
	f.Add(allLZ[startupLen:], uint8(200), true)
	f.Add(vecPlain, uint8(3), false)
	f.Add(vecLZ4, uint8(1), true)
	f.Fuzz(func(t *testing.T, data []byte, chunk uint8, lz bool) {
		s := NewStream(DefaultStreamConfig())
		s.DirKnown = true
		s.SwitchToSegments(lz)
		c := int(chunk) + 1
		var fr Frame
		for i := 0; i < len(data); i += c {
			s.Feed(data[i:min(i+c, len(data))], int64(i))
			for s.Next(&fr) {
				if !fr.Header.Plausible(fr.Header.Response) {
					t.Fatalf("implausible header %+v", fr.Header)
				}
				if len(fr.Body) > int(fr.Header.Length) {
					t.Fatalf("body %d > length %d", len(fr.Body), fr.Header.Length)
				}
			}
		}
		if st := s.Stats(); st.V5Segments > uint64(len(data)/10+1) {
			t.Fatalf("%d segments from %d bytes", st.V5Segments, len(data))
		}
	})
}
