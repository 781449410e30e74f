//go:build e2e

package main

// The end-to-end test of --metrics: the cqlsniff binary capturing live on
// lo, CQL traffic of known rate and latency made by the test itself, and a
// real Prometheus server scraping cqlsniff, once over plain HTTP and once
// with --web.config.file (TLS with a CA made by the test, basic auth with a
// bcrypt hash; a wrong password must get 401). It needs root (live capture)
// and /usr/bin/prometheus (Debian: apt-get install prometheus), and skips
// without them. Run it with
//
//	go test -tags e2e -run MetricsEndToEnd -v ./cmd/cqlsniff
//
// Everything here is prefixed mx so as not to clash with the package's
// other tests.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const (
	mxPrometheus = "/usr/bin/prometheus"
	mxWait       = 30 * time.Second        // bound of every wait
	mxService    = 2500 * time.Microsecond // the fake server's time per request
	mxPace       = 10 * time.Millisecond   // each client connection sends a request this often
	mxConns      = 2                       // client connections: 2 × 100 requests/s
	mxTraffic    = 14 * time.Second        // traffic before the queries
	mxWindow     = 8                       // seconds of rate() window
	mxLag        = 5                       // seconds a count may lag the clients (a scrape shows the report the one before asked for)
	mxDriver     = "cqlsniff-e2e"          // DRIVER_NAME in the clients' STARTUP
	mxQuery      = "SELECT v FROM ks.kv WHERE k = 7"
)

func TestMetricsEndToEnd(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("live capture needs root")
	}
	if _, err := os.Stat(mxPrometheus); err != nil {
		t.Skip("no Prometheus server (Debian: apt-get install prometheus)")
	}
	dir := t.TempDir()
	bin := mxBuild(t)

	cqlLn, cqlPort := mxServer(t)

	// Two cqlsniffs, before the clients connect, so that they see their
	// STARTUP: one serving plain HTTP, one with a web configuration (TLS
	// with a CA made here, and a bcrypt basic-auth user). Both capture the
	// same traffic; Prometheus scrapes both and must find the same figures.
	w := newWebTLS(t, "")
	plainAddr := mxSniff(t, bin, cqlPort, "")
	tlsAddr := mxSniff(t, bin, cqlPort, w.config)
	mxUntil(t, "cqlsniff's /metrics", func() bool {
		code, err := webGet(t, http.DefaultClient, "http://"+plainAddr+"/metrics", "", "")
		return err == nil && code == 200
	})
	mxUntil(t, "cqlsniff's /metrics over TLS", func() bool {
		code, err := webGet(t, w.client(), "https://"+tlsAddr+"/metrics", w.user, w.password)
		return err == nil && code == 200
	})
	// Without credentials or with wrong ones 401, with them 200, and no
	// metrics over plain HTTP.
	checkWebAuth(t, w, tlsAddr)

	// Prometheus, scraping every second: the plain endpoint, the TLS one
	// with the password, and the TLS one with a wrong password (which it
	// must report as down: 401).
	promAddr := mxFreeAddr(t)
	pwFile := filepath.Join(dir, "password")
	badPwFile := filepath.Join(dir, "wrong-password")
	os.WriteFile(pwFile, []byte(w.password), 0o600)
	os.WriteFile(badPwFile, []byte("not-"+w.password), 0o600)
	tlsJob := func(job, pw string) string {
		return fmt.Sprintf(`  - job_name: %s
    scheme: https
    tls_config:
      ca_file: %q
    basic_auth:
      username: %s
      password_file: %q
    static_configs:
      - targets: [%q]
`, job, w.caFile, w.user, pw, tlsAddr)
	}
	cfg := fmt.Sprintf("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\nscrape_configs:\n  - job_name: cqlsniff\n    static_configs:\n      - targets: [%q]\n", plainAddr) +
		tlsJob("cqlsniff-tls", pwFile) + tlsJob("cqlsniff-tls-wrong-password", badPwFile)
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	var promLog bytes.Buffer
	prom := exec.Command(mxPrometheus, "--config.file="+cfgPath, "--storage.tsdb.path="+filepath.Join(dir, "tsdb"),
		"--web.listen-address="+promAddr, "--log.level=warn")
	prom.Stdout, prom.Stderr = &promLog, &promLog
	if err := prom.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		prom.Process.Kill()
		prom.Wait()
		if t.Failed() {
			t.Logf("prometheus log:\n%s", promLog.String())
		}
	}()
	base := "http://" + promAddr

	// The clients: each connection sends a QUERY every mxPace and waits
	// for its answer, and notes when it sent it and how long the answer
	// took.
	trafficCtx, stopTraffic := context.WithCancel(context.Background())
	var mu sync.Mutex
	var sent []mxExchange
	var wg sync.WaitGroup
	for range mxConns {
		c, err := net.Dial("tcp", cqlLn.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		wg.Go(func() {
			for ex := range mxClient(trafficCtx, c) {
				mu.Lock()
				sent = append(sent, ex)
				mu.Unlock()
			}
		})
	}
	defer func() { stopTraffic(); wg.Wait() }()

	time.Sleep(mxTraffic)
	ts := float64(time.Now().UnixMilli()) / 1e3

	// What the clients did in the window.
	mu.Lock()
	var lat []float64
	var upTo, upToLag float64 // requests sent by ts, and by mxLag before it (STARTUPs too)
	for _, ex := range sent {
		if ex.at > ts-mxWindow && ex.at <= ts {
			lat = append(lat, ex.latency)
		}
		if ex.at <= ts {
			upTo++
		}
		if ex.at <= ts-mxLag {
			upToLag++
		}
	}
	mu.Unlock()
	upTo, upToLag = upTo+mxConns, upToLag+mxConns
	if len(lat) == 0 {
		t.Fatal("the clients sent nothing")
	}
	clientRate := float64(len(lat)) / mxWindow
	slices.Sort(lat)
	clientP99 := lat[int(math.Ceil(0.99*float64(len(lat))))-1]

	for _, job := range []string{"cqlsniff", "cqlsniff-tls"} {
		sel := fmt.Sprintf(`job=%q, client="127.0.0.1", server="127.0.0.1:%d"`, job, cqlPort)
		t.Logf("job %s:", job)
		rate := mxScalar(t, base, fmt.Sprintf("sum(rate(cqlsniff_requests_total{%s}[%ds]))", sel, mxWindow), ts)
		p99 := mxScalar(t, base, fmt.Sprintf("histogram_quantile(0.99, sum by (le) (rate(cqlsniff_request_duration_seconds_bucket{%s}[%ds])))", sel, mxWindow), ts)
		fps := mxScalar(t, base, fmt.Sprintf(`sum(rate(cqlsniff_frames_per_segment_sum{%s, direction="client_to_server"}[%ds])) / sum(rate(cqlsniff_frames_per_segment_count{%[1]s, direction="client_to_server"}[%[2]ds]))`, sel, mxWindow), ts)
		t.Logf("over %d s: clients sent %.1f requests/s, Prometheus says %.1f/s; client-side p99 %.3f ms, Prometheus p99 %.3f ms; client frames per segment %.2f",
			mxWindow, clientRate, rate, clientP99*1e3, p99*1e3, fps)

		// The rate: the reports are at most a refresh old and the window's
		// edges fall between scrapes, so allow 15%.
		if math.Abs(rate-clientRate) > 0.15*clientRate {
			t.Errorf("request rate %.1f/s, the clients sent %.1f/s", rate, clientRate)
			// The samples behind it, to tell a wrong count from a
			// scrape that failed or came late.
			for _, q := range []string{
				fmt.Sprintf("cqlsniff_requests_total{%s}[%ds]", sel, 2*mxWindow),
				fmt.Sprintf("up{job=%q}[%ds]", job, 2*mxWindow),
				fmt.Sprintf("scrape_duration_seconds{job=%q}[%ds]", job, 2*mxWindow),
			} {
				t.Logf("%s at %.3f: %s", q, ts, mxRaw(t, base, q, ts))
			}
		}
		// The p99: the wire sees a little less than the client (no syscalls,
		// no scheduling), never less than the server's service time, and the
		// classic buckets are powers of two of microseconds, inside which
		// histogram_quantile interpolates: within a factor of two.
		if p99 < mxService.Seconds() || p99 > 2*clientP99 || p99 < clientP99/2 {
			t.Errorf("p99 %.3f ms, the clients measured %.3f ms (service time %v)", p99*1e3, clientP99*1e3, mxService)
		}
		// One frame per segment: these clients write each request alone.
		if math.Abs(fps-1) > 0.01 {
			t.Errorf("client frames per segment %.3f, want 1", fps)
		}
		// The count itself, at the window's end: never more than the
		// clients had sent (plus one unanswered request per connection),
		// never behind them by more than mxLag. A count taken twice
		// shows here whatever the scrape timing.
		if v := mxScalar(t, base, fmt.Sprintf("sum(cqlsniff_requests_total{%s})", sel), ts); v > upTo+mxConns || v < upToLag {
			t.Errorf("%g requests counted at the window's end; the clients had sent %g by then, %g by %d s before", v, upTo, upToLag, mxLag)
		}
		// The driver from the STARTUP, and the series per client IP (not per
		// connection): one series for the two connections.
		res := mxQueryAPI(t, base, fmt.Sprintf("cqlsniff_requests_total{%s}", sel), ts)
		if len(res) != 1 || res[0].Metric["driver"] != mxDriver || res[0].Metric["driver_version"] != "1.0" {
			t.Errorf("request series %+v, want one with driver=%q driver_version=\"1.0\"", res, mxDriver)
		}
		if open := mxScalar(t, base, fmt.Sprintf("sum(cqlsniff_open_connections{%s})", sel), ts); open != mxConns {
			t.Errorf("%g open connections, want %d", open, mxConns)
		}
	}
	// The scrape with the wrong password: down, and Prometheus says why.
	if up := mxScalar(t, base, `up{job="cqlsniff-tls-wrong-password"}`, ts); up != 0 {
		t.Errorf("the scrape with a wrong password is up (%g)", up)
	}
	if e := mxTargetError(t, base, "cqlsniff-tls-wrong-password"); !strings.Contains(e, "401") {
		t.Errorf("the scrape with a wrong password failed with %q, want 401", e)
	} else {
		t.Logf("Prometheus with a wrong password: %s", e)
	}
}

// mxSniff starts cqlsniff capturing the CQL port on lo with its metrics
// on a free address (with the web configuration webConfig, if any) and
// returns that address. It is stopped (SIGINT) when the test ends.
func mxSniff(t *testing.T, bin string, cqlPort int, webConfig string) string {
	t.Helper()
	addr := mxFreeAddr(t)
	args := []string{"-i", "lo", "-p", strconv.Itoa(cqlPort), "--report", "json", "--interval", "1h", "--metrics", addr}
	if webConfig != "" {
		args = append(args, "--web.config.file", webConfig)
	}
	var out bytes.Buffer
	sniff := exec.Command(bin, args...)
	// Under sudo cqlsniff would drop to the invoking user, who cannot
	// read the test's files: it stays root here.
	sniff.Env = slices.DeleteFunc(os.Environ(), func(kv string) bool { return strings.HasPrefix(kv, "SUDO_") })
	sniff.Stdout, sniff.Stderr = &out, &out
	if err := sniff.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		sniff.Process.Signal(syscall.SIGINT)
		done := make(chan struct{})
		go func() { sniff.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			sniff.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("cqlsniff %s output:\n%s", args, out.String())
		}
	})
	return addr
}

// mxTargetError is the last scrape error Prometheus reports for job's
// target, once it has one.
func mxTargetError(t *testing.T, base, job string) string {
	t.Helper()
	var lastErr string
	mxUntil(t, "a scrape error for "+job, func() bool {
		resp, err := http.Get(base + "/api/v1/targets?state=active")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Data struct {
				ActiveTargets []struct {
					ScrapePool string
					LastError  string
				}
			}
		}
		if json.NewDecoder(resp.Body).Decode(&body) != nil {
			return false
		}
		for _, tg := range body.Data.ActiveTargets {
			if tg.ScrapePool == job && tg.LastError != "" {
				lastErr = tg.LastError
				return true
			}
		}
		return false
	})
	return lastErr
}

type mxExchange struct {
	at      float64 // send time, Unix seconds
	latency float64 // seconds
}

// mxFrame builds a v4 frame: a 9-byte header (version, flags 0, stream,
// opcode, body length) and the body.
func mxFrame(version byte, stream uint16, opcode byte, body []byte) []byte {
	b := []byte{version, 0}
	b = binary.BigEndian.AppendUint16(b, stream)
	b = append(b, opcode)
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

func mxString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}

// mxReadFrame reads one frame: header fields and body.
func mxReadFrame(r io.Reader) (stream uint16, opcode byte, body []byte, err error) {
	var h [9]byte
	if _, err = io.ReadFull(r, h[:]); err != nil {
		return
	}
	body = make([]byte, binary.BigEndian.Uint32(h[5:]))
	_, err = io.ReadFull(r, body)
	return binary.BigEndian.Uint16(h[2:]), h[4], body, err
}

// mxClient opens the connection with STARTUP (driver name and version in
// it) and then sends a QUERY every mxPace, one at a time, until ctx ends.
func mxClient(ctx context.Context, c net.Conn) <-chan mxExchange {
	return mxClientHook(ctx, c, func() {})
}

// mxClientHook is mxClient calling beforeWrite before each request
// (STARTUP and QUERY).
func mxClientHook(ctx context.Context, c net.Conn, beforeWrite func()) <-chan mxExchange {
	out := make(chan mxExchange)
	go func() {
		defer close(out)
		// STARTUP [string map]: CQL_VERSION, DRIVER_NAME, DRIVER_VERSION.
		opts := binary.BigEndian.AppendUint16(nil, 3)
		for _, kv := range [][2]string{{"CQL_VERSION", "3.0.0"}, {"DRIVER_NAME", mxDriver}, {"DRIVER_VERSION", "1.0"}} {
			opts = mxString(mxString(opts, kv[0]), kv[1])
		}
		beforeWrite()
		if _, err := c.Write(mxFrame(0x04, 0, 0x01, opts)); err != nil {
			return
		}
		if _, _, _, err := mxReadFrame(c); err != nil { // READY
			return
		}
		// QUERY: [long string] query, [short] consistency ONE, [byte] flags 0.
		q := binary.BigEndian.AppendUint32(nil, uint32(len(mxQuery)))
		q = append(q, mxQuery...)
		q = append(q, 0x00, 0x01, 0x00)
		tick := time.NewTicker(mxPace)
		defer tick.Stop()
		for stream := uint16(1); ; stream = stream%32767 + 1 {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
			start := time.Now()
			beforeWrite()
			if _, err := c.Write(mxFrame(0x04, stream, 0x07, q)); err != nil {
				return
			}
			if _, _, _, err := mxReadFrame(c); err != nil {
				return
			}
			select {
			case out <- mxExchange{float64(start.UnixMicro()) / 1e6, time.Since(start).Seconds()}:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// mxServer starts the fake CQL server (mxServe) on a port of its own,
// closed when the test ends.
func mxServer(t *testing.T) (net.Listener, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go mxServe(ln)
	return ln, ln.Addr().(*net.TCPAddr).Port
}

// mxServe answers STARTUP with READY, OPTIONS with an empty SUPPORTED and
// anything else with a Void RESULT after mxService.
func mxServe(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			for {
				stream, op, _, err := mxReadFrame(c)
				if err != nil {
					return
				}
				var resp []byte
				switch op {
				case 0x01: // STARTUP
					resp = mxFrame(0x84, stream, 0x02, nil) // READY
				case 0x05: // OPTIONS
					resp = mxFrame(0x84, stream, 0x06, []byte{0, 0}) // SUPPORTED, empty multimap
				default:
					time.Sleep(mxService)
					resp = mxFrame(0x84, stream, 0x08, []byte{0, 0, 0, 1}) // RESULT Void
				}
				if _, err := c.Write(resp); err != nil {
					return
				}
			}
		}()
	}
}

func mxFreeAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func mxUntil(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(mxWait)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up after %v waiting for %s", mxWait, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

type mxResult struct {
	Metric map[string]string
	Value  []any
}

// mxQueryAPI runs an instant PromQL query at ts through Prometheus' HTTP
// API, waiting (bounded) for the server to be up and to have data.
func mxQueryAPI(t *testing.T, base, q string, ts float64) []mxResult {
	t.Helper()
	var res []mxResult
	mxUntil(t, "an answer to "+q, func() bool {
		u := base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(ts, 'f', 3, 64)}}.Encode()
		resp, err := http.Get(u)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var body struct {
			Status string
			Error  string
			Data   struct{ Result []mxResult }
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
			return false
		}
		if body.Status != "success" {
			if strings.Contains(body.Error, "parse") {
				t.Fatalf("%s: %s", q, body.Error)
			}
			return false
		}
		res = body.Data.Result
		return len(res) > 0
	})
	return res
}

// mxRaw is Prometheus' answer to q at ts, as it came.
func mxRaw(t *testing.T, base, q string, ts float64) string {
	resp, err := http.Get(base + "/api/v1/query?" + url.Values{"query": {q}, "time": {strconv.FormatFloat(ts, 'f', 3, 64)}}.Encode())
	if err != nil {
		return err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func mxScalar(t *testing.T, base, q string, ts float64) float64 {
	t.Helper()
	res := mxQueryAPI(t, base, q, ts)
	if len(res) != 1 || len(res[0].Value) != 2 {
		t.Fatalf("%s: %+v, want one value", q, res)
	}
	v, err := strconv.ParseFloat(res[0].Value[1].(string), 64)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
