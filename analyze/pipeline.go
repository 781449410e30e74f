package analyze

import (
	"context"
	"errors"
	"io"
	"sync/atomic"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
)

// Pipeline wires a packet source, the TCP assembler and the analyzer. All
// work happens on the caller's goroutine; the steady state allocates
// nothing per packet.
type Pipeline struct {
	Src capture.Source
	Asm *capture.Assembler
	An  *Analyzer

	// Snapshots, when set, receives a report whenever it asks for one
	// (live capture and the terminal UI); the report is built on the
	// pipeline's goroutine between two packets, so capture never waits.
	Snapshots *Snapshots
	Name      string // the source's name in reports
	// BeforeReport, when set, runs on the pipeline goroutine before each
	// report is built (e.g. to read the kernel's syscall counters).
	BeforeReport func()

	pkt         capture.Packet
	first, last int64 // the first packet's time; the latest time of the current span
	spanStart   int64 // where the current span of a monotonic clock began
	elapsed     int64 // the lengths of the spans before it
	clockJumps  uint64
	truncated   bool
	count       uint64
}

// Snapshots hands the newest report from the pipeline goroutine to readers
// on other goroutines. Readers call Request (e.g. from a ticker) and Latest;
// the pipeline publishes at its next packet (or idle timeout).
type Snapshots struct {
	want   atomic.Bool
	latest atomic.Pointer[Report]
}

// Request asks the pipeline for a fresh report.
func (s *Snapshots) Request() { s.want.Store(true) }

// Latest returns the newest report, nil before the first. Reports are
// immutable once published.
func (s *Snapshots) Latest() *Report { return s.latest.Load() }

// Publish builds and publishes a report now. Call it only from the
// goroutine that runs the pipeline.
func (p *Pipeline) Publish() {
	if p.Snapshots == nil {
		return
	}
	p.Snapshots.want.Store(false)
	p.Snapshots.latest.Store(p.Report(p.Name))
}

// NewPipeline builds a pipeline over src.
func NewPipeline(src capture.Source, cfg Config, acfg capture.AssemblerConfig) *Pipeline {
	an := New(cfg)
	return &Pipeline{Src: src, An: an, Asm: capture.NewAssembler(acfg, an)}
}

// Run processes packets until the source ends, limit TCP packets were
// processed (0 = no limit) or ctx is done. A truncated capture file ends the
// run without error (Report says so); other read errors are returned.
func (p *Pipeline) Run(ctx context.Context, limit uint64) error {
	for {
		if p.count&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		if limit > 0 && p.count >= limit {
			return nil
		}
		if p.Snapshots != nil && p.Snapshots.want.Load() {
			p.Publish()
		}
		err := p.Src.Next(&p.pkt)
		if err != nil {
			if err == io.EOF {
				return nil
			}
			if errors.Is(err, capture.ErrTimeout) {
				// A live source with nothing to read: publish if asked,
				// stop if cancelled.
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
		p.clock(p.pkt.TS)
		p.Asm.Add(&p.pkt)
	}
}

// Finish closes every connection, as at the end of the capture.
func (p *Pipeline) Finish() error {
	p.Asm.Flush()
	return p.An.FlushLog()
}

// Report builds the report; name is the source's name for humans.
func (p *Pipeline) Report(name string) *Report {
	if p.BeforeReport != nil {
		p.BeforeReport()
	}
	s := p.Src.Stats()
	return p.An.Report(SourceStats{
		Name: name, Packets: s.Records, Bytes: s.Bytes, Dropped: s.Dropped, TCP: s.TCP,
		NotTCP: s.NotTCP, Fragments: s.Fragments, Malformed: s.Malformed, Unsupported: s.UnsupportedLink,
		Truncated: p.truncated, First: p.first, Last: p.last, Elapsed: p.elapsed + p.last - p.spanStart, ClockJumps: p.clockJumps,
	}, p.Asm.Stats())
}

// maxClockStep is how far packet times may step back (reordering between
// interfaces, a capture's own jitter) before the clock is taken to have
// jumped: files spliced from captures with other clocks.
const maxClockStep = int64(time.Second)

// clock follows the capture's time. The duration is the sum of the spans
// in which time ran forward, so a spliced file (one part from 2015, the next
// from a clock 69 s after boot) does not last 45 years.
func (p *Pipeline) clock(ts int64) {
	switch {
	case p.first == 0:
		p.first, p.last, p.spanStart = ts, ts, ts
	case ts < p.last-maxClockStep:
		p.elapsed += p.last - p.spanStart
		p.spanStart, p.last = ts, ts
		p.clockJumps++
	case ts > p.last:
		p.last = ts
	}
}
