package analyze

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

// NewFanoutPipeline builds a pipeline whose workers each read their own
// source: the members of a PACKET_FANOUT group (capture.OpenLiveFanout),
// where the kernel deals the packets by a hash of their connection that is
// the same in both directions. No goroutine reads for the others and no
// packet is copied. Each worker keeps its own clock and sweeps idle flows
// by it; reports join the members' counts.
//
// A group of one is an ordinary pipeline over its source; of none, a
// pipeline that reads nothing.
func NewFanoutPipeline(srcs []capture.Source, cfg Config, acfg capture.AssemblerConfig, opts ...Option) *Pipeline {
	switch len(srcs) {
	case 0:
		return NewPipeline(fanoutStats(nil), cfg, acfg, append(opts, Workers(1))...) // nothing to read
	case 1:
		return NewPipeline(srcs[0], cfg, acfg, append(opts, Workers(1))...)
	}
	p := NewPipeline(fanoutStats(srcs), cfg, acfg, append(opts, Workers(len(srcs)))...)
	for i, s := range p.shards {
		s.fan.src = srcs[i]
		s.asm = capture.NewAssembler(p.acfg, s.an) // not driven: its own packets are its clock
		s.asm.ShareFlows(&p.flows)
		s.in, s.free, s.cur = nil, nil, nil
	}
	p.fanout = true
	return p
}

// fanoutStats is the pipeline's view of a fanout group: the sum of its
// members' counters. The members are read by the workers, never through it.
type fanoutStats []capture.Source

func (f fanoutStats) Next(*capture.Packet) error { return io.EOF }

// Close closes nothing: the members belong to the caller.
func (f fanoutStats) Close() error { return nil }

func (f fanoutStats) Stats() capture.SourceStats {
	var s capture.SourceStats
	for _, m := range f {
		s.Add(m.Stats())
	}
	return s
}

// fanoutState is a worker's own reading loop state.
type fanoutState struct {
	src capture.Source
	pkt capture.Packet
	clk clock
	req atomic.Pointer[partsRequest] // a report's part asked of it
	err error
	// stopped: the worker's reading ended; its part is built by the one
	// who asks (see runFanout).
	stopped atomic.Bool
}

// runFanout runs every worker on its own source until each ends, or ctx
// is done; meanwhile it passes snapshot requests on to the workers.
func (p *Pipeline) runFanout(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for i, s := range p.shards {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := s.read(ctx, i, len(p.shards)); err != nil {
				s.fan.err = err
				cancel() // a broken member: the group stops
			}
			// A member that ended (a file, say) while others go on: its
			// part is built by whoever asks from now on (stopped), and
			// one asked for meanwhile, here.
			s.serveAsked(i)
			s.finishBuild()
			s.fan.stopped.Store(true)
			if r := s.fan.req.Swap(nil); r != nil {
				s.servePart(i, r)
				s.finishBuild()
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			var errs []error
			for i, s := range p.shards {
				s.serveAsked(i) // one asked for as the worker stopped
				s.finishBuild()
				errs = append(errs, s.fan.err)
			}
			return errors.Join(errs...)
		case <-tick.C:
			if p.snaps.want.Load() {
				p.snapshot()
			}
		}
	}
}

// read is a worker's loop over its own source.
func (s *shard) read(ctx context.Context, i, members int) error {
	f := &s.fan
	var n uint64
	for {
		s.serveAsked(i)
		if s.build != nil && n&255 == 0 {
			s.stepBuild(partStep)
		}
		if n&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		f.pkt.Num = 0
		err := f.src.Next(&f.pkt)
		if err != nil {
			switch {
			case err == io.EOF:
				return nil
			case errors.Is(err, capture.ErrTimeout):
				if s.build != nil {
					s.stepBuild(0) // idle: finish it
				}
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			return err
		}
		if f.pkt.Num == 0 {
			// A member that does not number its packets: the stride of
			// capture.OpenLiveFanout's, unique over the group.
			f.pkt.Num = n*uint64(members) + uint64(i) + 1
		}
		n++
		f.clk.tick(f.pkt.TS)
		s.asm.Add(&f.pkt)
	}
}

// serveAsked builds the part of a report asked of the worker, if any,
// with its member's counters and clock, which only it may read while it
// runs. (A load first: a swap on every packet would be a store.)
func (s *shard) serveAsked(i int) {
	if s.fan.req.Load() == nil {
		return
	}
	if r := s.fan.req.Swap(nil); r != nil {
		s.servePart(i, r)
	}
}

// clock follows a capture's time. The duration is the sum of the spans
// in which time ran forward, so a spliced file (one part from 2015, the next
// from a clock 69 s after boot) does not last 45 years.
type clock struct {
	first      int64 // the first packet's time
	last       int64 // the latest time of the current span
	spanStart  int64 // where the current span of a monotonic clock began
	elapsed    int64 // the lengths of the spans before it
	clockJumps uint64
}

// maxClockStep is how far packet times may step back (reordering between
// interfaces, a capture's own jitter) before the clock is taken to have
// jumped: files spliced from captures with other clocks.
const maxClockStep = int64(time.Second)

func (c *clock) tick(ts int64) {
	switch {
	case c.first == 0:
		c.first, c.last, c.spanStart = ts, ts, ts
	case ts < c.last-maxClockStep:
		c.elapsed += c.last - c.spanStart
		c.spanStart, c.last = ts, ts
		c.clockJumps++
	case ts > c.last:
		c.last = ts
	}
}

// span is the clock's figures for a report.
func (c *clock) span() (first, last, elapsed int64, jumps uint64) {
	return c.first, c.last, c.elapsed + c.last - c.spanStart, c.clockJumps
}

// joinSpans is the clock of a capture read in parts (the members of a
// fanout group): from the earliest first packet to the latest, as long as
// the longest-running part.
func joinSpans(clocks []*clock) (first, last, elapsed int64, jumps uint64) {
	for _, c := range clocks {
		f, l, e, j := c.span()
		if f == 0 {
			continue
		}
		if first == 0 || f < first {
			first = f
		}
		last, elapsed, jumps = max(last, l), max(elapsed, e), max(jumps, j)
	}
	return first, last, elapsed, jumps
}
