package decode

import (
	"encoding/binary"

	"github.com/pierrec/lz4/v4"
)

// segmentLayer is the state of the protocol v5 segment layer of a Stream.
// When seg is set, fed bytes go to raw and the envelope layer above reads
// segment payloads.
type segmentLayer struct {
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
}

// Segment layouts of protocol v5.
const (
	segPlain = 1
	segLZ4   = 2
)

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
				s.stats.V5SegmentErrors++
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
			s.stats.V5SegmentErrors++
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
		s.stats.V5Segments++
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
