package metrics

import (
	"fmt"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/cqlsniff/cqlsniff/analyze"
)

// BenchmarkCollect measures a scrape's work in the Collector for a report
// of 1,000 connections (from 100 client addresses, to 10 servers) and
// 5,000 statements (the analyzer's default cap): folding a new report
// into the accumulators and building the metrics, then handing them to the
// registry. Two reports alternate so that every scrape sees a new one (every
// other one with smaller counts, which add nothing but cost the same).
func BenchmarkCollect(b *testing.B) {
	reports := [2]*analyze.Report{benchReport(1), benchReport(2)}
	i := 0
	snaps := funcSnapshots(func() *analyze.Report { i++; return reports[i%2] })
	c := NewCollector(Config{}, snaps)
	ch := make(chan prometheus.Metric, 1<<16)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		c.Collect(ch)
		n = len(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
	b.ReportMetric(float64(n), "metrics/op")
}

// BenchmarkCollectSameReport is a scrape that finds no new report (a
// second Prometheus server, or scrapes faster than the pipeline publishes).
func BenchmarkCollectSameReport(b *testing.B) {
	r := benchReport(1)
	c := NewCollector(Config{}, fixed{r})
	ch := make(chan prometheus.Metric, 1<<16)
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
		for len(ch) > 0 {
			<-ch
		}
	}
}

// BenchmarkGather is the whole registry path of a scrape (Collect, then
// the registry's checks and sorting into families), without HTTP.
func BenchmarkGather(b *testing.B) {
	reports := [2]*analyze.Report{benchReport(1), benchReport(2)}
	i := 0
	c := NewCollector(Config{}, funcSnapshots(func() *analyze.Report { i++; return reports[i%2] }))
	reg := prometheus.NewRegistry()
	reg.MustRegister(c)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}

type funcSnapshots func() *analyze.Report

func (f funcSnapshots) Request()                {}
func (f funcSnapshots) Latest() *analyze.Report { return f() }

func benchReport(scale uint64) *analyze.Report {
	r := syntheticReport(1000, 5000, scale)
	r.Packets = 1000 // the same pipeline: going back from the second report is not a restart
	for i, cr := range r.Connections {
		cr.Client = fmt.Sprintf("10.1.0.%d:%d", i%100, 40000+i)
		cr.Server = fmt.Sprintf("10.2.0.%d:9042", i%10)
		cr.Driver, cr.DriverVersion = "gocql", "v1.7.0"
	}
	return r
}
