package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"strings"
	"testing"
)

func keyLogOf(t testing.TB, tr *transcript) *KeyLog {
	kl := NewKeyLog(0)
	if _, err := kl.ReadFrom(bytes.NewReader(tr.keylog.Bytes())); err != nil {
		t.Fatal(err)
	}
	return kl
}

// appWrite is the index of the write of d that carried an application
// message of the given size (crypto/tls makes one record of a small write).
func appWrite(tr *transcript, d Dir, size int) int {
	for i, w := range tr.writes {
		if w.dir == d && w.b[0] == ctAppData && len(w.b) > size+5 && len(w.b) <= size+5+8+16+1 {
			return i
		}
	}
	panic("no such write")
}

// firstAppWrite is the index of the write carrying d's first message of
// defaultSteps.
func firstAppWrite(tr *transcript, d Dir) int {
	for _, s := range defaultSteps {
		if s.dir == d {
			return appWrite(tr, d, s.size)
		}
	}
	panic("no message")
}

func TestFlippedByte(t *testing.T) {
	certs(t)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(VersionName(v), func(t *testing.T) {
			tr := exchange(t, &tls.Config{InsecureSkipVerify: true, MaxVersion: v},
				&tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
			i := appWrite(tr, FromClient, 1024) // the second client message
			w := tr.writes[i].b
			w[len(w)/2] ^= 0x40
			c, got, _ := decryptAll(t, keyLogOf(t, tr), tr.segments(2))
			s := c.Stats()
			checkConsistent(t, s)
			cs := s.Dirs[FromClient]
			if s.Status != StatusFailed || cs.Status != StatusFailed || cs.AuthFailures != 1 || !strings.Contains(s.Reason(), "authentication") {
				t.Fatalf("%s: %+v", s.Reason(), cs)
			}
			if len(got[FromClient]) != defaultSteps[0].size || !bytes.HasPrefix(tr.sent[FromClient], got[FromClient]) {
				t.Errorf("client plaintext: %d bytes, prefix of what was sent: %v", len(got[FromClient]), bytes.HasPrefix(tr.sent[FromClient], got[FromClient]))
			}
			if ss := s.Dirs[FromServer]; ss.Status != StatusDecrypting || !bytes.Equal(got[FromServer], tr.sent[FromServer]) {
				t.Errorf("server direction: %+v", ss)
			}
		})
	}
}

// TestMidStream: a capture that starts after the handshake, at a record
// boundary or inside a record, cannot be decrypted and says why.
func TestMidStream(t *testing.T) {
	certs(t)
	tr := exchange(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
	kl := keyLogOf(t, tr)
	start := firstAppWrite(tr, FromClient)
	for _, skip := range []int{0, 1, 3, 7, 100} {
		writes := append([]write(nil), tr.writes[start:]...)
		writes[0].b = writes[0].b[min(skip, len(writes[0].b)-1):]
		c, got, _ := decryptAll(t, kl, (&transcript{writes: writes}).segments(uint64(skip)))
		s := c.Stats()
		checkConsistent(t, s)
		if s.Status != StatusNoHandshake || len(got[0])+len(got[1]) != 0 {
			t.Errorf("skip %d: %s, %d bytes decrypted", skip, s.Reason(), len(got[0])+len(got[1]))
		}
		for _, ds := range s.Dirs {
			if ds.SkippedBytes != ds.WireBytes {
				t.Errorf("skip %d: %+v", skip, ds)
			}
		}
	}
	// The server's first bytes are not a ServerHello either.
	c := NewConn(kl, nil)
	c.Feed(FromServer, tr.writes[firstAppWrite(tr, FromServer)].b, 0)
	if s := c.Status(); s != StatusNoHandshake {
		t.Errorf("server data first: %v", s)
	}
	// Not TLS at all.
	c = NewConn(kl, nil)
	c.Feed(FromClient, []byte("\x04\x00\x00\x00\x01\x00\x00\x00\x00"), 0)
	if s := c.Status(); s != StatusNoHandshake {
		t.Errorf("a CQL frame: %v", s)
	}
}

func TestMissingKeys(t *testing.T) {
	certs(t)
	tr := exchange(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
	for _, kl := range []*KeyLog{nil, NewKeyLog(0)} {
		c, got, _ := decryptAll(t, kl, tr.segments(0))
		s := c.Stats()
		checkConsistent(t, s)
		if s.Status != StatusNoKeys || s.Reason() != "no keys in the key log" || len(got[0])+len(got[1]) != 0 {
			t.Errorf("%s, %d bytes", s.Reason(), len(got[0])+len(got[1]))
		}
		for _, ds := range s.Dirs {
			if ds.HeldBytes > pendMax || ds.HeldBytes+ds.SkippedBytes+ds.DoneBytes != ds.WireBytes {
				t.Errorf("%+v", ds)
			}
		}
		c.Retry() // nothing new: no effect
	}
}

// TestKeysAfterOverflow: more than the waiting bound arrives before the
// keys; the records over it are skipped, and decryption resumes after them
// at the right sequence number, reporting the hole.
func TestKeysAfterOverflow(t *testing.T) {
	certs(t)
	steps := []step{{FromClient, 100}, {FromServer, 10}}
	for range 12 {
		steps = append(steps, step{FromClient, 10000}) // 120 KB before the keys
	}
	steps = append(steps, step{FromServer, 50}, step{FromClient, 30})
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(VersionName(v), func(t *testing.T) {
			tr := exchange(t, &tls.Config{InsecureSkipVerify: true, MaxVersion: v},
				&tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, steps)
			kl := NewKeyLog(0)
			var got [2][]byte
			var skipped uint64
			c := NewConn(kl, func(info RecordInfo, plain []byte) {
				got[info.Dir] = append(got[info.Dir], plain...)
				skipped += info.Skipped
			})
			segs := tr.segments(4)
			cut := len(segs) - 6
			for i, s := range segs[:cut] {
				c.Feed(s.dir, s.b, int64(i))
			}
			mid := c.Stats()
			checkConsistent(t, mid)
			if mid.Dirs[FromClient].SkippedBytes == 0 || mid.Dirs[FromClient].HeldBytes > pendMax {
				t.Fatalf("before the keys: %+v", mid.Dirs[FromClient])
			}
			kl.ReadFrom(bytes.NewReader(tr.keylog.Bytes()))
			for i, s := range segs[cut:] {
				c.Feed(s.dir, s.b, int64(cut+i))
			}
			s := c.Stats()
			checkConsistent(t, s)
			if s.Status != StatusDecrypting {
				t.Fatalf("%s: %+v", s.Reason(), s.Dirs)
			}
			sent, g := tr.sent[FromClient], got[FromClient]
			pre, suf := commonPrefix(g, sent), commonSuffix(g, sent)
			if pre+suf < len(g) || pre == 0 || suf == 0 {
				t.Errorf("client plaintext is not what was sent with one hole: %d bytes, prefix %d, suffix %d", len(g), pre, suf)
			}
			if hole := len(sent) - len(g); skipped != mid.Dirs[FromClient].SkippedBytes || hole <= 0 || uint64(hole) > skipped {
				t.Errorf("hole of %d plaintext bytes, %d wire bytes reported skipped, %d counted", hole, skipped, mid.Dirs[FromClient].SkippedBytes)
			}
			if !bytes.Equal(got[FromServer], tr.sent[FromServer]) {
				t.Errorf("server plaintext differs")
			}
		})
	}
}

func commonSuffix(a, b []byte) int {
	n := 0
	for n < len(a) && n < len(b) && a[len(a)-1-n] == b[len(b)-1-n] {
		n++
	}
	return n
}

func TestUnsupported(t *testing.T) {
	certs(t)
	for _, tc := range []struct {
		name   string
		client *tls.Config
		reason string
	}{
		{"cbc", &tls.Config{MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}},
			"unsupported: TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"},
		{"tls11", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, "unsupported: TLS 1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.client.InsecureSkipVerify = true
			server := &tls.Config{Certificates: []tls.Certificate{ecdsaCert}, MinVersion: tls.VersionTLS10,
				CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}
			tr := exchange(t, tc.client, server, defaultSteps[:3])
			c, got, _ := decryptAll(t, keyLogOf(t, tr), tr.segments(0))
			s := c.Stats()
			checkConsistent(t, s)
			if s.Status != StatusUnsupported || s.Reason() != tc.reason || len(got[0])+len(got[1]) != 0 {
				t.Errorf("%q, want %q", s.Reason(), tc.reason)
			}
		})
	}
}

// TestSwappedRoles: the caller took the client for the server; the
// ClientHello says otherwise.
func TestSwappedRoles(t *testing.T) {
	certs(t)
	tr := exchange(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
	segs := tr.segments(5)
	for i := range segs {
		segs[i].dir ^= 1
	}
	c, got, _ := decryptAll(t, keyLogOf(t, tr), segs)
	s := c.Stats()
	checkConsistent(t, s)
	if !s.Swapped || s.Status != StatusDecrypting || !bytes.Equal(got[FromServer], tr.sent[FromClient]) || !bytes.Equal(got[FromClient], tr.sent[FromServer]) {
		t.Errorf("%s swapped %v", s.Reason(), s.Swapped)
	}
	if s.Dirs[FromServer].WireBytes != uint64(len(bytes.Join(writesOf(tr, FromClient), nil))) {
		t.Errorf("counters not in the caller's directions: %+v", s.Dirs)
	}
}

func writesOf(tr *transcript, d Dir) [][]byte {
	var out [][]byte
	for _, w := range tr.writes {
		if w.dir == d {
			out = append(out, w.b)
		}
	}
	return out
}

// TestGap: bytes lost from the capture end a direction, not the other.
func TestGap(t *testing.T) {
	certs(t)
	tr := exchange(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps)
	kl := keyLogOf(t, tr)
	var got [2][]byte
	c := NewConn(kl, func(info RecordInfo, plain []byte) { got[info.Dir] = append(got[info.Dir], plain...) })
	c.Gap(FromClient, 10) // before anything: nothing lost that matters
	lostAt := firstAppWrite(tr, FromClient) + 2
	for i, w := range tr.writes {
		if i == lostAt {
			c.Gap(FromClient, len(w.b))
			continue
		}
		c.Feed(w.dir, w.b, int64(i))
	}
	s := c.Stats()
	checkConsistent(t, s)
	if s.Status != StatusGap || s.Dirs[FromClient].Status != StatusGap || s.Dirs[FromServer].Status != StatusDecrypting {
		t.Fatalf("%s: %+v", s.Reason(), s.Dirs)
	}
	if !bytes.HasPrefix(tr.sent[FromClient], got[FromClient]) || !bytes.Equal(got[FromServer], tr.sent[FromServer]) {
		t.Errorf("plaintext differs")
	}
}

// TestMalformedAfterHandshake: bytes that are not records after a good
// start give up the direction.
func TestMalformedAfterHandshake(t *testing.T) {
	certs(t)
	tr := exchange(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{ecdsaCert}}, defaultSteps[:4])
	c := NewConn(keyLogOf(t, tr), nil)
	i := firstAppWrite(tr, FromClient)
	for j, w := range tr.writes[:i] {
		c.Feed(w.dir, w.b, int64(j))
	}
	c.Feed(FromClient, []byte("GET / HTTP/1.1\r\n\r\n"), 99)
	s := c.Stats()
	checkConsistent(t, s)
	if s.Dirs[FromClient].Status != StatusMalformed || s.Status != StatusMalformed {
		t.Errorf("%s: %+v", s.Reason(), s.Dirs)
	}
}
