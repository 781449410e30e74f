package metrics

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

const goldenCapture = "gocql-1.7.0-v4-unbuffered-c64.pcap"

// goldens are the captures whose expositions are pinned: the golden
// capture replayed from its file, as cqlsniff -r sees it (no kernel
// counts), and a Node.js capture with the kernel's counts of its client
// joined, as a live capture with --syscalls on the client's host sees it
// (one ERROR, PROTOCOL_ERROR, from the driver's protocol negotiation).
var goldens = []struct {
	capture, file string
	syscalls      bool
}{
	{goldenCapture, "golden.prom", false},
	{"nodejs-4.10.0-default-c64.pcap", "golden-syscalls.prom", true},
}

// goldenReport is the report of a golden capture.
func goldenReport(tb testing.TB, capture string, syscalls bool) *analyze.Report {
	if !syscalls {
		return reportOf(tb, pcap(capture))
	}
	return reportWithKernelCounts(tb, pcap(capture))
}

// TestGolden pins the exposition (names, types, help, labels and values)
// of real captures (goldens): gocql 1.7.0 without write coalescing, 64
// requests in flight, against Cassandra 5.0; the Node.js driver with the
// kernel's counts. The Go runtime and process metrics vary from run to run
// and are left out. go test ./metrics -run Golden -update rewrites the
// files after an intended change.
func TestGolden(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			golden(t, goldenReport(t, g.capture, g.syscalls), g.file)
		})
	}
}

func golden(t *testing.T, r *analyze.Report, file string) {
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
	path := filepath.Join("testdata", file)
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

// TestFramesPerWriteKept: the deprecated cqlsniff_frames_per_write is
// still exported for a release, series for series equal to
// cqlsniff_frames_per_segment, its new name.
func TestFramesPerWriteKept(t *testing.T) {
	text, _ := scrape(t, Handler(NewCollector(Config{}, fixed{reportOf(t, pcap(goldenCapture))})), "")
	samples := func(name string) []string {
		var out []string
		for _, l := range strings.Split(text, "\n") {
			if strings.HasPrefix(l, name+"_") {
				out = append(out, strings.TrimPrefix(l, name))
			}
		}
		return out
	}
	seg, write := samples("cqlsniff_frames_per_segment"), samples("cqlsniff_frames_per_write")
	if len(seg) == 0 || strings.Join(seg, "\n") != strings.Join(write, "\n") {
		t.Errorf("frames_per_segment:\n%s\nframes_per_write:\n%s", strings.Join(seg, "\n"), strings.Join(write, "\n"))
	}
	if !strings.Contains(text, "# HELP cqlsniff_frames_per_write Deprecated: ") {
		t.Error("the old name's help does not say it is deprecated")
	}
}

// TestPromtool runs promtool check metrics (the Prometheus linter: naming
// conventions, units, _total on counters, help on every family) over the
// whole expositions of the golden captures, Go and process metrics
// included.
func TestPromtool(t *testing.T) {
	if _, err := exec.LookPath("promtool"); err != nil {
		t.Skip("promtool not installed (Debian: apt-get install prometheus)")
	}
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			r := goldenReport(t, g.capture, g.syscalls)
			text, _ := scrape(t, Handler(NewCollector(Config{}, fixed{r})), "")
			promtoolCheck(t, text)
		})
	}
}

// promtoolCheck fails t if promtool check metrics finds anything to say
// about text (a text exposition).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Log("promtool not installed: exposition not linted")
		return
	}
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
