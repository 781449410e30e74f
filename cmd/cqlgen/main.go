// Command cqlgen writes a synthetic CQL capture (classic pcap; native
// protocol v4, or v5 with its segment framing) for benchmarks and tests, and
// prints what it generated to stderr.
//
//	cqlgen -connections 20 -requests 100000 -inflight 64 -client-batch 1 -o big.pcap
//	cqlgen -protocol 5 -compression lz4 -handshake -rows-size 200000 -o v5.pcap
package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/cqlsniff/cqlsniff/internal/synth"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cqlgen:", err)
		}
		os.Exit(2)
	}
}

func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("cqlgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var cfg synth.Config
	fs.IntVar(&cfg.Connections, "connections", 4, "TCP connections")
	fs.IntVar(&cfg.Requests, "requests", 1000, "request frames per connection (PREPAREs included)")
	fs.IntVar(&cfg.InFlight, "inflight", 32, "requests each client keeps outstanding")
	fs.IntVar(&cfg.ClientBatch, "client-batch", 1, "max frames per client write; 1 = unbuffered client")
	fs.DurationVar(&cfg.ClientFlush, "client-flush", 200*time.Microsecond, "buffered client: flush delay after the first pending frame")
	fs.IntVar(&cfg.ServerBatch, "server-batch", 16, "max responses per server write")
	fs.Float64Var(&cfg.Autocork, "autocork", 0.25, "probability a back-to-back write shares the previous write's segment")
	fs.BoolVar(&cfg.Nagle, "nagle", false, "client leaves Nagle on (TCP_NODELAY off)")
	fs.DurationVar(&cfg.ServiceTime, "service-time", 100*time.Microsecond, "mean server time per request")
	fs.DurationVar(&cfg.WriteGap, "write-gap", 3*time.Microsecond, "time between back-to-back writes of one side")
	fs.DurationVar(&cfg.RTT, "rtt", 10*time.Microsecond, "round-trip time")
	fs.StringVar(&cfg.Mix, "mix", synth.MixExecute, "workload: execute, query or mixed")
	fs.IntVar(&cfg.Protocol, "protocol", 4, "native protocol version: 4, or 5 (v5 segment framing after STARTUP/READY)")
	fs.StringVar(&cfg.Compression, "compression", "", "compression: lz4, snappy or empty (v4: body compression; v5: lz4 segments only)")
	fs.BoolVar(&cfg.Handshake, "handshake", false, "emit TCP handshake, OPTIONS/STARTUP and FIN (default: start mid-connection)")
	fs.IntVar(&cfg.MSS, "mss", synth.MaxMSS, "max TCP payload per segment")
	fs.Float64Var(&cfg.ErrorRate, "error-rate", 0, "share of requests answered by a timeout ERROR")
	fs.IntVar(&cfg.RowsSize, "rows-size", 200, "mean row-data bytes per SELECT result")
	start := fs.String("start", synth.DefaultStart.Format(time.RFC3339Nano), "first packet time (RFC 3339)")
	fs.Int64Var(&cfg.Seed, "seed", 1, "random seed")
	out := fs.String("o", "-", "output file (- = stdout)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	var err error
	if cfg.Start, err = time.Parse(time.RFC3339Nano, *start); err != nil {
		return fmt.Errorf("-start: %w", err)
	}

	w := stdout
	var f *os.File
	if *out != "-" && *out != "" {
		if f, err = os.Create(*out); err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	began := time.Now()
	st, err := synth.Write(w, cfg)
	if err != nil {
		return err
	}
	if f != nil {
		if err := f.Close(); err != nil {
			return err
		}
	}
	printStats(stderr, st, time.Since(began))
	return nil
}

func printStats(w io.Writer, st synth.Stats, took time.Duration) {
	b := bufio.NewWriter(w)
	fmt.Fprintf(b, "packets %d  data segments %d (client %d, server %d)  bytes %d\n",
		st.Packets, st.DataSegments, st.ClientSegments, st.ServerSegments, st.Bytes)
	fmt.Fprintf(b, "requests %d  responses %d  client writes %d  server writes %d\n",
		st.Requests, st.Responses, st.ClientWrites, st.ServerWrites)
	fmt.Fprintf(b, "frames/segment: client %.2f  server %.2f\n",
		ratio(st.Requests, st.ClientSegments), ratio(st.Responses, st.ServerSegments))
	if st.ClientV5+st.ServerV5 > 0 {
		fmt.Fprintf(b, "v5 segments: client %d  server %d\n", st.ClientV5, st.ServerV5)
	}
	fmt.Fprintf(b, "generated in %v (%.2f M packets/s)\n",
		took.Round(time.Millisecond), float64(st.Packets)/took.Seconds()/1e6)
	b.Flush()
}

func ratio(a, b int) float64 {
	if b == 0 {
		return 0
	}
	return float64(a) / float64(b)
}
