package synth

import (
	"errors"
	"fmt"
	"io"
	"math"
	"time"
)

// Config describes the simulated workload. Zero counts take defaults (see
// the field comments); zero durations mean zero.
type Config struct {
	Connections int           // TCP connections (client ports 40000+i, server 127.0.0.1:9042, clients 127.0.0.2..); 0 = 1
	Requests    int           // request frames per connection, PREPAREs included, OPTIONS/STARTUP not
	InFlight    int           // closed-loop concurrency per connection: the client keeps this many requests outstanding; 0 = 1
	ClientBatch int           // buffered client: max frames coalesced into one write; 1 (or 0) = unbuffered (one write per frame)
	ClientFlush time.Duration // buffered client: wait this long after the first pending frame before flushing; 0 = flush immediately whatever is pending; ignored when ClientBatch is 1
	ServerBatch int           // server: max responses per write; 1 (or 0) = one write per response
	Autocork    float64       // probability that a write made back to back with the next one leaves in the same segment (Linux autocorking); applies to both sides
	Nagle       bool          // client has TCP_NODELAY off: a small segment is only sent when all previous data was ACKed
	ServiceTime time.Duration // server time per request (mean; the actual time is mean × (0.5 + 0.5·Exp(1)), so responses overtake each other)
	WriteGap    time.Duration // time between two back-to-back writes of the same side (syscall cost)
	RTT         time.Duration // round trip; one-way delay is RTT/2
	Mix         string        // "execute" (EXECUTE of prepared ids, after PREPAREs at start), "query" (QUERY with literals) or "mixed"; "" = "execute"
	Protocol    int           // native protocol version: 4 (or 0) or 5; 5 frames everything after STARTUP/READY in v5 segments
	Compression string        // "", "lz4" or "snappy": v4 body compression (flag 0x01) on every frame after STARTUP; with Protocol 5 only "lz4" (lz4 segments)
	Handshake   bool          // SYN/SYN-ACK/ACK, OPTIONS/SUPPORTED, STARTUP/READY at start and FIN at end; false = start mid-connection
	MSS         int           // max TCP payload per segment; 0 = MaxMSS (65483, like loopback)
	ErrorRate   float64       // share of QUERY/EXECUTE answered by ERROR (Read_timeout for SELECT, Write_timeout otherwise)
	RowsSize    int           // mean bytes of row data in a SELECT result (uniform between ½× and 1½×); 0 = empty results
	Start       time.Time     // first packet time; zero = 2024-01-01T00:00:00Z
	Seed        int64
}

// Stats counts what Write generated.
type Stats struct {
	Packets        int   // pcap records
	DataSegments   int   // TCP segments with payload
	ClientSegments int   // data segments client → server
	ServerSegments int   // data segments server → client
	Requests       int   // request frames (handshake frames included)
	Responses      int   // response frames
	ClientWrites   int   // write calls the simulated client made
	ServerWrites   int   // write calls the simulated server made
	ClientV5       int   // v5 segments client → server (Protocol 5)
	ServerV5       int   // v5 segments server → client (Protocol 5)
	Bytes          int64 // bytes written to the pcap output
}

// Mix values.
const (
	MixExecute = "execute"
	MixQuery   = "query"
	MixMixed   = "mixed"
)

// DefaultStart is the capture start used when Config.Start is zero.
var DefaultStart = time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)

// maxStreams is the v3+ stream id space (cql-wire.md §9).
const maxStreams = 32768

// Write simulates cfg and writes the capture to w as classic pcap with
// nanosecond timestamps (Ethernet link type). It returns what it generated;
// on a write error the counts cover the packets handed to w before it.
func Write(w io.Writer, cfg Config) (Stats, error) {
	if err := cfg.normalize(); err != nil {
		return Stats{}, err
	}
	g := newGen(w, &cfg)
	g.run()
	if err := g.out.flush(); err != nil {
		g.stats.Bytes = g.out.bytes
		return g.stats, err
	}
	g.stats.Bytes = g.out.bytes
	return g.stats, nil
}

func (c *Config) normalize() error {
	if c.Connections == 0 {
		c.Connections = 1
	}
	if c.InFlight == 0 {
		c.InFlight = 1
	}
	if c.ClientBatch == 0 {
		c.ClientBatch = 1
	}
	if c.ServerBatch == 0 {
		c.ServerBatch = 1
	}
	if c.MSS == 0 {
		c.MSS = MaxMSS
	}
	if c.Mix == "" {
		c.Mix = MixExecute
	}
	if c.Protocol == 0 {
		c.Protocol = 4
	}
	if c.Start.IsZero() {
		c.Start = DefaultStart
	}
	switch {
	case c.Connections < 0 || c.Connections > 1<<20:
		return fmt.Errorf("synth: Connections %d out of range [1, %d]", c.Connections, 1<<20)
	case c.Requests < 0:
		return errors.New("synth: negative Requests")
	case c.InFlight < 0 || c.InFlight > maxStreams/2:
		return fmt.Errorf("synth: InFlight %d out of range [1, %d]", c.InFlight, maxStreams/2)
	case c.ClientBatch < 0 || c.ServerBatch < 0:
		return errors.New("synth: negative batch size")
	case c.MSS < 64 || c.MSS > MaxMSS:
		return fmt.Errorf("synth: MSS %d out of range [64, %d]", c.MSS, MaxMSS)
	case c.ClientFlush < 0 || c.ServiceTime < 0 || c.WriteGap < 0 || c.RTT < 0:
		return errors.New("synth: negative duration")
	case !(c.Autocork >= 0 && c.Autocork <= 1):
		return fmt.Errorf("synth: Autocork %v not a probability", c.Autocork)
	case !(c.ErrorRate >= 0 && c.ErrorRate <= 1):
		return fmt.Errorf("synth: ErrorRate %v not a probability", c.ErrorRate)
	case c.RowsSize < 0 || c.RowsSize > 64<<20:
		return fmt.Errorf("synth: RowsSize %d out of range [0, 64 MiB]", c.RowsSize)
	case c.Start.Before(time.Unix(0, 0)) || c.Start.After(time.Unix(math.MaxUint32-365*86400, 0)):
		return errors.New("synth: Start outside what pcap's 32-bit seconds can hold")
	}
	switch c.Mix {
	case MixExecute, MixQuery, MixMixed:
	default:
		return fmt.Errorf("synth: unknown Mix %q", c.Mix)
	}
	switch c.Compression {
	case "", "lz4", "snappy":
	default:
		return fmt.Errorf("synth: unknown Compression %q", c.Compression)
	}
	switch {
	case c.Protocol != 4 && c.Protocol != 5:
		return fmt.Errorf("synth: Protocol %d not 4 or 5", c.Protocol)
	case c.Protocol == 5 && c.Compression == "snappy":
		// Cassandra rejects snappy for v5: only lz4 segments exist (§6.1, §8.3).
		return errors.New("synth: Protocol 5 has no snappy compression")
	}
	return nil
}
