package decode

import (
	"encoding/binary"

	"github.com/pierrec/lz4/v4"
)

// Compression is the v3/v4 body compression negotiated by STARTUP.
type Compression uint8

// Compression algorithms. CompressionUnknown means STARTUP was not captured:
// the stream guesses from the first compressed body and pins the result.
const (
	CompressionUnknown Compression = iota
	CompressionNone
	CompressionLZ4
	CompressionSnappy
)

func (c Compression) String() string {
	return [...]string{"unknown", "none", "lz4", "snappy"}[c]
}

// ParseCompression maps a STARTUP COMPRESSION value to a Compression.
func ParseCompression(v []byte) Compression {
	switch string(v) {
	case "lz4", "LZ4":
		return CompressionLZ4
	case "snappy", "SNAPPY":
		return CompressionSnappy
	case "":
		return CompressionNone
	}
	return CompressionUnknown
}

// StreamConfig bounds what a Stream buffers.
type StreamConfig struct {
	// MaxPrefix is how many bytes of an uncompressed body that spans TCP
	// segments are kept for decoding; the rest is counted and skipped.
	// Analysis needs only the leading fields (statement, parameters, result
	// kind, row count).
	MaxPrefix int
	// MaxCompressed is the largest compressed body that is buffered whole so
	// it can be decompressed; larger ones are skipped (header still used).
	MaxCompressed int
	// MaxDecompressed caps any decompressed size (decompression bombs).
	MaxDecompressed int
}

// DefaultStreamConfig returns the limits cqlsniff uses.
func DefaultStreamConfig() StreamConfig {
	return StreamConfig{MaxPrefix: 64 << 10, MaxCompressed: 4 << 20, MaxDecompressed: 16 << 20}
}

// Frame is one envelope taken off a byte stream.
type Frame struct {
	Header Header
	// Body is the body, decompressed when the compression flag was set. It
	// is the whole body unless Partial is set, in which case it is a prefix.
	// It aliases the input or the Stream's buffers: valid until the next
	// call to Feed, Gap or Next.
	Body           []byte
	Partial        bool  // Body is a prefix (large body, lost bytes, or undecodable compression)
	Lost           bool  // bytes of this frame were lost in the capture
	Compressed     bool  // the body was compressed on the wire
	BadCompression bool  // the compressed body could not be decompressed
	Start          int64 // capture time of the packet holding the first header byte
	End            int64 // capture time of the packet that completed the frame
	Segments       int   // TCP segments the frame spanned
}

// StreamStats counts a Stream's work.
type StreamStats struct {
	Frames        uint64
	FrameBytes    uint64 // header + body bytes of frames
	SkippedBytes  uint64 // bytes discarded while hunting for a frame boundary
	Syncs         uint64 // times a boundary was found
	Desyncs       uint64 // implausible headers met while in sync
	Gaps          uint64
	Oversized     uint64 // bodies larger than the buffer limits (only a prefix was decoded)
	DecompressErr uint64
	LostFrames    uint64 // partial frames abandoned at a resync
	Segments      uint64 // v5 segments decoded
	SegmentErrors uint64 // v5 segments with a bad CRC24 (header) or CRC32 (payload)
}

// Stream splits one direction of a CQL connection into envelopes. It is fed
// the bytes of one TCP segment at a time (Feed) and yields the frames they
// complete (Next). It copes with captures that start mid-stream and with
// lost bytes by hunting for a header that passes the sanity checks of
// Header.Plausible and whose successor does too. A Stream allocates only
// while a frame spans segments for the first time in its life (buffers are
// kept and reused).
type Stream struct {
	// Response is true for the server → client direction. When DirKnown is
	// false the first frame boundary found decides it.
	Response bool
	DirKnown bool
	// Compression of this connection; the owner sets it from STARTUP.
	Compression Compression

	cfg StreamConfig

	synced  bool
	in      []byte
	inLen   int // length of the last fed segment
	ts      int64
	started int

	hdr    [HeaderLen]byte
	hdrN   int
	h      Header
	inBody bool
	need   int  // body bytes still to come
	keep   int  // body bytes to keep
	lost   bool // bytes of the current frame were lost
	start  int64
	segs   int
	body   []byte
	// A decompressed body goes to out when it fits (smallKept), else to a
	// buffer lentOut lent until the next call (see bufpool.go); the same
	// for a v5 lz4 segment payload with segOut and lentSeg.
	out     []byte
	lentOut *[]byte

	emitLost bool // Gap completed a frame: Next returns it first

	// Protocol v5 segment layer. When seg is set, fed bytes go to raw and
	// the envelope layer above reads segment payloads.
	seg        uint8 // 0: envelopes directly on TCP; segPlain or segLZ4
	raw        []byte
	segSynced  bool
	inSeg      bool
	sh         SegmentHeader
	shBuf      [8]byte
	shN        int
	segNeed    int     // payload + trailer bytes of the current segment
	segBuf     []byte  // the current segment when it spans TCP segments
	segOut     []byte  // a decompressed lz4 payload of up to smallKept bytes
	lentSeg    *[]byte // a larger one, lent
	segStarted int     // v5 segments begun in the last Feed

	stats StreamStats
}

// Segment layouts of protocol v5.
const (
	segPlain = 1
	segLZ4   = 2
)

// NewStream returns a stream decoder with the given limits.
func NewStream(cfg StreamConfig) *Stream {
	return &Stream{cfg: cfg}
}

// Init resets s for a new connection, keeping its buffers.
func (s *Stream) Init(cfg StreamConfig, response, dirKnown bool) {
	giveBack(s.lentOut)
	giveBack(s.lentSeg)
	body, out, sb, so := s.body[:0], s.out[:0], s.segBuf[:0], s.segOut
	*s = Stream{cfg: cfg, Response: response, DirKnown: dirKnown, body: body, out: out, segBuf: sb, segOut: so}
}

// V5 reports whether the stream carries protocol v5 segments.
func (s *Stream) V5() bool { return s.seg != 0 }

// SegmentsLZ4 reports whether the v5 segments are in the lz4 layout (as
// STARTUP said, or as found when the capture began mid-stream).
func (s *Stream) SegmentsLZ4() bool { return s.seg == segLZ4 }

// SegmentsStarted returns how many v5 segments began in the last Feed.
func (s *Stream) SegmentsStarted() int { return s.segStarted }

// SwitchToSegments makes the bytes after the frame just returned by Next
// v5 segments (lz4 selects the compressed layout). Call it after STARTUP
// (client side) and after its READY or AUTHENTICATE (server side).
func (s *Stream) SwitchToSegments(lz4 bool) {
	s.seg = segPlain
	if lz4 {
		s.seg = segLZ4
	}
	s.raw = s.in
	s.in = nil
	s.segSynced = true
	s.synced = true
}

// Stats returns the counters so far.
func (s *Stream) Stats() StreamStats { return s.stats }

// Synced reports whether the stream knows where frames start.
func (s *Stream) Synced() bool { return s.synced }

// AtBoundary reports whether the stream sits between two frames.
func (s *Stream) AtBoundary() bool {
	return s.synced && !s.inBody && s.hdrN == 0 && !s.inSeg && s.shN == 0 && len(s.in) == 0
}

// Started returns how many frames began in the bytes of the last Feed.
func (s *Stream) Started() int { return s.started }

// Feed hands the stream the new bytes of one TCP segment, captured at ts.
// Call Next until it returns false before the next Feed.
func (s *Stream) Feed(b []byte, ts int64) {
	s.giveBack()
	s.inLen = len(b)
	s.ts = ts
	s.started = 0
	s.segStarted = 0
	if s.inBody || s.hdrN > 0 || s.inSeg || s.shN > 0 {
		s.segs++
	}
	if s.seg != 0 {
		s.raw = b
		return
	}
	s.in = b
}

// Gap tells the stream that n bytes were lost before the next Feed. Lost
// bytes inside a body keep the stream in sync (the header said how long the
// body is); the frame is still returned, marked Lost, so it can be paired.
func (s *Stream) Gap(n int) {
	s.stats.Gaps++
	s.in = nil
	s.giveBack()
	if s.seg != 0 {
		// Segment boundaries are lost with the bytes: hunt for the next
		// header whose CRC24 checks.
		s.raw = nil
		s.segSynced, s.inSeg, s.shN = false, false, 0
		s.dropFrame()
		return
	}
	if s.synced && s.inBody {
		if n < s.need {
			s.need -= n
			s.lost = true
			return
		}
		if n == s.need {
			s.need = 0
			s.lost = true
			s.emitLost = true
			return
		}
	}
	s.unsync()
}

func (s *Stream) unsync() {
	s.synced = false
	s.inBody = false
	s.hdrN = 0
	s.lost = false
	s.trimBody()
}

// trimBody empties the body buffer, and lets it go when a compressed body
// (up to MaxCompressed) made it larger than a body prefix needs, rather
// than keep it for as long as the connection lives.
func (s *Stream) trimBody() {
	if cap(s.body) > 2*s.cfg.MaxPrefix {
		s.body = nil
	} else {
		s.body = s.body[:0]
	}
}

// giveBack returns the lent buffers nothing refers to any more: the last
// frame's is no longer valid once the stream is called again, and the
// segment payload once the envelope layer has read all of it.
func (s *Stream) giveBack() {
	if s.lentOut != nil {
		giveBack(s.lentOut)
		s.lentOut = nil
	}
	if s.lentSeg != nil && len(s.in) == 0 {
		giveBack(s.lentSeg)
		s.lentSeg = nil
	}
}

// dropFrame abandons a partly read frame.
func (s *Stream) dropFrame() {
	if s.inBody || s.hdrN > 0 {
		s.stats.LostFrames++
	}
	s.inBody, s.hdrN, s.lost = false, 0, false
	s.trimBody()
}

// Next returns the next frame completed by the fed bytes.
func (s *Stream) Next(f *Frame) bool {
	s.giveBack()
	for {
		if s.envelope(f) {
			return true
		}
		if s.seg == 0 || !s.nextSegment() {
			// All fed bytes are read: nothing lent is needed until the
			// next Feed.
			s.giveBack()
			return false
		}
	}
}

// envelope takes the next frame from s.in.
func (s *Stream) envelope(f *Frame) bool {
	if s.emitLost {
		s.emitLost = false
		s.finish(f, nil)
		return true
	}
	for {
		if !s.synced {
			if s.seg != 0 {
				// Inside segments the envelope layer only resyncs at a
				// segment start (nextSegment).
				s.stats.SkippedBytes += uint64(len(s.in))
				s.in = nil
				return false
			}
			if !s.resync() {
				return false
			}
		}
		if !s.inBody {
			if !s.header() {
				return false
			}
			if !s.synced {
				continue
			}
			// Fast path: the whole body is in this segment.
			if s.need <= len(s.in) {
				b := s.in[:s.need]
				s.in = s.in[s.need:]
				s.need = 0
				s.finish(f, b)
				return true
			}
		}
		if len(s.in) == 0 {
			return false
		}
		take := s.need
		if take > len(s.in) {
			take = len(s.in)
		}
		if room := s.keep - len(s.body); room > 0 && !s.lost {
			c := take
			if c > room {
				c = room
			}
			s.body = append(s.body, s.in[:c]...)
		}
		s.in = s.in[take:]
		s.need -= take
		if s.need > 0 {
			return false
		}
		s.finish(f, s.body)
		return true
	}
}

// header reads the next header from the input. It returns false when more
// bytes are needed; on an implausible header it drops sync and returns true
// with s.synced false.
func (s *Stream) header() bool {
	var hb []byte
	if s.hdrN == 0 && len(s.in) >= HeaderLen {
		hb = s.in
	} else {
		if len(s.in) == 0 {
			return false
		}
		if s.hdrN == 0 {
			s.started++
			s.start = s.ts
			s.segs = 1
		}
		c := copy(s.hdr[s.hdrN:], s.in)
		hb = s.hdr[:s.hdrN+c]
		n := ParseHeader(hb, &s.h)
		if n == 0 {
			s.hdrN += c
			s.in = s.in[c:]
			return false
		}
		if n < 0 || !s.plausible() {
			s.stats.Desyncs++
			if s.hdrN == 0 {
				// The bad header began in this input: step past its first
				// byte, or the hunt would take it again (a tentative sync
				// on a short segment) and never advance.
				s.in = s.in[1:]
				s.stats.SkippedBytes++
			}
			s.unsync()
			return true
		}
		s.in = s.in[n-s.hdrN:]
		s.hdrN = 0
		s.begin()
		return true
	}
	n := ParseHeader(hb, &s.h)
	if n <= 0 || !s.plausible() {
		s.stats.Desyncs++
		s.unsync()
		return true
	}
	s.started++
	s.start = s.ts
	s.segs = 1
	s.in = s.in[n:]
	s.begin()
	return true
}

// plausible checks the parsed header; on a stream whose direction is not
// known yet, the first plausible header decides it.
func (s *Stream) plausible() bool {
	if !s.DirKnown {
		if !s.h.Plausible(s.h.Response) {
			return false
		}
		s.Response, s.DirKnown = s.h.Response, true
		return true
	}
	return s.h.Plausible(s.Response)
}

func (s *Stream) begin() {
	s.inBody = true
	s.need = int(s.h.Length)
	s.lost = false
	s.trimBody()
	if s.compressed() {
		s.keep = s.cfg.MaxCompressed
	} else {
		s.keep = s.cfg.MaxPrefix
	}
}

func (s *Stream) compressed() bool {
	return s.h.Flags&FlagCompression != 0 && s.h.Version < 5 && s.Compression != CompressionNone
}

// finish fills f for the frame whose (kept) body is b.
func (s *Stream) finish(f *Frame, b []byte) {
	s.inBody = false
	full := int(s.h.Length)
	// Field by field: cheaper than zeroing and copying the whole struct
	// on the per-frame path.
	f.Header = s.h
	f.Body = b
	f.Partial = len(b) < full || s.lost
	f.Lost = s.lost
	f.Compressed = false
	f.BadCompression = false
	f.Start = s.start
	f.End = s.ts
	f.Segments = s.segs
	s.lost = false
	s.stats.Frames++
	s.stats.FrameBytes += uint64(int(s.h.Size) + full)
	if f.Partial && !f.Lost {
		s.stats.Oversized++
	}
	if s.compressed() {
		f.Compressed = true
		if f.Partial {
			f.BadCompression = true
			f.Body = nil
			s.trimBody()
			return
		}
		out, ok := s.decompress(b)
		s.trimBody() // b was the compressed body: f.Body is out
		if !ok {
			s.stats.DecompressErr++
			f.BadCompression = true
			f.Partial = true
			f.Body = nil
			return
		}
		f.Body = out
	}
}

func (s *Stream) decompress(b []byte) ([]byte, bool) {
	// A buffer for the largest output the body can claim under the
	// algorithms in question; none when no claim is possible (the
	// decompressors then fail without writing).
	limit, need := s.cfg.MaxDecompressed, 0
	if s.Compression != CompressionSnappy {
		if n, err := lz4Claim(b, limit); err == nil {
			need = n
		}
	}
	if s.Compression != CompressionLZ4 {
		if n, err := snappyClaim(b, limit); err == nil {
			need = max(need, n)
		}
	}
	var dst []byte
	switch {
	case need == 0:
	case need <= smallKept:
		if s.out == nil {
			s.out = make([]byte, 0, smallKept)
		}
		dst = s.out[:0]
	default:
		s.lentOut = lend(need)
		dst = (*s.lentOut)[:0]
	}
	var out []byte
	var err error
	switch s.Compression {
	case CompressionLZ4:
		out, err = DecompressLZ4(dst, b, limit)
	case CompressionSnappy:
		out, err = DecompressSnappy(dst, b, limit)
	default:
		// Not negotiated in the capture: try lz4, then snappy, and pin the
		// first that decodes this body exactly.
		if out, err = DecompressLZ4(dst, b, limit); err == nil {
			s.Compression = CompressionLZ4
		} else if out, err = DecompressSnappy(dst, b, limit); err == nil {
			s.Compression = CompressionSnappy
		}
	}
	return out, err == nil
}

// resync hunts the input for a frame boundary. A candidate header must be
// plausible and so must the header that follows its body, or its body must
// end exactly where the segment ends (writers send whole frames, so segment
// ends are likely boundaries), or it must start the segment. Returns true
// once in sync.
func (s *Stream) resync() bool {
	in := s.in
	atStart := len(in) == s.inLen
	for o := 0; o < len(in); o++ {
		if len(in)-o < HeaderLen {
			// Too short to check; a segment that starts with what may be a
			// header is taken tentatively (the header check follows).
			if o == 0 && atStart && s.firstByte(in[0]) {
				break
			}
			continue
		}
		if layout := s.segmentCandidate(in[o:]); layout != 0 {
			s.stats.SkippedBytes += uint64(o)
			s.stats.Syncs++
			s.seg = layout
			s.raw = in[o:]
			s.in = nil
			s.segSynced = true
			s.synced = false
			return false
		}
		if s.candidate(in[o:], o == 0 && atStart) {
			s.stats.SkippedBytes += uint64(o)
			s.stats.Syncs++
			s.synced = true
			s.in = in[o:]
			return true
		}
	}
	if len(in) > 0 && len(in) < HeaderLen && atStart && s.firstByte(in[0]) {
		s.stats.Syncs++
		s.synced = true
		return true
	}
	s.stats.SkippedBytes += uint64(len(in))
	s.in = nil
	return false
}

func (s *Stream) firstByte(b byte) bool {
	return KnownVersion(b&0x7F) && (!s.DirKnown || (b&0x80 != 0) == s.Response)
}

func (s *Stream) candidate(b []byte, segStart bool) bool {
	var h Header
	n := ParseHeader(b, &h)
	if n <= 0 {
		return false
	}
	resp := s.Response
	if !s.DirKnown {
		resp = h.Response
	}
	if !h.Plausible(resp) {
		return false
	}
	end := n + int(h.Length)
	switch {
	case end == len(b):
	case end < len(b):
		var next Header
		m := ParseHeader(b[end:], &next)
		if m == 0 {
			// The successor header is cut by the segment end: its first
			// byte must at least carry the same version and direction.
			if b[end]&0x7F != h.Version || (b[end]&0x80 != 0) != resp {
				return false
			}
		} else if m < 0 || !next.Plausible(resp) || next.Version != h.Version {
			return false
		}
	default:
		if !segStart {
			return false
		}
	}
	if !s.DirKnown {
		s.Response = resp
		s.DirKnown = true
	}
	return true
}

// segmentCandidate reports whether b starts with a v5 segment header whose
// CRC24 checks (and whose payload CRC32 checks when the payload is in b),
// and which layout it has.
func (s *Stream) segmentCandidate(b []byte) uint8 {
	var h SegmentHeader
	for _, lz := range [2]bool{false, true} {
		n := ParseSegmentHeader(b, lz, &h)
		if n <= 0 || h.Length == 0 {
			continue
		}
		if end := n + h.Length + 4; end <= len(b) {
			if SegmentCrc32(b[n:n+h.Length]) != binary.LittleEndian.Uint32(b[n+h.Length:end]) {
				continue
			}
		}
		if lz {
			return segLZ4
		}
		return segPlain
	}
	return 0
}

// nextSegment reads the next v5 segment from the fed bytes and makes its
// payload the envelope layer's input. It returns false when more bytes are
// needed.
func (s *Stream) nextSegment() bool {
	for {
		if !s.segSynced && !s.huntSegment() {
			return false
		}
		lz := s.seg == segLZ4
		hs := 6
		if lz {
			hs = 8
		}
		if !s.inSeg {
			var hb []byte
			if s.shN == 0 && len(s.raw) >= hs {
				s.segStarted++
				hb = s.raw[:hs]
				s.raw = s.raw[hs:]
			} else {
				if len(s.raw) == 0 {
					return false
				}
				if s.shN == 0 {
					s.segStarted++
				}
				c := copy(s.shBuf[s.shN:hs], s.raw)
				s.shN += c
				s.raw = s.raw[c:]
				if s.shN < hs {
					return false
				}
				hb = s.shBuf[:hs]
				s.shN = 0
			}
			if ParseSegmentHeader(hb, lz, &s.sh) < 0 {
				s.stats.SegmentErrors++
				s.segSynced = false
				s.dropFrame()
				continue
			}
			s.inSeg = true
			s.segNeed = s.sh.Length + 4
			s.segBuf = s.segBuf[:0]
		}
		var seg []byte
		if len(s.segBuf) == 0 && len(s.raw) >= s.segNeed {
			seg = s.raw[:s.segNeed]
			s.raw = s.raw[s.segNeed:]
		} else {
			take := s.segNeed - len(s.segBuf)
			if take > len(s.raw) {
				take = len(s.raw)
			}
			s.segBuf = append(s.segBuf, s.raw[:take]...)
			s.raw = s.raw[take:]
			if len(s.segBuf) < s.segNeed {
				return false
			}
			seg = s.segBuf
		}
		s.inSeg = false
		payload := seg[:len(seg)-4]
		if SegmentCrc32(payload) != binary.LittleEndian.Uint32(seg[len(seg)-4:]) {
			// The header checked, so the next segment starts right after
			// this one; only this payload is lost.
			s.stats.SegmentErrors++
			s.dropFrame()
			s.synced = false
			continue
		}
		if lz && s.sh.Uncompressed > 0 {
			if s.lentSeg != nil && len(s.in) == 0 { // the previous payload is all read
				giveBack(s.lentSeg)
				s.lentSeg = nil
			}
			var out []byte
			if n := s.sh.Uncompressed; n <= smallKept {
				if s.segOut == nil {
					s.segOut = make([]byte, smallKept)
				}
				out = s.segOut[:n]
			} else {
				s.lentSeg = lend(n)
				out = (*s.lentSeg)[:n]
			}
			n, err := lz4.UncompressBlock(payload, out)
			if err != nil || n != s.sh.Uncompressed {
				s.stats.DecompressErr++
				s.dropFrame()
				s.synced = false
				continue
			}
			payload = out[:n]
		}
		s.stats.Segments++
		if s.sh.SelfContained {
			s.dropFrame()
			s.synced = true
		} else if !s.synced {
			// Only the first slice of a large envelope can be picked up:
			// it starts with a header whose frame outgrows this payload.
			n := ParseHeader(payload, &s.h)
			if n > 0 && s.plausible() && n+int(s.h.Length) > len(payload) {
				s.synced = true
			} else {
				s.stats.SkippedBytes += uint64(len(payload))
				continue
			}
		}
		s.in = payload
		return true
	}
}

// huntSegment looks for a v5 segment header in the fed bytes.
func (s *Stream) huntSegment() bool {
	for o := 0; o+6 <= len(s.raw); o++ {
		if layout := s.segmentCandidate(s.raw[o:]); layout != 0 {
			s.seg = layout
			s.stats.SkippedBytes += uint64(o)
			s.stats.Syncs++
			s.raw = s.raw[o:]
			s.segSynced = true
			s.inSeg, s.shN = false, 0
			return true
		}
	}
	s.stats.SkippedBytes += uint64(len(s.raw))
	s.raw = nil
	return false
}
