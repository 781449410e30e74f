// Package sockcount counts, per CQL connection, the socket send and receive calls that processes on
// this host make, and the bytes they move: the exact number of write calls behind a connection's
// frames, which the wire can only estimate (Linux autocorking and Nagle merge writes into one
// segment, GRO merges segments on receive).
//
// The counting happens in the kernel, in eBPF programs loaded with github.com/cilium/ebpf. On
// Linux 6.3 and later they run on the sock:sock_send_length and sock:sock_recv_length tracepoints,
// which fire once at the end of every sock_sendmsg and sock_recvmsg: every write, writev, send,
// sendto, sendmsg, read, readv, recv, recvfrom and recvmsg on a socket, and io_uring's and the
// kernel's own socket calls too, with the socket and the call's return value. On older kernels they
// run on the system-call tracepoints of those eight calls instead and resolve the file descriptor
// to its socket through the calling task's file table: in the kernel, at the call, rather than
// afterwards through /proc/<pid>/fd and /proc/net/tcp, so that a short-lived connection or a reused
// descriptor cannot be attributed to the wrong connection, and calls on files and pipes are dropped
// before they reach a map. The programs keep TCP sockets with a CQL
// port at either end and add each call that moved data to a counter keyed by the connection's
// 4-tuple as the calling process sees it.
//
// Why tracepoints and not kprobes: a tracepoint is a stable, documented hook with a fixed argument
// list, while a kprobe on sock_sendmsg or tcp_sendmsg depends on functions that get inlined,
// renamed or split between kernel versions (and kprobes are not built into every kernel, this
// lab's included). The BTF-typed variant (tp_btf) of the sock tracepoints is used because it needs
// no tracefs mount and hands the program the kernel's own arguments without filling a trace
// record. Struct fields are read with CO-RE relocations, so one committed object runs on any
// kernel with BTF.
//
// Why counters in maps and not events: a busy client makes hundreds of thousands of socket calls
// per second, and the question asked of them is only "how many, how big, by whom". Pushing one
// event per call through a ring buffer would cost a copy, a wake-up and user-space work per call
// and could drop events under load, which makes the figure inexact exactly when it matters.
// Counters are updated in place with atomic adds and read whenever a report or a screen refresh
// wants them; nothing is lost and user space does no work between reads.
//
// The counting needs root (or CAP_BPF and CAP_PERFMON) and a kernel with BTF. When it cannot run,
// Open returns an error, Explain turns it into one line for the user, and the analysis goes on
// from the wire alone.
package sockcount
