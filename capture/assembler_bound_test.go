package capture

import (
	"testing"

	"github.com/cqlsniff/cqlsniff/internal/retained"
)

// countingFactory hands out handlers that count closes by reason and note
// the order in which flows were evicted (by the number floodPacket gave
// them).
type countingFactory struct {
	closed  [5]int
	evicted []int
}

type countingHandler struct {
	f *countingFactory
	i int
}

func (countingHandler) Packet(Dir, *Packet, SegmentInfo) {}
func (countingHandler) Data(Dir, uint32, []byte, int64)  {}
func (countingHandler) Gap(Dir, int)                     {}
func (h countingHandler) Close(r CloseReason, _ int64) {
	h.f.closed[r]++
	if r == CloseEvicted {
		h.f.evicted = append(h.f.evicted, h.i)
	}
}

func (f *countingFactory) NewFlow(_ FlowKey, _ Dir, p *Packet) FlowHandler {
	return countingHandler{f, int(p.SrcIP[13])<<24 | int(p.SrcIP[14])<<16 | int(p.SrcPort)}
}

// floodPacket makes p the SYN of flow number i, at time i µs (no flow
// goes idle).
func floodPacket(p *Packet, i int) {
	p.SrcIP[13], p.SrcIP[14], p.SrcPort = byte(i>>24), byte(i>>16), uint16(i)
	p.TS = int64(i)
}

// TestAssemblerFloodOfFlows: every packet of a SYN flood opens a flow. Once
// MaxFlows are tracked, each new one evicts the least recently active; that
// took a pass over the whole table per packet (a 2-million-packet flood ran
// for hours). Eviction takes the head of the activity list instead: the
// evictions must come in exactly the order of activity, and the list must
// hold exactly the flows of the table. (What one eviction costs is
// BenchmarkAssemblerFloodOfFlows.)
func TestAssemblerFloodOfFlows(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	f := &countingFactory{}
	a := NewAssembler(cfg, f)
	p := seg(true, 1, 0, 1, "")
	p.Flags = FlagSYN
	n := cfg.MaxFlows * 4
	for i := range n {
		floodPacket(p, i)
		a.Add(p)
		if i == cfg.MaxFlows/2 {
			// The first flow becomes the most recently active: the
			// evictions that follow take the second first.
			floodPacket(p, 0)
			p.TS = int64(i)
			a.Add(p)
		}
	}
	if a.Flows() != cfg.MaxFlows || f.closed[CloseEvicted] != n-cfg.MaxFlows || len(f.evicted) != n-cfg.MaxFlows {
		t.Fatalf("%d flows tracked, %d evicted", a.Flows(), f.closed[CloseEvicted])
	}
	// The order of activity: 1 … MaxFlows/2, then 0 (refreshed), then the rest.
	for k, got := range f.evicted {
		want := k + 1
		switch {
		case k == cfg.MaxFlows/2:
			want = 0
		case k > cfg.MaxFlows/2:
			want = k
		}
		if got != want {
			t.Fatalf("eviction %d took flow %d, want %d (the least recently active)", k, got, want)
		}
	}
	// The activity list, oldest first: every tracked flow once, in order.
	listed := 0
	for fl, prev := a.oldest, (*flow)(nil); fl != nil; prev, fl = fl, fl.next {
		if fl.prev != prev || a.flows[fl.key] != fl || prev != nil && prev.last > fl.last {
			t.Fatalf("activity list broken at its flow %d", listed)
		}
		listed++
	}
	if listed != a.Flows() {
		t.Errorf("activity list holds %d flows, the table %d", listed, a.Flows())
	}
	a.Flush()
	if a.Flows() != 0 || a.oldest != nil || a.newest != nil {
		t.Errorf("after Flush: %d flows, activity list %p..%p", a.Flows(), a.oldest, a.newest)
	}
}

// BenchmarkAssemblerFloodOfFlows: the cost of one new flow when the table
// is full and it evicts the least recently active (a scan of the table
// made it about MaxFlows times what it is).
func BenchmarkAssemblerFloodOfFlows(b *testing.B) {
	cfg := DefaultAssemblerConfig()
	a := NewAssembler(cfg, &countingFactory{})
	p := seg(true, 1, 0, 1, "")
	p.Flags = FlagSYN
	i := 0
	for ; i < cfg.MaxFlows; i++ {
		floodPacket(p, i)
		a.Add(p)
	}
	b.ReportAllocs()
	for b.Loop() {
		floodPacket(p, i)
		a.Add(p)
		i++
	}
}

// TestAssemblerTinyOutOfOrderSegments: one flow sends a million 1-byte
// segments after a hole, each with a hole of its own, all at the same time
// (no hole timeout) and without ACKs. Charged by length against the 1 MiB
// per-direction limit, they held a 2 KiB buffer each (2 GiB) in a list
// whose every insertion copied it: minutes of CPU. Charged by what they
// hold, a few hundred are buffered at a time: counted here after every
// segment, with what the assembler holds (internal/retained) now and then.
func TestAssemblerTinyOutOfOrderSegments(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	// The most segments the per-direction limit admits, each charged at
	// least its smallest buffer and its entry.
	maxPending := cfg.MaxBufferedFlow / (minSegBuffer + segOverhead)
	for _, descending := range []bool{false, true} {
		a := NewAssembler(cfg, &countingFactory{})
		p := seg(true, 1000, 0, 1, "x")
		p.Flags = FlagPSH
		a.Add(p)
		if a.Flows() != 1 {
			t.Fatalf("%d flows", a.Flows())
		}
		var fl *flow
		for _, fl = range a.flows {
		}
		const n = 1_000_000
		most, peak := 0, 0
		for i := range n {
			k := i
			if descending {
				k = n - i
			}
			p.Seq = uint32(1003 + 2*k)
			a.Add(p)
			most = max(most, len(fl.dirs[0].ooo)+len(fl.dirs[1].ooo))
			if i%100_000 == 99_999 {
				peak = max(peak, retained.Bytes(a))
			}
		}
		a.Flush()
		if most > maxPending {
			t.Errorf("descending %v: %d segments buffered at once, want at most %d", descending, most, maxPending)
		}
		if peak > 8<<20 {
			t.Errorf("descending %v: the assembler held %d bytes", descending, peak)
		}
		if s := a.Stats(); s.BufferOverflow == 0 {
			t.Errorf("descending %v: no buffer overflow: %+v", descending, s)
		}
	}
}
