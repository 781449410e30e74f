package decode

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
	TCPSegments    int   // TCP segments (Feed calls) the frame spanned; not v5 segments
}

// StreamStats counts a Stream's work.
type StreamStats struct {
	Frames          uint64
	FrameBytes      uint64 // header + body bytes of frames
	SkippedBytes    uint64 // bytes discarded while hunting for a frame boundary
	Syncs           uint64 // times a boundary was found
	Desyncs         uint64 // implausible headers met while in sync
	Gaps            uint64
	Oversized       uint64 // bodies larger than the buffer limits (only a prefix was decoded)
	DecompressErr   uint64
	LostFrames      uint64 // partial frames abandoned at a resync
	V5Segments      uint64 // v5 segments decoded; not TCP segments
	V5SegmentErrors uint64 // v5 segments with a bad CRC24 (header) or CRC32 (payload)
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

	// Protocol v5 segment layer (stream_segments.go).
	segmentLayer

	stats StreamStats
}

// NewStream returns a stream decoder with the given limits.
func NewStream(cfg StreamConfig) *Stream {
	return &Stream{cfg: cfg}
}

// Init resets s for a new connection, keeping its buffers.
func (s *Stream) Init(cfg StreamConfig, response, dirKnown bool) {
	giveBack(s.lentOut)
	giveBack(s.lentSeg)
	body, out, sb, so := s.body[:0], s.out[:0], s.segBuf[:0], s.segOut
	*s = Stream{cfg: cfg, Response: response, DirKnown: dirKnown, body: body, out: out, segmentLayer: segmentLayer{segBuf: sb, segOut: so}}
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
	// Called two or three times a segment, and almost never with anything
	// lent: the test is inlined, the work is not.
	if s.lentOut != nil || s.lentSeg != nil {
		s.giveBackLent()
	}
}

func (s *Stream) giveBackLent() {
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
