package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
	"sync/atomic"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/procstat"
	"github.com/cqlsniff/cqlsniff/sockcount"
	"github.com/cqlsniff/cqlsniff/tui"
	"golang.org/x/term"
)

// runHeadless runs a live capture without the terminal UI: the pipeline
// works on this goroutine while a ticker asks it for a snapshot every
// o.interval and prints a one-line summary of the newest one to stderr.
func runHeadless(ctx context.Context, p *analyze.Pipeline, o *options, stderr io.Writer) error {
	snaps := p.Snapshots()
	done := make(chan struct{})
	defer close(done)
	go func() {
		t := time.NewTicker(o.interval)
		defer t.Stop()
		var prev *analyze.Report
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if r := snaps.Latest(); r != nil && r != prev {
					fmt.Fprintln(stderr, summaryLine(r, prev))
					prev = r
				}
				snaps.Request()
			}
		}
	}()
	snaps.Request()
	return p.Run(ctx, o.count)
}

// summaryLine is the periodic one-line view of a live capture.
func summaryLine(r, prev *analyze.Report) string {
	var reqRate, pktRate float64
	if prev != nil && r.DurationS > prev.DurationS {
		dt := r.DurationS - prev.DurationS
		reqRate = float64(r.Totals.Requests-prev.Totals.Requests) / dt
		pktRate = float64(r.Packets-prev.Packets) / dt
	}
	// The whole capture's, also past the connections the report lists.
	frames := [2]uint64{r.Totals.ClientFrames, r.Totals.ServerFrames}
	segs := [2]uint64{r.Totals.ClientSegments, r.Totals.ServerSegments}
	fps := func(i int) float64 {
		if segs[i] == 0 {
			return 0
		}
		return float64(frames[i]) / float64(segs[i])
	}
	return fmt.Sprintf("%s  %d pkts (%.0f/s)  %d dropped  %d conns  %d req (%.0f/s)  p50 %.0fµs p99 %.0fµs  frames/seg client %.2f server %.2f  %d diagnoses",
		time.Now().Format("15:04:05"), r.Packets, pktRate, r.Dropped, r.Totals.Connections, r.Totals.Requests, reqRate,
		r.Latency.P50, r.Latency.P99, fps(0), fps(1), len(r.Diagnoses))
}

// isTerminal reports whether w is a terminal. It asks the tty driver
// (TCGETS), not the file mode: /dev/null is a character device too, and
// `cqlsniff -r f >/dev/null` must not open the UI.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// runTUI runs the pipeline on its own goroutine and the terminal UI on
// this one. A replayed file goes at its own pace (times --speed) and the
// UI keeps the final state until q; a live capture ends when the UI quits.
func runTUI(ctx context.Context, src capture.Source, members []capture.Source, cfg analyze.Config, acfg capture.AssemblerConfig, name string, o *options, tracer *sockcount.Tracer, metricsLn net.Listener, stderr io.Writer) error {
	var pc *pacer
	if o.iface == "" {
		pc = newPacer(src, o.speed)
		src = pc
	}
	p := newPipeline(src, members, cfg, acfg, o, analyze.Name(name),
		analyze.Host(hostReader(tracer, io.Discard))) // the UI owns the terminal
	snaps := p.Snapshots()
	if metricsLn != nil {
		defer serveMetrics(metricsLn, o.webConfig, snaps, o.metricsCfg, io.Discard)()
	}
	runCtx, cancelRun := context.WithCancel(ctx)
	defer cancelRun()
	var done atomic.Bool
	errc := make(chan error, 1)
	go func() {
		err := p.Run(runCtx, o.count)
		ferr := p.Finish()
		p.Publish() // the final state, connections closed
		done.Store(true)
		errc <- errors.Join(err, ferr)
	}()
	var rp *tui.Replay
	if pc != nil {
		rp = &tui.Replay{Speed: pc.Speed, SetSpeed: pc.SetSpeed, Done: done.Load}
	}
	uiErr := tui.Run(ctx, tui.Config{Source: name, Snapshots: snaps, Replay: rp})
	cancelRun()
	runErr := <-errc
	if uiErr != nil {
		return uiErr
	}
	if runErr != nil {
		return inputErr(fmt.Errorf("reading %s: %w", name, runErr))
	}
	if r := snaps.Latest(); r != nil {
		if r.Dropped > 0 {
			fmt.Fprintf(stderr, "cqlsniff: warning: the kernel dropped %d packets\n", r.Dropped)
		}
		if r.Capture.Truncated {
			fmt.Fprintf(stderr, "cqlsniff: warning: %s is truncated; analysed the %d packets before the cut\n", name, r.Packets)
		}
	}
	return nil
}

// hostReader makes every report read the kernel's counters first (at the
// report cadence: no per-packet cost). A read
// that fails (e.g. permission lost after dropping privileges) is said once
// and counting stops; the wire analysis goes on.
//
// The counts name the process at each end of a connection: those
// processes' CPU time is read from /proc at the same cadence (procstat).
// One that cannot be read is left out; when none can be, for
// procUnavailableReports reports in a row, one line says so.
func hostReader(tr *sockcount.Tracer, stderr io.Writer) analyze.HostReader {
	if tr == nil {
		return nil
	}
	m := make(map[sockcount.Key]sockcount.Counts)
	failed := false
	sampler := procstat.NewSampler()
	var (
		pids       []uint32
		procs      []analyze.ProcessCPU
		unreadable int
	)
	return func() (map[analyze.SocketKey]analyze.SocketCounts, []analyze.ProcessCPU) {
		if failed {
			return nil, nil
		}
		if err := tr.Read(m); err != nil {
			failed = true
			fmt.Fprintf(stderr, "cqlsniff: syscall counts stopped: %s\n", sockcount.Explain(err))
			return nil, nil
		}
		cp := make(map[sockcount.Key]sockcount.Counts, len(m))
		pids = pids[:0]
		for k, v := range m {
			cp[k] = v
			if v.PID != 0 {
				pids = append(pids, v.PID)
			}
		}
		slices.Sort(pids)
		pids = slices.Compact(pids)
		procs = sampler.Sample(procs[:0], pids, time.Now())
		if err := sampler.Err(); len(procs) == 0 && err != nil {
			if unreadable++; unreadable == procUnavailableReports {
				fmt.Fprintf(stderr, "cqlsniff: process CPU unavailable: %v\n", err)
			}
		} else if unreadable < procUnavailableReports {
			unreadable = 0
		}
		return cp, procs
	}
}

// procUnavailableReports is how many reports in a row must fail to read any
// process (permission, /proc mounted with hidepid) before that is said, once.
const procUnavailableReports = 3
