package tlsdecrypt

import "encoding/binary"

// Record decryption: the AEAD nonce and additional data of TLS 1.2 and
// 1.3, the inner content type, and what each decrypted record means.

// decrypt opens a protected record and acts on its content.
func (c *Conn) decrypt(r int, rec []byte, inPlace bool, m *recMeta) {
	h := &c.h[r]
	k := c.keys.dir[r]
	body := rec[5:]
	var ct, aad []byte
	switch {
	case c.suite.tls13:
		if len(body) < 17 || len(body) > 1<<14+256 {
			c.authFail(r, rec)
			return
		}
		k.seqNonce(h.seq)
		ct, aad = body, rec[:5]
	default:
		explicit := 0
		if c.suite.kind == aesGCM {
			explicit = 8
		}
		if len(body) < explicit+16 {
			c.authFail(r, rec)
			return
		}
		if explicit > 0 {
			copy(k.nonce[4:], body[:8])
		} else {
			k.seqNonce(h.seq)
		}
		ct = body[explicit:]
		binary.BigEndian.PutUint64(k.aad[:8], h.seq)
		k.aad[8], k.aad[9], k.aad[10] = rec[0], rec[1], rec[2]
		binary.BigEndian.PutUint16(k.aad[11:], uint16(len(ct)-16))
		aad = k.aad[:]
	}
	var dst []byte
	if inPlace {
		dst = ct[:0]
	} else {
		dst = h.scratch(len(ct))
	}
	plain, err := k.aead.Open(dst, k.nonce[:], ct, aad)
	if err != nil {
		if c.suite.tls13 && r == client && h.phase == 1 && !h.opened && h.early < maxEarly {
			// TLS 1.3 0-RTT data, under the early traffic secret, comes
			// before the client's first handshake record: skipped.
			h.early++
			h.skip(len(rec))
			h.c.SkippedRecords++
			return
		}
		c.authFail(r, rec)
		return
	}
	h.opened = true
	seq := h.seq
	h.seq++
	if !c.verified {
		c.verified = true
		c.learn()
	}
	typ := rec[0]
	if c.suite.tls13 {
		// The inner plaintext: content, its real type, zero padding.
		i := len(plain) - 1
		for i >= 0 && plain[i] == 0 {
			i--
		}
		if i < 0 {
			c.dirFail(r, StatusMalformed)
			h.skip(len(rec))
			h.c.SkippedRecords++
			return
		}
		typ, plain = plain[i], plain[:i]
	}
	h.done(rec)
	switch typ {
	case ctAppData:
		if c.suite.tls13 && h.phase != 2 || len(plain) == 0 {
			break // not allowed under handshake keys; or empty (allowed, and nothing to deliver)
		}
		h.c.AppRecords++
		h.c.PlainBytes += uint64(len(plain))
		info := RecordInfo{
			Dir: Dir(r) ^ c.swap, WireLen: len(rec),
			Start: m.start, End: m.end, Segments: int(m.segs),
			StartTS: m.startTS, EndTS: m.endTS, Seq: seq, Late: m.late, Skipped: h.gap,
		}
		h.gap = 0
		if c.emit != nil {
			c.emit(info, plain)
		}
	case ctHandshake:
		c.handshake(r, plain, true)
	case ctAlert:
		h.c.Alerts++
	case ctCCS:
		c.renego = true // a second ChangeCipherSpec: renegotiation
		c.dirFail(r, StatusUnsupported)
	}
	if h.finished {
		h.finished = false
		h.phase, h.seq = 2, 0
		h.hs.reset()
	}
	if h.update {
		h.update = false
		c.keyUpdate(r)
	}
}

func (c *Conn) authFail(r int, rec []byte) {
	h := &c.h[r]
	h.c.AuthFailures++
	c.dirFail(r, StatusFailed)
	h.skip(len(rec))
	h.c.SkippedRecords++
}
