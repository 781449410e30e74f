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

// Pipeline wires a packet source, TCP reassembly and analysis. With one
// worker all work happens on the caller's goroutine. With several, the
// caller's goroutine only reads packets and deals them out by a
// direction-independent hash of their connection to the workers, each of
// which owns its connections' reassembly, decoding and statistics, so that
// nothing per packet is shared; reports join the workers' parts. The steady
// state allocates nothing per packet either way.
type Pipeline struct {
	src    capture.Source
	name   string
	snaps  *Snapshots
	host   HostReader
	shards []*shard
	one    *shard // the only shard when there is one worker

	// mu guards the merger: snapshots are merged off the pipeline's
	// goroutines, and a final report may be asked for meanwhile.
	mu      sync.Mutex
	m       *merger
	merging sync.WaitGroup // the snapshot being merged, if any
	busy    atomic.Bool    // a snapshot is being built or merged
	// nextSnap is when the next snapshot may start (Unix ns); snapAt the
	// packet count from which a deferred one is looked at again.
	nextSnap atomic.Int64
	snapAt   uint64
	// id tells this pipeline's reports from other pipelines'; made
	// counts its reports (see Report.Compare). Both under mu.
	id   uint64
	made uint64

	acfg      capture.AssemblerConfig // each worker's share of the bounds
	flows     atomic.Int64            // the workers' flows, which MaxFlows bounds together
	fanout    bool                    // each worker reads its own source
	pkt       capture.Packet
	clk       clock
	truncated bool
	count     uint64
	now       int64 // the latest packet time: the workers' clock
	lastSweep int64
	started   bool
	finished  bool
	workers   sync.WaitGroup
}

// HostReader reads what the host tells beside the wire, before each
// report: the kernel's counts of each socket's calls and the CPU of the
// processes at the ends of connections (see SetSyscalls, SetProcesses).
// A nil map leaves the previous counts in place. It is called from one
// goroutine at a time, not necessarily the pipeline's.
type HostReader func() (map[SocketKey]SocketCounts, []ProcessCPU)

// Option configures a pipeline.
type Option func(*Pipeline)

// Workers sets the number of analysis workers (1 when n < 1).
func Workers(n int) Option {
	return func(p *Pipeline) { p.shards = make([]*shard, max(n, 1)) }
}

// Name sets the source's name in reports.
func Name(name string) Option { return func(p *Pipeline) { p.name = name } }

// Host sets the reader of the host's figures (kernel counts, processes).
func Host(h HostReader) Option { return func(p *Pipeline) { p.host = h } }

// WithSnapshots has the pipeline publish reports to s when asked (live
// capture, the terminal UI, the metrics endpoint).
func WithSnapshots(s *Snapshots) Option {
	return func(p *Pipeline) {
		if s != nil {
			p.snaps = s
		}
	}
}

// NewPipeline builds a pipeline over src.
func NewPipeline(src capture.Source, cfg Config, acfg capture.AssemblerConfig, opts ...Option) *Pipeline {
	p := &Pipeline{src: src, shards: make([]*shard, 1), snaps: &Snapshots{}, id: pipelines.Add(1)}
	for _, o := range opts {
		o(p)
	}
	n := len(p.shards)
	if n > 1 {
		// The bounds are the whole pipeline's: flows and closed
		// connections are counted together (ShareFlows, the registry);
		// the buffers of out-of-order segments are shared out, at least
		// one flow's worth each.
		acfg.MaxBufferedAll = max(acfg.MaxBufferedAll/n, acfg.MaxBufferedFlow)
		cfg.Log = lockedLog(cfg.Log)
		if cfg.HashValues && len(cfg.HashKey) == 0 {
			cfg.HashKey = randomKey() // one key for all workers: equal values hash alike
		}
	}
	p.acfg = acfg
	var reg *registry
	for i := range p.shards {
		an := New(cfg)
		if reg == nil {
			reg = an.reg
		}
		an.reg = reg
		if n > 1 {
			reg.closedShare = max(cfg.MaxClosed/(2*n), 1)
		}
		s := &shard{an: an, asm: capture.NewAssembler(acfg, an)}
		if n > 1 {
			s.asm.ShareFlows(&p.flows)
			s.asm.Drive()
			s.in = make(chan *batch, batchesPerShard)
			s.free = make(chan *batch, batchesPerShard)
			for range batchesPerShard {
				s.free <- newBatch()
			}
			s.cur = <-s.free
		}
		p.shards[i] = s
	}
	p.m = p.shards[0].an.rep
	if n == 1 {
		p.one = p.shards[0]
	}
	return p
}

// Snapshots returns where the pipeline publishes reports (its own unless
// a WithSnapshots option gave one).
func (p *Pipeline) Snapshots() *Snapshots { return p.snaps }

// SetHost replaces the reader of the host's figures; nil stops reading
// them and forgets the kernel's counts. Call it between runs.
func (p *Pipeline) SetHost(h HostReader) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.host = h
	if h == nil {
		p.m.sys = nil
	}
}

// Snapshots hands the newest report from the pipeline to readers on other
// goroutines. Readers call Request (e.g. from a ticker) and Latest; the
// pipeline publishes soon after its next packet (or idle timeout).
type Snapshots struct {
	want   atomic.Bool
	latest atomic.Pointer[Report]
}

// Request asks the pipeline for a fresh report.
func (s *Snapshots) Request() { s.want.Store(true) }

// Latest returns the newest report, nil before the first. Reports are
// immutable once published.
func (s *Snapshots) Latest() *Report { return s.latest.Load() }

// Publish builds and publishes a report now, waiting for it. Call it only
// from the goroutine that runs the pipeline, when Run is not running.
func (p *Pipeline) Publish() {
	p.snaps.want.Store(false)
	p.snaps.latest.Store(p.Report(p.name))
}

// snapshot starts a report for the snapshot readers without waiting for
// it: each worker builds its part at its next batch (with one worker, right
// here), and a goroutine of its own merges them and publishes. While one
// is under way, requests wait for it.
//
// Snapshots take at most a tenth of the time: after one whose parts took
// a worker t to build and the merge m, the next waits 9(t+m). A quiet
// capture refreshes at the readers' pace; one with tens of thousands of
// busy connections, whose every report changes, more slowly, instead of
// stalling capture (see BenchmarkSnapshot).
func (p *Pipeline) snapshot() {
	if p.busy.Load() || time.Now().UnixNano() < p.nextSnap.Load() {
		p.snapAt = p.count + 4096 // look again a little later
		return
	}
	if !p.busy.CompareAndSwap(false, true) {
		return
	}
	p.snaps.want.Store(false)
	var src CaptureInfo
	if !p.fanout {
		src = p.captureInfo(p.name) // (a fanout group's: from the parts)
	}
	req := &partsRequest{parts: make([]*part, len(p.shards)), copy: true}
	req.wg.Add(len(p.shards))
	switch {
	case p.one != nil:
		p.one.servePart(0, req)
	case p.fanout:
		for i, s := range p.shards {
			if s.fan.stopped.Load() {
				s.servePart(i, req) // its worker is done: build it here
				s.finishBuild()
				continue
			}
			s.fan.req.Store(req)
			if s.fan.stopped.Load() {
				// It stopped meanwhile: whoever takes the request back
				// builds the part.
				if r := s.fan.req.Swap(nil); r != nil {
					s.servePart(i, r)
					s.finishBuild()
				}
			}
		}
	default:
		for _, s := range p.shards {
			s.cur.req = req
			p.send(s)
		}
	}
	p.merging.Add(1)
	go func() {
		defer p.merging.Done()
		req.wg.Wait()
		start := time.Now()
		if p.fanout {
			src = p.fanoutInfo(p.name, req.parts)
		}
		r := p.merge(req.parts, src)
		p.snaps.latest.Store(r)
		now := time.Now()
		p.nextSnap.Store(now.UnixNano() + snapshotWait*(req.cost.Load()+int64(now.Sub(start))))
		p.busy.Store(false)
	}()
}

// snapshotWait is how many times its own cost a snapshot waits before the
// next: snapshots take at most 1/(1+snapshotWait) of the time.
const snapshotWait = 9

// Run processes packets until the source ends, limit TCP packets were
// processed (0 = no limit) or ctx is done. A truncated capture file ends the
// run without error (Report says so); other read errors are returned.
//
// A fanout pipeline (NewFanoutPipeline) runs each worker on its source, and
// ignores limit.
func (p *Pipeline) Run(ctx context.Context, limit uint64) error {
	defer func() {
		// A snapshot asked for is published before Run returns.
		if p.one != nil {
			p.one.finishBuild()
		}
		p.merging.Wait()
	}()
	if p.finished {
		return errors.New("analyze: Run after Finish")
	}
	if p.fanout {
		return p.runFanout(ctx)
	}
	if p.one == nil && !p.started {
		p.start()
	}
	for {
		if p.count&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		if limit > 0 && p.count >= limit {
			p.flushAll()
			return nil
		}
		if p.snaps.want.Load() && p.count >= p.snapAt {
			p.snapshot()
		}
		if p.one != nil && p.one.build != nil && p.count&255 == 0 {
			p.one.stepBuild(partStep)
		}
		p.pkt.Num = 0 // (a source that does not number its packets leaves it)
		err := p.src.Next(&p.pkt)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			if errors.Is(err, capture.ErrTimeout) {
				// A live source with nothing to read: hand the workers
				// what they have, publish if asked, stop if cancelled.
				p.flushAll()
				p.snapAt = 0
				if p.one != nil && p.one.build != nil {
					p.one.finishBuild() // idle: finish it
				}
				if ctx.Err() != nil {
					return nil
				}
				continue
			}
			if errors.Is(err, capture.ErrTruncated) {
				p.truncated = true
				return nil
			}
			return err
		}
		p.count++
		if p.pkt.Num == 0 {
			p.pkt.Num = p.count // a source that does not number its packets
		}
		p.clk.tick(p.pkt.TS)
		if p.one != nil {
			p.one.asm.Add(&p.pkt)
			continue
		}
		p.deal(&p.pkt)
	}
}

// Finish closes every connection, as at the end of the capture, and stops
// the workers.
func (p *Pipeline) Finish() error {
	p.merging.Wait()
	if p.finished {
		return nil
	}
	p.finished = true
	if p.one != nil || p.fanout {
		// Nothing runs on the workers' goroutines.
		var errs []error
		for _, s := range p.shards {
			s.asm.Flush()
			errs = append(errs, s.an.FlushLog())
		}
		return errors.Join(errs...)
	}
	if !p.started {
		p.start()
	}
	for _, s := range p.shards {
		s.cur.finish, s.cur.now = true, p.now
		p.send(s)
		close(s.in)
	}
	p.workers.Wait()
	var errs []error
	for _, s := range p.shards {
		errs = append(errs, s.err)
	}
	return errors.Join(errs...)
}

// Report builds the report; name is the source's name for humans. With
// several workers it waits for each to build its part at its next batch.
// Call it from the goroutine that runs the pipeline, when Run is not
// running.
func (p *Pipeline) Report(name string) *Report {
	p.merging.Wait()
	src := p.captureInfo(name)
	parts := make([]*part, len(p.shards))
	switch {
	case p.one != nil || p.fanout || p.finished || !p.started:
		// Nothing runs on the workers' goroutines.
		for i, s := range p.shards {
			parts[i] = s.an.part(s.asm.Stats(), false)
		}
	default:
		req := &partsRequest{parts: parts}
		req.wg.Add(len(p.shards))
		for _, s := range p.shards {
			s.cur.req = req
			p.send(s)
		}
		req.wg.Wait()
	}
	return p.merge(parts, src)
}

func (p *Pipeline) merge(parts []*part, src CaptureInfo) *Report {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.host != nil {
		sys, procs := p.host()
		if sys != nil {
			p.m.sys = sys
		}
		p.m.setProcesses(procs)
	}
	r := p.m.merge(parts, src)
	p.made++
	r.made = made{pipeline: p.id, n: p.made}
	return r
}

// pipelines numbers the pipelines of the process, from 1.
var pipelines atomic.Uint64

// Of a fanout pipeline, only while its workers are not running (Report,
// Publish): a snapshot takes each member's figures from its part, which
// its worker filled (fanoutInfo).
func (p *Pipeline) captureInfo(name string) CaptureInfo {
	s := p.src.Stats()
	first, last, elapsed, jumps := p.clk.span()
	if p.fanout {
		clocks := make([]*clock, len(p.shards))
		for i, sh := range p.shards {
			clocks[i] = &sh.fan.clk
		}
		first, last, elapsed, jumps = joinSpans(clocks)
	}
	return p.info(name, s, first, last, elapsed, jumps)
}

// fanoutInfo is the capture's figures from the parts of a fanout group's
// workers, each of which read its own member's counters and clock.
func (p *Pipeline) fanoutInfo(name string, parts []*part) CaptureInfo {
	var s capture.SourceStats
	clocks := make([]*clock, len(parts))
	for i, pt := range parts {
		s.Add(pt.src)
		clocks[i] = &pt.clk
	}
	first, last, elapsed, jumps := joinSpans(clocks)
	return p.info(name, s, first, last, elapsed, jumps)
}

func (p *Pipeline) info(name string, s capture.SourceStats, first, last, elapsed int64, jumps uint64) CaptureInfo {
	return CaptureInfo{
		Name: name, Packets: s.Records, Bytes: s.Bytes, Dropped: s.Dropped, TCP: s.TCP,
		NotTCP: s.NotTCP, Fragments: s.Fragments, Malformed: s.Malformed, Unsupported: s.UnsupportedLink,
		Truncated: p.truncated, First: first, Last: last, Elapsed: elapsed, ClockJumps: jumps,
	}
}

// SyscallCounts is a HostReader that always gives the same kernel counts
// (tests, replays of a capture whose counts were recorded with it).
func SyscallCounts(m map[SocketKey]SocketCounts) HostReader {
	return func() (map[SocketKey]SocketCounts, []ProcessCPU) { return m, nil }
}
