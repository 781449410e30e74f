package analyze

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// noNum is a source that does not number its packets.
type noNum struct{ capture.Source }

func (s noNum) Next(p *capture.Packet) error {
	err := s.Source.Next(p)
	p.Num = 0
	return err
}

// TestNumZero: packets without numbers are numbered by the pipeline, so
// that connection ids stay unique with several workers.
func TestNumZero(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 6, Requests: 50, InFlight: 4, Seed: 3})
	for _, n := range []int{1, 3} {
		src, _ := capture.NewReaderSource(bytes.NewReader(data))
		p := NewPipeline(noNum{src}, DefaultConfig(), capture.DefaultAssemblerConfig(), Workers(n))
		p.Run(context.Background(), 0)
		p.Finish()
		r := p.Report("x")
		seen := map[uint64]int{}
		var ids []uint64
		for _, c := range r.Connections {
			seen[c.ID]++
			ids = append(ids, c.ID)
		}
		t.Logf("workers=%d ids %v", n, ids)
		if len(seen) != len(r.Connections) {
			t.Errorf("workers=%d: connection ids collide: %v", n, ids)
		}
	}
}

func TestFanoutOneMemberCQL(t *testing.T) {
	data, _ := genCapture(t, synth.Config{Connections: 4, Requests: 20000, InFlight: 8, Seed: 3})
	src, _ := capture.NewReaderSource(bytes.NewReader(data))
	p := NewFanoutPipeline([]capture.Source{src}, DefaultConfig(), capture.DefaultAssemblerConfig())
	done := make(chan error)
	go func() { done <- p.Run(context.Background(), 0) }()
	for {
		select {
		case <-done:
			p.Finish()
			return
		default:
			p.Snapshots().Request()
		}
	}
}

func fz(ctl byte, payload []byte) []byte {
	return append([]byte{ctl, byte(len(payload)), byte(len(payload) >> 8)}, payload...)
}

// TestFuzzScylla: FuzzPipeline's own check (three workers make one
// worker's report) on a small input where one connection's SUPPORTED names
// the node of another.
func TestFuzzScylla(t *testing.T) {
	var shards [4]int
	for c := 0; c < 4; c++ {
		s := &fuzzSource{data: fz(byte(c), []byte{1})}
		var p capture.Packet
		s.Next(&p)
		shards[c] = shardOf(&p, 3)
	}
	t.Logf("shards of connections 0-3 with 3 workers: %v", shards)
	supported := multimap("SCYLLA_SHARD", "3", "SCYLLA_NR_SHARDS", "12")
	q := "SELECT 1"
	qBody := queryBody(q)
	var in []byte
	in = append(in, fz(3, frame(0x04, 0, 0, 0x05, nil))...)
	in = append(in, fz(3|4, frame(0x84, 0, 0, 0x06, supported))...)
	for _, c := range []byte{0, 1, 2} {
		in = append(in, fz(c, frame(0x04, 0, 1, 0x07, qBody))...)
		in = append(in, fz(c|4, frame(0x84, 0, 1, 0x08, []byte{0, 0, 0, 1}))...)
	}
	acfg := capture.DefaultAssemblerConfig()
	run := func(n int) []byte {
		p := NewPipeline(&fuzzSource{data: in}, DefaultConfig(), acfg, Workers(n))
		p.Run(context.Background(), 0)
		p.Finish()
		b, _ := json.Marshal(p.Report("fuzz"))
		return b
	}
	one := run(1)
	diff := 0
	for i := 0; i < 200; i++ {
		if !bytes.Equal(one, run(3)) {
			diff++
		}
	}
	if diff > 0 {
		t.Errorf("three workers' report differed from one's in %d of 200 runs", diff)
	}
}

// TestFanoutNoMembers: a fanout group of no source reads nothing and
// reports an empty capture (no panic).
func TestFanoutNoMembers(t *testing.T) {
	p := NewFanoutPipeline(nil, DefaultConfig(), capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		t.Fatal(err)
	}
	if r := p.Report("none"); r.Packets != 0 || len(r.Connections) != 0 {
		t.Errorf("an empty group reported %d packets, %d connections", r.Packets, len(r.Connections))
	}
}
