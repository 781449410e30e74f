package decode

// The envelope layer of a Stream: headers, bodies kept whole or as a prefix,
// v3/v4 decompression, and the hunt for a frame boundary after lost bytes.

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
	f.TCPSegments = s.segs
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
