package metrics

import (
	"io"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves c at /metrics from a registry of its own (with the Go
// runtime and process collectors, and promhttp's own counters), and a
// pointer to it at /.
//
// Content negotiation offers OpenMetrics and the Prometheus text format,
// and protobuf, the only format that carries native histograms: a
// Prometheus server with native histograms on asks for protobuf and gets
// both the classic and the native buckets of the latency histograms.
// A failing metric is reported (promhttp_metric_handler_errors_total) and
// left out; the rest is still served.
func Handler(c *Collector) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(c,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	h := promhttp.HandlerFor(reg, promhttp.HandlerOpts{
		EnableOpenMetrics:   true,
		ErrorHandling:       promhttp.ContinueOnError,
		Registry:            reg,
		MaxRequestsInFlight: 4,
		Timeout:             10 * time.Second,
	})
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.InstrumentMetricHandler(reg, h))
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		io.WriteString(w, `<html><head><title>cqlsniff</title></head><body><a href="/metrics">metrics</a></body></html>`+"\n")
	})
	return mux
}
