package analyze

// pendingTable holds a connection's outstanding requests by stream id. It
// replaces a Go map on the per-frame path: drivers allocate stream ids from
// a small dense pool, so the id itself is an excellent hash and a lookup is
// usually one probe. Open addressing with linear probing and backward-shift
// deletion; it grows to stay at most half full and never shrinks.
type pendingTable struct {
	slots []pendingSlot
	n     int
}

type pendingSlot struct {
	used   bool
	stream int16
	p      pending
}

func (t *pendingTable) len() int { return t.n }

func (t *pendingTable) index(stream int16) int { return int(uint16(stream)) & (len(t.slots) - 1) }

// get returns the request waiting on stream, if any.
func (t *pendingTable) get(stream int16) (*pending, bool) {
	if t.n == 0 {
		return nil, false
	}
	mask := len(t.slots) - 1
	for i := t.index(stream); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			return nil, false
		}
		if s.stream == stream {
			return &s.p, true
		}
	}
}

// put stores p for stream and reports whether it replaced a request that
// was still waiting.
func (t *pendingTable) put(stream int16, p pending) bool {
	if (t.n+1)*2 > len(t.slots) {
		t.grow()
	}
	mask := len(t.slots) - 1
	for i := t.index(stream); ; i = (i + 1) & mask {
		s := &t.slots[i]
		if !s.used {
			// Field by field: a composite literal would be built in a
			// temporary and copied again.
			s.used, s.stream, s.p = true, stream, p
			t.n++
			return false
		}
		if s.stream == stream {
			s.p = p
			return true
		}
	}
}

// del removes stream, shifting later entries of its probe run back so
// lookups never need tombstones.
func (t *pendingTable) del(stream int16) {
	if t.n == 0 {
		return
	}
	mask := len(t.slots) - 1
	i := t.index(stream)
	for {
		s := &t.slots[i]
		if !s.used {
			return
		}
		if s.stream == stream {
			break
		}
		i = (i + 1) & mask
	}
	t.n--
	for j := (i + 1) & mask; ; j = (j + 1) & mask {
		s := &t.slots[j]
		if !s.used {
			break
		}
		home := t.index(s.stream)
		// Move s into the hole at i unless its home lies cyclically in (i, j].
		if (j > i && (home <= i || home > j)) || (j < i && home <= i && home > j) {
			t.slots[i] = *s
			i = j
		}
	}
	t.slots[i] = pendingSlot{}
}

func (t *pendingTable) grow() {
	old := t.slots
	// 8 slots hold 4 requests in flight: many connections need no more, and
	// a capture may hold tens of thousands of them.
	size := max(2*len(old), 8)
	t.slots = make([]pendingSlot, size)
	t.n = 0
	for i := range old {
		if old[i].used {
			t.put(old[i].stream, old[i].p)
		}
	}
}
