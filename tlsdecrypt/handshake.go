package tlsdecrypt

import (
	"crypto/sha256"
	"encoding/binary"
)

// Following the handshake: its messages across records, in the clear or
// decrypted; the hellos' randoms, version, suite and the sessions offered
// to resume; Finished and KeyUpdate under TLS 1.3.

// hrrRandom marks a ServerHello that is a HelloRetryRequest (RFC 8446 4.1.3).
var hrrRandom = [32]byte{
	0xcf, 0x21, 0xad, 0x74, 0xe5, 0x9a, 0x61, 0x11, 0xbe, 0x1d, 0x8c, 0x02, 0x1e, 0x65, 0xb8, 0x91,
	0xc2, 0xa2, 0x11, 0x16, 0x7a, 0xbb, 0x8c, 0x5e, 0x07, 0x9e, 0x09, 0xe2, 0xc8, 0xa8, 0x33, 0x9c,
}

// hsParser follows the handshake messages of one direction across
// records, collecting the start of the hellos.
type hsParser struct {
	hdr    [4]byte
	nhdr   int
	typ    uint8
	remain int    // body bytes of the current message still to come
	want   int    // body bytes of it to collect
	body   []byte // collected
}

func (p *hsParser) reset() { p.nhdr, p.remain, p.want = 0, 0, 0 }

// handshake follows the handshake messages in p, a record's plaintext.
func (c *Conn) handshake(r int, p []byte, protected bool) {
	h := &c.h[r]
	hs := &h.hs
	for len(p) > 0 {
		if hs.nhdr < 4 {
			n := copy(hs.hdr[hs.nhdr:], p)
			hs.nhdr += n
			p = p[n:]
			if hs.nhdr < 4 {
				return
			}
			hs.typ = hs.hdr[0]
			hs.remain = int(hs.hdr[1])<<16 | int(hs.hdr[2])<<8 | int(hs.hdr[3])
			hs.want = 0
			switch {
			case protected:
			case r == client && hs.typ == 1:
				hs.want = min(hs.remain, helloMax) // random, session ID, ticket
			case r == server && hs.typ == 2:
				if hs.remain > helloMax {
					c.connFail(StatusMalformed)
					return
				}
				hs.want = hs.remain
			case r == server && hs.typ == 4:
				hs.want = min(hs.remain, helloMax) // a TLS 1.2 session ticket
			}
			hs.body = hs.body[:0]
		}
		n := min(len(p), hs.remain)
		if w := hs.want - len(hs.body); w > 0 {
			hs.body = append(hs.body, p[:min(n, w)]...)
		}
		hs.remain -= n
		p = p[n:]
		if hs.remain > 0 {
			return
		}
		hs.nhdr = 0
		c.message(r, hs.typ, hs.body, protected)
		if h.st != 0 {
			return
		}
	}
}

// message acts on one complete handshake message.
func (c *Conn) message(r int, typ uint8, body []byte, protected bool) {
	h := &c.h[r]
	switch {
	case !protected && r == client && typ == 1:
		if len(body) < 34 {
			c.connFail(StatusMalformed)
			return
		}
		if !c.haveCH {
			c.clientHello(body)
			c.haveCH, c.kick = true, true
		}
		h.hs.body = nil // not needed again
	case !protected && r == server && typ == 2 && !c.haveSH:
		c.serverHello(body)
		h.hs.body = nil // not needed again
	case !protected && r == server && typ == 4 && len(body) >= 6 && c.version == versionTLS12:
		// NewSessionTicket: lifetime, ticket.
		if t := body[6:]; len(t) > 0 && len(t) == int(binary.BigEndian.Uint16(body[4:])) {
			c.newTicket = sessionKey{kind: kindTicket, b: sha256.Sum256(t)}
			c.toLearn = true
			c.learn()
		}
		h.hs.body = nil
	case protected && c.suite.tls13:
		switch typ {
		case 20: // Finished
			h.finished = h.phase == 1
		case 24: // KeyUpdate: each direction follows its own
			h.update = h.phase == 2
		}
	case protected && (typ == 1 || typ == 2):
		c.renego = true // a TLS 1.2 hello under encryption: renegotiation
		c.dirFail(r, StatusUnsupported)
	}
}

// clientHello reads the client random and what the client offers to
// resume: a session ID, a session ticket (RFC 5077).
func (c *Conn) clientHello(b []byte) {
	copy(c.cr[:], b[2:34])
	if len(b) < 35 {
		return
	}
	n := int(b[34])
	p := 35 + n
	if n == 0 || n > 32 || p > len(b) {
		return
	}
	c.sid = sessionKey{kind: kindSessionID, n: uint8(n)}
	copy(c.sid.b[:], b[35:p])
	if p+2 > len(b) {
		return
	}
	p += 2 + int(binary.BigEndian.Uint16(b[p:])) // cipher suites
	if p+1 > len(b) {
		return
	}
	p += 1 + int(b[p]) // compression methods
	if p+2 > len(b) {
		return
	}
	for ext := extensionBlock(b, p); ; {
		t, body, rest, ok := nextExtension(ext)
		if !ok {
			break
		}
		if t == 35 && len(body) > 0 { // session_ticket
			c.ticket = sessionKey{kind: kindTicket, b: sha256.Sum256(body)}
		}
		ext = rest
	}
}

// extensionBlock is a hello's extensions, whose 2-byte length is at p of b,
// cut to that length (or to b).
func extensionBlock(b []byte, p int) []byte {
	ext := b[p+2:]
	if n := int(binary.BigEndian.Uint16(b[p:])); n < len(ext) {
		ext = ext[:n]
	}
	return ext
}

// nextExtension reads the first extension of ext: its type, its body and
// what follows; ok is false when no whole extension is left.
func nextExtension(ext []byte) (typ uint16, body, rest []byte, ok bool) {
	if len(ext) < 4 {
		return 0, nil, nil, false
	}
	n := int(binary.BigEndian.Uint16(ext[2:]))
	if 4+n > len(ext) {
		return 0, nil, nil, false
	}
	return binary.BigEndian.Uint16(ext), ext[4 : 4+n], ext[4+n:], true
}

// serverHello reads the negotiated version and suite (RFC 8446 4.1.3, RFC
// 5246 7.4.1.3).
func (c *Conn) serverHello(b []byte) {
	if len(b) < 38 || 35+int(b[34])+3 > len(b) {
		c.connFail(StatusMalformed)
		return
	}
	v := binary.BigEndian.Uint16(b)
	random := [32]byte(b[2:34])
	p := 35 + int(b[34])
	id := binary.BigEndian.Uint16(b[p:])
	p += 3
	if p+2 <= len(b) {
		for ext := extensionBlock(b, p); ; {
			t, body, rest, ok := nextExtension(ext)
			if !ok {
				break
			}
			if t == 43 && len(body) == 2 { // supported_versions
				v = binary.BigEndian.Uint16(body)
			}
			ext = rest
		}
	}
	if random == hrrRandom {
		return // HelloRetryRequest: the real ServerHello follows
	}
	c.sr, c.version, c.suiteID = random, v, id
	c.haveSH, c.kick = true, true
	if n := int(b[34]); v == versionTLS12 && n > 0 && n <= 32 {
		c.newSID = sessionKey{kind: kindSessionID, n: uint8(n)}
		copy(c.newSID.b[:], b[35:35+n])
		c.resumed = c.newSID == c.sid
		c.toLearn = !c.resumed
	}
	c.suite = findSuite(v, id)
	if c.suite == nil {
		c.connFail(StatusUnsupported)
		return
	}
	if c.suite.tls13 {
		for r := range c.h {
			c.h[r].phase, c.h[r].seq = 1, 0
			c.h[r].hs.reset()
		}
	}
}
