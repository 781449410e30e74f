//go:build e2e

package main

// TestE2ELiveGocql runs lab/e2e/run.sh: cqlsniff capturing live on lo while
// the gocql lab client, unbuffered and then buffered, talks to a real
// Cassandra 5.0, checked against bpftrace's count of the client's send calls
// (see the script's header). It needs root, Java and Maven, and skips
// without them, as the script does. Run it with
//
//	go test -tags e2e -timeout 20m -run E2E -v ./cmd/cqlsniff
//
// (20 minutes: the first run downloads Cassandra's jars from Maven Central.)

import (
	"bufio"
	"context"
	"io"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

var e2eTally = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

func TestE2ELiveGocql(t *testing.T) {
	script, err := filepath.Abs(filepath.Join("..", "..", "lab", "e2e", "run.sh"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if d, ok := t.Deadline(); ok {
		// Leave the script time to stop Cassandra when the test times out.
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-90*time.Second))
		defer cancel()
	}
	cmd := exec.CommandContext(ctx, "bash", script)
	cmd.Dir = filepath.Dir(script)
	// SIGTERM, not KILL: the script's trap then stops what it started.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 60 * time.Second
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		err := cmd.Wait()
		pw.CloseWithError(io.EOF)
		waitErr <- err
	}()
	var skipped, last string
	sc := bufio.NewScanner(pr)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		t.Log(line)
		if strings.HasPrefix(line, "skipped: ") {
			skipped = strings.TrimPrefix(line, "skipped: ")
		}
		if strings.TrimSpace(line) != "" {
			last = line
		}
	}
	io.Copy(io.Discard, pr)
	err = <-waitErr
	if ctx.Err() != nil {
		t.Fatalf("lab/e2e/run.sh did not finish before the test's deadline (raise -timeout): %v", err)
	}
	if skipped != "" && err == nil {
		t.Skip(skipped)
	}
	m := e2eTally.FindStringSubmatch(last)
	switch {
	case m == nil:
		t.Fatalf("lab/e2e/run.sh ended without its tally line (exit: %v); last line: %q", err, last)
	case m[2] != "0" || err != nil:
		t.Fatalf("lab/e2e/run.sh: %s (exit: %v)", last, err)
	default:
		t.Logf("lab/e2e/run.sh: %s", last)
	}
}
