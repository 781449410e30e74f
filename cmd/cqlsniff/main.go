// Command cqlsniff analyses CQL (Cassandra / ScyllaDB native protocol)
// traffic in a capture file: latency per connection, statement and opcode,
// in-flight concurrency, CQL frames per TCP segment in each direction, and plain
// diagnoses such as clients that send every request in its own write.
package main

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"github.com/cqlsniff/cqlsniff/capture"
	"github.com/cqlsniff/cqlsniff/metrics"
	"github.com/cqlsniff/cqlsniff/sockcount"
	"github.com/cqlsniff/cqlsniff/tlsdecrypt"
)

// exitError carries the process exit status: 1 when input cannot be read,
// 2 on bad usage.
type exitError struct {
	code  int
	err   error
	quiet bool // already told the user (the flag package prints its own errors)
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func usageErr(format string, a ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, a...)}
}

func inputErr(err error) error { return &exitError{code: 1, err: err} }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal asks for a clean end (and the report); a second one,
	// when something blocks (a silent pipe), ends the process at once.
	context.AfterFunc(ctx, stop)
	err := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee *exitError
		code := 1
		if errors.As(err, &ee) {
			code = ee.code
		}
		switch {
		case errors.Is(err, flag.ErrHelp):
			code = 0
		case ee == nil || !ee.quiet:
			fmt.Fprintln(os.Stderr, "cqlsniff:", err)
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

type hostList []netip.Addr

func (h *hostList) String() string {
	s := make([]string, len(*h))
	for i, a := range *h {
		s[i] = a.String()
	}
	return strings.Join(s, ",")
}

func (h *hostList) Set(v string) error {
	a, err := netip.ParseAddr(v)
	if err != nil {
		return fmt.Errorf("bad host address %q", v)
	}
	*h = append(*h, a)
	return nil
}

type options struct {
	iface       string
	hosts       hostList
	snaplen     int
	ringMB      int
	duration    time.Duration
	write       string
	user        string
	interval    time.Duration
	speed       float64
	reportSet   bool
	syscalls    bool
	syscallsSet bool
	metrics     string
	webConfig   string
	metricsCfg  metrics.Config
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
	version     bool
	keylog      string
	workers     int
}

func parseFlags(args []string, stderr io.Writer) (*options, error) {
	o := &options{ports: append(portList(nil), analyze.DefaultPorts...)}
	fs := flag.NewFlagSet("cqlsniff", flag.ContinueOnError)
	fs.SetOutput(stderr)
	defineFlags(fs, o)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: cqlsniff [-i IFACE | -r FILE] [flags]\n\nAnalyse CQL traffic: latency, in-flight requests, frames per TCP segment, unbuffered clients.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, &exitError{code: 2, err: err, quiet: true} // flag printed it, with the usage
	}
	if o.version {
		return o, nil
	}
	hashKeySet := false
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "report":
			o.reportSet = true
		case "syscalls":
			o.syscallsSet = true
		case "hash-key":
			hashKeySet = true
		}
	})
	if fs.NArg() > 0 {
		return nil, usageErr("unexpected argument %q (a capture file is given with -r)", fs.Arg(0))
	}
	if o.read != "" && o.iface != "" {
		return nil, usageErr("-r and -i exclude each other: read a file or capture live")
	}
	if o.read == "" && o.iface == "" {
		o.iface = "lo"
	}
	if o.read != "" && (o.write != "" || len(o.hosts) > 0 || o.ringMB != 0 || o.snaplen != 0 || (o.syscallsSet && o.syscalls) || o.duration != 0 || o.user != "") {
		return nil, usageErr("-w, --host, -s, --ring-mb, --syscalls, --duration and -Z apply to live capture (-i)")
	}
	if o.read != "" {
		o.syscalls = false
	}
	if o.snaplen < 0 || o.ringMB < 0 || o.duration < 0 || o.interval <= 0 || o.speed < 0 {
		return nil, usageErr("sizes and durations must be positive")
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
	if hashKeySet && !o.hashValues {
		return nil, usageErr("--hash-key is the key of --hash-values: add --hash-values")
	}
	if o.logPath == "-" && o.report == "json" {
		return nil, usageErr("--log - and --report json both want standard output: write the log to a file")
	}
	if o.top < 0 {
		return nil, usageErr("--top must be 0 or more")
	}
	if o.idleTimeout <= 0 || o.backToBack <= 0 {
		return nil, usageErr("durations must be positive")
	}
	if o.webConfig != "" && o.metrics == "" {
		return nil, usageErr("--web.config.file configures the metrics endpoint: add --metrics ADDR")
	}
	return o, nil
}

// defineFlags defines cqlsniff's flags on fs, into o. (The README's usage
// block lists the same: TestReadmeUsage.)
func defineFlags(fs *flag.FlagSet, o *options) {
	fs.StringVar(&o.iface, "i", "", "capture live on `IFACE` (lo, eth0, any; default lo when -r is not given); needs root or CAP_NET_RAW")
	fs.StringVar(&o.read, "r", "", "read packets from `FILE` (pcap or pcapng, optionally gzip-compressed; - for stdin)")
	fs.Var(&o.hosts, "host", "only traffic to or from `ADDR` (repeatable; live capture)")
	fs.IntVar(&o.snaplen, "s", 0, "bytes kept of each packet, live capture (default 262144: whole packets)")
	fs.IntVar(&o.ringMB, "ring-mb", 0, "kernel ring buffer `MiB` for live capture (default 32; with several workers, shared by their rings, 8 MiB each at least)")
	fs.DurationVar(&o.duration, "duration", 0, "stop after this long (live capture)")
	fs.StringVar(&o.write, "w", "", "also write the captured packets to `FILE` (pcap; pcapng if it ends in .pcapng)")
	fs.StringVar(&o.user, "Z", "", "after opening the capture, run as `USER` (default: the user who ran sudo)")
	fs.BoolVar(&o.syscalls, "syscalls", true, "live capture: count each connection's send and receive calls in the kernel with eBPF, and measure the CPU time of the process at each end (needs root or CAP_BPF+CAP_PERFMON; --syscalls=false turns it off)")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics on `ADDR` (e.g. :9464), path /metrics, while the capture runs")
	fs.StringVar(&o.webConfig, "web.config.file", "", "serve --metrics with the TLS and basic auth settings in `FILE` (Prometheus exporter-toolkit web configuration)")
	fs.IntVar(&o.metricsCfg.MaxStatements, "metrics-max-statements", metrics.DefaultMaxStatements, "statements with their own label in the metrics (the rest: other)")
	fs.IntVar(&o.metricsCfg.MaxClients, "metrics-max-clients", metrics.DefaultMaxClients, "client addresses with their own label in the metrics (the rest: other)")
	fs.Float64Var(&o.speed, "speed", 1, "terminal UI replay of -r: pace factor (1 = the capture's own pace, 0 = as fast as possible; + and - change it)")
	fs.DurationVar(&o.interval, "interval", time.Second, "live capture without the TUI: print a one-line summary to stderr this often")
	fs.Var(&o.ports, "p", "comma-separated CQL server `PORTS`")
	fs.BoolVar(&o.onlyPorts, "only-ports", false, "ignore TCP connections on other ports (default: detect CQL on any port)")
	fs.StringVar(&o.report, "report", "text", "report `FORMAT`: text or json")
	fs.StringVar(&o.logPath, "log", "", "write one JSON line per request/response pair to `PATH` (- for stdout); with several workers the lines of different connections interleave as they write them (--workers 1: capture order)")
	fs.Uint64Var(&o.count, "c", 0, "stop after `COUNT` TCP packets")
	fs.IntVar(&o.workers, "workers", 0, "analysis workers, each owning a share of the connections (default 0: one per usable CPU)")
	fs.IntVar(&o.top, "top", 20, "statements shown in the text report")
	fs.DurationVar(&o.idleTimeout, "idle-timeout", 5*time.Minute, "close connections idle this long (packet time)")
	fs.DurationVar(&o.backToBack, "back-to-back", 100*time.Microsecond, "longest pause between two TCP segments of one side that still counts as back to back")
	fs.BoolVar(&o.showValues, "show-values", false, "put bound values (hex, 64 bytes at most each) and literal query text in the --log lines")
	fs.BoolVar(&o.hashValues, "hash-values", false, "put a keyed hash of each bound value and query text in the --log lines, so equal values match without being shown")
	fs.StringVar(&o.hashKey, "hash-key", "", "key for --hash-values (default: random for each run, so hashes only match within one run)")
	fs.StringVar(&o.keylog, "keylog", "", "decrypt TLS connections with the secrets in `FILE`, an NSS key log (SSLKEYLOGFILE); live, it is re-read as it grows")
	fs.BoolVar(&o.version, "version", false, "print the version (module version and VCS commit of the build) and exit")
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	o, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	if o.version {
		_, err := fmt.Fprintln(stdout, version())
		return err
	}
	// Listen before the capture opens and privileges drop, so a bad or
	// privileged address fails at once.
	var metricsLn net.Listener
	if err := checkWebConfig(o.webConfig, false); err != nil {
		return err
	}
	if o.metrics != "" {
		if metricsLn, err = net.Listen("tcp", o.metrics); err != nil {
			return usageErr("--metrics: %v", err)
		}
		defer metricsLn.Close()
	}
	var (
		src    capture.Source
		name   string
		dump   *capture.DumpFile
		tracer *sockcount.Tracer
		live   *capture.LiveSource
		// members are the rings of a fanout group, one per worker, when
		// the kernel deals the packets (nil: one ring, dealt by cqlsniff)
		members []capture.Source
	)
	switch {
	case o.iface != "":
		lc := capture.LiveConfig{Interface: o.iface, Ports: o.ports, Hosts: o.hosts, Snaplen: o.snaplen, RingMB: o.ringMB}
		if o.write != "" {
			dump = capture.NewDumpFile(o.write)
			defer dump.Close()
			lc.Dump = dump
			if strings.HasSuffix(o.write, ".pcapng") {
				lc.DumpFormat = "pcapng"
			}
		}
		live, members, err = openCapture(lc, o, stderr)
		if err != nil {
			if hint := capture.PermissionHint(err); hint != "" {
				return inputErr(fmt.Errorf("%v: %s", err, hint))
			}
			return inputErr(err)
		}
		defer live.Close()
		if o.syscalls {
			// Loading BPF programs needs the privileges dropped below. (After
			// the capture opened: without privileges, its error is the one
			// line the user sees.)
			tracer, err = sockcount.Open(sockcount.Config{Ports: o.ports})
			if err != nil {
				fmt.Fprintf(stderr, "cqlsniff: %s\n", sockcount.Explain(err))
				tracer = nil
			} else {
				defer tracer.Close()
			}
		}
		// The socket is open: run as the invoking user from here on, as
		// tcpdump does.
		if err := capture.DropPrivileges(o.user); err != nil {
			return inputErr(err)
		}
		if err := checkWebConfig(o.webConfig, true); err != nil {
			return err
		}
		src, name = live, o.iface
		if o.duration > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, o.duration)
			defer cancel()
		}
	case o.read == "-":
		fs, err := capture.NewReaderSource(stdin)
		if err != nil {
			return inputErr(err)
		}
		defer fs.Close()
		src, name = fs, "stdin"
	default:
		fs, err := capture.OpenFile(o.read)
		if err != nil {
			return inputErr(err)
		}
		defer fs.Close()
		src, name = fs, o.read
	}

	cfg := analyze.DefaultConfig()
	cfg.Ports = o.ports
	cfg.OnlyPorts = o.onlyPorts
	cfg.BackToBack = o.backToBack
	cfg.ShowValues = o.showValues
	cfg.HashValues = o.hashValues
	cfg.HashKey = []byte(o.hashKey)
	if o.keylog != "" {
		// Read as the user cqlsniff runs as (after dropping privileges). A
		// key log is a file that grows: a device or a pipe never ends.
		if fi, err := os.Stat(o.keylog); err == nil && !fi.Mode().IsRegular() {
			return usageErr("--keylog %s is not a regular file", o.keylog)
		}
		kl := tlsdecrypt.NewKeyLog(0)
		if err := kl.Load(o.keylog); err != nil {
			if o.iface == "" || !errors.Is(err, os.ErrNotExist) {
				return inputErr(fmt.Errorf("cannot read the key log: %w", err))
			}
			fmt.Fprintf(stderr, "cqlsniff: key log %s does not exist yet: TLS connections are decrypted once it does\n", o.keylog)
		}
		cfg.KeyLog, cfg.KeyLogRefresh = kl, o.iface != ""
	}
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
	acfg.IdleTimeout = o.idleTimeout

	// The terminal UI when a person is watching: stdout is a terminal and
	// no report format was asked for.
	if !o.reportSet && o.logPath != "-" && isTerminal(stdout) {
		err := runTUI(ctx, src, members, cfg, acfg, name, o, tracer, metricsLn, stderr)
		if live != nil {
			live.Close() // writes the dump's last buffered frames
		}
		if dump != nil {
			if derr := dump.Close(); derr != nil && err == nil {
				err = inputErr(fmt.Errorf("writing %s: %w", o.write, derr))
			}
		}
		return err
	}
	p := newPipeline(src, members, cfg, acfg, o, analyze.Name(name), analyze.Host(hostReader(tracer, stderr)))
	if metricsLn != nil {
		defer serveMetrics(metricsLn, o.webConfig, p.Snapshots(), o.metricsCfg, stderr)()
	}
	var runErr error
	if o.iface != "" {
		runErr = runHeadless(ctx, p, o, stderr)
	} else {
		runErr = p.Run(ctx, o.count)
	}
	if live != nil {
		// Close writes the dump's last buffered frames and reads the final
		// drop count; Stats still works after it.
		if err := live.Close(); err != nil {
			return inputErr(err)
		}
	}
	if err := p.Finish(); err != nil {
		return inputErr(fmt.Errorf("writing the exchange log: %w", err))
	}
	if logFile != nil {
		if err := logFile.Close(); err != nil {
			return inputErr(fmt.Errorf("writing the exchange log: %w", err))
		}
	}
	if runErr != nil {
		return inputErr(fmt.Errorf("reading %s: %w", name, runErr))
	}
	rep := p.Report(name)
	if rep.Dropped > 0 {
		rep.Warnings = append(rep.Warnings, fmt.Sprintf("the kernel dropped %d packets: figures undercount (a larger --ring-mb or a narrower --host filter helps)", rep.Dropped))
		fmt.Fprintf(stderr, "cqlsniff: warning: the kernel dropped %d packets\n", rep.Dropped)
	}
	if dump != nil {
		if err := dump.Close(); err != nil {
			return inputErr(fmt.Errorf("writing %s: %w", o.write, err))
		}
	}
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

// workerCount is the number of analysis workers: --workers, or one per CPU
// the process may use (GOMAXPROCS follows the affinity mask and cgroup
// limits).
func (o *options) workerCount() int {
	if o.workers > 0 {
		return o.workers
	}
	return runtime.GOMAXPROCS(0)
}

// openCapture opens the live capture: with several workers and no packet
// count, a PACKET_FANOUT group of one ring per worker, so that the kernel
// deals the packets out; otherwise (or where the kernel refuses the group)
// one ring, whose packets cqlsniff deals to the workers itself.
func openCapture(lc capture.LiveConfig, o *options, stderr io.Writer) (*capture.LiveSource, []capture.Source, error) {
	if n := min(o.workerCount(), capture.MaxLiveFanout); n > 1 && o.count == 0 {
		// --ring-mb is the memory of all the rings: each holds its
		// share of the traffic, with a floor for bursts on one of them.
		flc := lc
		flc.RingMB = max(cmp.Or(lc.RingMB, capture.DefaultRingMB)/n, minMemberRingMB)
		ms, err := capture.OpenLiveFanout(flc, n)
		if err == nil {
			members := make([]capture.Source, len(ms))
			for i, m := range ms {
				members[i] = m
			}
			return ms[0], members, nil // closing one member closes the group
		}
		if capture.PermissionHint(err) != "" {
			return nil, nil, err
		}
		fmt.Fprintf(stderr, "cqlsniff: one capture ring for all workers (%v)\n", err)
	}
	live, err := capture.OpenLive(lc)
	return live, nil, err
}

// minMemberRingMB is the smallest ring a worker of a fanout group gets.
const minMemberRingMB = 8

// newPipeline builds the pipeline over a source or the members of a fanout
// group.
func newPipeline(src capture.Source, members []capture.Source, cfg analyze.Config, acfg capture.AssemblerConfig, o *options, opts ...analyze.Option) *analyze.Pipeline {
	if len(members) > 1 {
		return analyze.NewFanoutPipeline(members, cfg, acfg, opts...)
	}
	return analyze.NewPipeline(src, cfg, acfg, append(opts, analyze.Workers(o.workerCount()))...)
}
