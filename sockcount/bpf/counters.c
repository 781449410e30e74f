// SPDX-License-Identifier: (GPL-2.0-only OR MIT)
//
// Per-connection counts of the socket send and receive calls that moved CQL bytes.
//
// Two ways in, one map out:
//
//   - tp_btf/sock_send_length and tp_btf/sock_recv_length (Linux 6.3+): the kernel fires them at the
//     end of sock_sendmsg and sock_recvmsg, which every write, writev, send, sendto, sendmsg, read,
//     readv, recv, recvfrom and recvmsg on a socket goes through, with the socket and the return
//     value. One event per call, whatever the system call.
//   - syscalls/sys_enter_* and sys_exit_* of write, writev, sendto, sendmsg, read, readv, recvfrom and
//     recvmsg (older kernels): the enter side resolves the file descriptor to its socket through the
//     task's file table and remembers the connection per thread; the exit side counts it if the call
//     moved data.
//
// Nothing is sent to user space per call: counters live in the conns map, and user space reads the
// map when it wants a figure.

// The few UAPI types and constants used here are defined below rather than taken from <linux/bpf.h>,
// whose <asm/types.h> lives in an architecture-specific include directory: the build needs only
// clang and libbpf's headers (Debian: clang, libbpf-dev).
typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef signed char __s8;
typedef short __s16;
typedef int __s32;
typedef long long __s64;
typedef __u16 __be16;
typedef __u32 __be32;
typedef __u32 __wsum;

enum {
	BPF_MAP_TYPE_ARRAY = 2,
	BPF_MAP_TYPE_LRU_HASH = 9,
};

enum {
	BPF_ANY = 0,
	BPF_NOEXIST = 1,
};

#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_endian.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_TCP 6
#define MSG_PEEK 2
#define S_IFMT 0170000
#define S_IFSOCK 0140000

#define DIR_SEND 0
#define DIR_RECV 1

// Kernel structures: only the fields read here. preserve_access_index turns every access into a CO-RE
// relocation that the loader resolves against the running kernel's BTF, so the layout below is not
// the kernel's and does not need to be.

struct in6_addr {
	union {
		__u8 u6_addr8[16];
	} in6_u;
} __attribute__((preserve_access_index));

struct sock_common {
	__be32 skc_daddr;
	__be32 skc_rcv_saddr;
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	struct in6_addr skc_v6_daddr;
	struct in6_addr skc_v6_rcv_saddr;
} __attribute__((preserve_access_index));

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol; // a bitfield before Linux 5.6: read with BPF_CORE_READ_BITFIELD_PROBED
} __attribute__((preserve_access_index));

struct socket {
	struct sock *sk;
} __attribute__((preserve_access_index));

struct inode {
	unsigned short i_mode;
} __attribute__((preserve_access_index));

struct file {
	struct inode *f_inode;
	void *private_data;
} __attribute__((preserve_access_index));

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
} __attribute__((preserve_access_index));

struct files_struct {
	struct fdtable *fdt;
} __attribute__((preserve_access_index));

struct task_struct {
	struct task_struct *group_leader;
	struct files_struct *files;
	char comm[16];
} __attribute__((preserve_access_index));

// conn_key is one connection seen from the process that made the calls: local is its own end.
// Addresses are 16 bytes, IPv4 stored IPv4-mapped (::ffff:a.b.c.d); ports are in host order. sk is
// the socket's address, so that a new connection reusing a closed one's 4-tuple gets its own
// counters (user space keeps the newest one per 4-tuple, by start_ns).
struct conn_key {
	__u8 local_ip[16];
	__u8 remote_ip[16];
	__u16 local_port;
	__u16 remote_port;
	__u32 pad;
	__u64 sk;
};

// conn_counts counts the calls that moved data (ret > 0; MSG_PEEK receives excluded) and their bytes.
// pid and comm are the process (thread group leader) that last used the socket.
struct conn_counts {
	__u64 sends;
	__u64 recvs;
	__u64 send_bytes;
	__u64 recv_bytes;
	__u64 start_ns;
	__u32 pid;
	char comm[16];
	__u32 pad;
};

// Bounded: the LRU hash evicts the least recently used connection when full.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 65536);
	__type(key, struct conn_key);
	__type(value, struct conn_counts);
} conns SEC(".maps");

// cql_ports is a bitmap of the 65536 TCP ports: bit p%64 of word p/64 is set when p is a CQL port.
// An array lookup is inlined by the verifier: no hash on the path of every socket call.
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} cql_ports SEC(".maps");

struct pending_call {
	struct conn_key key;
	__u32 dir;
	__u32 pad;
};

// pending carries a call from sys_enter to sys_exit in the syscall-tracepoint mode, per thread.
// LRU, so that a thread that never returns (killed mid-call) cannot fill it.
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct pending_call);
} pending SEC(".maps");

static __always_inline int port_wanted(__u16 port)
{
	__u32 word = port >> 6;
	__u64 *bits = bpf_map_lookup_elem(&cql_ports, &word);
	return bits && (*bits >> (port & 63)) & 1;
}

static __always_inline void map_v4(__u8 ip[16], __be32 addr)
{
	__builtin_memset(ip, 0, 10);
	ip[10] = 0xff;
	ip[11] = 0xff;
	__builtin_memcpy(ip + 12, &addr, 4);
}

// READ reads a field of a kernel structure. In tp_btf programs the kernel hands over typed pointers
// (direct != 0): a plain load, which the verifier turns into a fault-safe one, costs about a
// nanosecond. Pointers read out of kernel memory in the syscall fallback are plain numbers to the
// verifier and need bpf_probe_read_kernel, a helper call each. Both are CO-RE relocated.
#define READ(direct, p, field) ((direct) ? (p)->field : BPF_CORE_READ(p, field))

// conn_of fills key with sk's connection and returns 1 if sk is a TCP socket with a CQL port at
// either end, else 0. direct must be a constant.
static __always_inline int conn_of(struct sock *sk, struct conn_key *key, const int direct)
{
	if (!sk)
		return 0;
	unsigned short family = READ(direct, sk, __sk_common.skc_family);
	if (family != AF_INET && family != AF_INET6)
		return 0;
	// sk_protocol became a u16 in Linux 5.6, the sock tracepoints came in 6.3: only the fallback
	// can meet the older bitfield.
	__u16 protocol = direct ? sk->sk_protocol : BPF_CORE_READ_BITFIELD_PROBED(sk, sk_protocol);
	if (protocol != IPPROTO_TCP)
		return 0;
	__u16 lport = READ(direct, sk, __sk_common.skc_num);
	__u16 rport = bpf_ntohs(READ(direct, sk, __sk_common.skc_dport));
	if (!port_wanted(lport) && !port_wanted(rport))
		return 0;

	__builtin_memset(key, 0, sizeof(*key));
	key->local_port = lport;
	key->remote_port = rport;
	key->sk = (__u64)sk;
	if (family == AF_INET) {
		map_v4(key->local_ip, READ(direct, sk, __sk_common.skc_rcv_saddr));
		map_v4(key->remote_ip, READ(direct, sk, __sk_common.skc_daddr));
	} else if (direct) {
		__builtin_memcpy(key->local_ip, sk->__sk_common.skc_v6_rcv_saddr.in6_u.u6_addr8, 16);
		__builtin_memcpy(key->remote_ip, sk->__sk_common.skc_v6_daddr.in6_u.u6_addr8, 16);
	} else {
		BPF_CORE_READ_INTO(&key->local_ip, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&key->remote_ip, sk, __sk_common.skc_v6_daddr);
	}
	return 1;
}

static __always_inline void set_owner(struct conn_counts *c, __u32 pid)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct task_struct *leader = BPF_CORE_READ(task, group_leader);
	c->pid = pid;
	BPF_CORE_READ_STR_INTO(&c->comm, leader, comm);
}

static __always_inline void add(struct conn_key *key, __u32 dir, long ret)
{
	__u32 pid = bpf_get_current_pid_tgid() >> 32;
	struct conn_counts *c = bpf_map_lookup_elem(&conns, key);
	if (!c) {
		struct conn_counts fresh = {};
		fresh.start_ns = bpf_ktime_get_ns();
		set_owner(&fresh, pid);
		// BPF_NOEXIST: if another CPU created the entry meanwhile, keep its counts.
		bpf_map_update_elem(&conns, key, &fresh, BPF_NOEXIST);
		c = bpf_map_lookup_elem(&conns, key);
		if (!c)
			return;
	} else if (c->pid != pid) {
		set_owner(c, pid);
	}
	if (dir == DIR_SEND) {
		__sync_fetch_and_add(&c->sends, 1);
		__sync_fetch_and_add(&c->send_bytes, ret);
	} else {
		__sync_fetch_and_add(&c->recvs, 1);
		__sync_fetch_and_add(&c->recv_bytes, ret);
	}
}

// Socket tracepoints (Linux 6.3+). tp_btf: the arguments of trace_sock_send_length(sk, ret, flags)
// as the kernel passes them, no tracefs and no trace record to fill.

SEC("tp_btf/sock_send_length")
int on_sock_send(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	struct conn_key key;
	if (ret <= 0 || !conn_of(sk, &key, 1))
		return 0;
	add(&key, DIR_SEND, ret);
	return 0;
}

SEC("tp_btf/sock_recv_length")
int on_sock_recv(__u64 *ctx)
{
	struct sock *sk = (struct sock *)ctx[0];
	int ret = (int)ctx[1];
	int flags = (int)ctx[2];
	struct conn_key key;
	if (ret <= 0 || (flags & MSG_PEEK) || !conn_of(sk, &key, 1))
		return 0;
	add(&key, DIR_RECV, ret);
	return 0;
}

// Syscall tracepoints (fallback). The record layouts are those of every syscalls:sys_enter_* and
// sys_exit_* event: 8 bytes of common fields, the syscall number, then the arguments or the return
// value as 8-byte words. The file descriptor is the first argument of all eight calls.

struct sys_enter_args {
	__u64 common;
	int nr;
	__u64 fd;
};

struct sys_exit_args {
	__u64 common;
	int nr;
	long ret;
};

// sock_of_fd returns the socket behind the calling task's file descriptor fd, or NULL.
static __always_inline struct sock *sock_of_fd(__u64 fd)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return 0;
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = 0;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return 0;
	// Only sockfs inodes have S_IFSOCK (a socket's path on a filesystem cannot be opened), and
	// their file's private_data is the struct socket.
	if ((BPF_CORE_READ(f, f_inode, i_mode) & S_IFMT) != S_IFSOCK)
		return 0;
	struct socket *sock = BPF_CORE_READ(f, private_data);
	if (!sock)
		return 0;
	return BPF_CORE_READ(sock, sk);
}

static __always_inline int enter(struct sys_enter_args *args, __u32 dir)
{
	struct pending_call call = {};
	if (!conn_of(sock_of_fd(args->fd), &call.key, 0))
		return 0;
	call.dir = dir;
	__u64 id = bpf_get_current_pid_tgid();
	bpf_map_update_elem(&pending, &id, &call, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_write")
int on_enter_send(struct sys_enter_args *args)
{
	return enter(args, DIR_SEND);
}

SEC("tracepoint/syscalls/sys_enter_read")
int on_enter_recv(struct sys_enter_args *args)
{
	return enter(args, DIR_RECV);
}

SEC("tracepoint/syscalls/sys_exit_write")
int on_exit(struct sys_exit_args *args)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct pending_call *call = bpf_map_lookup_elem(&pending, &id);
	if (!call)
		return 0;
	if (args->ret > 0)
		add(&call->key, call->dir, args->ret);
	bpf_map_delete_elem(&pending, &id);
	return 0;
}

// GPL-compatible, as bpf_probe_read_kernel requires.
char LICENSE[] SEC("license") = "Dual MIT/GPL";
