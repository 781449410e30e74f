package decode

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"testing"

	"github.com/cqlsniff/cqlsniff/internal/retained"
)

// zerosLZ4 is a raw lz4 block that decompresses to n zero bytes (n ≥ 12):
// a literal zero, one match of n-6 bytes at offset 1, five literal zeros.
// It is about n/255 bytes long, the most lz4 expands.
func zerosLZ4(n int) []byte {
	extra := n - 6 - 19 // match length beyond the token's 4+15
	b := []byte{1<<4 | 15, 0, 1, 0}
	b = append(b, bytes.Repeat([]byte{255}, extra/255)...)
	b = append(b, byte(extra%255), 5<<4)
	return append(b, make([]byte, 5)...)
}

// The tests below count what the streams hold, buffers lent to them
// included (internal/retained), not the heap after a collection.

// TestStreamDecompressionNotKept: a Stream kept the largest decompressed
// body it had produced, up to MaxDecompressed (16 MiB), for as long as its
// connection lived. A 66 KB lz4 body of zeros per connection was enough:
// 300 connections held 4.8 GB. Now the streams hold no more than their
// small buffers once the frames were read, and a frame stays valid while
// other streams decompress theirs.
func TestStreamDecompressionNotKept(t *testing.T) {
	cfg := DefaultStreamConfig()
	streams := make([]Stream, 8)
	body := append(binary.BigEndian.AppendUint32(nil, uint32(cfg.MaxDecompressed)), zerosLZ4(cfg.MaxDecompressed)...)
	frame := env(0x04, byte(FlagCompression), 1, OpQuery, body)
	for i := range streams {
		s := &streams[i]
		s.Init(cfg, false, true)
		if i%2 == 0 {
			s.Compression = CompressionLZ4 // else guessed
		}
		s.Feed(frame, 1)
		var f Frame
		n := 0
		for s.Next(&f) {
			n++
			if len(f.Body) != cfg.MaxDecompressed || f.BadCompression {
				t.Fatalf("stream %d: body of %d bytes, bad compression %v", i, len(f.Body), f.BadCompression)
			}
		}
		if n != 1 {
			t.Fatalf("stream %d: %d frames", i, n)
		}
	}
	if held := retained.Bytes(streams, frame); held > 4<<20 {
		t.Errorf("%d streams hold %d bytes after their frames were read", len(streams), held)
	}

	// Frames of two streams, each read while the other's is still valid.
	var a, b Stream
	a.Init(cfg, false, true)
	b.Init(cfg, false, true)
	a.Compression, b.Compression = CompressionLZ4, CompressionLZ4
	text := func(c byte) []byte {
		q := queryBody(string(bytes.Repeat([]byte{c}, 64<<10)))
		return env(0x04, byte(FlagCompression), 1, OpQuery, lz4Body(t, q))
	}
	var fa, fb Frame
	a.Feed(text('a'), 1)
	if !a.Next(&fa) {
		t.Fatal("no frame from a")
	}
	b.Feed(text('b'), 1)
	if !b.Next(&fb) {
		t.Fatal("no frame from b")
	}
	if !bytes.Equal(fa.Body, queryBody(string(bytes.Repeat([]byte{'a'}, 64<<10)))) || fb.Body[4] != 'b' {
		t.Errorf("a frame changed while another stream decompressed")
	}
}

// TestStreamV5SegmentsNotKept: a v5 lz4 segment made its stream allocate
// and keep a 128 KiB buffer whatever the payload's size, up to 250 times
// the few hundred bytes that claim it.
func TestStreamV5SegmentsNotKept(t *testing.T) {
	payload := zerosLZ4(MaxSegmentPayload)
	v := uint64(len(payload)) | uint64(MaxSegmentPayload)<<17 | 1<<34
	var h [5]byte
	for i := range h {
		h[i] = byte(v >> (8 * i))
	}
	c := Crc24(h[:])
	seg := append(h[:], byte(c), byte(c>>8), byte(c>>16))
	seg = append(seg, payload...)
	seg = binary.LittleEndian.AppendUint32(seg, SegmentCrc32(payload))

	streams := make([]Stream, 64)
	for i := range streams {
		s := &streams[i]
		s.Init(DefaultStreamConfig(), false, true)
		s.SwitchToSegments(true)
		s.Feed(seg, 1)
		var f Frame
		for s.Next(&f) {
		}
		if st := s.Stats(); st.V5Segments != 1 || st.DecompressErr != 0 {
			t.Fatalf("stream %d: %+v", i, st)
		}
	}
	if held := retained.Bytes(streams, seg); held > 1<<20 {
		t.Errorf("%d streams hold %d bytes after their segments were read", len(streams), held)
	}
}

// TestStreamCompressedBodyNotKept: a compressed body is buffered whole (up
// to MaxCompressed, 4 MiB) when it spans TCP segments; the buffer used to
// stay with the stream afterwards.
func TestStreamCompressedBodyNotKept(t *testing.T) {
	rnd := make([]byte, 1<<20)
	rand.New(rand.NewSource(1)).Read(rnd)
	frame := env(0x04, byte(FlagCompression), 1, OpQuery, lz4Body(t, queryBody(string(rnd))))
	streams := make([]Stream, 8)
	for i := range streams {
		s := &streams[i]
		s.Init(DefaultStreamConfig(), false, true)
		s.Compression = CompressionLZ4
		half := len(frame) / 2
		s.Feed(frame[:half], 1)
		var f Frame
		for s.Next(&f) {
		}
		s.Feed(frame[half:], 2)
		n := 0
		for s.Next(&f) {
			n++
			if f.BadCompression || len(f.Body) != len(rnd)+7 {
				t.Fatalf("stream %d: body of %d bytes, bad compression %v", i, len(f.Body), f.BadCompression)
			}
		}
		if n != 1 {
			t.Fatalf("stream %d: %d frames", i, n)
		}
	}
	if held := retained.Bytes(streams, frame); held > 1<<20 {
		t.Errorf("%d streams hold %d bytes after their frames were read", len(streams), held)
	}
}
