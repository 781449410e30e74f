package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/cqlsniff/cqlsniff/analyze"
)

const sample = "../../pcaps/public/elastic-beats/cassandra_compressed.pcap"

func exitCode(err error) int {
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	return 1
}

func TestExitStatus(t *testing.T) {
	dir := t.TempDir()
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a capture file at all"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	cases := []struct {
		name string
		args []string
		code int
		msg  string
	}{
		{"ok", []string{"-r", sample}, 0, ""},
		{"file and interface", []string{"-r", sample, "-i", "lo"}, 2, "exclude each other"},
		{"live-only flag with a file", []string{"-r", sample, "-w", "x.pcap"}, 2, "live capture"},
		{"--duration with a file", []string{"-r", sample, "--duration", "1s"}, 2, "live capture"},
		{"-Z with a file", []string{"-r", sample, "-Z", "nobody"}, 2, "live capture"},
		{"bad report format", []string{"-r", sample, "--report", "xml"}, 2, "text or json"},
		{"bad port", []string{"-r", sample, "-p", "90x"}, 2, "bad port"},
		{"unknown flag", []string{"-r", sample, "--nope"}, 2, "not defined"},
		{"stray argument", []string{"-r", sample, "extra"}, 2, "unexpected argument"},
		{"missing file", []string{"-r", filepath.Join(dir, "nope.pcap")}, 1, "no such file"},
		{"not a capture", []string{"-r", garbage}, 1, "pcap"},
		{"empty file", []string{"-r", empty}, 1, ""},
		{"log and json report on stdout", []string{"-r", sample, "--log", "-", "--report", "json"}, 2, "both want standard output"},
		{"negative --top", []string{"-r", sample, "--top", "-1"}, 2, "--top"},
		{"values without a log", []string{"-r", sample, "--show-values"}, 2, "--log"},
		{"hash key without hashing", []string{"-r", sample, "--log", filepath.Join(dir, "l.jsonl"), "--hash-key", "k"}, 2, "--hash-values"},
		{"log unwritable", []string{"-r", sample, "--log", filepath.Join(dir, "no", "such", "dir.jsonl")}, 1, "exchange log"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			err := run(context.Background(), c.args, nil, &out, &errb)
			if got := exitCode(err); got != c.code {
				t.Fatalf("exit %d (%v), want %d", got, err, c.code)
			}
			if c.msg != "" && (err == nil || !strings.Contains(err.Error()+errb.String(), c.msg)) {
				t.Errorf("error %v does not mention %q", err, c.msg)
			}
			if err != nil && strings.Count(err.Error(), "\n") > 0 {
				t.Errorf("error is not one line: %q", err)
			}
		})
	}
}

func TestStdinAndTruncated(t *testing.T) {
	data, err := os.ReadFile(sample)
	if err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-r", "-", "--report", "json"}, bytes.NewReader(data), &out, &errb); err != nil {
		t.Fatalf("stdin: %v %s", err, errb.String())
	}
	var full analyze.Report
	if err := json.Unmarshal(out.Bytes(), &full); err != nil || full.Totals.Frames != 40 || full.Source != "stdin" {
		t.Fatalf("stdin report: %v frames=%d source=%q", err, full.Totals.Frames, full.Source)
	}
	// Cut the file in the middle of a record: the packets before the cut
	// are analysed, with a warning, and the exit status is 0.
	out.Reset()
	errb.Reset()
	cut := filepath.Join(t.TempDir(), "cut.pcap")
	os.WriteFile(cut, data[:len(data)*2/3], 0o644)
	if err := run(context.Background(), []string{"-r", cut, "--report", "json"}, nil, &out, &errb); err != nil {
		t.Fatalf("truncated: %v", err)
	}
	var part analyze.Report
	if err := json.Unmarshal(out.Bytes(), &part); err != nil {
		t.Fatal(err)
	}
	if !part.Capture.Truncated || part.Totals.Frames == 0 || part.Totals.Frames >= full.Totals.Frames || !strings.Contains(errb.String(), "truncated") {
		t.Errorf("truncated: flag=%v frames=%d stderr=%q", part.Capture.Truncated, part.Totals.Frames, errb.String())
	}
}

func TestTextReportAndLogToStdout(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"-r", "../../pcaps/gocql-1.7.0-v4-unbuffered-c64.pcap"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"client-unbuffered-writes", "sends requests in separate writes", "INSERT INTO kv (k, c, v) VALUES (?, ?, ?)", "Top statements by total time"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text report lacks %q", want)
		}
	}
	// With --log -, stdout carries only JSON lines; the report goes to stderr.
	out.Reset()
	errb.Reset()
	if err := run(context.Background(), []string{"-r", sample, "--log", "-"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for _, l := range lines {
		if !json.Valid([]byte(l)) {
			t.Fatalf("stdout line is not JSON: %q", l)
		}
	}
	if len(lines) != 20 || !strings.Contains(errb.String(), "cqlsniff report") {
		t.Errorf("%d log lines; stderr %q", len(lines), errb.String())
	}
}

// TestIsTerminal: the UI opens only on a real terminal. /dev/null is a
// character device as well, and `cqlsniff -r f >/dev/null` once tried to
// open the UI there.
func TestIsTerminal(t *testing.T) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	if isTerminal(null) {
		t.Error("/dev/null taken for a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Error("a pipe taken for a terminal")
	}
	if isTerminal(&bytes.Buffer{}) {
		t.Error("a buffer taken for a terminal")
	}

	// The other way round: the far end of a pseudo-terminal is one.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Skipf("unlockpt: %v", err)
	}
	n, err := unix.IoctlGetInt(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Skipf("ptsname: %v", err)
	}
	pts, err := os.OpenFile("/dev/pts/"+strconv.Itoa(n), os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("open pts: %v", err)
	}
	defer pts.Close()
	if !isTerminal(pts) {
		t.Error("a pseudo-terminal not taken for a terminal")
	}
}

func TestVersion(t *testing.T) {
	var out, errb bytes.Buffer
	if err := run(context.Background(), []string{"--version"}, nil, &out, &errb); err != nil {
		t.Fatal(err)
	}
	if s := out.String(); !strings.HasPrefix(s, "cqlsniff ") || !strings.Contains(s, "go1.") {
		t.Errorf("--version printed %q", s)
	}
}
