// Package synth generates large synthetic captures of CQL (native protocol
// v4, or v5 with its segment framing) traffic for benchmarking the analyzer
// pipeline and for testing its batching diagnosis against a known ground
// truth.
//
// Write runs an event-driven simulation of many concurrent TCP connections
// between closed-loop clients and a Cassandra-like server — stream ids from a
// free pool, out-of-order answers, unbuffered or coalescing writers, Linux
// autocorking, Nagle and delayed ACKs — and writes every segment, in capture
// time order, as a classic pcap record (Ethernet/IPv4/TCP, nanosecond
// timestamps). Packets are built by hand in one reused buffer, so the cost per
// packet is a few hundred nanoseconds and no allocation. The package knows
// nothing of the analyzer: it encodes frames and v5 segments itself from the
// protocol reference, so a decoder bug is not hidden by a shared one.
package synth
