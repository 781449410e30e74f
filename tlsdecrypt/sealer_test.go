package tlsdecrypt

import (
	"bytes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"
)

// sealer builds TLS 1.3 records from known secrets, as a TLS stack would,
// for tests and fuzzing that need records to authenticate. Its key
// schedule uses the package's own derivation, which the crypto/tls and
// OpenSSL transcripts check against two real stacks.
type sealer struct {
	s   *suite
	cr  [32]byte
	sec [numLabels][]byte
	dir [2]struct {
		aead   cipher.AEAD
		iv     []byte
		seq    uint64
		secret []byte
	}
}

func newSealer(tb testing.TB, id uint16, seed byte) *sealer {
	s := &sealer{s: findSuite(versionTLS13, id)}
	for i := range s.cr {
		s.cr[i] = seed + byte(i)
	}
	for l := LabelClientHandshake; l < numLabels; l++ {
		s.sec[l] = bytes.Repeat([]byte{seed ^ byte(0x10*l)}, s.s.hashLen)
	}
	return s
}

func (s *sealer) keylog() string {
	var b strings.Builder
	for l := LabelClientHandshake; l < numLabels; l++ {
		fmt.Fprintf(&b, "%s %x %x\n", l, s.cr, s.sec[l])
	}
	return b.String()
}

func record(typ byte, body []byte) []byte {
	r := []byte{typ, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(r[3:], uint16(len(body)))
	return append(r, body...)
}

func handshakeMsg(typ byte, body []byte) []byte {
	return append([]byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
}

// clientHello is a minimal ClientHello record offering the suite.
func (s *sealer) clientHello() []byte {
	b := append([]byte{3, 3}, s.cr[:]...)
	b = append(b, 0, 0, 2, byte(s.s.id>>8), byte(s.s.id), 1, 0, 0, 0)
	r := record(ctHandshake, handshakeMsg(1, b))
	r[2] = 1 // record version 3.1, as stacks send their first hello
	return r
}

// serverHello is a TLS 1.3 ServerHello record choosing the suite.
func (s *sealer) serverHello() []byte {
	b := append([]byte{3, 3}, bytes.Repeat([]byte{0x5e}, 32)...)
	b = append(b, 0, byte(s.s.id>>8), byte(s.s.id), 0, 0, 6, 0, 43, 0, 2, 3, 4)
	return record(ctHandshake, handshakeMsg(2, b))
}

// use sets role's keys from a traffic secret.
func (s *sealer) use(role int, secret []byte) {
	d := &s.dir[role]
	d.secret = secret
	key, _ := expandLabel(s.s.hash, secret, "key", s.s.keyLen)
	d.iv, _ = expandLabel(s.s.hash, secret, "iv", 12)
	d.aead, _ = newAEAD(s.s.kind, key)
	d.seq = 0
}

func (s *sealer) update(role int) {
	next, _ := expandLabel(s.s.hash, s.dir[role].secret, "traffic upd", s.s.hashLen)
	s.use(role, next)
}

// seal protects content of type typ, with pad zero bytes of padding.
func (s *sealer) seal(role int, typ byte, content []byte, pad int) []byte {
	d := &s.dir[role]
	inner := append(append(bytes.Clone(content), typ), make([]byte, pad)...)
	hdr := []byte{ctAppData, 3, 3, 0, 0}
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(inner)+16))
	nonce := bytes.Clone(d.iv)
	for i := range 8 {
		nonce[4+i] ^= byte(d.seq >> (56 - 8*i))
	}
	d.seq++
	return d.aead.Seal(hdr, nonce, inner, hdr)
}

// TestHandBuiltTLS13 drives the TLS 1.3 record layer with records built
// from known secrets, for each suite: handshake messages split across
// records and packed into one, padding, session tickets, a KeyUpdate each
// way (one asking the peer to update too), compatibility ChangeCipherSpecs.
func TestHandBuiltTLS13(t *testing.T) {
	for _, id := range []uint16{0x1301, 0x1302, 0x1303} {
		t.Run(SuiteName(id), func(t *testing.T) {
			s := newSealer(t, id, 7)
			var wire []write
			var sent [2][]byte
			add := func(role int, b []byte) { wire = append(wire, write{Dir(role), b}) }
			app := func(role int, msg string, pad int) {
				sent[role] = append(sent[role], msg...)
				add(role, s.seal(role, ctAppData, []byte(msg), pad))
			}
			ccs := record(ctCCS, []byte{1})
			add(client, s.clientHello())
			add(server, append(s.serverHello(), ccs...))
			s.use(server, s.sec[LabelServerHandshake])
			s.use(client, s.sec[LabelClientHandshake])
			fin := handshakeMsg(20, bytes.Repeat([]byte{0xf1}, s.s.hashLen))
			flight := append(append(handshakeMsg(8, []byte{0, 0}), handshakeMsg(11, make([]byte, 700))...), handshakeMsg(15, make([]byte, 80))...)
			add(server, s.seal(server, ctHandshake, flight[:300], 0)) // a Certificate split across records
			add(server, append(s.seal(server, ctHandshake, flight[300:], 10), s.seal(server, ctHandshake, fin, 0)...))
			s.use(server, s.sec[LabelServerTraffic0])
			app(server, "0.5-RTT data", 0)
			add(client, ccs)
			add(client, s.seal(client, ctHandshake, fin, 3))
			s.use(client, s.sec[LabelClientTraffic0])
			app(client, "STARTUP", 0)
			add(server, s.seal(server, ctHandshake, handshakeMsg(4, make([]byte, 60)), 0)) // NewSessionTicket
			app(server, "READY", 100)
			add(client, s.seal(client, ctHandshake, handshakeMsg(24, []byte{1}), 0)) // KeyUpdate, update_requested
			s.update(client)
			app(client, "QUERY after the client's update", 0)
			add(server, s.seal(server, ctHandshake, handshakeMsg(24, []byte{0}), 0))
			s.update(server)
			app(server, "RESULT after the server's", 0)
			app(client, strings.Repeat("x", 1<<14), 0) // a full record
			add(client, s.seal(client, ctAlert, []byte{1, 0}, 0))

			kl := NewKeyLog(0)
			kl.ReadFrom(strings.NewReader(s.keylog()))
			for seed := range uint64(4) {
				tr := &transcript{writes: wire}
				c, got, _ := decryptAll(t, kl, tr.segments(seed))
				st := c.Stats()
				checkConsistent(t, st)
				if st.Status != StatusDecrypting || st.Dirs[0].KeyUpdates != 1 || st.Dirs[1].KeyUpdates != 1 || st.Dirs[0].Alerts != 1 {
					t.Fatalf("%s: %+v", st.Reason(), st.Dirs)
				}
				for d := range got {
					if !bytes.Equal(got[d], sent[d]) {
						t.Errorf("%v: got %q..., sent %q...", Dir(d), got[d][:min(40, len(got[d]))], sent[d][:min(40, len(sent[d]))])
					}
				}
			}
		})
	}
}

// FuzzSealed feeds records that authenticate, built from the input: the
// fuzzer chooses what they contain (handshake messages, application data,
// alerts, padding, any content type) and when the builder changes keys,
// so the decrypted-content paths are explored, not just the parsing of
// headers. Invariants: no panic; counters consistent; every plaintext
// delivered is one that was sealed as application data, in order.
func FuzzSealed(f *testing.F) {
	// seal returns the op sealing content: kind 0 handshake, 3 application data, 4 alert.
	seal := func(role, kind byte, content []byte) []byte {
		return append([]byte{kind<<4 | role, byte(len(content))}, content...)
	}
	fin := handshakeMsg(20, make([]byte, 32))
	var ops []byte
	ops = append(ops, seal(1, 0, fin)...)
	ops = append(ops, 0x11) // server application keys
	ops = append(ops, seal(1, 3, []byte("READY"))...)
	ops = append(ops, 0x60) // client ChangeCipherSpec
	ops = append(ops, seal(0, 0, fin)...)
	ops = append(ops, 0x10)
	ops = append(ops, seal(0, 3, []byte("QUERY"))...)
	ops = append(ops, seal(0, 0, handshakeMsg(24, []byte{1}))...)
	ops = append(ops, 0x20) // client key update
	ops = append(ops, seal(1, 0, handshakeMsg(4, make([]byte, 20)))...)
	ops = append(ops, seal(0, 3, []byte("after"))...)
	ops = append(ops, seal(0, 4, []byte{1, 0})...)
	f.Add(ops, uint16(0x0100)) // id%3 picks the suite: AES-128-GCM
	f.Add(ops, uint16(0x0001)) // AES-256-GCM
	f.Add(append(ops, 0x71, 3, 0x17, 3, 3), uint16(0x0002))
	f.Fuzz(func(t *testing.T, ops []byte, id uint16) {
		s := newSealer(t, []uint16{0x1301, 0x1302, 0x1303}[id%3], byte(id>>8))
		kl := NewKeyLog(0)
		kl.ReadFrom(strings.NewReader(s.keylog()))
		var wire []write
		var sealed [2][][]byte
		wire = append(wire, write{FromClient, s.clientHello()}, write{FromServer, s.serverHello()})
		s.use(server, s.sec[LabelServerHandshake])
		s.use(client, s.sec[LabelClientHandshake])
		// Each op: a byte (low bit: role; bits 4-6: what), then for
		// sealing ops a length byte and that many content bytes.
		for len(ops) > 0 {
			op := ops[0]
			role := int(op & 1)
			ops = ops[1:]
			switch op >> 4 & 7 {
			case 0, 3, 4, 5: // seal: handshake, application data, alert, any type
				if len(ops) == 0 {
					break
				}
				n := min(int(ops[0]), len(ops)-1)
				content := ops[1 : 1+n]
				ops = ops[1+n:]
				typ := map[byte]byte{0: ctHandshake, 3: ctAppData, 4: ctAlert, 5: op & 0x0e << 3}[op>>4&7]
				if typ == ctAppData && n > 0 {
					sealed[role] = append(sealed[role], content)
				}
				wire = append(wire, write{Dir(role), s.seal(role, typ, content, int(op>>1&3)*5)})
			case 1: // application keys
				l := LabelClientTraffic0
				if role == server {
					l = LabelServerTraffic0
				}
				s.use(role, s.sec[l])
			case 2: // next traffic secret
				s.update(role)
			case 6: // a compatibility ChangeCipherSpec
				wire = append(wire, write{Dir(role), record(ctCCS, []byte{1})})
			case 7: // raw bytes
				if len(ops) == 0 {
					break
				}
				n := min(int(ops[0]), len(ops)-1)
				wire = append(wire, write{Dir(role), bytes.Clone(ops[1 : 1+n])})
				ops = ops[1+n:]
			}
		}
		next := [2]int{}
		c := NewConn(kl, func(info RecordInfo, p []byte) {
			want := sealed[info.Dir]
			for next[info.Dir] < len(want) && !bytes.Equal(want[next[info.Dir]], p) {
				next[info.Dir]++ // sealed records may be skipped, never invented
			}
			if next[info.Dir] == len(want) {
				t.Fatalf("%v: delivered %q, never sealed as application data in this order", info.Dir, p)
			}
			next[info.Dir]++
		})
		for i, w := range wire {
			cut := len(w.b) / (1 + i%3)
			c.Feed(w.dir, w.b[:cut], int64(i))
			c.Feed(w.dir, w.b[cut:], int64(i))
		}
		st := c.Stats()
		checkConsistent(t, st)
		if testing.Verbose() {
			t.Logf("%s %+v", st.Reason(), st.Dirs)
		}
	})
}
