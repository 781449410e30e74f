package main

import (
	"errors"
	"io"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

type tsSource struct{ ts []int64 }

func (s *tsSource) Next(p *capture.Packet) error {
	if len(s.ts) == 0 {
		return io.EOF
	}
	p.TS, s.ts = s.ts[0], s.ts[1:]
	return nil
}
func (s *tsSource) Stats() capture.SourceStats { return capture.SourceStats{} }
func (s *tsSource) Close() error               { return nil }

// TestPacer: packets are released at their capture pace times the speed,
// waits longer than maxWait return ErrTimeout without losing the packet,
// a change of speed re-anchors, and speed 0 never waits.
func TestPacer(t *testing.T) {
	clock := time.Unix(0, 0)
	var slept time.Duration
	src := &tsSource{ts: []int64{0, 10e6, 110e6, 120e6}}
	p := newPacer(src, 2)
	p.now = func() time.Time { return clock }
	p.sleep = func(d time.Duration) { slept += d; clock = clock.Add(d) }
	var pkt capture.Packet
	next := func() error { return p.Next(&pkt) }

	if err := next(); err != nil || pkt.TS != 0 {
		t.Fatalf("first packet: %v %d", err, pkt.TS)
	}
	if err := next(); err != nil || pkt.TS != 10e6 || slept != 5*time.Millisecond {
		t.Fatalf("second packet at 2x: %v ts=%d slept=%v", err, pkt.TS, slept)
	}
	// 100 ms of capture time at 2x = 50 ms: two timeouts of 20 ms, then the packet.
	timeouts := 0
	for {
		err := next()
		if errors.Is(err, capture.ErrTimeout) {
			timeouts++
			continue
		}
		if err != nil || pkt.TS != 110e6 {
			t.Fatalf("third packet: %v %d", err, pkt.TS)
		}
		break
	}
	if timeouts != 2 || slept != 55*time.Millisecond {
		t.Errorf("timeouts %d, slept %v", timeouts, slept)
	}
	p.SetSpeed(0)
	if err := next(); err != nil || pkt.TS != 120e6 || slept != 55*time.Millisecond {
		t.Errorf("speed 0 waited: %v slept=%v", err, slept)
	}
	if err := next(); err != io.EOF || !p.Done() {
		t.Errorf("end: %v done=%v", err, p.Done())
	}
}
