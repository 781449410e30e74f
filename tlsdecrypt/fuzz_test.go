package tlsdecrypt

import (
	"bytes"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

// A FuzzRecords input is a sequence of segments, each a 2-byte header
// (top bit: 1 for FromServer; low 15 bits: length) and its bytes.

func encodeSegments(segs []write) []byte {
	var b []byte
	for _, s := range segs {
		h := uint16(len(s.b))
		if s.dir == FromServer {
			h |= 0x8000
		}
		b = append(b, byte(h>>8), byte(h))
		b = append(b, s.b...)
	}
	return b
}

func decodeSegments(b []byte) []write {
	var segs []write
	for len(b) >= 2 {
		h := int(b[0])<<8 | int(b[1])
		n := min(h&0x7fff, len(b)-2)
		segs = append(segs, write{Dir(h >> 15), b[2 : 2+n]})
		b = b[2+n:]
	}
	return segs
}

var (
	fuzzKeysOnce sync.Once
	fuzzKeys     []byte // the key logs of every testdata transcript
)

func testdataTranscripts(t testing.TB) map[string]*transcript {
	paths, _ := filepath.Glob(filepath.Join("testdata", "*.transcript"))
	out := make(map[string]*transcript)
	for _, p := range paths {
		text, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(p)] = decodeTranscript(t, text)
	}
	return out
}

// FuzzRecords feeds arbitrary bytes as both directions' streams. With keyed
// set, the key log has the secrets of every testdata transcript (the
// seeds) and made-up secrets for the client random of any ClientHello at
// the start of the client stream, so mutated records get as far as
// authentication. Invariants: no panic; every byte fed is done, skipped or
// held; no more plaintext than input; held bytes within the bounds; record
// facts consistent.
func FuzzRecords(f *testing.F) {
	fuzzKeysOnce.Do(func() {
		for _, tr := range testdataTranscripts(f) {
			fuzzKeys = append(fuzzKeys, tr.keylog.Bytes()...)
		}
	})
	trs := testdataTranscripts(f)
	for _, name := range slices.Sorted(maps.Keys(trs)) {
		full := encodeSegments(trs[name].segments(1))
		f.Add(full, true)
		if strings.HasPrefix(name, "gotls") {
			f.Add(full, false)
			f.Add(full[:min(len(full), 6000)], true) // the handshake and a little more
		}
	}
	f.Add([]byte{0, 5, 0x16, 3, 1, 0, 0}, true)
	f.Fuzz(func(t *testing.T, data []byte, keyed bool) {
		segs := decodeSegments(data)
		var kl *KeyLog
		if keyed {
			kl = NewKeyLog(0)
			kl.ReadFrom(bytes.NewReader(fuzzKeys))
			var client []byte
			for _, s := range segs {
				if s.dir == FromClient && len(client) < 64 {
					client = append(client, s.b...)
				}
			}
			if len(client) >= 43 && client[0] == ctHandshake && client[5] == 1 {
				n := 32 + 16*(len(data)%2)
				var text strings.Builder
				for l := range numLabels {
					sec := bytes.Repeat([]byte{byte(l + 1)}, n)
					if l == LabelClientRandom {
						sec = bytes.Repeat([]byte{0xaa}, 48)
					}
					fmt.Fprintf(&text, "%s %x %x\n", l, client[11:43], sec)
				}
				kl.ReadFrom(strings.NewReader(text.String()))
			}
		}
		var fed, plain [2]uint64
		var cur []byte
		c := NewConn(kl, func(info RecordInfo, p []byte) {
			plain[info.Dir] += uint64(len(p))
			if info.WireLen < len(p)+5+16 {
				t.Fatalf("%d bytes of plaintext from a record of %d", len(p), info.WireLen)
			}
			if !info.Late && (info.End < info.WireLen && info.Segments == 1 || info.End > len(cur) || info.Start >= info.End) {
				t.Fatalf("record %d..%d in a segment of %d", info.Start, info.End, len(cur))
			}
			if info.Late && (info.Start != -1 || info.End != -1) {
				t.Fatalf("late record with offsets %d..%d", info.Start, info.End)
			}
			if info.Dir > FromServer {
				t.Fatalf("dir %d", info.Dir)
			}
		})
		for i, s := range segs {
			cur = s.b
			fed[s.dir] += uint64(len(s.b))
			c.Feed(s.dir, s.b, int64(i))
			if i%8 == 7 {
				c.Retry()
			}
		}
		st := c.Stats()
		if int(st.Status) >= len(statusNames) || st.Reason() == "" {
			t.Fatalf("status %d", st.Status)
		}
		for d, ds := range st.Dirs {
			if ds.WireBytes != fed[d] || ds.PlainBytes != plain[d] || plain[d] > fed[d] {
				t.Fatalf("%v: fed %d, plaintext %d; stats %+v", Dir(d), fed[d], plain[d], ds)
			}
			if ds.WireBytes != ds.DoneBytes+ds.SkippedBytes+ds.HeldBytes {
				t.Fatalf("%v: %+v", Dir(d), ds)
			}
			if ds.HeldBytes > maxRecord+pendMax || ds.AppRecords > ds.Records || int(ds.Status) >= len(statusNames) {
				t.Fatalf("%v: %+v", Dir(d), ds)
			}
		}
	})
}

// FuzzKeyLog reads arbitrary text as a key log, whole, in pieces, and as a
// file loaded in two parts, and checks the three agree. Invariants: no
// panic; lines counted once each; at most the bound of entries.
func FuzzKeyLog(f *testing.F) {
	trs := testdataTranscripts(f)
	for _, name := range slices.Sorted(maps.Keys(trs)) {
		f.Add(trs[name].keylog.Bytes(), uint16(100))
	}
	f.Add([]byte("CLIENT_RANDOM "+cr1+" "+s48+"\n# c\n\nCLIENT_RANDOM "+cr1+" "+s32+"\n"), uint16(60))
	f.Add([]byte(strings.Repeat("x", 2000)+"\nSERVER_TRAFFIC_SECRET_0 "+cr2+" "+s48), uint16(1500))
	path := filepath.Join(f.TempDir(), "keys") // one file, rewritten by each input: a directory per input is slow
	f.Fuzz(func(t *testing.T, text []byte, split uint16) {
		whole := NewKeyLog(4)
		if n, err := whole.ReadFrom(bytes.NewReader(text)); err != nil || n != int64(len(text)) {
			t.Fatalf("%d, %v", n, err)
		}
		ws := whole.Stats()
		if ws.Entries > 4 || ws.Secrets+ws.Ignored+ws.Garbage > uint64(bytes.Count(text, []byte("\n"))+1) {
			t.Fatalf("%+v", ws)
		}
		pieces := NewKeyLog(4)
		pieces.ReadFrom(&choppy{b: text, n: int(split)%97 + 1})
		if ps := pieces.Stats(); ps != ws {
			t.Fatalf("in pieces %+v, whole %+v", ps, ws)
		}
		sameEntries(t, whole, pieces, text)

		// The same as a file, loaded whole; then written in two parts,
		// loaded and refreshed. Split at a line end, the counts agree too.
		cut := min(int(split), len(text))
		os.WriteFile(path, text, 0o600)
		file2, _ := Load(path)
		if fs := file2.Stats(); fs.Secrets != ws.Secrets || fs.Garbage != ws.Garbage || fs.Ignored != ws.Ignored || fs.Entries != ws.Entries {
			t.Fatalf("loaded %+v, read %+v", fs, ws)
		}
		sameEntries(t, whole, file2, text)

		os.WriteFile(path, text[:cut], 0o600)
		live, _ := Load(path)
		fh, _ := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		fh.Write(text[cut:])
		fh.Close()
		if err := live.Refresh(); err != nil {
			t.Fatal(err)
		}
		if len(text) > 0 && text[len(text)-1] == '\n' && (cut == 0 || text[cut-1] == '\n') {
			if ls := live.Stats(); ls.Secrets != ws.Secrets || ls.Garbage != ws.Garbage || ls.Ignored != ws.Ignored {
				t.Fatalf("live %+v, whole %+v", ls, ws)
			}
		}
		if len(text) > 0 && text[len(text)-1] == '\n' {
			sameEntries(t, whole, live, text)
		}
	})
}

// sameEntries compares what two key logs hold for the client randoms that
// appear in text.
func sameEntries(t *testing.T, a, b *KeyLog, text []byte) {
	t.Helper()
	for _, line := range bytes.Split(text, []byte("\n")) {
		_, rest := field(bytes.TrimLeft(line, " \t"))
		crHex, _ := field(rest)
		if len(crHex) != 64 {
			continue
		}
		var cr [32]byte
		if _, err := fmt.Sscanf(string(crHex), "%x", &cr); err != nil {
			continue
		}
		var sa, sb secretSet
		oka, okb := a.lookupInto(&cr, &sa), b.lookupInto(&cr, &sb)
		if oka != okb || sa != sb {
			t.Fatalf("client random %x: %v and %v differ", cr, oka, okb)
		}
	}
}

// choppy reads b n bytes at a time.
type choppy struct {
	b []byte
	n int
}

func (c *choppy) Read(p []byte) (int, error) {
	if len(c.b) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.n)], c.b)
	c.b = c.b[n:]
	return n, nil
}
