package capture

import (
	"runtime"
	"testing"
	"time"
)

// countingFactory hands out nopHandlers and counts closes by reason.
type countingFactory struct{ closed [5]int }

type countingHandler struct{ f *countingFactory }

func (countingHandler) Packet(Dir, *Packet, SegmentInfo) {}
func (countingHandler) Data(Dir, uint32, []byte, int64)  {}
func (countingHandler) Gap(Dir, int)                     {}
func (h countingHandler) Close(r CloseReason, _ int64)   { h.f.closed[r]++ }

func (f *countingFactory) NewFlow(FlowKey, Dir, *Packet) FlowHandler {
	return countingHandler{f}
}

// TestAssemblerFloodOfFlows: every packet of a SYN flood opens a flow. Once
// MaxFlows are tracked, each new one evicts the least recently active; that
// took a pass over the whole table per packet (a 2-million-packet flood ran
// for hours). It must stay cheap, and evict in order of activity.
func TestAssemblerFloodOfFlows(t *testing.T) {
	cfg := DefaultAssemblerConfig()
	f := &countingFactory{}
	a := NewAssembler(cfg, f)
	p := seg(true, 1, 0, 1, "")
	p.Flags = FlagSYN
	open := func(i int) {
		p.SrcIP[13], p.SrcIP[14], p.SrcPort = byte(i>>24), byte(i>>16), uint16(i)
		p.TS = int64(i) // a microsecond apart: no flow goes idle
		a.Add(p)
	}
	n := cfg.MaxFlows * 4
	start := time.Now()
	for i := range n {
		open(i)
		if i == cfg.MaxFlows/2 {
			// The first flow becomes the most recently active: the
			// evictions that follow take the second first.
			open(0)
		}
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("%d new flows took %v", n, d)
	}
	if a.Flows() != cfg.MaxFlows || f.closed[CloseEvicted] != n-cfg.MaxFlows {
		t.Fatalf("%d flows tracked, %d evicted", a.Flows(), f.closed[CloseEvicted])
	}
	// The flow refreshed half-way was evicted after those opened before it.
	p.SrcIP[13], p.SrcIP[14], p.SrcPort = 0, 0, 0
	if k, _ := KeyOf(p); a.flows[k] != nil {
		t.Errorf("flow refreshed half-way through still tracked")
	}
	last := n - 1
	p.SrcIP[13], p.SrcIP[14], p.SrcPort = byte(last>>24), byte(last>>16), uint16(last)
	if k, _ := KeyOf(p); a.flows[k] == nil {
		t.Errorf("newest flow not tracked")
	}
	a.Flush()
	if a.Flows() != 0 || a.oldest != nil || a.newest != nil {
		t.Errorf("after Flush: %d flows, activity list %p..%p", a.Flows(), a.oldest, a.newest)
	}
}

// TestAssemblerTinyOutOfOrderSegments: one flow sends a million 1-byte
// segments after a hole, each with a hole of its own, all at the same time
// (no hole timeout) and without ACKs. Charged by length against the 1 MiB
// per-direction limit, they held a 2 KiB buffer each (2 GiB) in a list
// whose every insertion copied it: minutes of CPU. Charged by what they
// hold, a few hundred are buffered at a time.
func TestAssemblerTinyOutOfOrderSegments(t *testing.T) {
	for _, descending := range []bool{false, true} {
		a := NewAssembler(DefaultAssemblerConfig(), &countingFactory{})
		p := seg(true, 1000, 0, 1, "x")
		p.Flags = FlagPSH
		a.Add(p)
		const n = 1_000_000
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		peak := uint64(0)
		start := time.Now()
		for i := range n {
			k := i
			if descending {
				k = n - i
			}
			p.Seq = uint32(1003 + 2*k)
			a.Add(p)
			if i%100_000 == 99_999 {
				runtime.GC() // what the buffered segments hold, not garbage
				runtime.ReadMemStats(&after)
				peak = max(peak, after.HeapAlloc)
			}
		}
		a.Flush()
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("descending %v: %d segments took %v", descending, n, d)
		}
		if grew := peak - min(peak, before.HeapAlloc); grew > 8<<20 {
			t.Errorf("descending %v: buffered segments held %d bytes", descending, grew)
		}
		if s := a.Stats(); s.BufferOverflow == 0 {
			t.Errorf("descending %v: no buffer overflow: %+v", descending, s)
		}
	}
}
