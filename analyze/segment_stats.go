package analyze

// The batching evidence of each direction: how frames fall into segments,
// which segments could have gone out with the previous one, Nagle, and the
// ACK delays.

// dirStats is the batching evidence of one direction.
type dirStats struct {
	frames   uint64
	segments uint64    // data-bearing segments (retransmissions excluded)
	buckets  [6]uint64 // segments carrying 0 (continuation only), 1, 2–3, 4–7, 8–15, 16+ frame starts
	spanning uint64    // frames that spanned several segments
	bytes    uint64
	v5segs   uint64    // protocol v5: segments (the layer between envelopes and TCP)
	v5frames uint64    // frames that came inside v5 segments (not the STARTUP exchange before them)
	v5tcp    uint64    // data-bearing TCP segments sent once the direction spoke v5
	v5bucket [6]uint64 // TCP segments by the v5 segments starting in them
	retrans  uint64

	// Back-to-back evidence (see diagnose.go).
	lastTS           int64
	lastEnd          bool // the last segment ended on a frame boundary
	haveLast         bool
	lastStream       int16 // last request completed in the last segment (client side)
	lastReqTS        int64
	haveLastReq      bool
	frameStarts      uint64 // segments that start on a frame boundary and start a frame
	backToBack       uint64 // of those, segments that could have gone out with the previous one
	backToBackSingle uint64 // ... carrying exactly one frame
	candidate        bool   // the segment being fed may be back to back (server side: pending the request check)
	prevTS           int64  // previous segment's time, for the server-side check
	checked          bool

	// Nagle evidence: data segments sent with all earlier data acknowledged.
	ackMax      uint32 // highest ACK the peer sent for this direction's data
	ackTS       int64  // when ackMax last advanced
	haveAck     bool
	sentUnacked uint64
	sentAcked   uint64
	ackClocked  uint64
	segSeq      uint32
	segUnacked  bool
	segGap      int64

	ackDelay ackDelay // this direction's data to the peer's ACK
}

// ackDelay times one direction's data segments to the peer's ACK that
// covers them, one at a time (as TCP's own round-trip sampling does), and
// keeps the shortest. Where the capture is taken on the receiver's host it
// is the receiver's reaction (microseconds); on the sender's host it is the
// round trip to the receiver and back.
type ackDelay struct {
	end     uint32 // sequence number just past the timed segment
	at      int64
	pending bool
	min     int64 // shortest delay seen (0: none)
}

func (a *ackDelay) sent(end uint32, ts int64) {
	if !a.pending {
		a.end, a.at, a.pending = end, ts, true
	}
}

func (a *ackDelay) acked(ack uint32, ts int64) {
	if a.pending && int32(ack-a.end) >= 0 {
		a.pending = false
		if d := ts - a.at; d >= 0 && (a.min == 0 || d < a.min) {
			a.min = max(d, 1)
		}
	}
}

func bucket(n int) int {
	switch {
	case n == 0:
		return 0
	case n == 1:
		return 1
	case n <= 3:
		return 2
	case n <= 7:
		return 3
	case n <= 15:
		return 4
	}
	return 5
}

// distribution labels the six buckets of bucket.
func distribution(b *[6]uint64) map[string]uint64 {
	return map[string]uint64{"0": b[0], "1": b[1], "2-3": b[2], "4-7": b[3], "8-15": b[4], "16+": b[5]}
}

// segmentStats is one direction's evidence as the report gives it.
func segmentStats(w *dirStats) SegmentStats {
	var v5 *V5SegmentStats
	if w.v5segs > 0 {
		v5 = &V5SegmentStats{
			Segments:             w.v5segs,
			FramesPerV5Segment:   round2(float64(w.v5frames) / float64(w.v5segs)),
			V5SegmentsPerSegment: round2(float64(w.v5segs) / float64(w.v5tcp)),
			Distribution:         distribution(&w.v5bucket),
		}
	}
	return SegmentStats{
		V5:                 v5,
		Frames:             w.frames,
		Segments:           w.segments,
		FramesPerSegment:   round2(fps(w)),
		Distribution:       distribution(&w.buckets),
		SpanningFrames:     w.spanning,
		Bytes:              w.bytes,
		Retransmits:        w.retrans,
		BackToBack:         w.backToBack,
		BackToBackSingle:   w.backToBackSingle,
		FrameStartSegments: w.frameStarts,
		SentUnacked:        w.sentUnacked,
		SentAcked:          w.sentAcked,
		AckClocked:         w.ackClocked,
	}
}
