package sockcount

// The BPF objects are generated and committed, so building cqlsniff needs no C compiler. To rebuild
// them after a change to bpf/counters.c: apt-get install clang llvm libbpf-dev; go generate ./sockcount
//go:generate go run github.com/cilium/ebpf/cmd/bpf2go -cc clang -cflags "-O2 -g -Wall -Werror" -type conn_key -type conn_counts counters bpf/counters.c
