package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// runHeadless runs a live capture without the terminal UI: the pipeline
// works on this goroutine while a ticker asks it for a snapshot every
// o.interval and prints a one-line summary of the newest one to stderr.
func runHeadless(ctx context.Context, p *analyze.Pipeline, o *options, stderr io.Writer) error {
	if p.Snapshots == nil {
		p.Snapshots = &analyze.Snapshots{}
	}
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
				if r := p.Snapshots.Latest(); r != nil && r != prev {
					fmt.Fprintln(stderr, summaryLine(r, prev))
					prev = r
				}
				p.Snapshots.Request()
			}
		}
	}()
	p.Snapshots.Request()
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
	var p50, p99 float64
	var frames, segs [2]uint64
	for _, c := range r.Connections {
		if c.Latency.P99 > p99 {
			p99 = c.Latency.P99
		}
		if c.Latency.P50 > p50 {
			p50 = c.Latency.P50
		}
		frames[0] += c.ClientWrites.Frames
		segs[0] += c.ClientWrites.Segments
		frames[1] += c.ServerWrites.Frames
		segs[1] += c.ServerWrites.Segments
	}
	fps := func(i int) float64 {
		if segs[i] == 0 {
			return 0
		}
		return float64(frames[i]) / float64(segs[i])
	}
	return fmt.Sprintf("%s  %d pkts (%.0f/s)  %d dropped  %d conns  %d req (%.0f/s)  worst p50 %.0fµs p99 %.0fµs  frames/write client %.2f server %.2f  %d diagnoses",
		time.Now().Format("15:04:05"), r.Packets, pktRate, r.Dropped, r.Totals.Connections, r.Totals.Requests, reqRate,
		p50, p99, fps(0), fps(1), len(r.Diagnoses))
}
