package main

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// TestLiveSnapshotsUnderChurn asks a live fanout pipeline (two rings, as
// cqlsniff runs on two cores) for snapshots as fast as it makes them while
// short connections open, exchange and close on every worker, and checks
// what the metrics rely on in every snapshot (metrics.Collector turns each
// connection's figures into increments of its counters):
//
//   - a connection is listed once;
//   - its requests, responses and frames never go down from one snapshot
//     to the next;
//   - an open connection does not leave the snapshots and come back: one
//     that came back would be counted again from zero.
func TestLiveSnapshotsUnderChurn(t *testing.T) {
	if testing.Short() {
		t.Skip("live capture for 6 s")
	}
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := uint16(ln.Addr().(*net.TCPAddr).Port)
	lc := capture.LiveConfig{Interface: "lo", Ports: []uint16{port}}
	srcs := openFanout(t, lc, 2)
	cfg := analyze.DefaultConfig()
	cfg.Ports = []uint16{port}
	cfg.MaxClosed = 1 << 20 // every closed connection stays listed: none may vanish
	p := analyze.NewFanoutPipeline(srcs, cfg, capture.DefaultAssemblerConfig())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- p.Run(ctx, 0) }()

	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go serveCQL(c, 4)
		}
	}()
	// Four clients, each opening connection after connection: a few
	// rounds of 4 requests, then close.
	churn, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var opened int
	var mu sync.Mutex
	for range 4 {
		wg.Go(func() {
			for churn.Err() == nil {
				ph := &phase{name: "churn", rounds: 5, inFlight: 4, perWrite: 1}
				if err := ph.run(ln.Addr().String()); err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				opened++
				mu.Unlock()
			}
		})
	}

	type seen struct {
		requests, responses, frames uint64
		gone                        bool // left a snapshot while open
	}
	conns := map[uint64]*seen{}
	var last *analyze.Report
	snapshots, listed := 0, 0
	for deadline := time.Now().Add(6 * time.Second); time.Now().Before(deadline); {
		p.Snapshots().Request()
		time.Sleep(2 * time.Millisecond)
		r := p.Snapshots().Latest()
		if r == nil || r == last {
			continue
		}
		last = r
		snapshots++
		here := make(map[uint64]bool, len(r.Connections))
		for _, cr := range r.Connections {
			if here[cr.ID] {
				t.Fatalf("snapshot %d lists connection %d (%s) twice", snapshots, cr.ID, cr.Client)
			}
			here[cr.ID] = true
			frames := cr.ClientSegments.Frames + cr.ServerSegments.Frames
			s := conns[cr.ID]
			switch {
			case s == nil:
				s = &seen{}
				conns[cr.ID] = s
			case s.gone:
				t.Fatalf("snapshot %d: open connection %d (%s) left an earlier snapshot and came back", snapshots, cr.ID, cr.Client)
			case cr.Requests < s.requests || cr.Responses < s.responses || frames < s.frames:
				t.Fatalf("snapshot %d: connection %d (%s) went down: requests %d→%d, responses %d→%d, frames %d→%d",
					snapshots, cr.ID, cr.Client, s.requests, cr.Requests, s.responses, cr.Responses, s.frames, frames)
			}
			s.requests, s.responses, s.frames = cr.Requests, cr.Responses, frames
			listed++
		}
		for id, s := range conns {
			if !here[id] {
				s.gone = true
			}
		}
	}
	stop()
	wg.Wait()
	cancel()
	if err := <-runErr; err != nil {
		t.Fatal(err)
	}
	// (About 70 snapshots of 10,000 connections here; a loaded machine
	// makes fewer, and each snapshot still checks every connection.)
	if snapshots < 10 || len(conns) < 20 {
		t.Fatalf("%d snapshots of %d connections: too few to tell anything", snapshots, len(conns))
	}
	t.Logf("%d snapshots, %d connections opened by the clients, %d seen, %d listings checked", snapshots, opened, len(conns), listed)
}
