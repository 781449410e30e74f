package main

import (
	"io"
	"math"
	"sync/atomic"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

// pacer replays a capture file at its own pace (times speed) for the
// terminal UI. When the next packet is not due yet it waits at most
// maxWait and returns capture.ErrTimeout, keeping the packet for the next
// call: the pipeline treats that as an idle live source and still answers
// snapshot requests. Speed 0 means as fast as possible. Speed and Done are
// safe to call from the UI goroutine.
type pacer struct {
	src   capture.Source
	speed atomic.Uint64 // float64 bits
	done  atomic.Bool

	held        bool // the packet in the caller's buffer is not handed out yet
	anchorTS    int64
	anchorWall  time.Time
	anchored    bool
	anchorSpeed float64
	now         func() time.Time
	sleep       func(time.Duration)
}

const maxWait = 20 * time.Millisecond

func newPacer(src capture.Source, speed float64) *pacer {
	p := &pacer{src: src, now: time.Now, sleep: time.Sleep}
	p.SetSpeed(speed)
	return p
}

func (p *pacer) Speed() float64             { return math.Float64frombits(p.speed.Load()) }
func (p *pacer) SetSpeed(s float64)         { p.speed.Store(math.Float64bits(max(s, 0))) }
func (p *pacer) Done() bool                 { return p.done.Load() }
func (p *pacer) Stats() capture.SourceStats { return p.src.Stats() }
func (p *pacer) Close() error               { return p.src.Close() }

func (p *pacer) Next(pkt *capture.Packet) error {
	if !p.held {
		if err := p.src.Next(pkt); err != nil {
			if err == io.EOF {
				p.done.Store(true)
			}
			return err
		}
		p.held = true
	}
	speed := p.Speed()
	if speed == 0 {
		p.held = false
		p.anchored = false
		return nil
	}
	now := p.now()
	if !p.anchored || speed != p.anchorSpeed {
		// Start, or a change of pace: time runs from this packet on.
		p.anchorTS, p.anchorWall, p.anchorSpeed, p.anchored = pkt.TS, now, speed, true
	}
	due := p.anchorWall.Add(time.Duration(float64(pkt.TS-p.anchorTS) / speed))
	if wait := due.Sub(now); wait > 0 {
		p.sleep(min(wait, maxWait))
		if wait > maxWait {
			return capture.ErrTimeout
		}
	}
	p.held = false
	return nil
}
