//go:build e2e

package main

// Every scrape of a live cqlsniff's counters against what the clients
// themselves sent: a request counter must never go down, never exceed the
// requests sent so far, and never lag them by more than a few refreshes.
// Rate queries over Prometheus' samples (TestMetricsEndToEnd) hide a
// single bad scrape; this looks at each one. Four scrapers (a pair of
// Prometheus servers makes two) scrape every 20–35 ms, so that their
// scrapes overlap, while connections come and go. Run it with
//
//	go test -tags e2e -run MetricsCountsEveryScrape -v ./cmd/cqlsniff

import (
	"bufio"
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestMetricsCountsEveryScrape(t *testing.T) {
	if testing.Short() {
		t.Skip("live capture for 20 s")
	}
	bin := mxBuild(t)
	cqlLn, cqlPort := mxServer(t)
	addr := mxSniff(t, bin, cqlPort, "")
	mxUntil(t, "cqlsniff's /metrics", func() bool {
		code, err := webGet(t, http.DefaultClient, "http://"+addr+"/metrics", "", "")
		return err == nil && code == 200
	})

	// Clients: a few long connections, and short ones that open, send for
	// a while and close, so that connections start and end on every worker.
	var answered atomic.Int64 // QUERYs answered (counted after the answer)
	var sent atomic.Int64     // requests written, STARTUPs too (counted before the write)
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	client := func(life time.Duration) {
		c, err := net.Dial("tcp", cqlLn.Addr().String())
		if err != nil {
			return
		}
		defer c.Close()
		cctx, cancel := context.WithTimeout(ctx, life)
		defer cancel()
		for range mxClientCounted(cctx, c, &sent) {
			answered.Add(1)
		}
	}
	began := time.Now()
	for range 4 {
		wg.Go(func() { client(time.Hour) })
	}
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			wg.Go(func() { client(time.Duration(300+100*(i%7)) * time.Millisecond) })
			select {
			case <-ctx.Done():
			case <-time.After(150 * time.Millisecond):
			}
		}
	})

	// Four scrapers (a pair of Prometheus servers for high availability
	// makes two), each every 20–35 ms for 20 s, so that scrapes overlap
	// and one often waits for another's fold: an older report may then
	// come after a newer one.
	type result struct {
		scrapes int
		last    float64
		maxLag  float64
	}
	var results [4]result
	var swg sync.WaitGroup
	for k := range results {
		swg.Go(func() {
			res := &results[k]
			bad := 0
			deadline := time.Now().Add(20 * time.Second)
			for time.Now().Before(deadline) && bad <= 5 {
				before := float64(answered.Load())
				v, ok := scrapeSum("http://"+addr+"/metrics", "cqlsniff_requests_total")
				after := float64(sent.Load())
				switch {
				case !ok:
				case v < res.last:
					t.Errorf("scraper %d: cqlsniff_requests_total went down: %g, then %g", k, res.last, v)
					bad++
				case v > after:
					t.Errorf("scraper %d: cqlsniff_requests_total %g, but the clients had written only %g requests", k, v, after)
					bad++
				default:
					res.scrapes++
					res.maxLag = max(res.maxLag, before-v)
				}
				if ok {
					res.last = v
				}
				time.Sleep(time.Duration(20+5*k) * time.Millisecond)
			}
		})
	}
	swg.Wait()
	perS := float64(answered.Load()) / time.Since(began).Seconds()
	for k, res := range results {
		if res.scrapes == 0 {
			t.Fatalf("scraper %d: no scrape had the counter", k)
		}
		t.Logf("scraper %d: %d scrapes; last %g requests counted of %d answered; largest lag %g requests (%.2f s of traffic)",
			k, res.scrapes, res.last, answered.Load(), res.maxLag, res.maxLag/perS)
		// A scrape shows the report its predecessor asked for: a refresh
		// behind, tens of milliseconds here. Seconds behind would be
		// snapshots that stopped.
		if res.maxLag > 5*perS {
			t.Errorf("scraper %d: counts lagged the clients by %.1f s of traffic", k, res.maxLag/perS)
		}
	}
}

// mxBuild builds the cqlsniff binary for a test and returns its path.
func mxBuild(t *testing.T) string {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	bin := filepath.Join(t.TempDir(), "cqlsniff")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// mxClientCounted is mxClient, counting each request in sent before it is
// written.
func mxClientCounted(ctx context.Context, c net.Conn, sent *atomic.Int64) <-chan mxExchange {
	return mxClientHook(ctx, c, func() { sent.Add(1) })
}

// scrapeSum fetches a text exposition and sums the samples of name; false
// if the scrape failed or had none (a failed or cut scrape must not pass
// for a count that went down).
func scrapeSum(url, name string) (float64, bool) {
	resp, err := http.Get(url)
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, false
	}
	sum, found := 0.0, false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			return 0, false
		}
		sum, found = sum+v, true
	}
	return sum, found && sc.Err() == nil
}
