package main

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// TestCountsMatchReport: on generated captures (default MSS, so every
// payload starts with an envelope) the floor sees the records, TCP packets
// and frames that cqlsniff's report counts; otherwise the ratio of the two
// times would compare different work.
func TestCountsMatchReport(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  synth.Config
	}{
		{"unbuffered", synth.Config{Connections: 3, Requests: 400, InFlight: 16, ClientBatch: 1, ServerBatch: 1, Seed: 1}},
		{"buffered mixed", synth.Config{Connections: 3, Requests: 400, InFlight: 64, ClientBatch: 64, ClientFlush: 200 * time.Microsecond,
			ServerBatch: 16, Mix: synth.MixMixed, RowsSize: 300, Seed: 2}},
		{"handshake and FIN", synth.Config{Connections: 2, Requests: 100, InFlight: 4, Handshake: true, Seed: 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			st, err := synth.Write(&buf, tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			got, err := walk(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}

			src, err := capture.NewReaderSource(bytes.NewReader(buf.Bytes()))
			if err != nil {
				t.Fatal(err)
			}
			p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
			if err := p.Run(context.Background(), 0); err != nil {
				t.Fatal(err)
			}
			p.Finish()
			rep := p.Report("generated")

			if got.Records != rep.Packets || got.TCP != rep.Capture.TCPPackets || got.Frames != rep.Totals.Frames {
				t.Errorf("floor: %d records, %d TCP, %d frames; report: %d packets, %d TCP, %d frames",
					got.Records, got.TCP, got.Frames, rep.Packets, rep.Capture.TCPPackets, rep.Totals.Frames)
			}
			if got.Bytes != rep.Bytes {
				t.Errorf("floor: %d bytes; report: %d", got.Bytes, rep.Bytes)
			}
			if got.Records != uint64(st.Packets) || got.Payloads != uint64(st.DataSegments) || got.Frames != uint64(st.Requests+st.Responses) {
				t.Errorf("floor: %d records, %d payloads, %d frames; generator: %d packets, %d data segments, %d frames",
					got.Records, got.Payloads, got.Frames, st.Packets, st.DataSegments, st.Requests+st.Responses)
			}
		})
	}
}

// TestRejects: what the floor does not walk is an error, not a zero count.
func TestRejects(t *testing.T) {
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Config{Requests: 10, Seed: 1}); err != nil {
		t.Fatal(err)
	}
	whole := buf.Bytes()
	for _, tc := range []struct {
		name string
		data []byte
	}{
		{"pcapng", append([]byte{0x0A, 0x0D, 0x0D, 0x0A}, whole[4:]...)},
		{"linux cooked", append(append(append([]byte{}, whole[:20]...), 113, 0, 0, 0), whole[24:]...)},
		{"cut in a record", whole[:len(whole)-3]},
		{"header only", whole[:10]},
	} {
		if _, err := walk(bytes.NewReader(tc.data)); err == nil {
			t.Errorf("%s: no error", tc.name)
		}
	}
}
