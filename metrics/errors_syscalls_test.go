package metrics

import (
	"context"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	dto "github.com/prometheus/client_model/go"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/internal/labcounts"
)

// reportWithKernelCounts runs the pipeline over a lab capture with the
// kernel's counts of its client (the capture's .json, per local port; the
// client talked to 127.0.0.1:9042) joined, as a live capture with
// --syscalls on the client's host would.
func reportWithKernelCounts(tb testing.TB, path string) *analyze.Report {
	tb.Helper()
	counts, err := labcounts.Read(path)
	if err != nil {
		tb.Fatal(err)
	}
	src, err := capture.OpenFile(path)
	if err != nil {
		tb.Fatal(err)
	}
	defer src.Close()
	p := analyze.NewPipeline(src, analyze.DefaultConfig(), capture.DefaultAssemblerConfig())
	p.SetHost(analyze.SyscallCounts(counts))
	if err := p.Run(context.Background(), 0); err != nil {
		tb.Fatal(err)
	}
	if err := p.Finish(); err != nil {
		tb.Fatal(err)
	}
	r := p.Report(filepath.Base(path))
	joined := false
	for _, cr := range r.Connections {
		joined = joined || cr.ClientSyscalls != nil
	}
	if !joined {
		tb.Fatalf("%s: no kernel counts joined to its connections", path)
	}
	return r
}

// TestGoldenSyscalls checks the kernel's figures in the exposition of the
// Node.js golden capture against the report they come from: per client
// IP (one here), the sum over connections of each count.
func TestGoldenSyscalls(t *testing.T) {
	r := reportWithKernelCounts(t, pcap("nodejs-4.10.0-default-c64.pcap"))
	fams := gather(t, pedantic(t, NewCollector(Config{}, fixed{r})))
	var want sysCounts
	var errs uint64
	for _, cr := range r.Connections {
		if s := cr.ClientSyscalls; s != nil {
			want.sends += s.Sends
			want.recvs += s.Recvs
			want.sendBytes += s.SendBytes
			want.recvBytes += s.RecvBytes
		}
		if cr.ServerSyscalls != nil {
			t.Fatal("server side measured: the lab counted the client only")
		}
		errs += cr.ErrorsByCode["PROTOCOL_ERROR"]
	}
	got := sysBySide(fams)
	if got["client"] != want || len(got) != 1 {
		t.Errorf("socket counters %+v, want client %+v and no server series", got, want)
	}
	if e := errorsByCode(fams); e["PROTOCOL_ERROR"] != float64(errs) || errs == 0 {
		t.Errorf("errors by code %v, want PROTOCOL_ERROR %d", e, errs)
	}
}

func sysBySide(fams map[string]*dto.MetricFamily) map[string]sysCounts {
	out := make(map[string]sysCounts)
	for name, field := range map[string]func(*sysCounts) *uint64{
		"cqlsniff_socket_send_calls_total": func(s *sysCounts) *uint64 { return &s.sends },
		"cqlsniff_socket_recv_calls_total": func(s *sysCounts) *uint64 { return &s.recvs },
		"cqlsniff_socket_send_bytes_total": func(s *sysCounts) *uint64 { return &s.sendBytes },
		"cqlsniff_socket_recv_bytes_total": func(s *sysCounts) *uint64 { return &s.recvBytes },
	} {
		for _, m := range fams[name].GetMetric() {
			s := out[label(m, "side")]
			*field(&s) += uint64(m.Counter.GetValue())
			out[label(m, "side")] = s
		}
	}
	return out
}

func errorsByCode(fams map[string]*dto.MetricFamily) map[string]float64 {
	out := make(map[string]float64)
	for _, m := range fams["cqlsniff_errors_total"].GetMetric() {
		out[label(m, "code")] += m.Counter.GetValue()
	}
	return out
}

// groupSeries flattens one group's series of the families of errors and socket
// calls: "family{code or side}" → value.
func groupSeries(fams map[string]*dto.MetricFamily, client string) map[string]float64 {
	out := make(map[string]float64)
	for name, f := range fams {
		if name != "cqlsniff_errors_total" && !strings.HasPrefix(name, "cqlsniff_socket_") {
			continue
		}
		for _, m := range f.Metric {
			if label(m, "client") == client {
				out[name+"{"+label(m, "code")+label(m, "side")+"}"] = m.Counter.GetValue()
			}
		}
	}
	return out
}

// TestErrorsAndSyscalls feeds hand-built reports of three connections
// through the life a live capture gives them: two from one client IP
// (one group) with errors of several codes and the kernel's counts, one
// that closes and then leaves the report, one whose kernel counts are
// missing from a report and come back; and a third connection, from
// another IP, without errors or counts. Each scrape must show the sums
// over the connections of their latest figures, never less than before,
// and no series at all where nothing was measured.
func TestErrorsAndSyscalls(t *testing.T) {
	sys := func(sends, recvs, sendBytes, recvBytes uint64) *analyze.SyscallReport {
		return &analyze.SyscallReport{Sends: sends, Recvs: recvs, SendBytes: sendBytes, RecvBytes: recvBytes, PID: 42, Comm: "app"}
	}
	errs := func(cr *analyze.ConnReport, byCode map[string]uint64) *analyze.ConnReport {
		cr.ErrorsByCode = byCode
		for _, n := range byCode {
			cr.Errors += n
		}
		return cr
	}
	a := func(requests uint64, byCode map[string]uint64, client, server *analyze.SyscallReport) *analyze.ConnReport {
		cr := errs(conn(1, "10.0.0.2:5000", requests, "open"), byCode)
		cr.ClientSyscalls, cr.ServerSyscalls = client, server
		return cr
	}
	b := func(requests uint64, byCode map[string]uint64, client *analyze.SyscallReport, closed string) *analyze.ConnReport {
		cr := errs(conn(2, "10.0.0.2:5001", requests, closed), byCode)
		cr.ClientSyscalls = client
		return cr
	}
	c := conn(3, "10.0.0.3:6000", 50, "open")
	b2 := b(20, map[string]uint64{"READ_TIMEOUT": 2, "unreadable": 1}, sys(20, 12, 2000, 5000), "fin")
	reports := []*analyze.Report{
		{Source: "live", Packets: 100, Connections: []*analyze.ConnReport{
			a(100, map[string]uint64{"READ_TIMEOUT": 3, "INVALID": 1}, sys(90, 50, 9000, 20000), sys(40, 95, 20000, 9000)),
			b(10, map[string]uint64{"READ_TIMEOUT": 1, "unreadable": 1}, sys(10, 5, 1000, 2000), "open"),
			c,
		}},
		// b closes with its final figures.
		{Source: "live", Packets: 200, Connections: []*analyze.ConnReport{
			a(150, map[string]uint64{"READ_TIMEOUT": 5, "INVALID": 1}, sys(150, 80, 15000, 30000), sys(60, 155, 30000, 15000)),
			b2, c,
		}},
		// b has left the report (the analyzer keeps few closed
		// connections); the kernel's table has lost a for now.
		{Source: "live", Packets: 300, Connections: []*analyze.ConnReport{
			a(160, map[string]uint64{"READ_TIMEOUT": 6, "INVALID": 1, "OVERLOADED": 2}, nil, nil),
			c,
		}},
		// a's counts are back, grown: only the growth since the last
		// figures seen is added.
		{Source: "live", Packets: 400, Connections: []*analyze.ConnReport{
			a(200, map[string]uint64{"READ_TIMEOUT": 6, "INVALID": 1, "OVERLOADED": 2}, sys(200, 100, 20000, 40000), sys(80, 205, 40000, 20000)),
			c,
		}},
	}
	want := []map[string]float64{
		{
			"cqlsniff_errors_total{READ_TIMEOUT}": 4, "cqlsniff_errors_total{INVALID}": 1, "cqlsniff_errors_total{unreadable}": 1,
			"cqlsniff_socket_send_calls_total{client}": 100, "cqlsniff_socket_recv_calls_total{client}": 55,
			"cqlsniff_socket_send_bytes_total{client}": 10000, "cqlsniff_socket_recv_bytes_total{client}": 22000,
			"cqlsniff_socket_send_calls_total{server}": 40, "cqlsniff_socket_recv_calls_total{server}": 95,
			"cqlsniff_socket_send_bytes_total{server}": 20000, "cqlsniff_socket_recv_bytes_total{server}": 9000,
		},
		{
			"cqlsniff_errors_total{READ_TIMEOUT}": 7, "cqlsniff_errors_total{INVALID}": 1, "cqlsniff_errors_total{unreadable}": 1,
			"cqlsniff_socket_send_calls_total{client}": 170, "cqlsniff_socket_recv_calls_total{client}": 92,
			"cqlsniff_socket_send_bytes_total{client}": 17000, "cqlsniff_socket_recv_bytes_total{client}": 35000,
			"cqlsniff_socket_send_calls_total{server}": 60, "cqlsniff_socket_recv_calls_total{server}": 155,
			"cqlsniff_socket_send_bytes_total{server}": 30000, "cqlsniff_socket_recv_bytes_total{server}": 15000,
		},
		{
			"cqlsniff_errors_total{READ_TIMEOUT}": 8, "cqlsniff_errors_total{INVALID}": 1, "cqlsniff_errors_total{unreadable}": 1,
			"cqlsniff_errors_total{OVERLOADED}":        2,
			"cqlsniff_socket_send_calls_total{client}": 170, "cqlsniff_socket_recv_calls_total{client}": 92,
			"cqlsniff_socket_send_bytes_total{client}": 17000, "cqlsniff_socket_recv_bytes_total{client}": 35000,
			"cqlsniff_socket_send_calls_total{server}": 60, "cqlsniff_socket_recv_calls_total{server}": 155,
			"cqlsniff_socket_send_bytes_total{server}": 30000, "cqlsniff_socket_recv_bytes_total{server}": 15000,
		},
		{
			"cqlsniff_errors_total{READ_TIMEOUT}": 8, "cqlsniff_errors_total{INVALID}": 1, "cqlsniff_errors_total{unreadable}": 1,
			"cqlsniff_errors_total{OVERLOADED}":        2,
			"cqlsniff_socket_send_calls_total{client}": 220, "cqlsniff_socket_recv_calls_total{client}": 112,
			"cqlsniff_socket_send_bytes_total{client}": 22000, "cqlsniff_socket_recv_bytes_total{client}": 45000,
			"cqlsniff_socket_send_calls_total{server}": 80, "cqlsniff_socket_recv_calls_total{server}": 205,
			"cqlsniff_socket_send_bytes_total{server}": 40000, "cqlsniff_socket_recv_bytes_total{server}": 20000,
		},
	}
	seq := &sequence{reports: reports}
	col := NewCollector(Config{}, seq)
	reg := pedantic(t, col)
	var prev map[string]float64
	for i, w := range want {
		fams := gather(t, reg)
		if got := groupSeries(fams, "10.0.0.2"); fmt.Sprint(got) != fmt.Sprint(w) {
			t.Errorf("scrape %d:\n got %v\nwant %v", i, got, w)
		}
		if got := groupSeries(fams, "10.0.0.3"); len(got) != 0 {
			t.Errorf("scrape %d: a client without errors or kernel counts has %v", i, got)
		}
		for _, f := range fams {
			if (f.GetName() == "cqlsniff_errors_total" || strings.HasPrefix(f.GetName(), "cqlsniff_socket_")) && f.GetType() != dto.MetricType_COUNTER {
				t.Errorf("%s is a %s", f.GetName(), f.GetType())
			}
		}
		cur := cumulative(fams)
		for k, v := range prev {
			if now, ok := cur[k]; !ok || now < v {
				t.Errorf("scrape %d: %s went from %g to %g (present: %v)", i, k, v, now, ok)
			}
		}
		prev = cur
	}
	text, _ := scrape(t, Handler(col), "")
	if !strings.Contains(text, `cqlsniff_socket_send_calls_total{client="10.0.0.2",driver="gocql",driver_version="v1",server="10.0.0.1:9042",side="client"} 220`) ||
		!strings.Contains(text, `cqlsniff_errors_total{client="10.0.0.2",code="READ_TIMEOUT",driver="gocql",driver_version="v1",server="10.0.0.1:9042"} 8`) {
		t.Errorf("the text exposition lacks the expected series:\n%s", ownMetrics(text))
	}
	promtoolCheck(t, text)
}

// TestErrorsNotBrokenDown: a report that counts errors without codes (one
// from before errors_by_code) still adds them up, under code="unknown".
func TestErrorsNotBrokenDown(t *testing.T) {
	cr := conn(1, "10.0.0.2:5000", 10, "open")
	cr.Errors, cr.ErrorsByCode = 5, map[string]uint64{"INVALID": 2}
	fams := gather(t, pedantic(t, NewCollector(Config{}, fixed{&analyze.Report{Source: "x", Connections: []*analyze.ConnReport{cr}}})))
	if got := errorsByCode(fams); fmt.Sprint(got) != fmt.Sprint(map[string]float64{"INVALID": 2, "unknown": 3}) {
		t.Errorf("errors by code %v, want INVALID 2, unknown 3", got)
	}
}

// TestErrorCodeCap: codes decode has no name for take at most
// maxUnnamedErrorCodes label values, the rest of them share "other"
// (with a raw code spelled "other"), named codes keep their own values up to
// maxErrorCodes, and no error is lost.
func TestErrorCodeCap(t *testing.T) {
	byCode := map[string]uint64{"other": 1}
	for i := range 50 {
		byCode[fmt.Sprintf("ERROR_0x%x", 0x3000+i)] = 1
		byCode[fmt.Sprintf("NAMED_%02d", i)] = 1
	}
	cr := conn(1, "10.0.0.2:5000", 10, "open")
	cr.ErrorsByCode = byCode
	for _, n := range byCode {
		cr.Errors += n
	}
	col := NewCollector(Config{}, fixed{&analyze.Report{Source: "x", Connections: []*analyze.ConnReport{cr}}})
	got := errorsByCode(gather(t, pedantic(t, col)))
	var unnamed, named int
	var total float64
	for code, n := range got {
		total += n
		switch {
		case strings.HasPrefix(code, "ERROR_0x"):
			unnamed++
		case code != otherLabel:
			named++
		}
	}
	if unnamed != maxUnnamedErrorCodes || unnamed+named != maxErrorCodes || total != float64(cr.Errors) {
		t.Errorf("%d unnamed and %d named code values, %g errors; want %d, %d, %d", unnamed, named, total,
			maxUnnamedErrorCodes, maxErrorCodes-maxUnnamedErrorCodes, cr.Errors)
	}
	if len(col.codes.index) > maxErrorCodes+1 {
		t.Errorf("%d code names remembered, cap %d + other", len(col.codes.index), maxErrorCodes)
	}
}

// TestDiagnosisCodes: the help of cqlsniff_diagnosis_active and
// deploy/README.md name every diagnosis code analyze declares (its
// exported Code… string constants).
func TestDiagnosisCodes(t *testing.T) {
	fset := token.NewFileSet()
	files, err := filepath.Glob(filepath.Join("..", "analyze", "*.go"))
	if err != nil {
		t.Fatal(err)
	}
	var declared []string
	for _, path := range files {
		if strings.HasSuffix(path, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, path, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, name := range vs.Names {
					if !strings.HasPrefix(name.Name, "Code") || !name.IsExported() || i >= len(vs.Values) {
						continue
					}
					if lit, ok := vs.Values[i].(*ast.BasicLit); ok && lit.Kind == token.STRING {
						v, _ := strconv.Unquote(lit.Value)
						declared = append(declared, v)
					}
				}
			}
		}
	}
	if len(declared) < 5 {
		t.Fatalf("found only %v in analyze", declared)
	}
	slices.Sort(declared)
	listed := slices.Sorted(slices.Values(diagnosisCodes))
	if !slices.Equal(declared, listed) {
		t.Errorf("analyze declares %v; metrics lists %v", declared, listed)
	}
	d := newDescs()
	readme, err := os.ReadFile(filepath.Join(deployDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, code := range declared {
		if !strings.Contains(d.diagnosis.String(), code) {
			t.Errorf("the help of cqlsniff_diagnosis_active does not name %s", code)
		}
		if !strings.Contains(string(readme), "`"+code+"`") {
			t.Errorf("deploy/README.md does not name %s", code)
		}
	}
}
