// Package capture turns packets into per-direction TCP byte streams: it
// reads capture files (pcap and pcapng, plain or gzip-compressed), decodes
// each record's link, IP and TCP headers in place into a Packet, and
// reassembles TCP flows in order while keeping segment boundaries and
// capture times. It knows nothing of CQL; the bytes it hands on are decoded
// by package decode.
//
// The packet path is built for millions of packets per second on one core:
// headers are read at fixed offsets without allocating, a Packet's payload
// aliases the reader's buffer until the next packet, and records that are
// not usable TCP (other protocols, fragments, malformed or unsupported
// frames) are counted, not reported one by one.
//
// Live capture (LiveSource) reads an AF_PACKET TPACKET_V3 ring with a
// generated kernel filter (TCP on the CQL ports only), counts each loopback
// packet once, and can dump exactly what it captured (-w); OpenLiveFanout
// spreads it over one ring per analysis worker, the kernel keeping each
// TCP connection, both ways, in one of them. The Assembler
// turns packets into per-direction byte streams that keep each segment's
// boundary and capture time, which is what batching analysis measures.
package capture
