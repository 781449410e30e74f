//go:build linux

package procstat

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"golang.org/x/sys/unix"
)

// Bounds on what one Sampler reads: a few files per process and thread at
// every report.
const (
	// MaxProcesses is how many processes a Sampler follows at once; others
	// are not read until some are forgotten.
	MaxProcesses = 4096
	// maxThreads is how many threads of one process are read to find the
	// busiest: past that, a busier thread may be missed.
	maxThreads = 1024
	// maxFDs is how many open files of one process are looked at to count
	// its sockets: past that the count is a lower bound (a database server
	// with tens of thousands of open files would cost tens of milliseconds
	// per report).
	maxFDs = 16384
	// forgetAfter is how many samples a process is kept for after it was
	// last asked for, or after it was found gone.
	forgetAfter = 60
)

// Sampler follows processes from one sample to the next: every reading is
// cumulative since the Sampler first saw the process. It is not safe for
// concurrent use.
type Sampler struct {
	hz    uint64 // clock ticks per second (USER_HZ)
	procs map[uint32]*proc
	n     uint64 // samples taken
	buf   []byte // file contents, reused
	err   error  // the first failure of the latest sample
}

type proc struct {
	start uint64 // starttime: tells a process from a later one with its pid
	// since (wall clock, ns) and sinceTick (boot clock, ticks) are when the
	// first reading was taken; base its CPU ticks then.
	since     int64
	sinceTick uint64
	base      uint64
	comm      string
	threads   map[int32]*thread
	// exited is the busiest thread among those that have exited: its CPU in
	// the window still counts for the busiest.
	exited     uint64
	exitedName string
	exitedWait uint64 // the run-queue wait, in the window, of the threads that exited (ns)
	last       analyze.ProcessCPU
	asked      uint64 // the latest sample that asked for it
	goneAt     uint64 // the sample that found it gone (0: alive)
}

type thread struct {
	start uint64 // starttime: tells a thread from a later one with its id
	// base is its CPU ticks when the window began: its reading at first
	// sight, or 0 if it was created after the process's first reading.
	base, ticks uint64
	// waitBase and wait are its time runnable but waiting for a CPU
	// (schedstat, ns), like base and ticks.
	waitBase, wait uint64
	seen           uint64 // the latest sample that read it
	name           string
}

// NewSampler returns a Sampler that follows no process yet.
func NewSampler() *Sampler {
	return &Sampler{hz: clockTicks(), procs: make(map[uint32]*proc), buf: make([]byte, 1024)}
}

// atClkTck is the ELF auxiliary vector's entry for the clock tick rate
// (AT_CLKTCK, linux/auxvec.h), where the C library's sysconf(_SC_CLK_TCK)
// reads it.
const atClkTck = 17

// clockTicks is the unit of /proc's CPU times: 100 per second on every
// common architecture, read from the auxiliary vector where it is given.
func clockTicks() uint64 {
	if av, err := unix.Auxv(); err == nil {
		for _, kv := range av {
			if kv[0] == atClkTck && kv[1] > 0 {
				return uint64(kv[1])
			}
		}
	}
	return 100
}

// Sample reads each process in pids and appends its figures, cumulative
// since this Sampler first saw it, to dst. now is the wall-clock time of the
// reading (analyze.ProcessCPU's At). A process that has exited is given by
// its last reading, marked Gone, for forgetAfter samples; one that cannot be
// read (permission, /proc hiding it) or is past MaxProcesses is left out,
// and Err says why. A pid whose process changed (its start time did) starts
// a new window.
//
// Sockets counts the sockets among the process's open files, 0 when its
// file table cannot be read (another user's process once cqlsniff has
// dropped privileges): 0 makes no claim that it talks to anything else.
func (s *Sampler) Sample(dst []analyze.ProcessCPU, pids []uint32, now time.Time) []analyze.ProcessCPU {
	s.n++
	s.err = nil
	at := now.UnixNano()
	boot := s.bootTicks()
	for _, pid := range pids {
		if pid == 0 {
			continue
		}
		if r, ok := s.sample(pid, at, boot); ok {
			dst = append(dst, r)
		}
	}
	for pid, p := range s.procs {
		if p.asked+forgetAfter <= s.n || (p.goneAt != 0 && p.goneAt+forgetAfter <= s.n) {
			delete(s.procs, pid)
		}
	}
	return dst
}

// Err returns the first failure of the latest Sample to read a process,
// other than the process having exited; nil when there was none.
func (s *Sampler) Err() error { return s.err }

func (s *Sampler) fail(err error) {
	if s.err == nil {
		s.err = err
	}
}

func (s *Sampler) sample(pid uint32, at int64, boot uint64) (analyze.ProcessCPU, bool) {
	p := s.procs[pid]
	if p != nil && p.asked == s.n {
		return analyze.ProcessCPU{}, false // asked twice in one sample
	}
	dir := "/proc/" + strconv.FormatUint(uint64(pid), 10)
	line, err := s.read(dir + "/stat")
	var st stat
	if err == nil {
		var ok bool
		if st, ok = parseStat(line); !ok {
			err = fmt.Errorf("%s/stat: cannot parse %q", dir, line)
		}
	}
	if err != nil {
		if err = exited(pid, err); err != nil {
			s.fail(err)
			return analyze.ProcessCPU{}, false
		}
		return s.gone(p)
	}
	if p != nil && p.start != st.start {
		p = nil // the pid was reused
	}
	if p != nil && p.goneAt != 0 {
		return s.gone(p) // an exited process not yet reaped (a zombie)
	}
	if st.state == 'Z' || st.state == 'X' {
		return s.gone(p)
	}
	first := p == nil
	if first {
		if _, known := s.procs[pid]; !known && len(s.procs) >= MaxProcesses {
			s.fail(fmt.Errorf("pid %d: already following %d processes", pid, MaxProcesses))
			return analyze.ProcessCPU{}, false
		}
		p = &proc{start: st.start, since: at, sinceTick: boot, base: st.ticks, threads: make(map[int32]*thread)}
		s.procs[pid] = p
	}
	p.asked = s.n
	if string(st.comm) != p.comm {
		p.comm = string(st.comm)
	}
	cpu := st.ticks - min(p.base, st.ticks)
	busiest, name, wait, busiestWait := s.threads(dir, p, first)
	p.last = analyze.ProcessCPU{
		PID: pid, Comm: p.comm, Since: p.since, At: at,
		CPU:           s.ns(cpu),
		BusiestThread: s.ns(min(busiest, cpu)), BusiestThreadName: name,
		Wait: int64(wait), BusiestThreadWait: int64(busiestWait),
		Threads: st.threads,
		Sockets: s.sockets(dir),
	}
	return p.last, true
}

// gone returns the last reading of a process that has exited, if it was
// ever read.
func (s *Sampler) gone(p *proc) (analyze.ProcessCPU, bool) {
	if p == nil {
		return analyze.ProcessCPU{}, false
	}
	p.asked = s.n
	if p.goneAt == 0 {
		p.goneAt = s.n
		p.last.Gone = true
	}
	return p.last, true
}

// exited returns nil when the process has exited, and otherwise why it
// could not be read. /proc mounted with hidepid says "no such file" of other
// users' processes, but the kernel still knows their pid.
func exited(pid uint32, err error) error {
	if !errors.Is(err, syscall.ENOENT) && !errors.Is(err, syscall.ESRCH) {
		return err
	}
	if syscall.Kill(int(pid), 0) == syscall.ESRCH {
		return nil
	}
	return fmt.Errorf("pid %d runs but /proc does not show it (mounted with hidepid?)", pid)
}

// threads reads the process's threads and returns the CPU ticks, in the
// window, of the one that used the most, and its name; and the time, in ns,
// that all the threads and that one were runnable but waiting for a CPU
// (the second field of schedstat; 0 where the kernel keeps no such
// figures). A thread first seen after the first reading ran entirely in the
// window if it was created after that reading (starttime, in ticks of the
// boot clock); otherwise it was missed then (over maxThreads) and only
// counts from when it is first seen.
func (s *Sampler) threads(dir string, p *proc, first bool) (busiest uint64, name string, wait, busiestWait uint64) {
	busiest, name, wait = p.exited, p.exitedName, p.exitedWait
	tdir := dir + "/task"
	tids, err := readNames(tdir, maxThreads)
	if err != nil {
		// It exited between the two reads, or its threads cannot be
		// listed: the busiest from what was read before.
		for _, t := range p.threads {
			wait += t.wait - t.waitBase
			if d := t.ticks - t.base; d > busiest || name == "" {
				busiest, name, busiestWait = d, t.name, t.wait-t.waitBase
			}
		}
		return busiest, name, wait, busiestWait
	}
	for _, tn := range tids {
		tid, err := strconv.ParseInt(tn, 10, 32)
		if err != nil {
			continue
		}
		line, err := s.read(tdir + "/" + tn + "/stat")
		if err != nil {
			continue // it exited in between
		}
		st, ok := parseStat(line)
		if !ok {
			continue
		}
		t := p.threads[int32(tid)]
		if t != nil && t.start != st.start {
			t = nil // the thread id was reused
		}
		// A thread met for the first time counts from this reading, unless
		// it was born after the window began (then from its start: 0).
		baseNow := false
		if t == nil {
			t = &thread{start: st.start, base: st.ticks}
			baseNow = first || st.start < p.sinceTick
			if !baseNow {
				t.base = 0
			}
			p.threads[int32(tid)] = t
		}
		t.ticks, t.seen = max(st.ticks, t.base), s.n
		if string(st.comm) != t.name {
			t.name = string(st.comm)
		}
		// (After the name is copied: the read reuses the buffer st points into.)
		if line, err := s.read(tdir + "/" + tn + "/schedstat"); err == nil {
			if w, ok := parseSchedstatWait(line); ok {
				if baseNow {
					t.waitBase = w
				}
				t.wait = max(w, t.waitBase)
			}
		}
	}
	for tid, t := range p.threads {
		d, w := t.ticks-t.base, t.wait-t.waitBase
		if t.seen != s.n {
			if d > p.exited {
				p.exited, p.exitedName = d, t.name
			}
			p.exitedWait += w
			delete(p.threads, tid)
		}
		wait += w
		if d > busiest || name == "" {
			busiest, name, busiestWait = d, t.name, w
		}
	}
	return busiest, name, wait, busiestWait
}

// sockets counts the sockets among the process's first maxFDs open files;
// 0 when they cannot be read.
func (s *Sampler) sockets(dir string) int {
	fdir := dir + "/fd"
	f, err := os.Open(fdir)
	if err != nil {
		return 0
	}
	defer f.Close()
	n, seen := 0, 0
	for seen < maxFDs {
		names, err := f.Readdirnames(min(1024, maxFDs-seen))
		for _, fd := range names {
			m, err := syscall.Readlink(fdir+"/"+fd, s.buf)
			if err == nil && m >= 7 && string(s.buf[:7]) == "socket:" {
				n++
			}
		}
		seen += len(names)
		if err != nil || len(names) == 0 {
			break
		}
	}
	return n
}

// readNames lists at most limit names in dir.
func readNames(dir string, limit int) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(limit)
	if err == io.EOF {
		err = nil
	}
	return names, err
}

// read returns the contents of a /proc file in s.buf, valid until the next
// read.
func (s *Sampler) read(path string) ([]byte, error) {
	fd, err := syscall.Open(path, syscall.O_RDONLY|syscall.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer syscall.Close(fd)
	n := 0
	for {
		if n == len(s.buf) {
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := syscall.Read(fd, s.buf[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return s.buf[:n], nil
		}
		n += m
	}
}

// bootTicks is the boot clock now, in clock ticks: the clock of starttime.
func (s *Sampler) bootTicks() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return uint64(ts.Sec)*s.hz + uint64(ts.Nsec)*s.hz/1e9
}

// ns converts clock ticks to nanoseconds.
func (s *Sampler) ns(ticks uint64) int64 {
	return int64(ticks/s.hz*1e9 + ticks%s.hz*1e9/s.hz)
}
