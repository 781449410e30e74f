package metrics

import (
	"errors"
	"io"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/cqlsniff/cqlsniff/analyze"
)

func TestHandlerRoutes(t *testing.T) {
	h := Handler(NewCollector(Config{}, fixed{nil}))
	for _, tc := range []struct {
		path string
		code int
		body string
	}{
		{"/", 200, `href="/metrics"`},
		{"/metrics", 200, "go_goroutines"},
		{"/debug/pprof/", 404, ""},
	} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", tc.path, nil))
		if rec.Code != tc.code || !strings.Contains(rec.Body.String(), tc.body) {
			t.Errorf("GET %s: %d, want %d with %q", tc.path, rec.Code, tc.code, tc.body)
		}
	}
	// Before the pipeline's first report: no cqlsniff_ series yet, and no error.
	text, _ := scrape(t, h, "")
	if own := ownMetrics(text); own != "" {
		t.Errorf("series before the first report:\n%s", own)
	}
}

// TestNegotiation: OpenMetrics for the servers that ask for it, protobuf
// (the only format with native histograms) for those that ask for that.
func TestNegotiation(t *testing.T) {
	h := Handler(NewCollector(Config{}, fixed{reportOf(t, pcap(goldenCapture))}))

	text, hdr := scrape(t, h, "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5")
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text; version=1.0.0") {
		t.Errorf("Content-Type %q, want OpenMetrics 1.0.0", ct)
	}
	if !strings.HasSuffix(text, "# EOF\n") || !strings.Contains(text, "\n# TYPE cqlsniff_requests counter\n") {
		t.Errorf("not an OpenMetrics exposition of the counters:\n%.500s", text)
	}

	body, hdr := scrape(t, h, "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited")
	dec := expfmt.NewDecoder(strings.NewReader(body), expfmt.ResponseFormat(hdr))
	var found bool
	for {
		var mf dto.MetricFamily
		if err := dec.Decode(&mf); err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			t.Fatal(err)
		}
		if mf.GetName() != "cqlsniff_request_duration_seconds" {
			continue
		}
		found = true
		h := mf.Metric[0].Histogram
		if h.Schema == nil || len(h.PositiveSpan) == 0 || len(h.Bucket) == 0 {
			t.Errorf("latency histogram over protobuf: schema %v, %d spans, %d classic buckets; want both kinds", h.Schema, len(h.PositiveSpan), len(h.Bucket))
		}
	}
	if !found {
		t.Error("no latency histogram over protobuf")
	}
}

// TestConcurrentScrapes: several scrapers at once while reports change
// (run with -race).
func TestConcurrentScrapes(t *testing.T) {
	seq := &sequence{reports: reportsOf(t, pcap(goldenCapture), 20, analyze.DefaultConfig())}
	h := Handler(NewCollector(Config{}, seq))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 10 {
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
				if rec.Code != 200 && rec.Code != 503 { // 503: more than MaxRequestsInFlight at once
					t.Errorf("GET /metrics: %d", rec.Code)
				}
			}
		})
	}
	wg.Wait()
}
