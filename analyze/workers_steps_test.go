package analyze

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// A connection that closes while a snapshot's part is being built in steps
// is in neither that part's open list nor its closed list.
func TestSteppedPartDropsClosing(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 700, Requests: 4, InFlight: 1, Seed: 3})
	src, _ := capture.NewReaderSource(bytes.NewReader(data))
	p := NewPipeline(src, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(1))
	p.Run(context.Background(), 0)
	a := p.one.an
	t.Logf("live %d closed %d", len(a.live), len(a.closed))
	b := a.newPartBuilder(p.one.asm.Stats(), true)
	b.step(10)
	var victim *conn
	for _, c := range b.conns[20:] {
		if c.isCQL() && !c.closed {
			victim = c
			break
		}
	}
	if victim == nil {
		t.Skip("no open CQL connection left")
	}
	victim.Close(capture.CloseFIN, victim.last)
	for !b.step(512) {
	}
	in := func(pt *part) bool {
		for _, cr := range pt.conns {
			if cr.ID == victim.id {
				return true
			}
		}
		return false
	}
	t.Logf("victim %d in stepped part: %v; in the next part: %v", victim.id, in(b.pt), in(a.part(p.one.asm.Stats(), true)))
	if !in(b.pt) {
		t.Errorf("connection %d missing from the snapshot (closed mid-build)", victim.id)
	}
}

// numless leaves Num as it was (a source that fills fields one by one).
type numless struct{ capture.Source }

func (s numless) Next(p *capture.Packet) error {
	var q capture.Packet
	err := s.Source.Next(&q)
	n := p.Num
	*p = q
	p.Num = n
	return err
}

func TestStaleNum(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 6, Requests: 50, InFlight: 4, Seed: 3})
	for _, n := range []int{1, 3} {
		src, _ := capture.NewReaderSource(bytes.NewReader(data))
		p := NewPipeline(numless{src}, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(n))
		p.Run(context.Background(), 0)
		p.Finish()
		uniqueIDs(t, fmt.Sprintf("workers=%d", n), p.Report("x"))
	}
}

// uniqueIDs checks that no two connections of r have the same id.
func uniqueIDs(t *testing.T, what string, r *Report) {
	t.Helper()
	seen := map[uint64]bool{}
	var ids []uint64
	for _, c := range r.Connections {
		seen[c.ID] = true
		ids = append(ids, c.ID)
	}
	if len(seen) != len(r.Connections) {
		t.Errorf("%s: ids collide %v", what, ids)
	}
}

type zeroNum struct{ capture.Source }

func (s zeroNum) Next(p *capture.Packet) error { err := s.Source.Next(p); p.Num = 0; return err }

// The fanout path does not number packets without Num.
func TestFanoutNumZero(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 6, Requests: 50, InFlight: 4, Seed: 3})
	// two members each reading the whole file but only their own connections would be ideal;
	// here: two members with disjoint halves by port parity.
	var srcs []capture.Source
	for m := 0; m < 2; m++ {
		src, _ := capture.NewReaderSource(bytes.NewReader(data))
		srcs = append(srcs, half{zeroNum{src}, m})
	}
	p := NewFanoutPipeline(srcs, DefaultConfig(), capture.DefaultAssemblerConfig())
	p.Run(context.Background(), 0)
	p.Finish()
	uniqueIDs(t, "fanout", p.Report("x"))
}

type half struct {
	capture.Source
	m int
}

func (h half) Next(p *capture.Packet) error {
	for {
		if err := h.Source.Next(p); err != nil {
			return err
		}
		if shardOf(p, 2) == h.m {
			return nil
		}
	}
}
