//go:build e2e

package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
)

const prometheusBin = "/usr/bin/prometheus"

// wait bounds every wait of the end-to-end tests.
const wait = 30 * time.Second

// TestPrometheus scrapes the exposition with a real Prometheus server
// (Debian's package) on loopback, every second, while the reports grow:
// the golden capture replayed in 40 steps, one step per scrape, as a live
// capture would be seen. It then asks Prometheus, over its HTTP API, for
// the raw samples, the request rate and the p99 (histogram_quantile over
// the classic buckets), and checks them against what the reports imply. A
// second server with native histograms on checks the native buckets.
func TestPrometheus(t *testing.T) {
	if _, err := os.Stat(prometheusBin); err != nil {
		t.Skip("no Prometheus server (Debian: apt-get install prometheus)")
	}
	if testing.Short() {
		t.Skip("takes about 20 s")
	}
	reports := reportsOf(t, pcap(goldenCapture), 40, analyze.DefaultConfig())
	t.Run("classic", func(t *testing.T) {
		t.Parallel()
		classic(t, reports)
	})
	t.Run("native", func(t *testing.T) {
		t.Parallel()
		native(t, reports)
	})
}

// promServer is a Prometheus server scraping one target every second.
type promServer struct {
	t    *testing.T
	base string
	seq  *sequence
}

func startPrometheus(t *testing.T, reports []*analyze.Report, features ...string) *promServer {
	seq := &sequence{reports: reports}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: Handler(NewCollector(Config{}, seq)), ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })

	dir := t.TempDir()
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: cqlsniff
    static_configs:
      - targets: [%q]
`, ln.Addr().String())
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	args := []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + addr, "--log.level=warn"}
	for _, f := range features {
		args = append(args, "--enable-feature="+f)
	}
	cmd := exec.Command(prometheusBin, args...)
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &promServer{t: t, base: "http://" + addr, seq: seq}
	p.until("Prometheus ready", func() bool {
		resp, err := http.Get(p.base + "/-/ready")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return p
}

func freeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func (p *promServer) until(what string, ok func() bool) {
	p.t.Helper()
	deadline := time.Now().Add(wait)
	for !ok() {
		if time.Now().After(deadline) {
			p.t.Fatalf("gave up after %v waiting for %s", wait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// scraped waits until Prometheus has scraped n reports.
func (p *promServer) scraped(n int) {
	p.until(fmt.Sprintf("%d scrapes", n), func() bool {
		p.seq.mu.Lock()
		defer p.seq.mu.Unlock()
		return p.seq.asked > n
	})
	time.Sleep(200 * time.Millisecond) // the last scrape's samples committed
}

type sample struct {
	t float64 // seconds
	v float64
}

// query runs an instant query at ts and returns the value of each series
// (a range query returns all its samples).
func (p *promServer) query(q string, ts float64) map[string][]sample {
	p.t.Helper()
	u := p.base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(ts, 'f', 3, 64)}}.Encode()
	ctx, cancel := context.WithTimeout(context.Background(), wait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "GET", u, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		p.t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   struct {
			ResultType string
			Result     []struct {
				Metric map[string]string
				Value  []any
				Values [][]any
			}
		}
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		p.t.Fatal(err)
	}
	if body.Status != "success" {
		p.t.Fatalf("%s: %s", q, body.Error)
	}
	out := make(map[string][]sample)
	for _, r := range body.Data.Result {
		key := fmt.Sprint(r.Metric)
		if r.Value != nil {
			r.Values = append(r.Values, r.Value)
		}
		for _, v := range r.Values {
			f, _ := strconv.ParseFloat(v[1].(string), 64)
			out[key] = append(out[key], sample{v[0].(float64), f})
		}
	}
	return out
}

func (p *promServer) scalar(q string, ts float64) float64 {
	p.t.Helper()
	res := p.query(q, ts)
	if len(res) != 1 {
		p.t.Fatalf("%s: %d series, want 1: %v", q, len(res), res)
	}
	for _, s := range res {
		return s[len(s)-1].v
	}
	return 0
}

// window is what the samples of a range [ts-w, ts] are: their
// timestamps and the report each came from (found by the packet count,
// which grows at every step).
func (p *promServer) window(ts float64, w int) (times []float64, from []*analyze.Report) {
	p.t.Helper()
	res := p.query(fmt.Sprintf("cqlsniff_captured_packets_total[%ds]", w), ts)
	for _, ss := range res {
		for _, s := range ss {
			r := reportWithPackets(p.seq.reports, uint64(s.v))
			if r == nil {
				p.t.Fatalf("Prometheus holds %g packets, which no report has", s.v)
			}
			times = append(times, s.t)
			from = append(from, r)
		}
	}
	return times, from
}

func reportWithPackets(reports []*analyze.Report, n uint64) *analyze.Report {
	for _, r := range reports {
		if r.Packets == n {
			return r
		}
	}
	return nil
}

func classic(t *testing.T, reports []*analyze.Report) {
	p := startPrometheus(t, reports)
	p.scraped(14)
	ts := float64(time.Now().UnixMilli()) / 1e3
	p.dashboard(ts)
	const w = 10
	times, from := p.window(ts, w)
	if len(times) < 5 {
		t.Fatalf("%d samples in %d s", len(times), w)
	}

	// The raw samples are the reports' own figures.
	reqs := p.query(fmt.Sprintf("cqlsniff_requests_total[%ds]", w), ts)
	if len(reqs) != 1 {
		t.Fatalf("%d request series, want 1 (one client, server and driver)", len(reqs))
	}
	var values []float64
	for _, ss := range reqs {
		for i, s := range ss {
			want := requests(from[i])
			if s.v != want || s.t != times[i] {
				t.Errorf("sample %d: %g requests at %.3f, the report says %g at %.3f", i, s.v, s.t, want, times[i])
			}
			values = append(values, s.v)
		}
	}

	// rate() is the extrapolated slope of those samples.
	got := p.scalar(fmt.Sprintf("sum(rate(cqlsniff_requests_total[%ds]))", w), ts)
	want := promRate(times, values, ts-w, ts)
	slope := (values[len(values)-1] - values[0]) / (times[len(times)-1] - times[0])
	t.Logf("request rate over %d s: Prometheus %.1f/s; implied by the reports %.1f/s (first-to-last slope %.1f/s, %d samples, reports %d..%d of %d requests)",
		w, got, want, slope, len(values), index(reports, from[0]), index(reports, from[len(from)-1]), reports[len(reports)-1].Totals.Requests)
	if !near(got, want, 1e-6) {
		t.Errorf("rate %g, the reports imply %g", got, want)
	}

	// p99 of everything so far: histogram_quantile over the classic
	// buckets at the last sample, against the same interpolation over
	// the last report's bars.
	last := from[len(from)-1]
	got = p.scalar("histogram_quantile(0.99, sum by (le) (cqlsniff_request_duration_seconds_bucket))", ts)
	bars := reportBars(last)
	want = bucketQuantile(0.99, classicBuckets(bars))
	t.Logf("p99 so far: Prometheus %.6f s; implied by the report's bars %.6f s; the report's own HDR p99 of its busiest connection %.0f µs",
		got, want, busiest(last).Latency.P99)
	if !near(got, want, 1e-9) {
		t.Errorf("p99 %g, the bars imply %g", got, want)
	}
	if hdr := busiest(last).Latency.P99 / 1e6; got < hdr/2 || got > hdr*2 {
		t.Errorf("p99 %g s is not within a power of two of the report's %g s", got, hdr)
	}

	// p99 over the window: histogram_quantile over rate() of each bucket.
	got = p.scalar(fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(cqlsniff_request_duration_seconds_bucket[%ds])))", w), ts)
	var rates []bucket
	for i, le := range classicBounds() {
		v := make([]float64, len(from))
		for j, r := range from {
			v[j] = float64(classicBuckets(reportBars(r))[i].count)
		}
		rates = append(rates, bucket{le, promRate(times, v, ts-w, ts)})
	}
	want = bucketQuantile(0.99, rates)
	t.Logf("p99 over the last %d s: Prometheus %.6f s; implied by the reports %.6f s", w, got, want)
	if !near(got, want, 1e-6) {
		t.Errorf("windowed p99 %g, the reports imply %g", got, want)
	}
}

func native(t *testing.T, reports []*analyze.Report) {
	p := startPrometheus(t, reports, "native-histograms")
	p.scraped(14)
	ts := float64(time.Now().UnixMilli()) / 1e3
	p.dashboard(ts)
	_, from := p.window(ts, 10)
	last := from[len(from)-1]
	bars := reportBars(last)
	var total uint64
	for _, n := range bars {
		total += n
	}
	if got := p.scalar("histogram_count(sum(cqlsniff_request_duration_seconds))", ts); got != float64(total) {
		t.Errorf("native count %g, the report has %d", got, total)
	}
	got := p.scalar("histogram_quantile(0.99, sum(cqlsniff_request_duration_seconds))", ts)
	// The bar holding the 99th percentile, and the native bucket it went to.
	var cum uint64
	k := 0
	for ; k < nLat; k++ {
		cum += bars[k]
		if float64(cum) >= 0.99*float64(total) {
			break
		}
	}
	lo, hi := math.Ldexp(1, k-nativeShift-1), math.Ldexp(1, k-nativeShift)
	t.Logf("native p99 so far: Prometheus %.6f s; the report's bars put it in (%g, %g] µs, native bucket (%g, %g] s",
		got, math.Ldexp(1, k-1), math.Ldexp(1, k), lo, hi)
	if got <= lo || got > hi {
		t.Errorf("native p99 %g s outside the bucket (%g, %g] s the bars imply", got, lo, hi)
	}
}

// dashboard runs every query of the Grafana dashboard (all clients, nodes
// and clusters selected; 10 s rate windows): each must parse and find data.
func (p *promServer) dashboard(ts float64) {
	p.t.Helper()
	var counts []int
	for _, q := range dashboardExprs(p.t, "10s") {
		n := len(p.query(q, ts))
		if n == 0 {
			p.t.Errorf("dashboard query finds nothing: %s", q)
		}
		counts = append(counts, n)
	}
	p.t.Logf("dashboard: %d queries, series found by each: %v", len(counts), counts)
}

func index(reports []*analyze.Report, r *analyze.Report) int {
	for i, x := range reports {
		if x == r {
			return i
		}
	}
	return -1
}

func requests(r *analyze.Report) float64 {
	var n uint64
	for _, cr := range r.Connections {
		n += cr.Requests
	}
	return float64(n)
}

func busiest(r *analyze.Report) *analyze.ConnReport {
	b := r.Connections[0]
	for _, cr := range r.Connections {
		if cr.Requests > b.Requests {
			b = cr
		}
	}
	return b
}

func reportBars(r *analyze.Report) [nLat]uint64 {
	var bars [nLat]uint64
	for _, cr := range r.Connections {
		fillBars(&bars, cr.Latency.Histogram)
	}
	return bars
}

func near(a, b, rel float64) bool {
	return math.Abs(a-b) <= rel*math.Max(math.Abs(a), math.Abs(b))
}

type bucket struct {
	le    float64
	count float64
}

func classicBounds() []float64 {
	var out []float64
	for _, b := range latencyBounds {
		out = append(out, *b)
	}
	return append(out, math.Inf(1))
}

func classicBuckets(bars [nLat]uint64) []bucket {
	var out []bucket
	var cum uint64
	for k := 0; k < latMinExp; k++ {
		cum += bars[k]
	}
	for k := latMinExp; k <= latMaxExp; k++ {
		cum += bars[k]
		out = append(out, bucket{float64(int64(1)<<k) / 1e6, float64(cum)})
	}
	for k := latMaxExp + 1; k < nLat; k++ {
		cum += bars[k]
	}
	return append(out, bucket{math.Inf(1), float64(cum)})
}

// bucketQuantile is histogram_quantile's documented rule: find the bucket
// holding the rank, interpolate linearly inside it (from 0 for the
// first), and answer the highest finite bound for the +Inf bucket.
func bucketQuantile(q float64, b []bucket) float64 {
	sort.Slice(b, func(i, j int) bool { return b[i].le < b[j].le })
	total := b[len(b)-1].count
	rank := q * total
	i := sort.Search(len(b)-1, func(i int) bool { return b[i].count >= rank })
	if i == len(b)-1 {
		return b[len(b)-2].le
	}
	start, count := 0.0, b[i].count
	if i > 0 {
		start = b[i-1].le
		count -= b[i-1].count
		rank -= b[i-1].count
	}
	return start + (b[i].le-start)*(rank/count)
}

// promRate is rate()'s documented extrapolation for a counter without
// resets: the increase from the first to the last sample in the range,
// extended to the range's edges when the samples come close to them (by
// half an interval otherwise, and never below zero), per second.
func promRate(times, values []float64, start, end float64) float64 {
	n := len(times)
	result := values[n-1] - values[0]
	sampled := times[n-1] - times[0]
	avg := sampled / float64(n-1)
	toStart, toEnd := times[0]-start, end-times[n-1]
	if result > 0 && values[0] >= 0 {
		if toZero := sampled * (values[0] / result); toZero < toStart {
			toStart = toZero
		}
	}
	threshold := avg * 1.1
	interval := sampled
	if toStart < threshold {
		interval += toStart
	} else {
		interval += avg / 2
	}
	if toEnd < threshold {
		interval += toEnd
	} else {
		interval += avg / 2
	}
	return result * (interval / sampled) / (end - start)
}
