package analyze

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// TestStress: snapshots asked for all the time from another goroutine,
// Run in steps, reports between, a cancelled context, a host reader;
// run with -race.
func TestStress(t *testing.T) {
	data, st := genCapture(t, synth.Config{Connections: 40, Requests: 400, InFlight: 8, Handshake: true, Mix: synth.MixMixed, Seed: 11})
	for _, n := range []int{1, 3} {
		src, err := capture.NewReaderSource(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		var log bytes.Buffer
		cfg := DefaultConfig()
		cfg.Log = &log
		p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig(), Workers(n), Host(func() (map[SocketKey]SocketCounts, []ProcessCPU) {
			return map[SocketKey]SocketCounts{}, []ProcessCPU{{PID: 1}}
		}))
		stop := make(chan struct{})
		var wg sync.WaitGroup
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p.Snapshots().Request()
				if r := p.Snapshots().Latest(); r != nil {
					_ = r.Totals.Requests
					for _, c := range r.Connections {
						_ = c.Latency.P99
					}
				}
				time.Sleep(50 * time.Microsecond)
			}
		}()
		for step := uint64(1); step <= 8; step++ {
			p.nextSnap.Store(0)
			if err := p.Run(context.Background(), step*uint64(st.Packets)/10); err != nil {
				t.Fatal(err)
			}
			_ = p.Report("mid")
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.Run(ctx, 0); err != nil {
			t.Fatal(err)
		}
		if err := p.Run(context.Background(), 0); err != nil {
			t.Fatal(err)
		}
		if err := p.Finish(); err != nil {
			t.Fatal(err)
		}
		p.Publish()
		close(stop)
		wg.Wait()
		if r := p.Snapshots().Latest(); r.Totals.Requests != uint64(st.Requests) {
			t.Errorf("workers=%d: %d requests, want %d", n, r.Totals.Requests, st.Requests)
		}
		if err := p.Run(context.Background(), 0); err == nil {
			t.Errorf("Run after Finish")
		}
	}
}
