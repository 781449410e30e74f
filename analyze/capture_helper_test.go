package analyze

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/cqlsniff/cqlsniff/capture"
)

// This file is the one place where tests build a Pipeline and run a whole
// capture through it, as `cqlsniff -r` does: if the pipeline's API changes,
// only these helpers change. (Benchmarks, allocation tests and tests that
// stop a run partway drive a Pipeline themselves.)

// runSource runs src to its end with the default assembler, finishes (every
// connection closed, cfg.Log flushed) and reports under name.
func runSource(tb testing.TB, src capture.Source, cfg Config, name string) (*Pipeline, *Report) {
	tb.Helper()
	p := NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 0); err != nil {
		tb.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		tb.Fatal(err)
	}
	return p, p.Report(name)
}

// runPipeline runs a capture held in memory (pcap or pcapng bytes).
func runPipeline(tb testing.TB, data []byte, cfg Config) (*Pipeline, *Report) {
	tb.Helper()
	src, err := capture.NewReaderSource(bytes.NewReader(data))
	if err != nil {
		tb.Fatal(err)
	}
	return runSource(tb, src, cfg, "synthetic")
}

// runFile runs a capture file (pcap or pcapng, gzip-compressed or not).
func runFile(tb testing.TB, path string, cfg Config) *Report {
	tb.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	_, rep := runSource(tb, src, cfg, filepath.Base(path))
	return rep
}

// runWithLog runs an in-memory capture with the exchange log on and returns
// the report and the log, as `cqlsniff -r FILE --log PATH` writes them.
func runWithLog(tb testing.TB, data []byte, cfg Config) (*Report, string) {
	tb.Helper()
	var log bytes.Buffer
	cfg.Log = &log
	_, rep := runPipeline(tb, data, cfg)
	return rep, log.String()
}
