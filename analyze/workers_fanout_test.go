package analyze

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

func TestFanoutStoppedMember(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 2, Requests: 20, InFlight: 1, Seed: 3})
	src, _ := capture.NewReaderSource(bytes.NewReader(data))
	e := &endless{port: 40001}
	p := NewFanoutPipeline([]capture.Source{src, e}, DefaultConfig(), capture.DefaultAssemblerConfig())
	done := make(chan error)
	go func() { done <- p.Run(context.Background(), 0) }()
	time.Sleep(100 * time.Millisecond) // the file member has ended
	p.Snapshots().Request()
	time.Sleep(500 * time.Millisecond)
	got := p.Snapshots().Latest()
	e.Close()
	<-done
	if got == nil {
		t.Errorf("no snapshot in 500 ms while one member had stopped and the other ran")
	}
}
