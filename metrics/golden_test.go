package metrics

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite testdata/golden.prom")

const goldenCapture = "gocql-1.7.0-v4-unbuffered-c64.pcap"

// TestGolden pins the exposition (names, types, help, labels and values)
// of a real capture: gocql 1.7.0 without write coalescing, 64 requests in
// flight, against Cassandra 5.0. The Go runtime and process metrics vary
// from run to run and are left out. go test ./metrics -run Golden -update
// rewrites the file after an intended change.
func TestGolden(t *testing.T) {
	r := reportOf(t, pcap(goldenCapture))
	text, hdr := scrape(t, Handler(NewCollector(Config{}, fixed{r})), "")
	if ct := hdr.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type %q, want the text format", ct)
	}
	for _, fam := range []string{"go_goroutines", "process_cpu_seconds_total", "promhttp_metric_handler_requests_total"} {
		if !strings.Contains(text, "\n"+fam+" ") && !strings.Contains(text, "\n"+fam+"{") {
			t.Errorf("%s missing from the exposition", fam)
		}
	}
	got := ownMetrics(text)
	path := filepath.Join("testdata", "golden.prom")
	if *update {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if got != string(want) {
		gl, wl := strings.Split(got, "\n"), strings.Split(string(want), "\n")
		for i := 0; i < max(len(gl), len(wl)); i++ {
			var g, w string
			if i < len(gl) {
				g = gl[i]
			}
			if i < len(wl) {
				w = wl[i]
			}
			if g != w {
				t.Fatalf("exposition differs from %s at line %d:\n got: %s\nwant: %s\n(go test ./metrics -run Golden -update after an intended change)", path, i+1, g, w)
			}
		}
	}
}

// TestPromtool runs promtool check metrics (the Prometheus linter: naming
// conventions, units, _total on counters, help on every family) over the
// whole exposition of the golden capture, Go and process metrics included.
func TestPromtool(t *testing.T) {
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	r := reportOf(t, pcap(goldenCapture))
	text, _ := scrape(t, Handler(NewCollector(Config{}, fixed{r})), "")
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out.String())
	}
	if s := strings.TrimSpace(out.String()); s != "" {
		t.Errorf("promtool check metrics says:\n%s", s)
	}
}
