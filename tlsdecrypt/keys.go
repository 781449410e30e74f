package tlsdecrypt

import "crypto/cipher"

// The key schedule: which logged secret a direction needs in its phase,
// the record keys derived from it, TLS 1.3 KeyUpdate, and TLS 1.2 sessions
// taught to the key log.

// connKeys holds a connection's secrets and keys two pointers away from
// Conn, so that no formatting of a Conn shows them (see table).
type connKeys struct {
	sec *secretSet  // this connection's key log entry
	dir [2]*dirKeys // by role
}

// dirKeys is one direction's record protection.
type dirKeys struct {
	aead   cipher.AEAD
	iv     [12]byte
	nonce  [12]byte
	aad    [13]byte
	secret [48]byte // TLS 1.3: the current traffic secret, for KeyUpdate
	slen   int
}

// seqNonce sets the nonce to the IV XOR the sequence number.
func (k *dirKeys) seqNonce(seq uint64) {
	k.nonce = k.iv
	for i := range 8 {
		k.nonce[4+i] ^= byte(seq >> (56 - 8*i))
	}
}

// label is the key log secret direction r needs in its current phase.
func (c *Conn) label(r int) Label {
	h := &c.h[r]
	switch {
	case !c.suite.tls13:
		return LabelClientRandom
	case h.phase == 1 && r == client:
		return LabelClientHandshake
	case h.phase == 1:
		return LabelServerHandshake
	case r == client:
		return LabelClientTraffic0
	}
	return LabelServerTraffic0
}

// secret returns the logged secret l of this connection, looking the key
// log up again only if it changed since the last try.
func (c *Conn) secret(l Label) []byte {
	if c.keys == nil {
		c.keys = &connKeys{sec: new(secretSet)}
	}
	sec := c.keys.sec
	if sec.s[l].n == 0 {
		if g := c.kl.Generation(); !c.looked || g != c.gen {
			c.looked, c.gen = true, g
			c.kl.lookupInto(&c.cr, sec)
			if l == LabelClientRandom && sec.s[l].n == 0 && c.resumed {
				// A resumed session: its master secret is the original's.
				if !c.kl.lookupSession(&c.sid, &sec.s[l]) && c.ticket.kind != 0 {
					c.kl.lookupSession(&c.ticket, &sec.s[l])
				}
			}
		}
	}
	if sec.s[l].n == 0 {
		return nil
	}
	return sec.s[l].bytes()
}

// installKeys sets up direction r's keys for its phase. It returns false if
// the key log has no secret for it yet (waitKeys) or the secret is unusable
// (the direction is given up).
func (c *Conn) installKeys(r int) bool {
	h := &c.h[r]
	s := c.secret(c.label(r))
	if s == nil {
		h.waitKeys = true
		return false
	}
	h.waitKeys = false
	k := c.keys.dir[r]
	if k == nil {
		k = new(dirKeys)
		c.keys.dir[r] = k
	}
	var key, iv []byte
	if c.suite.tls13 {
		if len(s) != c.suite.hashLen {
			c.dirFail(r, StatusFailed)
			return false
		}
		k.slen = copy(k.secret[:], s)
		var ok bool
		if key, iv, ok = c.trafficKeys(k.secret[:k.slen]); !ok {
			c.dirFail(r, StatusUnsupported)
			return false
		}
	} else {
		key, iv = keys12(c.suite, s, c.cr[:], c.sr[:], r == server)
	}
	aead, err := newAEAD(c.suite.kind, key)
	if err != nil {
		c.dirFail(r, StatusUnsupported) // refused by the crypto module (FIPS 140-only mode)
		return false
	}
	k.aead = aead
	k.iv = [12]byte{}
	copy(k.iv[:], iv)
	copy(k.nonce[:], iv) // TLS 1.2 GCM: the implicit part stays put
	h.keyed = h.phase
	return true
}

// trafficKeys derives a TLS 1.3 key and IV from a traffic secret.
func (c *Conn) trafficKeys(secret []byte) (key, iv []byte, ok bool) {
	key, err1 := expandLabel(c.suite.hash, secret, "key", c.suite.keyLen)
	iv, err2 := expandLabel(c.suite.hash, secret, "iv", 12)
	return key, iv, err1 == nil && err2 == nil
}

// keyUpdate moves direction r to its next TLS 1.3 traffic secret.
func (c *Conn) keyUpdate(r int) {
	h := &c.h[r]
	k := c.keys.dir[r]
	next, err := expandLabel(c.suite.hash, k.secret[:k.slen], "traffic upd", c.suite.hashLen)
	var key, iv []byte
	ok := err == nil
	if ok {
		copy(k.secret[:], next)
		key, iv, ok = c.trafficKeys(k.secret[:k.slen])
	}
	var aead cipher.AEAD
	if ok {
		aead, err = newAEAD(c.suite.kind, key)
		ok = err == nil
	}
	if !ok {
		c.dirFail(r, StatusUnsupported)
		return
	}
	k.aead = aead
	copy(k.iv[:], iv)
	h.seq = 0
	h.c.KeyUpdates++
}

// learn gives the key log the master secret of the TLS 1.2 session this
// connection made or was issued a ticket for, once a record has shown the
// secret to be right.
func (c *Conn) learn() {
	if !c.toLearn || !c.verified {
		return
	}
	c.toLearn = false
	m := c.keys.sec.s[LabelClientRandom].bytes()
	if c.newSID.kind != 0 && !c.resumed {
		c.kl.learnSession(&c.newSID, m)
	}
	if c.newTicket.kind != 0 {
		c.kl.learnSession(&c.newTicket, m)
	}
}
