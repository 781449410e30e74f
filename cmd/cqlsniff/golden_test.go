package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cqlsniff/cqlsniff/analyze"
)

var update = flag.Bool("update", false, "rewrite the golden reports in testdata/golden")

// TestGolden runs cqlsniff on every capture shipped in pcaps/ and compares
// the JSON report with the checked-in one. Regenerate with
// `go test ./cmd/cqlsniff -run Golden -update` and review the diff.
func TestGolden(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "pcaps", "*.pcap"))
	gz, _ := filepath.Glob(filepath.Join("..", "..", "pcaps", "*.pcap.gz"))
	public, _ := filepath.Glob(filepath.Join("..", "..", "pcaps", "public", "elastic-beats", "*.pcap"))
	files = append(append(files, gz...), public...)
	if len(files) == 0 {
		t.Fatal("no captures in pcaps/")
	}
	for _, f := range files {
		name := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(f), ".gz"), ".pcap")
		// One worker makes the golden; several must make the same report
		// (the connections dealt out differently, the parts merged).
		for _, workers := range []int{1, 3} {
			t.Run(name+"/workers="+itoa(workers), func(t *testing.T) {
				args := []string{"-r", f, "--report", "json", "--workers", itoa(workers)}
				// A TLS capture of the lab is decrypted with the key log beside it.
				if keys := strings.TrimSuffix(strings.TrimSuffix(f, ".gz"), ".pcap") + ".keys"; fileExists(keys) {
					args = append(args, "--keylog", keys)
				}
				var out, errb bytes.Buffer
				if err := run(context.Background(), args, nil, &out, &errb); err != nil {
					t.Fatalf("%v\n%s", err, errb.String())
				}
				var rep analyze.Report
				if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
					t.Fatal(err)
				}
				rep.Source = filepath.Base(f)
				got, _ := json.MarshalIndent(&rep, "", "  ")
				got = append(got, '\n')
				golden := filepath.Join("testdata", "golden", name+".json")
				if *update {
					if workers > 1 {
						return
					}
					if err := os.MkdirAll(filepath.Dir(golden), 0o755); err != nil {
						t.Fatal(err)
					}
					if err := os.WriteFile(golden, got, 0o644); err != nil {
						t.Fatal(err)
					}
					return
				}
				want, err := os.ReadFile(golden)
				if err != nil {
					t.Fatalf("%v (run with -update to create it)", err)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("report differs from %s; run `go test ./cmd/cqlsniff -run Golden -update` and review the diff.\n%s", golden, firstDiff(string(want), string(got)))
				}
			})
		}
	}
}

func firstDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	for i := 0; i < len(w) && i < len(g); i++ {
		if w[i] != g[i] {
			return "line " + itoa(i+1) + ":\n want " + w[i] + "\n  got " + g[i]
		}
	}
	return "lengths differ"
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

// TestGoldenText checks the human report of a few captures the same way
// (testdata/golden/NAME.txt; -update regenerates): the layout people read
// at 3 a.m. is a contract too.
func TestGoldenText(t *testing.T) {
	for _, name := range []string{
		"gocql-1.7.0-v4-unbuffered-c64",                     // the headline diagnosis
		"python-3.30.1-v5-nagle-c32",                        // Nagle, protocol v5
		"cassandra-gocql-driver-2.1.2-v5-lz4-coalesced-c64", // v5 lz4, nothing to say
		"nodejs-4.10.0-threshold1-c64",                      // a refused protocol probe: errors
	} {
		t.Run(name, func(t *testing.T) {
			f := filepath.Join("..", "..", "pcaps", name+".pcap")
			var out, errb bytes.Buffer
			if err := run(context.Background(), []string{"-r", f, "--report", "text"}, nil, &out, &errb); err != nil {
				t.Fatalf("%v\n%s", err, errb.String())
			}
			// The first line names the file as given; make it the base name.
			got := strings.Replace(out.String(), f, name+".pcap", 1)
			golden := filepath.Join("testdata", "golden", name+".txt")
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if got != string(want) {
				t.Errorf("text report differs from %s; run `go test ./cmd/cqlsniff -run Golden -update` and review the diff.\n%s", golden, firstDiff(string(want), got))
			}
		})
	}
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }
