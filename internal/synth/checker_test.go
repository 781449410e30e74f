package synth

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/golang/snappy"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/pierrec/lz4/v4"
)

// The checker the tests hold a generated capture to, written apart from the
// generator: gopacket parses the packets, then every connection's byte
// streams are followed through TCP, CQL envelopes and v5 segments.

// result is what check found in a capture.
type result struct {
	packets, data, syn, fin int
	seg                     [2]int
	requests, responses     int
	errors                  int
	outOfOrder              int
	spanning                int
	nagleViolations         int

	// Protocol 5.
	v5segs   [2]int // v5 segments per direction
	sliced   int    // non-self-contained segments
	sliceEnv int    // envelopes reassembled from slices
	lz4Comp  int    // lz4 segments with a compressed payload
	lz4As    int    // lz4 segments stored as is (U = 0)
}

// direction is one direction of a connection as seen in the capture.
type direction struct {
	synced   bool
	next     uint32 // expected seq of the next segment
	buf      []byte // stream bytes not yet framed
	pending  int    // bytes of buf's first frame seen before this segment
	ackValid bool
	ack      uint32 // highest ack sent in this direction
	sentData bool

	framed bool   // v5 segments from here on
	raw    []byte // v5: stream bytes not yet split into segments
	large  []byte // v5: slices of an envelope collected so far
	unfr   int    // envelopes seen before the switch
}

type connCheck struct {
	dir         [2]direction
	outstanding map[int16]uint8 // stream → request opcode
	order       []int16         // streams in request order, answered ones removed lazily
	answered    map[int16]bool
	comp        [2]bool          // frames in this direction are compressed from now on
	prepared    map[[16]byte]int // prepared id → bind count
	resultIDs   map[[16]byte][]byte
}

// check parses out with gopacket and walks every connection's byte streams.
func check(t *testing.T, cfg Config, out []byte) result {
	t.Helper()
	if err := cfg.normalize(); err != nil {
		t.Fatal(err)
	}
	r, err := pcapgo.NewReader(bytes.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.LinkType() != layers.LinkTypeEthernet {
		t.Fatalf("link type %v", r.LinkType())
	}
	var res result
	conns := map[string]*connCheck{}
	bodyComp := cfg.Compression != "" && cfg.Protocol == 4
	var last time.Time
	fail := func(format string, args ...any) {
		t.Helper()
		t.Fatalf("packet %d: "+format, append([]any{res.packets}, args...)...)
	}
	for {
		data, ci, err := r.ReadPacketData()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		res.packets++
		if ci.CaptureLength != len(data) || ci.Length != len(data) {
			fail("capture length %d, length %d, data %d", ci.CaptureLength, ci.Length, len(data))
		}
		if ci.Timestamp.Before(last) {
			fail("timestamp %v before %v", ci.Timestamp, last)
		}
		last = ci.Timestamp
		p := gopacket.NewPacket(data, layers.LayerTypeEthernet, gopacket.Default)
		if el := p.ErrorLayer(); el != nil {
			fail("decode error: %v", el.Error())
		}
		ip, _ := p.Layer(layers.LayerTypeIPv4).(*layers.IPv4)
		tcp, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if ip == nil || tcp == nil {
			fail("not IPv4/TCP: %v", p)
		}
		if int(ip.Length) != len(data)-14 || int(ip.IHL) != 5 {
			fail("IP length %d (IHL %d) in a %d-byte frame", ip.Length, ip.IHL, len(data))
		}
		if len(tcp.Payload) != int(ip.Length)-20-int(tcp.DataOffset)*4 {
			fail("TCP payload %d, IP says %d", len(tcp.Payload), int(ip.Length)-20-int(tcp.DataOffset)*4)
		}
		if _, v := ip.VerifyChecksum(); !v.Valid {
			fail("bad IP checksum %#x, want %#x", v.Actual, v.Correct)
		}
		tcp.SetNetworkLayerForChecksum(ip)
		if err, v := tcp.VerifyChecksum(); err != nil || !v.Valid {
			fail("bad TCP checksum %#x, want %#x (%v)", v.Actual, v.Correct, err)
		}
		if len(tcp.Payload) > cfg.MSS {
			fail("payload %d > MSS %d", len(tcp.Payload), cfg.MSS)
		}

		d := cli
		cport, cip := tcp.SrcPort, ip.SrcIP
		if tcp.SrcPort == serverPort {
			d, cport, cip = srv, tcp.DstPort, ip.DstIP
		} else if tcp.DstPort != serverPort {
			fail("no port 9042: %v → %v", tcp.SrcPort, tcp.DstPort)
		}
		key := fmt.Sprintf("%v:%d", cip, cport)
		c := conns[key]
		if c == nil {
			c = &connCheck{
				outstanding: map[int16]uint8{},
				answered:    map[int16]bool{},
				comp:        [2]bool{bodyComp && !cfg.Handshake, bodyComp && !cfg.Handshake},
				prepared:    map[[16]byte]int{},
				resultIDs:   map[[16]byte][]byte{},
			}
			c.dir[cli].framed = cfg.Protocol == 5 && !cfg.Handshake
			c.dir[srv].framed = c.dir[cli].framed
			conns[key] = c
		}
		dir, peer := &c.dir[d], &c.dir[1-d]

		// Sequence numbers: every segment starts where the previous ended.
		if tcp.SYN {
			if dir.synced {
				fail("second SYN")
			}
			if d == srv {
				res.syn++
			}
			dir.synced, dir.next = true, tcp.Seq+1
		} else {
			if !dir.synced {
				if cfg.Handshake {
					fail("segment before SYN")
				}
				dir.synced, dir.next = true, tcp.Seq
			}
			if tcp.Seq != dir.next {
				fail("seq %d, want %d (dir %d)", tcp.Seq, dir.next, d)
			}
			dir.next += uint32(len(tcp.Payload))
			if tcp.FIN {
				res.fin++
				dir.next++
			}
		}
		if !tcp.ACK && !(tcp.SYN && d == cli) {
			fail("segment without ACK")
		}
		if tcp.ACK {
			if dir.ackValid && int32(tcp.Ack-dir.ack) < 0 {
				fail("ack went back from %d to %d", dir.ack, tcp.Ack)
			}
			if peer.synced && int32(tcp.Ack-peer.next) > 0 {
				fail("ack %d beyond what the peer sent (%d)", tcp.Ack, peer.next)
			}
			dir.ack, dir.ackValid = tcp.Ack, true
		}
		if len(tcp.Payload) == 0 {
			continue
		}
		res.data++
		res.seg[d]++
		if len(tcp.Payload) < cfg.MSS && !tcp.PSH {
			fail("short data segment without PSH")
		}
		// Nagle: a small client segment leaves only when the server has
		// acknowledged all earlier client data (seen earlier in the capture).
		if d == cli && len(tcp.Payload) < cfg.MSS && dir.sentData && !(peer.ackValid && peer.ack == tcp.Seq) {
			res.nagleViolations++
		}
		dir.sentData = true

		if len(dir.buf) > 0 || len(dir.raw) > 0 || len(dir.large) > 0 {
			res.spanning++ // a frame started in an earlier segment
		}
		payload := tcp.Payload
		if !dir.framed {
			dir.buf = append(dir.buf, payload...)
			n, err := frames(cfg, c, d, dir.buf, &res)
			if err != nil {
				fail("%v", err)
			}
			// frames stops at the v5 switch point: the rest is segments.
			payload = nil
			if dir.framed {
				payload = dir.buf[n:]
				n = len(dir.buf)
			}
			dir.buf = append(dir.buf[:0], dir.buf[n:]...)
		}
		if dir.framed && len(payload) > 0 {
			dir.raw = append(dir.raw, payload...)
			n, err := segments(cfg, c, d, dir.raw, &res)
			if err != nil {
				fail("%v", err)
			}
			dir.raw = append(dir.raw[:0], dir.raw[n:]...)
		}
	}
	for key, c := range conns {
		for d := range c.dir {
			if n := len(c.dir[d].buf) + len(c.dir[d].raw) + len(c.dir[d].large); n != 0 {
				t.Errorf("%s dir %d: %d bytes of an unfinished frame or segment", key, d, n)
			}
		}
		if len(c.outstanding) != 0 {
			t.Errorf("%s: %d requests never answered", key, len(c.outstanding))
		}
		// v5 switch point: OPTIONS and STARTUP, SUPPORTED and READY are
		// the only envelopes outside segments (§8.1).
		wantUnframed := 0
		if cfg.Protocol == 5 && cfg.Handshake {
			wantUnframed = 2
		}
		if cfg.Protocol == 5 && (c.dir[cli].unfr != wantUnframed || c.dir[srv].unfr != wantUnframed) {
			t.Errorf("%s: %d client and %d server envelopes before segments, want %d", key, c.dir[cli].unfr, c.dir[srv].unfr, wantUnframed)
		}
	}
	if len(conns) != cfg.Connections {
		t.Errorf("%d connections, want %d", len(conns), cfg.Connections)
	}
	return res
}

// frames decodes the complete envelopes at the start of b and returns how
// many bytes they took. Before the v5 switch point it stops right after the
// envelope that switches its direction to segments.
func frames(cfg Config, c *connCheck, d int, b []byte, res *result) (int, error) {
	used := 0
	unframed := !c.dir[d].framed
	for len(b)-used >= 9 && !(unframed && c.dir[d].framed) {
		h := b[used:]
		length := int(binary.BigEndian.Uint32(h[5:9]))
		if length > 256<<20 {
			return 0, fmt.Errorf("body length %d", length)
		}
		if len(h) < 9+length {
			break
		}
		ver, flags, stream, op := h[0], h[1], int16(binary.BigEndian.Uint16(h[2:4])), h[4]
		body := h[9 : 9+length]
		used += 9 + length
		if unframed {
			c.dir[d].unfr++
		}
		if want := byte(cfg.Protocol | d<<7); ver != want {
			return 0, fmt.Errorf("version byte %#x, want %#x", ver, want)
		}
		if flags&^flagCompression != 0 {
			return 0, fmt.Errorf("flags %#x", flags)
		}
		if stream < 0 {
			return 0, fmt.Errorf("stream %d", stream)
		}
		compressed := flags&flagCompression != 0
		// STARTUP is never compressed; everything after it is when negotiated.
		wantComp := c.comp[d] && !(d == cli && op == opStartup)
		if compressed != wantComp {
			return 0, fmt.Errorf("op %#x: compressed %v, want %v", op, compressed, wantComp)
		}
		if compressed {
			var err error
			if body, err = decompress(cfg.Compression, body); err != nil {
				return 0, fmt.Errorf("op %#x: %v", op, err)
			}
		}
		if d == cli {
			res.requests++
			if _, busy := c.outstanding[stream]; busy {
				return 0, fmt.Errorf("stream %d reused while outstanding", stream)
			}
			if err := checkRequest(cfg, c, op, body); err != nil {
				return 0, fmt.Errorf("request op %#x stream %d: %v", op, stream, err)
			}
			c.outstanding[stream] = op
			c.order = append(c.order, stream)
			delete(c.answered, stream)
			continue
		}
		res.responses++
		req, ok := c.outstanding[stream]
		if !ok {
			return 0, fmt.Errorf("response on stream %d with no request", stream)
		}
		delete(c.outstanding, stream)
		for len(c.order) > 0 && c.answered[c.order[0]] {
			delete(c.answered, c.order[0])
			c.order = c.order[1:]
		}
		if c.order[0] != stream {
			res.outOfOrder++
		}
		c.answered[stream] = true
		if op == opError {
			res.errors++
		}
		if err := checkResponse(cfg, c, req, op, body); err != nil {
			return 0, fmt.Errorf("response op %#x to %#x, stream %d: %v", op, req, stream, err)
		}
	}
	return used, nil
}

// segments walks the complete v5 segments at the start of b, checking
// header CRC24, payload CRC32 and layout, hands the envelopes they carry to
// frames, and returns how many bytes they took (§8.2–§8.5).
func segments(cfg Config, c *connCheck, d int, b []byte, res *result) (int, error) {
	lz := cfg.Compression == "lz4"
	used := 0
	for {
		sg, n, err := parseSegment(b[used:], lz)
		if err != nil || n == 0 {
			return used, err
		}
		used += n
		res.v5segs[d]++
		switch {
		case sg.compressed:
			res.lz4Comp++
		case lz:
			res.lz4As++
		}
		payload, sc := sg.payload, sg.selfContained
		dir := &c.dir[d]
		if sc {
			if len(dir.large) > 0 {
				return 0, errors.New("self-contained segment between the slices of an envelope")
			}
			k, err := frames(cfg, c, d, payload, res)
			if err != nil {
				return 0, err
			}
			if k != len(payload) {
				return 0, fmt.Errorf("self-contained segment: %d of %d bytes are whole envelopes", k, len(payload))
			}
			continue
		}
		// A slice of one envelope too big for a segment: every slice but
		// the last is filled to the maximum.
		res.sliced++
		dir.large = append(dir.large, payload...)
		if len(dir.large) < 9 {
			return 0, errors.New("first slice shorter than an envelope header")
		}
		total := 9 + int(binary.BigEndian.Uint32(dir.large[5:9]))
		if total <= maxSegPayload {
			return 0, fmt.Errorf("%d-byte envelope sliced although it fits a segment", total)
		}
		switch {
		case len(dir.large) > total:
			return 0, fmt.Errorf("slices carry %d bytes for a %d-byte envelope", len(dir.large), total)
		case len(dir.large) < total && len(payload) != maxSegPayload:
			return 0, fmt.Errorf("%d-byte slice before the last", len(payload))
		case len(dir.large) == total:
			if k, err := frames(cfg, c, d, dir.large, res); err != nil || k != total {
				return 0, fmt.Errorf("reassembled envelope: %d of %d bytes, %v", k, total, err)
			}
			res.sliceEnv++
			dir.large = dir.large[:0]
		}
	}
}

func decompress(alg string, body []byte) ([]byte, error) {
	switch alg {
	case "lz4":
		if len(body) < 4 {
			return nil, errors.New("lz4 body shorter than its length prefix")
		}
		n := binary.BigEndian.Uint32(body)
		out := make([]byte, n)
		m, err := lz4.UncompressBlock(body[4:], out)
		if err != nil || m != int(n) {
			return nil, fmt.Errorf("lz4: %d of %d bytes, %v", m, n, err)
		}
		return out, nil
	case "snappy":
		return snappy.Decode(nil, body)
	}
	return nil, errors.New("compressed frame without compression")
}
