package sockcount

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/btf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/rlimit"
	"github.com/cqlsniff/cqlsniff/capture"
)

// forceSyscallTracepoints makes Open use the fallback of kernels older than 6.3 even where the sock
// tracepoints exist, so that tests exercise it.
var forceSyscallTracepoints bool

// The system calls the fallback traces, by direction.
var (
	sendSyscalls = []string{"write", "writev", "sendto", "sendmsg"}
	recvSyscalls = []string{"read", "readv", "recvfrom", "recvmsg"}
)

// Tracer holds the loaded counting programs and their map. Its methods are not safe for concurrent
// use.
type Tracer struct {
	conns    *ebpf.Map
	cqlPorts *ebpf.Map
	progs    []*ebpf.Program
	closer   []interface{ Close() error } // links first, then programs and maps
	source   string
	newest   map[Key]uint64 // Read's scratch: start time of the entry kept per Key

	noBatch bool // the kernel cannot batch-read the map
	keys    []countersConnKey
	values  []countersConnCounts
}

// Open loads and attaches the counting programs: on the sock tracepoints where the kernel has them
// (Linux 6.3+), else on the syscall tracepoints (which need tracefs mounted). It fails when the kernel
// or the process's privileges do not allow it, leaving nothing attached (on kernels before 5.11 it
// may have raised the process's RLIMIT_MEMLOCK, which they charge BPF maps to); Explain says why in
// one line.
func Open(cfg Config) (*Tracer, error) {
	if len(cfg.Ports) == 0 {
		return nil, ErrNoPorts
	}
	if err := rlimit.RemoveMemlock(); err != nil {
		return nil, classify(err)
	}
	kernel, err := btf.LoadKernelSpec()
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrNoBTF, err)
	}
	sock := !forceSyscallTracepoints
	if sock {
		_, err := kernel.AnyTypeByName("btf_trace_sock_send_length")
		sock = err == nil
	}
	if !sock && !tracefsMounted() {
		return nil, ErrNoTracefs
	}

	spec, err := loadCounters()
	if err != nil {
		return nil, err
	}
	t := &Tracer{newest: make(map[Key]uint64)}
	opts := &ebpf.CollectionOptions{Programs: ebpf.ProgramOptions{KernelTypes: kernel}}
	if sock {
		err = t.openSock(spec, opts)
	} else {
		err = t.openSyscalls(spec, opts)
	}
	if err == nil {
		err = setPorts(t.cqlPorts, cfg.Ports)
	}
	if err != nil {
		t.Close()
		return nil, classify(err)
	}
	return t, nil
}

func (t *Tracer) openSock(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions) error {
	var objs struct {
		OnSockSend *ebpf.Program `ebpf:"on_sock_send"`
		OnSockRecv *ebpf.Program `ebpf:"on_sock_recv"`
		Conns      *ebpf.Map     `ebpf:"conns"`
		CqlPorts   *ebpf.Map     `ebpf:"cql_ports"`
	}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return err
	}
	t.conns, t.cqlPorts, t.source = objs.Conns, objs.CqlPorts, SourceSockTracepoints
	t.progs = []*ebpf.Program{objs.OnSockSend, objs.OnSockRecv}
	t.closer = append(t.closer, objs.OnSockSend, objs.OnSockRecv, objs.Conns, objs.CqlPorts)
	// Ports are set after attaching, so nothing is counted yet: the map starts empty either way.
	for _, p := range []*ebpf.Program{objs.OnSockSend, objs.OnSockRecv} {
		l, err := link.AttachTracing(link.TracingOptions{Program: p})
		if err != nil {
			return err
		}
		t.closer = append([]interface{ Close() error }{l}, t.closer...)
	}
	return nil
}

func (t *Tracer) openSyscalls(spec *ebpf.CollectionSpec, opts *ebpf.CollectionOptions) error {
	var objs struct {
		OnEnterSend *ebpf.Program `ebpf:"on_enter_send"`
		OnEnterRecv *ebpf.Program `ebpf:"on_enter_recv"`
		OnExit      *ebpf.Program `ebpf:"on_exit"`
		Conns       *ebpf.Map     `ebpf:"conns"`
		CqlPorts    *ebpf.Map     `ebpf:"cql_ports"`
		Pending     *ebpf.Map     `ebpf:"pending"`
	}
	if err := spec.LoadAndAssign(&objs, opts); err != nil {
		return err
	}
	t.conns, t.cqlPorts, t.source = objs.Conns, objs.CqlPorts, SourceSyscallTracepoints
	t.progs = []*ebpf.Program{objs.OnEnterSend, objs.OnEnterRecv, objs.OnExit}
	t.closer = append(t.closer, objs.OnEnterSend, objs.OnEnterRecv, objs.OnExit, objs.Conns, objs.CqlPorts, objs.Pending)
	attach := func(name string, p *ebpf.Program) error {
		l, err := link.Tracepoint("syscalls", name, p, nil)
		if errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%w: syscalls:%s: %w", ErrNoTracepoints, name, err)
		}
		if err != nil {
			return fmt.Errorf("syscalls:%s: %w", name, err)
		}
		t.closer = append([]interface{ Close() error }{l}, t.closer...)
		return nil
	}
	// Exits first: an enter without its exit attached would leave a pending entry behind.
	for _, group := range [][]string{sendSyscalls, recvSyscalls} {
		for _, name := range group {
			if err := attach("sys_exit_"+name, objs.OnExit); err != nil {
				return err
			}
		}
	}
	for _, name := range sendSyscalls {
		if err := attach("sys_enter_"+name, objs.OnEnterSend); err != nil {
			return err
		}
	}
	for _, name := range recvSyscalls {
		if err := attach("sys_enter_"+name, objs.OnEnterRecv); err != nil {
			return err
		}
	}
	return nil
}

// setPorts writes the ports into the programs' bitmap: bit p%64 of word p/64.
func setPorts(m *ebpf.Map, ports []uint16) error {
	var words [1024]uint64
	for _, p := range ports {
		words[p/64] |= 1 << (p % 64)
	}
	for i, w := range words {
		if w == 0 {
			continue
		}
		if err := m.Put(uint32(i), w); err != nil {
			return fmt.Errorf("setting CQL ports: %w", err)
		}
	}
	return nil
}

// classify wraps permission failures in ErrPermission; other errors pass through.
func classify(err error) error {
	if errors.Is(err, os.ErrPermission) {
		return fmt.Errorf("%w: %w", ErrPermission, err)
	}
	return err
}

// tracefsMounted reports whether a tracefs (or a debugfs holding tracing/) is mounted, as the
// syscall tracepoints need.
func tracefsMounted() bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		// ... mount-point ... - fstype source options
		line := s.Text()
		i := strings.Index(line, " - ")
		if i < 0 {
			continue
		}
		fields, rest := strings.Fields(line[:i]), strings.Fields(line[i+3:])
		if len(fields) < 5 || len(rest) < 1 {
			continue
		}
		switch rest[0] {
		case "tracefs":
			return true
		case "debugfs":
			if st, err := os.Stat(fields[4] + "/tracing/events"); err == nil && st.IsDir() {
				return true
			}
		}
	}
	return false
}

// Source says which kernel hooks the counts come from: SourceSockTracepoints or
// SourceSyscallTracepoints.
func (t *Tracer) Source() string { return t.source }

// Read fills into with the cumulative counts of every connection the kernel map holds, overwriting
// the entries it has, and removes the connections the map no longer holds (evicted, least recently
// used first, when more than 65536 are tracked), so that into is bounded like the map however many
// connections come and go (a soak at 300 connections a second grew by two entries per connection
// before). Counts are per socket: a new connection that reuses a closed one's 4-tuple replaces its
// entry.
func (t *Tracer) Read(into map[Key]Counts) error {
	err := t.read(into)
	if err == nil {
		// Sockets the kernel's map no longer holds (it keeps the most
		// recently used, up to its size) leave into too: into stays as
		// bounded as the map, however many connections come and go.
		for k := range into {
			if _, ok := t.newest[k]; !ok {
				delete(into, k)
			}
		}
	}
	return err
}

func (t *Tracer) read(into map[Key]Counts) error {
	clear(t.newest)
	if !t.noBatch {
		err := t.readBatch(into)
		if err == nil {
			return nil
		}
		// Batch lookups came in Linux 5.6, and a hash bucket fuller than a batch fails one
		// (ENOSPC): the iterator is slower but always works.
		if errors.Is(err, ebpf.ErrNotSupported) {
			t.noBatch = true
		}
		clear(t.newest)
	}
	var (
		k countersConnKey
		v countersConnCounts
	)
	it := t.conns.Iterate()
	for it.Next(&k, &v) {
		t.put(into, &k, &v)
	}
	return it.Err()
}

// readBatch reads the map a thousand entries per system call.
func (t *Tracer) readBatch(into map[Key]Counts) error {
	if t.keys == nil {
		t.keys = make([]countersConnKey, 1024)
		t.values = make([]countersConnCounts, 1024)
	}
	var cursor ebpf.MapBatchCursor
	for {
		n, err := t.conns.BatchLookup(&cursor, t.keys, t.values, nil)
		for i := range n {
			t.put(into, &t.keys[i], &t.values[i])
		}
		if errors.Is(err, ebpf.ErrKeyNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// put stores one map entry into into, unless an entry of a newer socket on the same 4-tuple is
// there already.
func (t *Tracer) put(into map[Key]Counts, k *countersConnKey, v *countersConnCounts) {
	key := Key{
		Local:  capture.Endpoint{IP: k.LocalIp, Port: k.LocalPort},
		Remote: capture.Endpoint{IP: k.RemoteIp, Port: k.RemotePort},
	}
	if start, ok := t.newest[key]; ok && start > v.StartNs {
		return
	}
	t.newest[key] = v.StartNs
	c := Counts{Sends: v.Sends, Recvs: v.Recvs, SendBytes: v.SendBytes, RecvBytes: v.RecvBytes, PID: v.Pid}
	var comm [16]byte
	n := 0
	for n < len(v.Comm) && v.Comm[n] != 0 {
		comm[n] = byte(v.Comm[n])
		n++
	}
	if old, ok := into[key]; ok && old.Comm == string(comm[:n]) {
		c.Comm = old.Comm // no allocation at every refresh
	} else {
		c.Comm = string(comm[:n])
	}
	into[key] = c
}

// programTime returns the CPU time the kernel spent in the counting programs and how many times they
// ran, as far as the kernel measured it: only while BPF run-time statistics are enabled
// (ebpf.EnableStats or sysctl kernel.bpf_stats_enabled=1), which costs two clock reads per run.
func (t *Tracer) programTime() (time.Duration, uint64, error) {
	var total time.Duration
	var runs uint64
	for _, p := range t.progs {
		st, err := p.Stats()
		if err != nil {
			return 0, 0, err
		}
		total += st.Runtime
		runs += st.RunCount
	}
	return total, runs, nil
}

// Close detaches the programs and frees their maps.
func (t *Tracer) Close() error {
	var errs []error
	for _, c := range t.closer {
		if c != nil {
			errs = append(errs, c.Close())
		}
	}
	t.closer = nil
	return errors.Join(errs...)
}
