package main

import (
	"bytes"
	"flag"
	"os"
	"strings"
	"testing"
)

// TestReadmeUsage keeps the README's usage block equal to the flag help:
// the block is what `cqlsniff -h` prints, byte for byte.
func TestReadmeUsage(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "```\nUsage: cqlsniff ")
	if i < 0 {
		t.Fatal("README has no usage block (a code block starting with cqlsniff -h's first line)")
	}
	block := s[i+len("```\n"):]
	block = block[:strings.Index(block, "```")]
	var help bytes.Buffer
	if _, err := parseFlags([]string{"-h"}, &help); err != flag.ErrHelp {
		t.Fatalf("-h: %v", err)
	}
	if block != help.String() {
		t.Errorf("the README's usage block differs from cqlsniff -h; replace it with:\n%s", help.String())
	}
}
