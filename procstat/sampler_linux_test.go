//go:build linux

package procstat

import (
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/cqlsniff/cqlsniff/analyze"
	"golang.org/x/sys/unix"
)

// burn spins one goroutine, locked to its own thread, for d of CPU time.
func burn(d time.Duration) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	cpu := func() time.Duration {
		var ts unix.Timespec
		unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
		return time.Duration(ts.Nano())
	}
	for end := cpu() + d; cpu() < end; {
	}
}

func rusageCPU(t *testing.T) time.Duration {
	t.Helper()
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestProcessSelf measures the test's own process while a thread burns CPU,
// against what the kernel says through getrusage over the same window: CPU
// time against CPU time, no wall clock.
func TestProcessSelf(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pid := uint32(os.Getpid())
	s := NewSampler()
	before := rusageCPU(t)
	first := s.Sample(nil, []uint32{pid}, time.Now())
	if len(first) != 1 {
		t.Fatalf("first sample: %+v (%v)", first, s.Err())
	}
	if f := first[0]; f.CPU != 0 || f.Since != f.At || f.PID != pid || f.Gone {
		t.Errorf("first reading %+v: want no CPU and an empty window", f)
	}
	done := make(chan struct{})
	go func() { burn(300 * time.Millisecond); close(done) }()
	<-done
	after := rusageCPU(t)
	got := s.Sample(nil, []uint32{pid}, time.Now())
	if len(got) != 1 {
		t.Fatalf("second sample: %+v (%v)", got, s.Err())
	}
	r := got[0]
	want := after - before
	diff := time.Duration(r.CPU) - want
	t.Logf("sampler %v CPU (busiest thread %q %v, %d threads, %d sockets), getrusage %v",
		time.Duration(r.CPU), r.BusiestThreadName, time.Duration(r.BusiestThread), r.Threads, r.Sockets, want)
	// /proc counts in clock ticks (10 ms) and the two readings are not at
	// the same instant as getrusage's.
	if diff < 0 {
		diff = -diff
	}
	if diff > 30*time.Millisecond && float64(diff) > 0.3*float64(want) {
		t.Errorf("sampler says %v of CPU, getrusage %v", time.Duration(r.CPU), want)
	}
	// The burning thread is a thread the sampler first saw before it
	// burned or one created since: either way its CPU is in the window.
	if r.BusiestThread < int64(200*time.Millisecond) || r.BusiestThread > r.CPU {
		t.Errorf("busiest thread %v of %v", time.Duration(r.BusiestThread), time.Duration(r.CPU))
	}
	if r.Since != first[0].Since || r.At <= r.Since {
		t.Errorf("window %d..%d, first reading at %d", r.Since, r.At, first[0].Since)
	}
	// The name is a thread's comm, as /proc gives it (a regression: the
	// schedstat read once overwrote the buffer the name was taken from).
	names := map[string]bool{}
	if tids, err := os.ReadDir("/proc/self/task"); err == nil {
		for _, tid := range tids {
			if b, err := os.ReadFile("/proc/self/task/" + tid.Name() + "/comm"); err == nil {
				names[strings.TrimSuffix(string(b), "\n")] = true
			}
		}
	}
	if !names[r.BusiestThreadName] {
		t.Errorf("busiest thread named %q; the threads are %v", r.BusiestThreadName, names)
	}
	if r.Wait < 0 || r.BusiestThreadWait < 0 || r.BusiestThreadWait > r.Wait {
		t.Errorf("run-queue wait %v, busiest thread's %v", time.Duration(r.Wait), time.Duration(r.BusiestThreadWait))
	}
	if r.Threads < 2 || r.Comm == "" {
		t.Errorf("threads %d comm %q", r.Threads, r.Comm)
	}
	// The listener is a socket; stdin/stdout/stderr may be too, but no
	// more than that.
	if r.Sockets < 1 {
		t.Errorf("%d sockets, the test holds a listener", r.Sockets)
	}
}

// TestProcessNewThread: a thread created after the first reading ran all
// its CPU in the window, though the sampler first sees it later.
func TestProcessNewThread(t *testing.T) {
	pid := uint32(os.Getpid())
	s := NewSampler()
	if len(s.Sample(nil, []uint32{pid}, time.Now())) != 1 {
		t.Fatal(s.Err())
	}
	known := map[int32]bool{}
	for tid := range s.procs[pid].threads {
		known[int32(tid)] = true
	}
	// Goroutines locked to their thread and parked hold it: the runtime
	// must make a new one for the next, until one is a thread the first
	// reading did not see.
	release := make(chan struct{})
	defer close(release)
	var tid int32
	for range 256 {
		got := make(chan int32)
		go func() {
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			me := int32(unix.Gettid())
			got <- me
			if !known[me] {
				burn(150 * time.Millisecond)
				got <- me
			}
			<-release
		}()
		if me := <-got; !known[me] {
			tid = <-got
			break
		}
	}
	if tid == 0 {
		t.Fatal("no new thread after 256 locked goroutines")
	}
	r := s.Sample(nil, []uint32{pid}, time.Now())
	if len(r) != 1 {
		t.Fatal(s.Err())
	}
	th := s.procs[pid].threads[tid]
	t.Logf("new thread %d: %d ticks from %d; busiest %q %v of %v", tid, th.ticks, th.base,
		r[0].BusiestThreadName, time.Duration(r[0].BusiestThread), time.Duration(r[0].CPU))
	if th.base != 0 || r[0].BusiestThread < int64(120*time.Millisecond) {
		t.Errorf("the new thread's CPU was not counted in the window: base %d, busiest %v", th.base, time.Duration(r[0].BusiestThread))
	}
}

// execSleep starts a process that waits to be killed.
func execSleep(tb testing.TB) *exec.Cmd {
	tb.Helper()
	cmd := exec.Command("sleep", "60")
	if err := cmd.Start(); err != nil {
		tb.Skip(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// TestProcessGone: a process that exits keeps its last reading, marked
// gone; one never seen is left out; a pid that cannot exist is too.
func TestProcessGone(t *testing.T) {
	cmd := execSleep(t)
	pid := uint32(cmd.Process.Pid)
	s := NewSampler()
	r := s.Sample(nil, []uint32{pid}, time.Now())
	if len(r) != 1 || r[0].Gone {
		t.Fatalf("a running process: %+v (%v)", r, s.Err())
	}
	cmd.Process.Kill()
	cmd.Wait()
	r2 := s.Sample(nil, []uint32{pid, 1 << 30}, time.Now())
	if len(r2) != 1 || !r2[0].Gone || r2[0].At != r[0].At {
		t.Fatalf("after it exited: %+v, want its first reading, gone", r2)
	}
	if s.Err() != nil {
		t.Errorf("exits are not failures: %v", s.Err())
	}
	for range forgetAfter {
		s.Sample(nil, []uint32{pid}, time.Now())
	}
	if len(s.procs) != 0 {
		t.Errorf("%d processes still followed after %d samples", len(s.procs), forgetAfter)
	}
}

func BenchmarkSample(b *testing.B) {
	var pids []uint32
	pids = append(pids, uint32(os.Getpid()), uint32(os.Getppid()))
	cmd := execSleep(b)
	pids = append(pids, uint32(cmd.Process.Pid))
	s := NewSampler()
	var out []analyze.ProcessCPU
	out = s.Sample(out[:0], pids, time.Now())
	if len(out) != 3 {
		b.Fatalf("%d of 3 processes read: %v", len(out), s.Err())
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		out = s.Sample(out[:0], pids, time.Now())
	}
}
