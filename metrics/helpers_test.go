package metrics

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// pcap is a capture shipped in pcaps/.
func pcap(name string) string { return filepath.Join("..", "pcaps", name) }

// reportOf runs the pipeline over a whole capture, as cqlsniff -r does.
func reportOf(tb testing.TB, path string) *analyze.Report {
	tb.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
	if err := p.Run(context.Background(), 0); err != nil {
		tb.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		tb.Fatal(err)
	}
	return p.Report(filepath.Base(path))
}

// reportsOf runs the pipeline over a capture in steps of TCP packets and
// returns a report after each step (connections still open as they stand,
// as a live snapshot would show them), the last one after Finish.
func reportsOf(tb testing.TB, path string, steps int, cfg analyze.Config) []*analyze.Report {
	tb.Helper()
	src, err := capture.OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	total := reportOf(tb, path).Capture.TCPPackets
	p := analyze.NewPipeline(src, cfg, capture.DefaultAssemblerConfig())
	var out []*analyze.Report
	for i := 1; i <= steps; i++ {
		if err := p.Run(context.Background(), total*uint64(i)/uint64(steps)); err != nil {
			tb.Fatal(err)
		}
		if i == steps {
			if err := p.Finish(); err != nil {
				tb.Fatal(err)
			}
		}
		out = append(out, p.Report(filepath.Base(path)))
	}
	return out
}

// fixed serves one report.
type fixed struct{ r *analyze.Report }

func (f fixed) Request()                {}
func (f fixed) Latest() *analyze.Report { return f.r }

// sequence serves a list of reports, moving to the next one at each
// Request (each scrape), then staying on the last.
type sequence struct {
	mu      sync.Mutex
	reports []*analyze.Report
	i       int
	asked   int
}

func (s *sequence) Request() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.asked++
	if s.asked > 1 && s.i < len(s.reports)-1 {
		s.i++
	}
}

func (s *sequence) Latest() *analyze.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reports[s.i]
}

// scrape gets the exposition from h, in the format accept asks for ("" for
// the text format).
func scrape(tb testing.TB, h http.Handler, accept string) (string, http.Header) {
	tb.Helper()
	req := httptest.NewRequest("GET", "/metrics", nil)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != 200 {
		tb.Fatalf("GET /metrics: %d %s", rec.Code, rec.Body)
	}
	b, _ := io.ReadAll(rec.Body)
	return string(b), rec.Header()
}

// ownMetrics keeps the cqlsniff_ families of a text exposition (the Go
// runtime, process and promhttp ones vary from run to run).
func ownMetrics(text string) string {
	var b strings.Builder
	for _, line := range strings.SplitAfter(text, "\n") {
		name := line
		if strings.HasPrefix(line, "# ") {
			f := strings.Fields(line)
			if len(f) >= 3 {
				name = f[2]
			}
		}
		if strings.HasPrefix(name, "cqlsniff_") {
			b.WriteString(line)
		}
	}
	return b.String()
}
