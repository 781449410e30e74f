package metrics

import (
	"bytes"
	"context"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/synth"
)

// BenchmarkPipelineScraped measures the whole pipeline on the same traffic
// as analyze's BenchmarkPipeline/unbuffered-execute, without metrics and
// with a collector attached and scraped every 10ms (a hundred times more
// often than a usual 1s–15s scrape interval): the per-packet path is the
// same (one atomic load per packet asks whether a report is wanted); each
// scrape costs one report build on the pipeline goroutine plus the
// collection (see BenchmarkScrape).
func BenchmarkPipelineScraped(b *testing.B) {
	var buf bytes.Buffer
	st, err := synth.Write(&buf, synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, ServerBatch: 16,
		Autocork: 0.25, WriteGap: 3 * time.Microsecond, RTT: 20 * time.Microsecond, ServiceTime: 100 * time.Microsecond, Seed: 1})
	if err != nil {
		b.Fatal(err)
	}
	data := buf.Bytes()
	for _, scraped := range []bool{false, true} {
		name := "no-metrics"
		if scraped {
			name = "scraped-every-10ms"
		}
		b.Run(name, func(b *testing.B) {
			scrapes := 0
			for i := 0; i < b.N; i++ {
				src, err := capture.NewReaderSource(bytes.NewReader(data))
				if err != nil {
					b.Fatal(err)
				}
				p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
				stop := make(chan struct{})
				done := make(chan struct{})
				if scraped {
					h := Handler(NewCollector(Config{}, p.Snapshots()))
					go func() {
						defer close(done)
						t := time.NewTicker(10 * time.Millisecond)
						defer t.Stop()
						for {
							select {
							case <-stop:
								return
							case <-t.C:
								h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
								scrapes++
							}
						}
					}()
				} else {
					close(done)
				}
				if err := p.Run(context.Background(), 0); err != nil {
					b.Fatal(err)
				}
				close(stop)
				<-done
				p.Finish()
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(st.Packets)/float64(b.N), "ns/pkt")
			b.ReportMetric(float64(scrapes)/float64(b.N), "scrapes/op")
		})
	}
}

// BenchmarkScrape is the cost of one scrape of a pipeline that has seen
// 20 connections and 200k requests: a report build plus the collection.
func BenchmarkScrape(b *testing.B) {
	var buf bytes.Buffer
	if _, err := synth.Write(&buf, synth.Config{Connections: 20, Requests: 10000, InFlight: 64, ClientBatch: 1, Seed: 1}); err != nil {
		b.Fatal(err)
	}
	src, err := capture.NewReaderSource(bytes.NewReader(buf.Bytes()))
	if err != nil {
		b.Fatal(err)
	}
	p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 0); err != nil {
		b.Fatal(err)
	}
	h := Handler(NewCollector(Config{}, p.Snapshots()))
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		p.Publish() // what the pipeline does at the next packet after a scrape asked
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/metrics", nil))
	}
}
