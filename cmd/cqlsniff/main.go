// Command cqlsniff analyses CQL (Cassandra / ScyllaDB native protocol)
// traffic in a capture file: latency per connection, statement and opcode,
// in-flight concurrency, frames per TCP write in each direction, and plain
// diagnoses such as clients that send every request in its own write.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
)

// exitError carries the process exit status: 1 when input cannot be read,
// 2 on bad usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{2, fmt.Errorf(format, a...)}
}

func inputErr(err error) error { return &exitError{1, err} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		if !errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(os.Stderr, "cqlsniff:", err)
		} else {
			code = 0
		}
		os.Exit(code)
	}
}

type portList []uint16

func (p *portList) String() string {
	s := make([]string, len(*p))
	for i, v := range *p {
		s[i] = strconv.Itoa(int(v))
	}
	return strings.Join(s, ",")
}

func (p *portList) Set(v string) error {
	var out portList
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		n, err := strconv.ParseUint(f, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("bad port %q", f)
		}
		out = append(out, uint16(n))
	}
	if len(out) == 0 {
		return errors.New("empty port list")
	}
	*p = out
	return nil
}

type options struct {
	read        string
	ports       portList
	onlyPorts   bool
	report      string
	logPath     string
	count       uint64
	top         int
	idleTimeout time.Duration
	backToBack  time.Duration
	showValues  bool
	hashValues  bool
	hashKey     string
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{ports: append(portList(nil), analyze.DefaultPorts...)}
	fs := flag.NewFlagSet("cqlsniff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.read, "r", "", "read packets from `FILE` (pcap or pcapng, optionally gzip-compressed; - for stdin)")
	fs.Var(&o.ports, "p", "comma-separated CQL server `PORTS`")
	fs.BoolVar(&o.onlyPorts, "only-ports", false, "ignore TCP connections on other ports (default: detect CQL on any port)")
	fs.StringVar(&o.report, "report", "text", "report `FORMAT`: text or json")
	fs.StringVar(&o.logPath, "log", "", "write one JSON line per request/response pair to `PATH` (- for stdout)")
	fs.Uint64Var(&o.count, "c", 0, "stop after `COUNT` TCP packets")
	fs.IntVar(&o.top, "top", 20, "statements shown in the text report")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 5*time.Minute, "close connections idle this long (packet time)")
	fs.DurationVar(&o.backToBack, "back-to-back", 100*time.Microsecond, "longest pause between two writes that still counts as back to back")
	fs.BoolVar(&o.showValues, "show-values", false, "put bound values (hex, 64 bytes at most each) and literal query text in the --log lines")
	fs.BoolVar(&o.hashValues, "hash-values", false, "put a keyed hash of each bound value and query text in the --log lines, so equal values match without being shown")
	fs.StringVar(&o.hashKey, "hash-key", "", "key for --hash-values (default: random for each run, so hashes only match within one run)")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cqlsniff -r FILE [flags]\n\nAnalyse CQL traffic: latency, in-flight requests, frames per TCP write, unbuffered clients.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &exitError{2, err}
	}
	if fs.NArg() > 0 {
		return nil, usageErr("unexpected argument %q (a capture file is given with -r)", fs.Arg(0))
	}
	if o.read == "" {
		return nil, usageErr("no input: give a capture file with -r FILE (live capture is not available in this build)")
	}
	if o.report != "text" && o.report != "json" {
		return nil, usageErr("--report must be text or json, not %q", o.report)
	}
	if o.showValues && o.hashValues {
		return nil, usageErr("--show-values and --hash-values exclude each other")
	}
	if (o.showValues || o.hashValues) && o.logPath == "" {
		return nil, usageErr("--show-values and --hash-values apply to the exchange log: add --log PATH")
	}
	if o.idleTimeout <= 0 || o.backToBack <= 0 {
		return nil, usageErr("durations must be positive")
	}
	return o, nil
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	var src *capture.FileSource
	if o.read == "-" {
		src, err = capture.NewReaderSource(stdin)
	} else {
		src, err = capture.OpenFile(o.read)
	}
	if err != nil {
		return inputErr(err)
	}
	defer src.Close()

	cfg := analyze.DefaultConfig()
	cfg.Ports = o.ports
	cfg.OnlyPorts = o.onlyPorts
	cfg.BackToBack = int64(o.backToBack)
	cfg.ShowValues = o.showValues
	cfg.HashValues = o.hashValues
	cfg.HashKey = []byte(o.hashKey)
	var logFile *os.File
	switch o.logPath {
	case "":
	case "-":
		cfg.Log = stdout
	default:
		logFile, err = os.Create(o.logPath)
		if err != nil {
			return inputErr(fmt.Errorf("cannot write the exchange log: %w", err))
		}
		defer logFile.Close()
		cfg.Log = logFile
	}
	acfg := capture.DefaultAssemblerConfig()
	acfg.IdleTimeout = int64(o.idleTimeout)

	p := analyze.NewPipeline(src, cfg, acfg)
	runErr := p.Run(ctx, o.count)
	if err := p.Finish(); err != nil {
		return inputErr(fmt.Errorf("writing the exchange log: %w", err))
	}
	if logFile != nil {
		if err := logFile.Close(); err != nil {
			return inputErr(fmt.Errorf("writing the exchange log: %w", err))
		}
	}
	if runErr != nil {
		return inputErr(fmt.Errorf("reading %s: %w", o.read, runErr))
	}
	name := o.read
	if name == "-" {
		name = "stdin"
	}
	rep := p.Report(name)
	if rep.Capture.Truncated {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the capture file is truncated: analysed the %d packets before the cut", rep.Packets))
		fmt.Fprintf(stderr, "cqlsniff: warning: %s is truncated; analysed the %d packets before the cut\n", name, rep.Packets)
	}
	if o.logPath == "-" && o.report == "text" {
		// The log went to stdout: keep the report out of the JSON lines.
		return rep.WriteText(stderr, o.top)
	}
	if o.report == "json" {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteText(stdout, o.top)
}
