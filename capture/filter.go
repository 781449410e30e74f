package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"

	"golang.org/x/net/bpf"
)

// The kernel filter of a live capture. It runs on every packet the
// interface sees, before the packet is copied into the ring, so what it
// rejects costs neither ring space nor a trip through user space: on a busy
// database host CQL is usually a small share of the traffic. It is classic
// BPF (what SO_ATTACH_FILTER takes) generated here rather than compiled from
// a tcpdump expression, since there is no libpcap to compile one.
//
// It keeps TCP segments with one of the ports at either end, over IPv4 and
// IPv6, behind up to two in-band VLAN tags (802.1Q, 802.1ad, or the old
// 0x9100 QinQ tag). Tags the NIC or the kernel stripped are not in the frame
// the filter sees and need nothing. Like libpcap's "tcp port N" it keeps the
// first fragment of a fragmented datagram (its TCP header is there) and
// drops the later ones (no ports to look at); IPv6 extension headers other
// than a fragment header are not walked (libpcap's "tcp" does not walk them
// either), which no CQL client or server sends.
//
// On a loopback interface every packet passes the capture point twice, once
// going out and once coming back in. The filter drops the outgoing copy,
// which is what libpcap does in user space after reading sll_pkttype from
// the ring: gopacket's afpacket does not expose the packet type, but the
// kernel lets a filter read it (SKF_AD_PKTTYPE), and dropping the copy there
// also spares the ring.

// Values the kernel gives for skb->pkt_type (linux/if_packet.h).
const packetOutgoing = 4 // PACKET_OUTGOING

// Header offsets and fields the filter reads (the EtherTypes, protocol
// numbers and header lengths are decode.go's).
const (
	ipv4FragMask        = 0x1FFF // fragment offset bits of the IPv4 flags/offset word
	ipv6FragOffsetBits  = 0xFFF8 // fragment offset bits of the IPv6 fragment header word
	ipv6FragHeaderLen   = 8
	maxFilterTags       = 2    // in-band VLAN tags followed
	maxFilterInsns      = 4096 // BPF_MAXINSNS: the kernel refuses longer programs
	ipv4HostOffsetSrc   = 12
	ipv4HostOffsetDst   = 16
	ipv6HostOffsetSrc   = 8
	ipv6HostOffsetDst   = 24
	ipv4ProtoOffset     = 9
	ipv4FragOffset      = 6
	ipv6NextHeaderOff   = 6
	tcpSrcPortOffset    = 0
	tcpDstPortOffset    = 2
	ipVersionShift      = 4
	ipv4IHLMask         = 0x0F
	ipv4IHLWordsToBytes = 2 // left shift: the IHL counts 32-bit words
)

// filterSpec is what the kernel filter keeps.
type filterSpec struct {
	// ethernet: frames start with an Ethernet header (a SOCK_RAW socket on
	// an Ethernet or loopback device); otherwise with the IP header (a
	// SOCK_DGRAM socket: the "any" device and layer-3 devices).
	ethernet bool
	// ports to keep at either end; none keeps every TCP segment.
	ports []uint16
	// hosts, when any, keeps only packets from or to one of them.
	hosts []netip.Addr
	// snaplen is what the filter returns for a kept packet: the kernel
	// copies at most that many bytes into the ring.
	snaplen uint32
	// dropOutgoing drops the outgoing copy of loopback traffic. With
	// loopbackIfindex 0 every outgoing packet is dropped (a socket bound to
	// the loopback device); otherwise only those of that interface (a
	// socket on every interface).
	dropOutgoing    bool
	loopbackIfindex uint32
}

// errFilterTooLong: the ports and hosts do not fit in a kernel filter.
var errFilterTooLong = errors.New("capture: too many ports and hosts for a kernel filter")

// buildFilter generates the filter program. The program is only ever
// jumped forward through, as classic BPF requires; see asm for how far
// jumps are made.
func buildFilter(f filterSpec) ([]bpf.Instruction, error) {
	var a asm
	if f.dropOutgoing {
		if f.loopbackIfindex != 0 {
			// Not the loopback interface: skip the three instructions
			// that drop outgoing packets.
			a.emit(bpf.LoadExtension{Num: bpf.ExtInterfaceIndex},
				bpf.JumpIf{Cond: bpf.JumpNotEqual, Val: f.loopbackIfindex, SkipTrue: 3})
		}
		a.emit(bpf.LoadExtension{Num: bpf.ExtType})
		a.reject(bpf.JumpEqual, packetOutgoing)
	}

	ip4, ip6 := a.label(), a.label()
	if f.ethernet {
		// A = EtherType, X = offset of the IP header, after each tag.
		l3 := a.label()
		a.emit(bpf.LoadAbsolute{Off: 12, Size: 2}, bpf.LoadConstant{Dst: bpf.RegX, Val: ethernetHeaderLen})
		for n := 1; n <= maxFilterTags; n++ {
			tagged := a.label()
			for _, tpid := range []uint32{etherTypeDot1Q, etherTypeDot1AD, etherTypeQinQ} {
				a.goIf(bpf.JumpEqual, tpid, tagged)
			}
			a.goTo(l3)
			a.place(tagged)
			a.emit(bpf.LoadAbsolute{Off: uint32(12 + vlanTagLen*n), Size: 2},
				bpf.LoadConstant{Dst: bpf.RegX, Val: uint32(ethernetHeaderLen + vlanTagLen*n)})
		}
		a.place(l3)
		a.goIf(bpf.JumpEqual, etherTypeIPv4, ip4)
		a.goIf(bpf.JumpEqual, etherTypeIPv6, ip6)
	} else {
		a.emit(bpf.LoadConstant{Dst: bpf.RegX, Val: 0},
			bpf.LoadAbsolute{Off: 0, Size: 1},
			bpf.ALUOpConstant{Op: bpf.ALUOpShiftRight, Val: ipVersionShift})
		a.goIf(bpf.JumpEqual, 4, ip4)
		a.goIf(bpf.JumpEqual, 6, ip6)
	}
	a.emit(bpf.RetConstant{Val: 0})

	var v4, v6 []netip.Addr
	for _, h := range f.hosts {
		if h = h.Unmap(); h.Is4() {
			v4 = append(v4, h)
		} else if h.Is6() {
			v6 = append(v6, h)
		}
	}
	tcp := a.label()

	// IPv4: X = start of the IP header.
	a.place(ip4)
	a.emit(bpf.LoadIndirect{Off: ipv4ProtoOffset, Size: 1})
	a.reject(bpf.JumpNotEqual, ipProtoTCP)
	a.emit(bpf.LoadIndirect{Off: ipv4FragOffset, Size: 2})
	a.reject(bpf.JumpBitsSet, ipv4FragMask)
	if len(f.hosts) > 0 {
		ok := a.label()
		for _, off := range []uint32{ipv4HostOffsetSrc, ipv4HostOffsetDst} {
			a.emit(bpf.LoadIndirect{Off: off, Size: 4})
			for _, h := range v4 {
				b := h.As4()
				a.goIf(bpf.JumpEqual, binary.BigEndian.Uint32(b[:]), ok)
			}
		}
		a.emit(bpf.RetConstant{Val: 0})
		a.place(ok)
	}
	// X += IHL*4: the TCP header.
	a.emit(bpf.LoadIndirect{Off: 0, Size: 1},
		bpf.ALUOpConstant{Op: bpf.ALUOpAnd, Val: ipv4IHLMask},
		bpf.ALUOpConstant{Op: bpf.ALUOpShiftLeft, Val: ipv4IHLWordsToBytes},
		bpf.ALUOpX{Op: bpf.ALUOpAdd},
		bpf.TAX{})
	a.goTo(tcp)

	// IPv6: X = start of the IP header.
	a.place(ip6)
	if len(f.hosts) > 0 {
		ok := a.label()
		for _, off := range []uint32{ipv6HostOffsetSrc, ipv6HostOffsetDst} {
			for _, h := range v6 {
				b := h.As16()
				next := a.label()
				for w := 0; w < 4; w++ {
					a.emit(bpf.LoadIndirect{Off: off + uint32(4*w), Size: 4})
					a.goIfShort(bpf.JumpNotEqual, binary.BigEndian.Uint32(b[4*w:]), next)
				}
				a.goTo(ok)
				a.place(next)
			}
		}
		a.emit(bpf.RetConstant{Val: 0})
		a.place(ok)
	}
	plain6 := a.label()
	a.emit(bpf.LoadIndirect{Off: ipv6NextHeaderOff, Size: 1})
	a.goIf(bpf.JumpEqual, ipProtoTCP, plain6)
	a.reject(bpf.JumpNotEqual, ipProtoFragment)
	a.emit(bpf.LoadIndirect{Off: ipv6HeaderLen, Size: 1})
	a.reject(bpf.JumpNotEqual, ipProtoTCP)
	a.emit(bpf.LoadIndirect{Off: ipv6HeaderLen + 2, Size: 2})
	a.reject(bpf.JumpBitsSet, ipv6FragOffsetBits)
	a.emit(bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: ipv6HeaderLen + ipv6FragHeaderLen}, bpf.TAX{})
	a.goTo(tcp)
	a.place(plain6)
	a.emit(bpf.TXA{}, bpf.ALUOpConstant{Op: bpf.ALUOpAdd, Val: ipv6HeaderLen}, bpf.TAX{})

	// TCP: X = start of the TCP header.
	a.place(tcp)
	if len(f.ports) > 0 {
		keep := a.label()
		for _, off := range []uint32{tcpSrcPortOffset, tcpDstPortOffset} {
			a.emit(bpf.LoadIndirect{Off: off, Size: 2})
			for _, p := range f.ports {
				a.goIf(bpf.JumpEqual, uint32(p), keep)
			}
		}
		a.emit(bpf.RetConstant{Val: 0})
		a.place(keep)
	}
	a.emit(bpf.RetConstant{Val: f.snaplen})
	return a.resolve()
}

// assembleFilter builds and assembles the filter for SetBPF.
func assembleFilter(f filterSpec) ([]bpf.RawInstruction, error) {
	prog, err := buildFilter(f)
	if err != nil {
		return nil, err
	}
	raw, err := bpf.Assemble(prog)
	if err != nil {
		return nil, fmt.Errorf("capture: assembling the kernel filter: %w", err)
	}
	return raw, nil
}

// asm is a tiny forward-only assembler with labels. A conditional jump in
// classic BPF reaches at most 255 instructions ahead, which a list of ports
// or hosts can exceed, while an unconditional one reaches anywhere; so goIf
// emits a conditional skip over an unconditional jump. Short jumps whose
// distance is known to be small (goIfShort) are checked when resolved.
type asm struct {
	prog   []bpf.Instruction
	labels []int // instruction index of each label, -1 until placed
	fixups []fixup
}

type label int

type fixup struct {
	at int // instruction to patch: a Jump, or a JumpIf whose true branch jumps
	to label
}

func (a *asm) emit(ins ...bpf.Instruction) { a.prog = append(a.prog, ins...) }

func (a *asm) label() label {
	a.labels = append(a.labels, -1)
	return label(len(a.labels) - 1)
}

func (a *asm) place(l label) { a.labels[l] = len(a.prog) }

// goTo jumps to l.
func (a *asm) goTo(l label) {
	a.fixups = append(a.fixups, fixup{len(a.prog), l})
	a.emit(bpf.Jump{})
}

// goIf jumps to l when A cond val, any distance ahead.
func (a *asm) goIf(cond bpf.JumpTest, val uint32, l label) {
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipFalse: 1})
	a.goTo(l)
}

// goIfShort jumps to l when A cond val; l must be at most 255 ahead.
func (a *asm) goIfShort(cond bpf.JumpTest, val uint32, l label) {
	a.fixups = append(a.fixups, fixup{len(a.prog), l})
	a.emit(bpf.JumpIf{Cond: cond, Val: val})
}

// reject drops the packet when A cond val.
func (a *asm) reject(cond bpf.JumpTest, val uint32) {
	a.emit(bpf.JumpIf{Cond: cond, Val: val, SkipFalse: 1}, bpf.RetConstant{Val: 0})
}

func (a *asm) resolve() ([]bpf.Instruction, error) {
	if len(a.prog) > maxFilterInsns {
		return nil, fmt.Errorf("%w (%d instructions, the kernel takes %d)", errFilterTooLong, len(a.prog), maxFilterInsns)
	}
	for _, f := range a.fixups {
		to := a.labels[f.to]
		skip := to - (f.at + 1)
		if to < 0 || skip < 0 {
			return nil, fmt.Errorf("capture: filter label %d not placed ahead of instruction %d", f.to, f.at)
		}
		switch ins := a.prog[f.at].(type) {
		case bpf.Jump:
			ins.Skip = uint32(skip)
			a.prog[f.at] = ins
		case bpf.JumpIf:
			if skip > 255 {
				return nil, fmt.Errorf("%w (a jump of %d instructions)", errFilterTooLong, skip)
			}
			ins.SkipTrue = uint8(skip)
			a.prog[f.at] = ins
		}
	}
	return a.prog, nil
}
