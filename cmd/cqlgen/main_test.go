package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopacket/gopacket/pcapgo"
)

func TestRun(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.pcap")
	var stdout, stderr bytes.Buffer
	err := run([]string{"-connections", "2", "-requests", "50", "-inflight", "8", "-handshake",
		"-compression", "snappy", "-o", out}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	if stdout.Len() != 0 {
		t.Errorf("%d bytes on stdout with -o", stdout.Len())
	}
	if !strings.Contains(stderr.String(), "requests 104  responses 104") {
		t.Errorf("stats:\n%s", stderr.String())
	}
	f, err := os.Open(out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadPacketData(); err != nil {
		t.Fatal(err)
	}
}

func TestRunV5(t *testing.T) {
	var stdout, stderr bytes.Buffer
	err := run([]string{"-protocol", "5", "-compression", "lz4", "-handshake", "-connections", "1",
		"-requests", "20", "-rows-size", "200000"}, &stdout, &stderr)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	if !strings.Contains(stderr.String(), "v5 segments: client 20  server ") {
		t.Errorf("stats:\n%s", stderr.String())
	}
	if _, err := pcapgo.NewReader(&stdout); err != nil {
		t.Fatal(err)
	}
}

func TestRunStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if err := run([]string{"-requests", "10"}, &stdout, &stderr); err != nil {
		t.Fatal(err)
	}
	if _, err := pcapgo.NewReader(&stdout); err != nil {
		t.Fatal(err)
	}
}

func TestRunErrors(t *testing.T) {
	for _, args := range [][]string{
		{"-mix", "batch"},
		{"-protocol", "3"},
		{"-protocol", "5", "-compression", "snappy"},
		{"-start", "yesterday"},
		{"-nosuchflag"},
		{"extra"},
	} {
		var stdout, stderr bytes.Buffer
		if err := run(args, &stdout, &stderr); err == nil {
			t.Errorf("%q: no error", args)
		}
		if stdout.Len() != 0 {
			t.Errorf("%q: wrote %d bytes", args, stdout.Len())
		}
	}
}
