package capture

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// recorder is a FlowHandler that writes what it is told as text.
type recorder struct {
	events []string
	closed bool
}

func (r *recorder) Packet(d Dir, p *Packet, info SegmentInfo) {
	if info != SegEmpty && info != SegInOrder {
		r.events = append(r.events, fmt.Sprintf("pkt%d:%d", d, info))
	}
}
func (r *recorder) Data(d Dir, seq uint32, b []byte, ts int64) {
	r.events = append(r.events, fmt.Sprintf("data%d@%d:%s", d, ts, b))
}
func (r *recorder) Gap(d Dir, lost int) {
	r.events = append(r.events, fmt.Sprintf("gap%d:%d", d, lost))
}
func (r *recorder) Close(reason CloseReason, ts int64) {
	r.closed = true
	r.events = append(r.events, "close:"+reason.String())
}

type factory struct{ last *recorder }

func (f *factory) NewFlow(k FlowKey, d Dir, p *Packet) FlowHandler {
	f.last = &recorder{}
	return f.last
}

var (
	cli = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 1}
	srv = [16]byte{10: 0xff, 11: 0xff, 12: 10, 15: 2}
)

// seg makes a packet from the client (toServer) or the server.
func seg(toServer bool, seq uint32, flags uint8, ts int64, payload string) *Packet {
	p := &Packet{TS: ts, Seq: seq, Flags: flags | FlagACK, Payload: []byte(payload)}
	if toServer {
		p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = cli, srv, 40000, 9042
	} else {
		p.SrcIP, p.DstIP, p.SrcPort, p.DstPort = srv, cli, 9042, 40000
	}
	return p
}

// ackOnly is a pure ACK.
func ackOnly(toServer bool, seq, ack uint32, ts int64) *Packet {
	p := seg(toServer, seq, 0, ts, "")
	p.Ack = ack
	return p
}

func run(t *testing.T, cfg AssemblerConfig, pkts ...*Packet) *recorder {
	t.Helper()
	f := &factory{}
	a := NewAssembler(cfg, f)
	for _, p := range pkts {
		a.Add(p)
	}
	a.Flush()
	return f.last
}

func TestAssembler(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	cases := []struct {
		name string
		pkts []*Packet
		want string
	}{
		{"in order", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 103, 0, 2, "def"),
		}, "data0@1:abc data0@2:def close:end"},
		{"syn then data", []*Packet{
			seg(true, 99, FlagSYN, 1, ""), seg(true, 100, 0, 2, "abc"),
		}, "data0@2:abc close:end"},
		{"retransmission dropped", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 100, 0, 2, "abc"), seg(true, 103, 0, 3, "d"),
		}, "data0@1:abc pkt0:3 data0@3:d close:end"},
		{"overlap trimmed", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 102, 0, 2, "cdef"),
		}, "data0@1:abc pkt0:4 data0@2:def close:end"},
		{"out of order buffered", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 106, 0, 2, "ghi"), seg(true, 103, 0, 3, "def"),
		}, "data0@1:abc pkt0:2 data0@3:def data0@2:ghi close:end"},
		{"hole never filled becomes a gap at the end", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 106, 0, 2, "ghi"),
		}, "data0@1:abc pkt0:2 gap0:3 data0@2:ghi close:end"},
		{"hole timeout", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 106, 0, 2, "ghi"), seg(false, 500, 0, 2+int64(cfg.HoleTimeout)+1, "x"), seg(true, 109, 0, 3+int64(cfg.HoleTimeout), "j"),
		}, "data0@1:abc pkt0:2 data1@500000003:x gap0:3 data0@2:ghi data0@500000003:j close:end"},
		{"peer acked past the hole: the capture lost it, declare it now", []*Packet{
			seg(true, 100, 0, 1, "abc"), seg(true, 106, 0, 2, "ghi"), ackOnly(false, 7, 109, 3), seg(false, 7, 0, 4, "x"),
		}, "data0@1:abc pkt0:2 gap0:3 data0@2:ghi data1@4:x close:end"},
		{"segment arriving after its ACK is not buffered", []*Packet{
			seg(true, 100, 0, 1, "abc"), ackOnly(false, 7, 109, 2), seg(true, 106, 0, 3, "ghi"),
		}, "data0@1:abc pkt0:2 gap0:3 data0@3:ghi close:end"},
		{"both directions and fin", []*Packet{
			seg(true, 100, 0, 1, "req"), seg(false, 7, 0, 2, "resp"), seg(true, 103, FlagFIN, 3, ""), seg(false, 11, FlagFIN, 4, ""),
		}, "data0@1:req data1@2:resp close:fin"},
		{"rst", []*Packet{
			seg(true, 100, 0, 1, "req"), seg(false, 7, FlagRST, 2, ""),
		}, "data0@1:req close:rst"},
		{"sequence wrap", []*Packet{
			seg(true, 0xFFFFFFFE, 0, 1, "abcd"), seg(true, 2, 0, 2, "ef"),
		}, "data0@1:abcd data0@2:ef close:end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := run(t, cfg, c.pkts...)
			if got := strings.Join(r.events, " "); got != c.want {
				t.Errorf("\n got %s\nwant %s", got, c.want)
			}
		})
	}
}

func TestAssemblerSnaplenTruncation(t *testing.T) {
	p := seg(true, 100, 0, 1, "abc")
	p.Missing = 5
	r := run(t, DefaultAssemblerConfig(), p, seg(true, 108, 0, 2, "z"))
	if got := strings.Join(r.events, " "); got != "data0@1:abc gap0:5 data0@2:z close:end" {
		t.Errorf("got %s", got)
	}
}

func TestAssemblerBufferBound(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	cfg.MaxBufferedFlow = minSegBuffer + segOverhead // one small segment
	r := run(t, cfg,
		seg(true, 100, 0, 1, "a"),
		seg(true, 105, 0, 2, "xyz"), // buffered
		seg(true, 110, 0, 3, "uvw"), // would exceed the limit: the first hole is declared lost
	)
	want := "data0@1:a pkt0:2 pkt0:2 gap0:4 data0@2:xyz gap0:2 data0@3:uvw close:end"
	if got := strings.Join(r.events, " "); got != want {
		t.Errorf("\n got %s\nwant %s", got, want)
	}
}

func TestAssemblerIdleAndEviction(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	cfg.IdleTimeout = 10 * time.Second
	cfg.MaxFlows = 1
	f := &factory{}
	a := NewAssembler(cfg, f)
	a.Add(seg(true, 1, 0, 1, "a"))
	first := f.last
	p := seg(true, 1, 0, 2, "b")
	p.SrcPort = 40001
	a.Add(p) // evicts the first
	if !first.closed || a.Stats().Evicted != 1 {
		t.Fatalf("first not evicted: %v", first.events)
	}
	second := f.last
	p = seg(false, 1, 0, 20e9, "c") // a new flow much later
	p.DstPort = 40005
	a.Add(p)
	if !second.closed || a.Flows() != 1 {
		t.Fatalf("idle flow not closed: %v flows=%d", second.events, a.Flows())
	}
}

type nopHandler struct{}

func (nopHandler) Packet(Dir, *Packet, SegmentInfo) {}
func (nopHandler) Data(Dir, uint32, []byte, int64)  {}
func (nopHandler) Gap(Dir, int)                     {}
func (nopHandler) Close(CloseReason, int64)         {}

type nopFactory struct{}

func (nopFactory) NewFlow(FlowKey, Dir, *Packet) FlowHandler { return nopHandler{} }

func TestAssemblerNoAllocs(t *testing.T) {
	a := NewAssembler(DefaultAssemblerConfig(), nopFactory{})
	req := seg(true, 1, 0, 1, "0123456789")
	resp := seg(false, 1, 0, 1, "0123456789")
	var ts int64 = 1
	step := func() {
		ts += 1000
		req.TS, resp.TS = ts, ts
		a.Add(req)
		req.Seq += 10
		a.Add(resp)
		resp.Seq += 10
	}
	step()
	if n := testing.AllocsPerRun(1000, step); n != 0 {
		t.Fatalf("%v allocations per packet pair", n)
	}
}

func BenchmarkAssemblerInOrder(b *testing.B) {
	a := NewAssembler(DefaultAssemblerConfig(), nopFactory{})
	p := seg(true, 1, 0, 1, "0123456789abcdef0123456789abcdef")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		p.TS = int64(i)
		p.Seq += 32
		a.Add(p)
	}
}
