package main

import (
	"flag"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestReadmeUsage keeps the README's usage block equal to the flags: every
// flag cqlsniff defines is documented there, and nothing else is.
func TestReadmeUsage(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "\ncqlsniff [-i IFACE | -r FILE] [flags]\n")
	if i < 0 {
		t.Fatal("README has no usage block")
	}
	block := s[i:]
	block = block[:strings.Index(block, "```")]
	var documented []string
	for _, m := range regexp.MustCompile(`(?m)^  (-[-\w.]+)(?:\s|,)`).FindAllStringSubmatch(block, -1) {
		documented = append(documented, strings.TrimLeft(m[1], "-"))
	}
	// "--metrics-max-statements N, --metrics-max-clients N" share a line.
	for _, m := range regexp.MustCompile(`, --([-\w.]+)`).FindAllStringSubmatch(block, -1) {
		documented = append(documented, m[1])
	}
	var defined []string
	if _, err := parseFlags([]string{"-h"}, io.Discard); err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	defineFlags(fs, &options{})
	fs.VisitAll(func(f *flag.Flag) { defined = append(defined, f.Name) })
	slices.Sort(documented)
	slices.Sort(defined)
	documented = slices.Compact(documented)
	for _, f := range defined {
		if !slices.Contains(documented, f) {
			t.Errorf("flag -%s is not in the README's usage block", f)
		}
	}
	for _, f := range documented {
		if !slices.Contains(defined, f) {
			t.Errorf("the README's usage block documents -%s, which cqlsniff does not have", f)
		}
	}
}
