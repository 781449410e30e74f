package capture

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
)

// testTS is the capture time every built packet is decoded with.
const testTS = 1_700_000_000_123_456_789

// cqlQuery is what the built packets carry: one v4 QUERY envelope.
//
//	04           version 4, request
//	00           flags
//	00 05        stream 5
//	07           opcode QUERY
//	00 00 00 0f  body length 15
//	00 00 00 08 "SELECT 1"  [long string] query
//	00 01        consistency ONE
//	00           query flags
var cqlQuery = unhex(`
	04 00 0005 07 0000000f
	00000008 53454c4543542031
	0001
	00`)

// unhex reads annotated hex: whitespace is ignored, "//" starts a comment.
func unhex(s string) []byte {
	var digits strings.Builder
	for _, line := range strings.Split(s, "\n") {
		line, _, _ = strings.Cut(line, "//")
		digits.WriteString(strings.Join(strings.Fields(line), ""))
	}
	b, err := hex.DecodeString(digits.String())
	if err != nil {
		panic(err)
	}
	return b
}

// Layers of the packets the tests build. Each call returns fresh layers,
// since serialisation fixes lengths in place.
var (
	clientMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x01}
	serverMAC = net.HardwareAddr{0x02, 0, 0, 0, 0, 0x02}
	clientV4  = net.IP{10, 0, 0, 1}
	serverV4  = net.IP{10, 0, 0, 2}
	clientV6  = net.ParseIP("fd00::1")
	serverV6  = net.ParseIP("fd00::2")
)

func ether(t layers.EthernetType) *layers.Ethernet {
	return &layers.Ethernet{SrcMAC: clientMAC, DstMAC: serverMAC, EthernetType: t}
}

func ipv4(proto layers.IPProtocol) *layers.IPv4 {
	return &layers.IPv4{Version: 4, TTL: 64, Id: 0x1234, Flags: layers.IPv4DontFragment, Protocol: proto, SrcIP: clientV4, DstIP: serverV4}
}

func ipv6(next layers.IPProtocol) *layers.IPv6 {
	return &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: next, SrcIP: clientV6, DstIP: serverV6}
}

// tcpToServer is a client segment carrying a CQL request: 51000 → 9042,
// seq 1000, ack 2000, PSH|ACK, window 512.
func tcpToServer() *layers.TCP {
	return &layers.TCP{SrcPort: 51000, DstPort: 9042, Seq: 1000, Ack: 2000, PSH: true, ACK: true, Window: 512}
}

// build serialises the layers with lengths and checksums fixed.
func build(tb testing.TB, ls ...gopacket.SerializableLayer) []byte {
	tb.Helper()
	var network gopacket.NetworkLayer
	for _, l := range ls {
		switch l := l.(type) {
		case *layers.IPv4:
			network = l
		case *layers.IPv6:
			network = l
		case interface { // TCP, UDP, ICMPv6
			SetNetworkLayerForChecksum(gopacket.NetworkLayer) error
		}:
			if network != nil {
				if err := l.SetNetworkLayerForChecksum(network); err != nil {
					tb.Fatal(err)
				}
			}
		}
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, ls...); err != nil {
		tb.Fatal(err)
	}
	return append([]byte(nil), buf.Bytes()...)
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

func mapped(ip net.IP) [16]byte { return [16]byte(ip.To16()) }

// wantV4 is the packet every IPv4 case decodes to unless it says otherwise.
func wantV4(wireLen int, edit ...func(*Packet)) *Packet {
	p := &Packet{
		TS: testTS, SrcIP: mapped(clientV4), DstIP: mapped(serverV4),
		SrcPort: 51000, DstPort: 9042, Seq: 1000, Ack: 2000, Flags: FlagPSH | FlagACK, Window: 512,
		Payload: cqlQuery, WireLen: wireLen,
	}
	for _, e := range edit {
		e(p)
	}
	return p
}

func wantV6(wireLen int, edit ...func(*Packet)) *Packet {
	p := wantV4(wireLen, edit...)
	p.SrcIP, p.DstIP, p.IPv6 = mapped(clientV6), mapped(serverV6), true
	return p
}

type decodeCase struct {
	name    string
	link    layers.LinkType
	frame   []byte
	wireLen int // 0: len(frame)
	want    DecodeResult
	pkt     *Packet // for DecodeTCP
	// gopacket: whether gopacket decodes this link type, so the result is
	// cross-checked against gopacket.NewPacket.
	gopacket bool
}

func decodeCases(tb testing.TB) []decodeCase {
	tcp4 := func(tcp *layers.TCP, payload []byte) []byte {
		return build(tb, ipv4(layers.IPProtocolTCP), tcp, gopacket.Payload(payload))
	}
	tcp6 := func(payload []byte) []byte {
		return build(tb, ipv6(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(payload))
	}
	v4 := tcp4(tcpToServer(), cqlQuery) // 20 IP + 20 TCP + 24 CQL = 64 bytes
	v6 := tcp6(cqlQuery)                // 40 IP + 20 TCP + 24 CQL = 84 bytes
	eth4 := build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery))
	ethBig := build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(bytes.Repeat(cqlQuery, 10)))

	// Linux cooked header v1 (LINKTYPE_LINUX_SLL): layers can decode it but
	// not serialise it, so it is written out here.
	sll := func(proto string) []byte {
		return unhex(`
			0000              // packet type: to us
			0001              // ARPHRD_ETHER
			0006              // link-layer address length
			0200000000010000  // address, 8 bytes of which 6 are used
			` + proto)
	}
	// Linux cooked header v2 (LINKTYPE_LINUX_SLL2, tcpdump -i any).
	sll2 := func(proto string) []byte {
		return unhex(proto + `
			0000              // reserved
			00000002          // interface index 2
			0001              // ARPHRD_ETHER
			04                // packet type: outgoing
			06                // link-layer address length
			0200000000010000  // address`)
	}
	vlan := func(vid int, next string) []byte {
		return unhex(fmt.Sprintf("%04x", vid) + next) // priority 0, VLAN id; then the EtherType
	}

	ipOptions := ipv4(layers.IPProtocolTCP)
	// Router Alert (RFC 2113): type 148, length 4, value 0. IHL becomes 6.
	ipOptions.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}}

	tcpOptions := tcpToServer()
	tcpOptions.Options = []layers.TCPOption{
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindNop, OptionLength: 1},
		{OptionType: layers.TCPOptionKindTimestamps, OptionLength: 10, OptionData: unhex("0001e240 00000457")},
	}

	synAck := &layers.TCP{SrcPort: 9042, DstPort: 51000, Seq: 7, Ack: 1001, SYN: true, ACK: true, ECE: true, Window: 65535,
		Options: []layers.TCPOption{{OptionType: layers.TCPOptionKindMSS, OptionLength: 4, OptionData: []byte{0x05, 0xb4}}}}
	ethSynAck := build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), synAck)
	allFlags := &layers.TCP{SrcPort: 1, DstPort: 2, FIN: true, SYN: true, RST: true, PSH: true, ACK: true, URG: true, ECE: true, CWR: true}

	frag := func(flags layers.IPv4Flag, offset uint16, proto layers.IPProtocol) []byte {
		ip := ipv4(proto)
		ip.Flags, ip.FragOffset = flags, offset
		return build(tb, ether(layers.EthernetTypeIPv4), ip, gopacket.Payload(cqlQuery))
	}
	frag6 := func(offset uint16, more bool, next layers.IPProtocol, rest ...gopacket.SerializableLayer) []byte {
		ls := []gopacket.SerializableLayer{ipv6(layers.IPProtocolIPv6Fragment), &layers.IPv6Fragment{NextHeader: next, FragmentOffset: offset, MoreFragments: more, Identification: 77}}
		return build(tb, append(ls, rest...)...)
	}

	// A destination option of type 0x1e (RFC 3692 experiment), padded to 8.
	dstOpt := func(next layers.IPProtocol) *layers.IPv6Destination {
		d := &layers.IPv6Destination{Options: []*layers.IPv6DestinationOption{{OptionType: 0x1e, OptionLength: 4, OptionData: []byte{1, 2, 3, 4}}}}
		d.NextHeader = next
		return d
	}
	// Router Alert (type 5, value 0: MLD) and a PadN to fill 8 bytes.
	hopByHop := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{
		{OptionType: 0x05, OptionLength: 2, OptionData: []byte{0, 0}},
		{OptionType: 0x01, OptionLength: 0},
	}}
	hopByHop.NextHeader = layers.IPProtocolIPv6Routing
	routing := &layers.IPv6Routing{RoutingType: 0, SegmentsLeft: 0, Reserved: []byte{0, 0, 0, 0}, SourceRoutingIPs: []net.IP{net.ParseIP("fd00::9")}}
	routing.NextHeader = layers.IPProtocolIPv6Destination

	// AH (RFC 4302) is not serialisable by layers: next header, payload
	// length in 4-byte words minus 2, reserved, SPI, sequence, 12-byte ICV.
	ah := unhex(`
		06                        // next header: TCP
		04                        // length: (4+2)*4 = 24 bytes
		0000                      // reserved
		00001000                  // SPI
		00000001                  // sequence number
		000000000000000000000000  // ICV (HMAC-SHA1-96)`)
	ahPacket := func() []byte {
		ip := ipv6(layers.IPProtocolAH)
		tcp := tcpToServer()
		if err := tcp.SetNetworkLayerForChecksum(ip); err != nil {
			tb.Fatal(err)
		}
		seg := build(tb, tcp, gopacket.Payload(cqlQuery))
		return build(tb, ip, gopacket.Payload(cat(ah, seg)))
	}()

	udp := &layers.UDP{SrcPort: 5353, DstPort: 5353}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: clientMAC, SourceProtAddress: clientV4, DstHwAddress: make([]byte, 6), DstProtAddress: serverV4}

	// Ethernet padding: a bare ACK is 54 bytes and goes out padded to 60.
	ack := &layers.TCP{SrcPort: 9042, DstPort: 51000, Seq: 2000, Ack: 1024, ACK: true, Window: 501}
	ackIP := ipv4(layers.IPProtocolTCP)
	ackIP.SrcIP, ackIP.DstIP = serverV4, clientV4
	ethAck := build(tb, ether(layers.EthernetTypeIPv4), ackIP, ack)
	ackPkt := &Packet{TS: testTS, SrcIP: mapped(serverV4), DstIP: mapped(clientV4), SrcPort: 9042, DstPort: 51000,
		Seq: 2000, Ack: 1024, Flags: FlagACK, Window: 501, Payload: []byte{}, WireLen: 60}

	// TSO: a segment captured on the sender before the NIC split it has IP
	// total length 0.
	tso := append([]byte(nil), eth4...)
	tso[14+2], tso[14+3] = 0, 0

	// Bad headers, each derived from a good frame.
	mut := func(b []byte, at int, v byte) []byte {
		b = append([]byte(nil), b...)
		b[at] = v
		return b
	}

	return []decodeCase{
		// Link layers.
		{name: "ethernet/ipv4/tcp", link: layers.LinkTypeEthernet, frame: eth4, want: DecodeTCP, pkt: wantV4(78), gopacket: true},
		{name: "ethernet/ipv6/tcp", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV6(98), gopacket: true},
		{name: "ethernet/802.1Q/ipv4/tcp", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeDot1Q), &layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeIPv4}, ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV4(82), gopacket: true},
		{name: "ethernet/802.1ad+802.1Q/ipv4/tcp", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeQinQ), &layers.Dot1Q{VLANIdentifier: 300, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 50, Type: layers.EthernetTypeIPv4}, ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV4(86), gopacket: true},
		{name: "ethernet/0x9100+802.1Q/ipv6/tcp", link: layers.LinkTypeEthernet, frame: build(tb, ether(0x9100), &layers.Dot1Q{VLANIdentifier: 7, Type: layers.EthernetTypeDot1Q}, &layers.Dot1Q{VLANIdentifier: 8, Type: layers.EthernetTypeIPv6}, ipv6(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV6(106)},
		{name: "linux-sll/ipv4/tcp", link: layers.LinkTypeLinuxSLL, frame: cat(sll("0800"), v4), want: DecodeTCP, pkt: wantV4(80), gopacket: true},
		{name: "linux-sll/ipv6/tcp", link: layers.LinkTypeLinuxSLL, frame: cat(sll("86dd"), v6), want: DecodeTCP, pkt: wantV6(100), gopacket: true},
		{name: "linux-sll/802.1Q/ipv4/tcp", link: layers.LinkTypeLinuxSLL, frame: cat(sll("8100"), vlan(300, "0800"), v4), want: DecodeTCP, pkt: wantV4(84), gopacket: true},
		{name: "linux-sll2/ipv4/tcp", link: layers.LinkTypeLinuxSLL2, frame: cat(sll2("0800"), v4), want: DecodeTCP, pkt: wantV4(84), gopacket: true},
		{name: "linux-sll2/ipv6/tcp", link: layers.LinkTypeLinuxSLL2, frame: cat(sll2("86dd"), v6), want: DecodeTCP, pkt: wantV6(104), gopacket: true},
		{name: "null/little-endian AF_INET", link: layers.LinkTypeNull, frame: build(tb, &layers.Loopback{Family: layers.ProtocolFamilyIPv4}, ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV4(68), gopacket: true},
		{name: "null/big-endian AF_INET", link: layers.LinkTypeNull, frame: cat(unhex("00000002"), v4), want: DecodeTCP, pkt: wantV4(68), gopacket: true},
		{name: "null/little-endian AF_INET6 darwin", link: layers.LinkTypeNull, frame: cat(unhex("1e000000"), v6), want: DecodeTCP, pkt: wantV6(88), gopacket: true},
		{name: "null/big-endian AF_INET6 freebsd", link: layers.LinkTypeNull, frame: cat(unhex("0000001c"), v6), want: DecodeTCP, pkt: wantV6(88), gopacket: true},
		{name: "null/little-endian AF_INET6 netbsd", link: layers.LinkTypeNull, frame: cat(unhex("18000000"), v6), want: DecodeTCP, pkt: wantV6(88), gopacket: true},
		{name: "loop/AF_INET", link: layers.LinkTypeLoop, frame: cat(unhex("00000002"), v4), want: DecodeTCP, pkt: wantV4(68), gopacket: true},
		{name: "loop/AF_INET6", link: layers.LinkTypeLoop, frame: cat(unhex("00000018"), v6), want: DecodeTCP, pkt: wantV6(88), gopacket: true},
		{name: "null/AF_APPLETALK", link: layers.LinkTypeNull, frame: cat(unhex("10000000"), v4), want: DecodeNotTCP},
		{name: "raw/ipv4", link: layers.LinkTypeRaw, frame: v4, want: DecodeTCP, pkt: wantV4(64), gopacket: true},
		{name: "raw/ipv6", link: layers.LinkTypeRaw, frame: v6, want: DecodeTCP, pkt: wantV6(84), gopacket: true},
		{name: "raw/bsd 12", link: 12, frame: v4, want: DecodeTCP, pkt: wantV4(64)},
		{name: "raw/openbsd 14", link: 14, frame: v6, want: DecodeTCP, pkt: wantV6(84)},
		{name: "ipv4 link", link: layers.LinkTypeIPv4, frame: v4, want: DecodeTCP, pkt: wantV4(64)},
		{name: "ipv6 link", link: layers.LinkTypeIPv6, frame: v6, want: DecodeTCP, pkt: wantV6(84)},
		{name: "ipv4 link/ipv6 packet", link: layers.LinkTypeIPv4, frame: v6, want: DecodeMalformed},
		{name: "raw/version 5", link: layers.LinkTypeRaw, frame: mut(v4, 0, 0x55), want: DecodeMalformed},
		{name: "802.11 unsupported", link: layers.LinkTypeIEEE802_11, frame: eth4, want: DecodeUnsupportedLink},

		// IPv4.
		{name: "ipv4 options", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeIPv4), ipOptions, tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV4(82), gopacket: true},
		{name: "tcp options", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpOptions, gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV4(90), gopacket: true},
		{name: "syn-ack with mss", link: layers.LinkTypeEthernet, frame: ethSynAck, want: DecodeTCP, pkt: &Packet{TS: testTS, SrcIP: mapped(clientV4), DstIP: mapped(serverV4), SrcPort: 9042, DstPort: 51000, Seq: 7, Ack: 1001, Flags: FlagSYN | FlagACK | FlagECE, Window: 65535, Payload: []byte{}, WireLen: 60}, gopacket: true},
		{name: "all flags", link: layers.LinkTypeRaw, frame: tcp4(allFlags, nil), want: DecodeTCP, pkt: &Packet{TS: testTS, SrcIP: mapped(clientV4), DstIP: mapped(serverV4), SrcPort: 1, DstPort: 2, Flags: 0xFF, Payload: []byte{}, WireLen: 40}, gopacket: true},
		{name: "ethernet padding trimmed", link: layers.LinkTypeEthernet, frame: ethAck, want: DecodeTCP, pkt: ackPkt, gopacket: true},
		{name: "ethernet padding and FCS trimmed", link: layers.LinkTypeEthernet, frame: cat(eth4, unhex("deadbeef")), want: DecodeTCP, pkt: wantV4(82), gopacket: true},
		{name: "tso total length 0", link: layers.LinkTypeEthernet, frame: tso, want: DecodeTCP, pkt: wantV4(78)},
		{name: "ipv4 more fragments", link: layers.LinkTypeEthernet, frame: frag(layers.IPv4MoreFragments, 0, layers.IPProtocolTCP), want: DecodeFragment, gopacket: true},
		{name: "ipv4 fragment offset", link: layers.LinkTypeEthernet, frame: frag(0, 185, layers.IPProtocolTCP), want: DecodeFragment, gopacket: true},
		{name: "ipv4 udp fragment", link: layers.LinkTypeEthernet, frame: frag(layers.IPv4MoreFragments, 0, layers.IPProtocolUDP), want: DecodeNotTCP, gopacket: true},
		{name: "ipv4 udp", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolUDP), udp, gopacket.Payload(cqlQuery)), want: DecodeNotTCP, gopacket: true},
		{name: "arp", link: layers.LinkTypeEthernet, frame: build(tb, ether(layers.EthernetTypeARP), arp), want: DecodeNotTCP, gopacket: true},
		{name: "802.3 length field", link: layers.LinkTypeEthernet, frame: mut(mut(eth4, 12, 0x00), 13, 0x40), want: DecodeNotTCP},
		{name: "ipv4 ihl 4", link: layers.LinkTypeEthernet, frame: mut(eth4, 14, 0x44), want: DecodeMalformed, gopacket: true},
		{name: "ipv4 version 6 in ipv4 ethertype", link: layers.LinkTypeEthernet, frame: mut(eth4, 14, 0x65), want: DecodeMalformed, gopacket: true},
		{name: "ipv4 total length < ihl", link: layers.LinkTypeEthernet, frame: mut(eth4, 17, 19), want: DecodeMalformed, gopacket: true},
		{name: "ipv4 total length past wire", link: layers.LinkTypeEthernet, frame: mut(eth4, 16, 0x05), want: DecodeMalformed, gopacket: true},
		{name: "ipv4 total length leaves no tcp header", link: layers.LinkTypeEthernet, frame: mut(eth4, 17, 30), want: DecodeMalformed, gopacket: true},
		{name: "tcp data offset 4", link: layers.LinkTypeEthernet, frame: mut(eth4, 14+20+12, 0x40), want: DecodeMalformed, gopacket: true},
		{name: "tcp data offset past segment", link: layers.LinkTypeRaw, frame: mut(tcp4(tcpToServer(), nil), 20+12, 0xF0), want: DecodeMalformed, gopacket: true},

		// Snap length: the capture kept fewer bytes than the wire had.
		{name: "snaplen cuts payload", link: layers.LinkTypeEthernet, frame: ethBig[:14+20+20+30], wireLen: len(ethBig), want: DecodeTCP,
			pkt: wantV4(len(ethBig), func(p *Packet) { p.Payload = ethBig[54:84]; p.Missing = 240 - 30 }), gopacket: true},
		{name: "snaplen at end of tcp header", link: layers.LinkTypeEthernet, frame: ethBig[:54], wireLen: len(ethBig), want: DecodeTCP,
			pkt: wantV4(len(ethBig), func(p *Packet) { p.Payload = []byte{}; p.Missing = 240 }), gopacket: true},
		{name: "snaplen cuts tcp header", link: layers.LinkTypeEthernet, frame: ethBig[:50], wireLen: len(ethBig), want: DecodeMalformed},
		{name: "snaplen cuts tcp options", link: layers.LinkTypeEthernet, frame: ethSynAck[:14+20+22], wireLen: 60, want: DecodeMalformed},
		{name: "snaplen cuts ipv4 header", link: layers.LinkTypeEthernet, frame: ethBig[:30], wireLen: len(ethBig), want: DecodeMalformed},
		{name: "snaplen cuts ethernet header", link: layers.LinkTypeEthernet, frame: ethBig[:10], wireLen: len(ethBig), want: DecodeMalformed},
		{name: "cut frame, wire length not larger", link: layers.LinkTypeEthernet, frame: ethBig[:84], want: DecodeMalformed},
		{name: "snaplen cuts ipv6 payload", link: layers.LinkTypeRaw, frame: v6[:70], wireLen: len(v6), want: DecodeTCP,
			pkt: wantV6(len(v6), func(p *Packet) { p.Payload = cqlQuery[:10]; p.Missing = 14 }), gopacket: true},

		// IPv6 extension headers.
		{name: "ipv6 hop-by-hop, routing, destination options", link: layers.LinkTypeRaw,
			frame: build(tb, ipv6(layers.IPProtocolIPv6HopByHop), hopByHop, routing, dstOpt(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery)),
			want:  DecodeTCP, pkt: wantV6(40 + 8 + 24 + 8 + 44), gopacket: true},
		{name: "ipv6 authentication header", link: layers.LinkTypeRaw, frame: ahPacket, want: DecodeTCP, pkt: wantV6(40 + 24 + 44)},
		// gopacket.NewPacket treats every IPv6 fragment header as a fragment,
		// atomic ones too, so there is no cross-check here.
		{name: "ipv6 atomic fragment", link: layers.LinkTypeRaw, frame: frag6(0, false, layers.IPProtocolTCP, tcpToServer(), gopacket.Payload(cqlQuery)), want: DecodeTCP, pkt: wantV6(40 + 8 + 44)},
		{name: "ipv6 first fragment", link: layers.LinkTypeRaw, frame: frag6(0, true, layers.IPProtocolTCP, gopacket.Payload(cqlQuery)), want: DecodeFragment, gopacket: true},
		{name: "ipv6 last fragment", link: layers.LinkTypeRaw, frame: frag6(100, false, layers.IPProtocolTCP, gopacket.Payload(cqlQuery)), want: DecodeFragment, gopacket: true},
		{name: "ipv6 udp fragment", link: layers.LinkTypeRaw, frame: frag6(100, true, layers.IPProtocolUDP, gopacket.Payload(cqlQuery)), want: DecodeNotTCP},
		{name: "ipv6 esp", link: layers.LinkTypeRaw, frame: build(tb, ipv6(layers.IPProtocolESP), gopacket.Payload(cqlQuery)), want: DecodeNotTCP},
		{name: "ipv6 no next header", link: layers.LinkTypeRaw, frame: build(tb, ipv6(layers.IPProtocolNoNextHeader)), want: DecodeNotTCP, gopacket: true},
		{name: "ipv6 icmpv6", link: layers.LinkTypeRaw, frame: build(tb, ipv6(layers.IPProtocolICMPv6), &layers.ICMPv6{TypeCode: layers.CreateICMPv6TypeCode(128, 0)}), want: DecodeNotTCP},
		{name: "ipv6 extension header past payload", link: layers.LinkTypeRaw, frame: mut(build(tb, ipv6(layers.IPProtocolIPv6Destination), dstOpt(layers.IPProtocolTCP), tcpToServer()), 41, 9), want: DecodeMalformed, gopacket: true},
		{name: "ipv6 payload length past wire", link: layers.LinkTypeRaw, frame: mut(v6, 4, 1), want: DecodeMalformed, gopacket: true},
		{name: "ipv6 header cut", link: layers.LinkTypeRaw, frame: v6[:39], wireLen: len(v6), want: DecodeMalformed},
	}
}

func TestDecodePacket(t *testing.T) {
	for _, c := range decodeCases(t) {
		t.Run(c.name, func(t *testing.T) {
			wireLen := c.wireLen
			if wireLen == 0 {
				wireLen = len(c.frame)
			}
			var p Packet
			got := DecodePacket(c.link, c.frame, wireLen, testTS, &p)
			if got != c.want {
				t.Fatalf("DecodePacket = %v, want %v\nframe %x", got, c.want, c.frame)
			}
			if c.want == DecodeTCP {
				assertPacket(t, &p, c.pkt)
				if len(p.Payload) > 0 && offsetIn(c.frame, p.Payload) < 0 {
					t.Errorf("Payload does not alias the frame")
				}
			} else if p.Payload != nil || p.SrcPort != 0 || p.TS != 0 {
				t.Errorf("p written for result %v: %+v", got, p)
			}
			if c.gopacket {
				crossCheck(t, c.link, c.frame, wireLen, got, &p)
			}
		})
	}
}

func assertPacket(t *testing.T, got, want *Packet) {
	t.Helper()
	if !bytes.Equal(got.Payload, want.Payload) {
		t.Errorf("Payload = %x, want %x", got.Payload, want.Payload)
	}
	if got.Payload == nil {
		t.Errorf("Payload is nil, want a (possibly empty) slice of the frame")
	}
	g, w := *got, *want
	g.Payload, w.Payload = nil, nil
	if w.Num == 0 {
		g.Num = 0 // a decoded packet has no number; a source's does
	}
	if !reflect.DeepEqual(g, w) {
		t.Errorf("Packet =\n %+v\nwant\n %+v", g, w)
	}
}

// crossCheck decodes the frame with gopacket's layers and compares: a TCP
// layer gopacket decodes without error must be what DecodePacket found, and
// DecodePacket must not find TCP where gopacket does not.
func crossCheck(t *testing.T, link layers.LinkType, frame []byte, wireLen int, got DecodeResult, p *Packet) {
	t.Helper()
	gp := gopacket.NewPacket(frame, link, gopacket.DecodeOptions{NoCopy: true})
	tcp, _ := gp.Layer(layers.LayerTypeTCP).(*layers.TCP)
	if gp.ErrorLayer() != nil || gp.Layer(gopacket.LayerTypeFragment) != nil {
		tcp = nil
	}
	if tcp == nil {
		if got == DecodeTCP {
			// DecodePacket is stricter about lengths than gopacket is, not
			// laxer: it only finds TCP where gopacket does too.
			t.Errorf("DecodePacket found TCP, gopacket did not: %v", gp)
		}
		return
	}
	if got != DecodeTCP {
		// gopacket accepts what contradicts the wire length (it does not
		// know it) and IPv4 headers shorter than their options; those are
		// the only disagreements allowed.
		if got == DecodeMalformed {
			return
		}
		t.Errorf("gopacket found TCP, DecodePacket said %v: %v", got, gp)
		return
	}
	var flags uint8
	for i, set := range []bool{tcp.FIN, tcp.SYN, tcp.RST, tcp.PSH, tcp.ACK, tcp.URG, tcp.ECE, tcp.CWR} {
		if set {
			flags |= 1 << i
		}
	}
	if p.SrcPort != uint16(tcp.SrcPort) || p.DstPort != uint16(tcp.DstPort) || p.Seq != tcp.Seq || p.Ack != tcp.Ack ||
		p.Flags != flags || p.Window != tcp.Window || !bytes.Equal(p.Payload, tcp.Payload) {
		t.Errorf("DecodePacket and gopacket disagree:\n ours %+v\n gopacket %v", *p, tcp)
	}
	src, dst := gp.NetworkLayer().NetworkFlow().Endpoints()
	if !net.IP(p.SrcIP[:]).Equal(net.IP(src.Raw())) || !net.IP(p.DstIP[:]).Equal(net.IP(dst.Raw())) {
		t.Errorf("addresses %v → %v, gopacket %v → %v", net.IP(p.SrcIP[:]), net.IP(p.DstIP[:]), src, dst)
	}
	if _, isV6 := gp.NetworkLayer().(*layers.IPv6); isV6 != p.IPv6 {
		t.Errorf("IPv6 = %v, gopacket network layer %T", p.IPv6, gp.NetworkLayer())
	}
	if want := wireLen - len(frame); p.Missing > want {
		t.Errorf("Missing = %d, more than the %d bytes the snap length cut", p.Missing, want)
	}
}

// TestDecodePacketAllocs pins the promise that decoding allocates nothing.
func TestDecodePacketAllocs(t *testing.T) {
	cases := decodeCases(t)
	var p Packet
	allocs := testing.AllocsPerRun(100, func() {
		for _, c := range cases {
			DecodePacket(c.link, c.frame, len(c.frame), testTS, &p)
		}
	})
	if allocs != 0 {
		t.Errorf("DecodePacket allocates %.1f times per run of %d cases", allocs, len(cases))
	}
}

func BenchmarkDecodePacketEthernetIPv4(b *testing.B) {
	frame := build(b, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery))
	var p Packet
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if DecodePacket(layers.LinkTypeEthernet, frame, len(frame), testTS, &p) != DecodeTCP {
			b.Fatal("not TCP")
		}
	}
}

// BenchmarkGopacketDecodingLayerParser is the figure the hand-written walk
// is measured against: gopacket's fastest generic path on the same frame.
func BenchmarkGopacketDecodingLayerParser(b *testing.B) {
	frame := build(b, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery))
	var (
		eth     layers.Ethernet
		ip4     layers.IPv4
		ip6     layers.IPv6
		tcp     layers.TCP
		payload gopacket.Payload
	)
	parser := gopacket.NewDecodingLayerParser(layers.LayerTypeEthernet, &eth, &ip4, &ip6, &tcp, &payload)
	decoded := make([]gopacket.LayerType, 0, 8)
	b.ReportAllocs()
	for b.Loop() {
		if err := parser.DecodeLayers(frame, &decoded); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkGopacketNewPacket is gopacket's general decoder, the one the
// differential tests use, on the same frame.
func BenchmarkGopacketNewPacket(b *testing.B) {
	frame := build(b, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), gopacket.Payload(cqlQuery))
	b.ReportAllocs()
	for b.Loop() {
		p := gopacket.NewPacket(frame, layers.LinkTypeEthernet, gopacket.DecodeOptions{Lazy: true, NoCopy: true})
		if p.Layer(layers.LayerTypeTCP) == nil {
			b.Fatal("no TCP")
		}
	}
}
