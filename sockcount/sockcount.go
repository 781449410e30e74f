package sockcount

import (
	"errors"
	"os"
	"strings"

	"github.com/cilium/ebpf"
	"github.com/cqlsniff/cqlsniff/analyze"
)

// Config says which connections to count.
type Config struct {
	// Ports are the CQL server ports: a TCP connection is counted when its local or its remote port
	// is one of them, so both a client's and a server's calls are seen. At least one is required.
	Ports []uint16
}

// Counts and Key are analyze's own types (analyze.SocketCounts and
// analyze.SocketKey): this package produces them, analyze consumes them
// without importing eBPF.
type (
	Counts = analyze.SocketCounts
	Key    = analyze.SocketKey
)

// Sources a Tracer counts from, as Source reports them.
const (
	SourceSockTracepoints    = "sock:sock_send_length and sock:sock_recv_length tracepoints"
	SourceSyscallTracepoints = "syscall tracepoints of write, writev, sendto, sendmsg, read, readv, recvfrom, recvmsg"
)

// Errors Open returns, wrapped with their cause. Explain tells the user what each means.
var (
	ErrNoPorts       = errors.New("sockcount: no CQL ports to count")
	ErrUnsupportedOS = errors.New("sockcount: counting socket calls needs Linux")
	ErrPermission    = errors.New("sockcount: not permitted to load eBPF programs")
	ErrNoBTF         = errors.New("sockcount: kernel has no BTF")
	ErrNoTracefs     = errors.New("sockcount: kernel lacks the sock tracepoints and tracefs is not mounted")
	ErrNoTracepoints = errors.New("sockcount: kernel has neither the sock tracepoints nor syscall tracepoints")
)

const wireOnly = "; frames per write are estimated from the wire only"

// Explain returns one line for the user on why syscall counts are unavailable, and what to do about
// it. It returns "" for a nil error.
func Explain(err error) string {
	var verr *ebpf.VerifierError
	switch {
	case err == nil:
		return ""
	case errors.Is(err, ErrNoPorts):
		return "syscall counts off: no CQL port given" + wireOnly
	case errors.Is(err, ErrUnsupportedOS):
		return "syscall counts need Linux (eBPF)" + wireOnly
	case errors.Is(err, ErrPermission), errors.Is(err, os.ErrPermission):
		return "syscall counts need root (or CAP_BPF and CAP_PERFMON) to load eBPF programs" + wireOnly
	case errors.Is(err, ErrNoBTF):
		return "syscall counts need a kernel with BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF=y)" + wireOnly
	case errors.Is(err, ErrNoTracefs):
		return "this kernel predates the sock:sock_send_length tracepoint (Linux 6.3) and the syscall-tracepoint fallback needs tracefs: mount -t tracefs nodev /sys/kernel/tracing" + wireOnly
	case errors.Is(err, ErrNoTracepoints):
		return "this kernel has neither the sock:sock_send_length tracepoint (Linux 6.3) nor syscall tracepoints (CONFIG_FTRACE_SYSCALLS)" + wireOnly
	case errors.As(err, &verr):
		return "the kernel's verifier rejected the syscall-counting program: " + firstLine(verr.Error()) + wireOnly
	}
	return "syscall counts unavailable: " + firstLine(err.Error()) + wireOnly
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
