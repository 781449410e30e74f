package decode

import (
	"bytes"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Real captures are read at test time rather than embedded: the public
// ones carry their own licences (pcaps/public/README.md). The GPL-2.0
// cqltrace captures are not shipped in the repository; they are read from
// the team's shared directory when it is there.
var captureDirs = []string{"../pcaps", "../pcaps/public/elastic-beats", "../pcaps/public/ntop-nDPI",
	"../pcaps/public/ntop-nDPI/pre-2024-eb12929", "../../shared/pcaps-public/jolynch-cqltrace"}

// half is one direction of a TCP connection to port 9042, reassembled.
type half struct {
	name     string
	response bool
	segs     []tcpSeg
	base     uint32
	haveBase bool
}

type tcpSeg struct {
	off  uint32
	data []byte
}

// bytes joins the segments in sequence order, dropping retransmitted bytes
// and stopping at the first hole.
func (h *half) bytes() []byte {
	sort.SliceStable(h.segs, func(i, j int) bool { return h.segs[i].off < h.segs[j].off })
	var out []byte
	for _, s := range h.segs {
		end := uint32(len(out))
		if s.off > end {
			break
		}
		if s.off+uint32(len(s.data)) <= end {
			continue
		}
		out = append(out, s.data[end-s.off:]...)
	}
	return out
}

// readHalves reassembles the CQL (port 9042) directions of a capture.
func readHalves(t *testing.T, path string) []*half {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Skipf("%s: not a classic pcap: %v", path, err)
	}
	byKey := map[string]*half{}
	var order []*half
	for {
		data, _, err := r.ReadPacketData()
		if err != nil {
			break
		}
		p := gopacket.NewPacket(data, r.LinkType(), gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		tl, _ := p.Layer(layers.LayerTypeTCP).(*layers.TCP)
		if tl == nil || p.NetworkLayer() == nil || (tl.SrcPort != 9042 && tl.DstPort != 9042) {
			continue
		}
		key := p.NetworkLayer().NetworkFlow().String() + "/" + p.TransportLayer().TransportFlow().String()
		h := byKey[key]
		if h == nil {
			h = &half{name: key, response: tl.SrcPort == 9042}
			byKey[key] = h
			order = append(order, h)
		}
		if tl.SYN {
			h.base, h.haveBase = tl.Seq+1, true
			continue
		}
		if len(tl.Payload) == 0 {
			continue
		}
		if !h.haveBase {
			h.base, h.haveBase = tl.Seq, true
		}
		h.segs = append(h.segs, tcpSeg{off: tl.Seq - h.base, data: bytes.Clone(tl.Payload)})
	}
	return order
}

type capStats struct {
	frames, compressed, requests, responses int
	byOp                                    map[Opcode]int
	kinds                                   map[ResultKind]int
	errs                                    map[string]int
}

// walkCapture decodes every envelope of a capture, calling each for the
// decoded frames. It stops a direction at the switch to v5 segment framing.
func walkCapture(t *testing.T, path string, each func(h *Header, req *Request, resp *Response)) capStats {
	st := capStats{byOp: map[Opcode]int{}, kinds: map[ResultKind]int{}, errs: map[string]int{}}
	var req Request
	req.KeepValues = true
	var resp Response
	var buf []byte
	for _, hf := range readHalves(t, path) {
		b := hf.bytes()
		for len(b) > 0 {
			var h Header
			n := ParseHeader(b, &h)
			if n <= 0 || len(b) < h.FrameLen() || h.Response != hf.response {
				break
			}
			body := b[n:h.FrameLen()]
			b = b[h.FrameLen():]
			st.frames++
			st.byOp[h.Opcode]++
			if h.Flags&FlagCompression != 0 && h.Version < 5 {
				st.compressed++
				out, err := DecompressLZ4(buf[:0], body, 16<<20)
				if err != nil {
					out, err = DecompressSnappy(buf[:0], body, 16<<20)
				}
				if err != nil {
					st.errs[h.Opcode.String()+" decompress"]++
					continue
				}
				buf, body = out, out
			}
			var err error
			if h.Response {
				st.responses++
				err = DecodeResponse(&h, body, &resp)
				if err == nil && h.Opcode == OpResult {
					st.kinds[resp.Kind]++
				}
			} else {
				st.requests++
				err = DecodeRequest(&h, body, &req)
			}
			if err != nil {
				st.errs[h.Opcode.String()+" "+err.Error()]++
				t.Errorf("%s %s: %s stream %d: %v\n% x", filepath.Base(path), hf.name, h.Opcode, h.Stream, err,
					body[:min(len(body), 64)])
				continue
			}
			if each != nil {
				each(&h, &req, &resp)
			}
			// v5 (not DSE) frames segments after STARTUP and its answer.
			if h.Version >= 5 && h.Version < VersionDSE1 && h.Opcode != OpOptions && h.Opcode != OpSupported {
				break
			}
		}
	}
	return st
}

func captureFiles(t *testing.T) []string {
	var files []string
	for _, d := range captureDirs {
		for _, pat := range []string{"*.pcap", "*.in"} {
			m, _ := filepath.Glob(filepath.Join(d, pat))
			files = append(files, m...)
		}
	}
	if len(files) == 0 {
		t.Fatal("no captures in ../pcaps")
	}
	return files
}

// TestRealCaptures decodes every CQL envelope of every capture at hand and
// expects no errors: all of them come from real drivers and servers.
func TestRealCaptures(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	total := 0
	for _, path := range captureFiles(t) {
		st := walkCapture(t, path, nil)
		total += st.frames
		t.Logf("%s: %d frames (%d compressed), %d requests, %d responses, results %v, errors %v",
			filepath.Base(path), st.frames, st.compressed, st.requests, st.responses, st.kinds, st.errs)
	}
	if total == 0 {
		t.Fatal("no CQL frames in the captures")
	}
}

// TestRealCaptureV3PrepareExecute follows prepared statements through the
// jolynch/cqltrace v3 capture: the Prepared ids come back in EXECUTE, and
// the Unprepared error names one of them.
func TestRealCaptureV3PrepareExecute(t *testing.T) {
	path := "../../shared/pcaps-public/jolynch-cqltrace/simple_v3.in"
	if _, err := os.Stat(path); err != nil {
		t.Skipf("needs %s: the cqltrace captures are GPL-2.0 and not shipped (pcaps/public/README.md); the team's shared directory is not here", path)
	}
	prepared := map[string]string{}
	var executes, withValues, unprepared int
	var downgrade bool
	walkCapture(t, path, func(h *Header, req *Request, resp *Response) {
		switch {
		case h.Response && h.Opcode == OpResult && resp.Kind == ResultPrepared:
			prepared[string(resp.PreparedID)] = string(resp.Keyspace) + "." + string(resp.Table)
		case !h.Response && h.Opcode == OpExecute:
			executes++
			if req.Params.ValuesCount > 0 && len(req.Params.Values) == req.Params.ValuesCount {
				withValues++
			}
			if req.Params.Consistency != LocalOne && req.Params.Consistency != One && req.Params.Consistency != Quorum {
				t.Errorf("EXECUTE consistency %v", req.Params.Consistency)
			}
		case h.Response && h.Opcode == OpError && resp.ErrCode == ErrUnprepared:
			unprepared++
			if len(resp.PreparedID) != 16 {
				t.Errorf("Unprepared without an id")
			}
		case h.Response && h.Opcode == OpError && resp.ErrCode == ErrProtocol && h.Version == 3:
			downgrade = strings.Contains(string(resp.ErrMessage), "protocol version")
		}
	})
	if len(prepared) == 0 || executes == 0 || withValues == 0 || unprepared == 0 || !downgrade {
		t.Errorf("prepared %v, executes %d (with values %d), unprepared %d, downgrade error %v",
			prepared, executes, withValues, unprepared, downgrade)
	}
	for _, table := range prepared {
		if table != "test.test" {
			t.Errorf("prepared statement on %q", table)
		}
	}
}

// TestRealCaptureEvents checks the SCHEMA_CHANGE events and the USE answer
// of the original nDPI capture (Cassandra 2.2, v4).
func TestRealCaptureEvents(t *testing.T) {
	path := "../pcaps/public/ntop-nDPI/pre-2024-eb12929/cassandra.pcap"
	var events, setKeyspace, registers int
	walkCapture(t, path, func(h *Header, req *Request, resp *Response) {
		switch {
		case h.Response && h.Opcode == OpEvent:
			events++
			if string(resp.EventType) != "SCHEMA_CHANGE" || len(resp.Schema.Change) == 0 || len(resp.Schema.Keyspace) == 0 {
				t.Errorf("event %q %+v", resp.EventType, resp.Schema)
			}
		case h.Response && h.Opcode == OpResult && resp.Kind == ResultSetKeyspace:
			setKeyspace++
		case !h.Response && h.Opcode == OpRegister:
			registers++
			if req.EventTypes != 3 {
				t.Errorf("REGISTER for %d event types", req.EventTypes)
			}
		}
	})
	if events != 11 || setKeyspace == 0 || registers != 1 {
		t.Errorf("events %d, set_keyspace %d, registers %d", events, setKeyspace, registers)
	}
}
