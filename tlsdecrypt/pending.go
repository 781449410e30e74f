package tlsdecrypt

import "encoding/binary"

// Records that wait for a hello or for keys: kept up to pendMax per
// direction, handled in capture order once they can be, and counted when
// dropped over the bound so that decryption can resume after them.

// enqueue keeps a record that must wait, or drops it over the bound.
func (c *Conn) enqueue(r int, rec []byte, m *recMeta) {
	h := &c.h[r]
	if h.pendOff > 0 {
		h.pend = h.pend[:copy(h.pend, h.pend[h.pendOff:])]
		h.pendOff = 0
	}
	if h.dropping || len(h.pend)+metaLen+len(rec) > pendMax {
		h.dropping = true
		if rec[0] == ctCCS {
			h.dropCCS, h.dropAll = true, 0
		} else {
			h.dropAll++
			if rec[0] == ctAppData {
				h.drop23++
			}
		}
		h.dropGap += uint64(len(rec))
		h.c.SkippedBytes += uint64(len(rec))
		h.c.SkippedRecords++
		return
	}
	h.pend = binary.LittleEndian.AppendUint64(h.pend, uint64(m.startTS))
	h.pend = binary.LittleEndian.AppendUint64(h.pend, uint64(m.endTS))
	h.pend = binary.LittleEndian.AppendUint32(h.pend, uint32(m.segs))
	h.pend = append(h.pend, rec...)
	h.pendBytes += len(rec)
	h.pendRecs++
}

// head returns the first waiting record of h.
func (h *half) head() ([]byte, recMeta) {
	p := h.pend[h.pendOff:]
	m := recMeta{
		startTS: int64(binary.LittleEndian.Uint64(p)),
		endTS:   int64(binary.LittleEndian.Uint64(p[8:])),
		segs:    int32(binary.LittleEndian.Uint32(p[16:])),
		start:   -1, end: -1, late: true,
	}
	p = p[metaLen:]
	return p[:5+int(binary.BigEndian.Uint16(p[3:]))], m
}

// drain handles waiting records of both directions until none can go on,
// the earliest captured first, then resumes directions that dropped
// records over the bound.
func (c *Conn) drain() {
	c.kick = false
	if c.draining {
		return
	}
	c.draining = true
	for {
		best := -1
		for r := range c.h {
			h := &c.h[r]
			if h.pendRecs == 0 || h.blocked {
				continue
			}
			if best < 0 || c.headTS(r) < c.headTS(best) {
				best = r
			}
		}
		if best < 0 {
			break
		}
		h := &c.h[best]
		rec, m := h.head()
		h.pendBytes -= len(rec)
		h.pendRecs--
		if !c.process(best, rec, true, &m) {
			h.pendBytes += len(rec)
			h.pendRecs++
			h.blocked = true
		} else if h.pend != nil {
			h.pendOff += metaLen + len(rec)
			if h.pendRecs == 0 {
				h.pend, h.pendOff = nil, 0
			}
		}
		if c.kick {
			c.kick = false
			c.h[0].blocked, c.h[1].blocked = false, false
		}
	}
	for r := range c.h {
		h := &c.h[r]
		h.blocked = false
		if h.dropping && h.pendRecs == 0 {
			c.resume(r)
		}
	}
	c.draining = false
}

func (c *Conn) headTS(r int) int64 {
	h := &c.h[r]
	return int64(binary.LittleEndian.Uint64(h.pend[h.pendOff+8:]))
}

// resume continues a direction after the records dropped over the bound,
// if the sequence number can be known: in TLS 1.2 after its
// ChangeCipherSpec, in TLS 1.3 under application keys (a KeyUpdate among
// the dropped records will show as an authentication failure).
func (c *Conn) resume(r int) {
	h := &c.h[r]
	h.dropping = false
	switch {
	case h.st != 0:
	case c.version == versionTLS12 && h.dropCCS:
		h.phase, h.seq = 1, h.dropAll
	case c.version == versionTLS12 && h.phase == 1:
		h.seq += h.dropAll
	case c.version == versionTLS13 && h.phase == 2:
		h.seq += h.drop23
	default:
		c.dirFail(r, StatusOverflow)
	}
	h.gap += h.dropGap
	h.dropCCS, h.dropAll, h.drop23, h.dropGap = false, 0, 0, 0
}
