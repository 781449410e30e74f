package capture

import (
	"encoding/binary"
	"net/netip"
	"strconv"
)

// Endpoint is one end of a TCP connection.
type Endpoint struct {
	IP   [16]byte // IPv4 is stored IPv4-mapped
	Port uint16
}

// Addr returns the endpoint as a netip.AddrPort (IPv4 unmapped).
func (e Endpoint) Addr() netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom16(e.IP).Unmap(), e.Port)
}

// String formats the endpoint as "ip:port" ("[v6]:port" for IPv6).
func (e Endpoint) String() string { return e.Addr().String() }

// AppendTo appends the String form to b without allocating.
func (e Endpoint) AppendTo(b []byte) []byte {
	a := netip.AddrFrom16(e.IP).Unmap()
	if a.Is6() {
		b = append(b, '[')
		b = a.AppendTo(b)
		b = append(b, ']')
	} else {
		b = a.AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(e.Port), 10)
}

// Less orders endpoints by address, then port.
func (e Endpoint) Less(o Endpoint) bool {
	// Two big-endian words compare like the 16 bytes, without a call.
	a0, b0 := binary.BigEndian.Uint64(e.IP[:8]), binary.BigEndian.Uint64(o.IP[:8])
	if a0 != b0 {
		return a0 < b0
	}
	a1, b1 := binary.BigEndian.Uint64(e.IP[8:]), binary.BigEndian.Uint64(o.IP[8:])
	if a1 != b1 {
		return a1 < b1
	}
	return e.Port < o.Port
}

// FlowKey names a TCP connection independently of direction: A is the
// smaller endpoint. Direction 0 is A→B, direction 1 is B→A.
type FlowKey struct {
	A, B Endpoint
}

// Dir is a direction within a flow: 0 is A→B, 1 is B→A.
type Dir uint8

// Other returns the opposite direction.
func (d Dir) Other() Dir { return d ^ 1 }

// KeyOf returns the flow key of p and the direction p travels in.
func KeyOf(p *Packet) (FlowKey, Dir) {
	src := Endpoint{p.SrcIP, p.SrcPort}
	dst := Endpoint{p.DstIP, p.DstPort}
	if dst.Less(src) {
		return FlowKey{dst, src}, 1
	}
	return FlowKey{src, dst}, 0
}

// Endpoints returns the source and destination of direction d.
func (k FlowKey) Endpoints(d Dir) (src, dst Endpoint) {
	if d == 0 {
		return k.A, k.B
	}
	return k.B, k.A
}

// Hash is a direction-independent hash of the flow, for sharding.
func (k FlowKey) Hash() uint64 {
	h := uint64(14695981039346656037)
	for _, b := range k.A.IP {
		h = (h ^ uint64(b)) * 1099511628211
	}
	for _, b := range k.B.IP {
		h = (h ^ uint64(b)) * 1099511628211
	}
	h ^= uint64(k.A.Port)<<16 | uint64(k.B.Port)
	return h * 1099511628211
}
