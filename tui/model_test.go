package tui

import (
	"strings"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
)

func TestFmtUS(t *testing.T) {
	for _, tc := range []struct {
		us   float64
		want string
	}{
		{0, "0µs"},
		{407, "407µs"},
		{999.4, "999µs"},
		{1727, "1.73ms"},
		{16767, "16.8ms"},
		{314_000, "314ms"},
		{1_234_000, "1.23s"},
		{123e6, "123s"},
	} {
		if got := fmtUS(tc.us); got != tc.want {
			t.Errorf("fmtUS(%v) = %q, want %q", tc.us, got, tc.want)
		}
	}
}

func TestFmtElapsed(t *testing.T) {
	for _, tc := range []struct {
		s    float64
		want string
	}{
		{0.688, "0.69s"},
		{59.994, "59.99s"},
		{83, "1m23s"},
		{3723, "1h02m03s"},
	} {
		if got := fmtElapsed(tc.s); got != tc.want {
			t.Errorf("fmtElapsed(%v) = %q, want %q", tc.s, got, tc.want)
		}
	}
}

// TestPaceSteps walks the replay pace ladder both ways.
func TestPaceSteps(t *testing.T) {
	pace := 1.0
	var up []string
	for range 8 {
		pace = faster(pace)
		up = append(up, fmtPace(pace))
	}
	if got := strings.Join(up, " "); got != "2x 4x 8x 16x 32x 64x max max" {
		t.Errorf("faster from 1x: %s", got)
	}
	pace = 0
	var down []string
	for range 7 {
		pace = slower(pace)
		down = append(down, fmtPace(pace))
	}
	if got := strings.Join(down, " "); got != "1x 0.5x 0.25x 0.125x 0.0625x 0.0625x 0.0625x" {
		t.Errorf("slower from max: %s", got)
	}
}

func TestSortRows(t *testing.T) {
	conns := []*analyze.ConnReport{
		{ID: 1, Client: "10.0.0.9:5000", RequestsPerSec: 10, InFlight: analyze.InFlight{Mean: 5, Max: 9}},
		{ID: 2, Client: "10.0.0.10:5000", RequestsPerSec: 30, InFlight: analyze.InFlight{Mean: 1, Max: 1}},
		{ID: 3, Client: "10.0.0.10:400", RequestsPerSec: 20, InFlight: analyze.InFlight{Mean: 5, Max: 12}},
	}
	ids := func() string {
		var b strings.Builder
		for _, c := range conns {
			b.WriteByte(byte('0' + c.ID))
		}
		return b.String()
	}
	for _, tc := range []struct {
		s    sortState
		want string
	}{
		{sortState{colReqs, true}, "231"},
		{sortState{colReqs, false}, "132"},
		{sortState{colInFlight, true}, "312"},                       // equal means: the larger max first
		{sortState{colClient, false}, "132"},                        // by address, then port: "10.0.0.9" before "10.0.0.10"
		{sortState{colErrors, true}, "132"},                         // all equal: order kept from the previous sort
		{nextSort(connColumns, sortState{colClient, false}), "132"}, // server: all empty
	} {
		sortRows(conns, connColumns, tc.s)
		if got := ids(); got != tc.want {
			t.Errorf("sort %+v: %s, want %s", tc.s, got, tc.want)
		}
	}
	if s := nextSort(connColumns, sortState{colReqs, true}); s != (sortState{colInFlight, true}) {
		t.Errorf("next after req/s: %+v", s)
	}
	if s := nextSort(connColumns, sortState{colState, false}); s != (sortState{colClient, false}) {
		t.Errorf("next after the last column: %+v", s)
	}
	if h := header(connColumns, sortState{colP99, false}); h[colP99] != "p99▲" || h[colP50] != "p50" {
		t.Errorf("header: %q", h)
	}
}

func TestFilters(t *testing.T) {
	c := &analyze.ConnReport{Client: "10.1.2.3:40000", Server: "10.9.9.9:9042", Driver: "github.com/apache/cassandra-gocql-driver", DriverVersion: "v1.7.0"}
	for f, want := range map[string]bool{"": true, "10.1.2": true, ":9042": true, "gocql": true, "v1.7": true, "python": false} {
		if got := matchConn(c, f); got != want {
			t.Errorf("matchConn(%q) = %v", f, got)
		}
	}
	s := &analyze.StmtReport{Statement: "SELECT v FROM kv WHERE k = ?"}
	if !matchStmt(s, "from kv") || matchStmt(s, "insert") {
		t.Error("matchStmt")
	}
	if got := shortDriver(c); got != "cassandra-gocql-driver v1.7.0" {
		t.Errorf("shortDriver: %q", got)
	}
}

func TestFlow(t *testing.T) {
	segs := []string{"[::b]aaaa[::B]", "bbb", "cc", "dddddd"}
	if got := flow(segs, 11); strings.Join(got, "|") != "[::b]aaaa[::B]  bbb|cc  dddddd" {
		t.Errorf("flow: %q", got)
	}
	if got := flow(segs, 0); len(got) != 1 {
		t.Errorf("flow without a width: %q", got)
	}
}

func TestHbar(t *testing.T) {
	for _, tc := range []struct {
		n, top int64
		width  int
		want   string
	}{
		{0, 10, 10, ""},
		{10, 10, 4, "████"},
		{5, 10, 4, "██"},
		{1, 10, 4, "▍"},   // 3.2 eighths
		{1, 1000, 4, "▏"}, // a sliver, never nothing
	} {
		if got := hbar(tc.n, tc.top, tc.width); got != tc.want {
			t.Errorf("hbar(%d, %d, %d) = %q, want %q", tc.n, tc.top, tc.width, got, tc.want)
		}
	}
}

func TestShortSource(t *testing.T) {
	if got := shortSource("/very/long/directory/name/capture.pcap", 20); got != "…/capture.pcap" {
		t.Errorf("got %q", got)
	}
	if got := shortSource("lo", 20); got != "lo" {
		t.Errorf("got %q", got)
	}
}
