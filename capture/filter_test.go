package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

// skb is what the kernel knows of a packet besides its bytes, for the
// filter's ancillary loads.
type skb struct {
	pktType uint32 // skb->pkt_type: 0 to us, 4 outgoing
	ifindex uint32
}

// runFilter runs the filter of spec over frame in x/net/bpf's VM and
// returns how many bytes the kernel would keep (0: dropped). The VM knows
// no ancillary loads, so the packet type and interface index loads are
// replaced by constants: the values the kernel would have loaded.
func runFilter(t *testing.T, spec filterSpec, frame []byte, k skb) int {
	t.Helper()
	prog, err := buildFilter(spec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bpf.Assemble(prog); err != nil {
		t.Fatalf("filter does not assemble: %v", err)
	}
	prog = append([]bpf.Instruction(nil), prog...)
	for i, ins := range prog {
		if ext, ok := ins.(bpf.LoadExtension); ok {
			switch ext.Num {
			case bpf.ExtType:
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: k.pktType}
			case bpf.ExtInterfaceIndex:
				prog[i] = bpf.LoadConstant{Dst: bpf.RegA, Val: k.ifindex}
			default:
				t.Fatalf("filter uses extension %d", ext.Num)
			}
		}
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return min(n, len(frame)) // the kernel keeps no more than the packet
}

func TestFilter(t *testing.T) {
	const snap = 262144
	eth := filterSpec{ethernet: true, ports: []uint16{9042, 19042}, snaplen: snap}
	raw := filterSpec{ports: []uint16{9042, 19042}, snaplen: snap}
	with := func(s filterSpec, edit func(*filterSpec)) filterSpec { edit(&s); return s }

	tcp := func(sport, dport uint16) *layers.TCP {
		return &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), Seq: 1, Ack: 1, ACK: true, PSH: true, Window: 512}
	}
	e4 := func(ls ...gopacket.SerializableLayer) []byte {
		return build(t, append([]gopacket.SerializableLayer{ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP)}, ls...)...)
	}
	e6 := func(ls ...gopacket.SerializableLayer) []byte {
		return build(t, append([]gopacket.SerializableLayer{ether(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolTCP)}, ls...)...)
	}
	query := gopacket.Payload(cqlQuery)
	request := e4(tcpToServer(), query) // 10.0.0.1:51000 → 10.0.0.2:9042

	ipOptions := ipv4(layers.IPProtocolTCP)
	ipOptions.Options = []layers.IPv4Option{{OptionType: 148, OptionLength: 4, OptionData: []byte{0, 0}}} // IHL 6
	// Ports 9042 where a 20-byte IP header would put the TCP ports, and
	// other ports where the 24-byte header really puts them: only a filter
	// that reads the IHL tells them apart.
	decoy := func() []byte {
		b := build(t, ether(layers.EthernetTypeIPv4), ipOptions, tcp(80, 8080), query)
		b[14+20], b[14+21] = 0x23, 0x52
		return b
	}()

	frag4 := func(flags layers.IPv4Flag, offset uint16, proto layers.IPProtocol, payload []byte) []byte {
		ip := ipv4(proto)
		ip.Flags, ip.FragOffset = flags, offset
		return build(t, ether(layers.EthernetTypeIPv4), ip, gopacket.Payload(payload))
	}
	// The first 24 bytes of a TCP segment 51000 → 9042: what a first
	// fragment carries, and what a later one must not be taken for.
	tcpStart := build(t, ipv4(layers.IPProtocolTCP), tcpToServer())[20:]
	frag6 := func(offset uint16, more bool, next layers.IPProtocol, payload []byte) []byte {
		return build(t, ether(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolIPv6Fragment),
			&layers.IPv6Fragment{NextHeader: next, FragmentOffset: offset, MoreFragments: more, Identification: 9}, gopacket.Payload(payload))
	}
	hopByHop := &layers.IPv6HopByHop{Options: []*layers.IPv6HopByHopOption{{OptionType: 0x05, OptionLength: 2, OptionData: []byte{0, 0}}, {OptionType: 0x01, OptionLength: 0}}}
	hopByHop.NextHeader = layers.IPProtocolTCP

	dot1q := func(next layers.EthernetType) *layers.Dot1Q { return &layers.Dot1Q{VLANIdentifier: 300, Type: next} }
	udp := &layers.UDP{SrcPort: 51000, DstPort: 9042}
	arp := &layers.ARP{AddrType: layers.LinkTypeEthernet, Protocol: layers.EthernetTypeIPv4, HwAddressSize: 6, ProtAddressSize: 4,
		Operation: layers.ARPRequest, SourceHwAddress: clientMAC, SourceProtAddress: clientV4, DstHwAddress: make([]byte, 6), DstProtAddress: serverV4}

	hosts := func(addrs ...string) func(*filterSpec) {
		return func(s *filterSpec) {
			for _, a := range addrs {
				s.hosts = append(s.hosts, netip.MustParseAddr(a))
			}
		}
	}
	manyV6 := func(s *filterSpec) {
		// 40 hosts put the matching one more than 255 instructions
		// past the first comparison.
		for i := 0; i < 40; i++ {
			s.hosts = append(s.hosts, netip.AddrFrom16([16]byte{0xfd, 0xee, 15: byte(i)}))
		}
		s.hosts = append(s.hosts, netip.MustParseAddr("fd00::2"))
	}
	loopback := func(s *filterSpec) { s.dropOutgoing = true }
	anyDevice := func(s *filterSpec) { s.dropOutgoing, s.loopbackIfindex = true, 1 }

	cases := []struct {
		name  string
		spec  filterSpec
		frame []byte
		skb   skb
		keep  bool
	}{
		{"ipv4 request to 9042", eth, request, skb{}, true},
		{"ipv4 response from 9042", eth, e4(tcp(9042, 51000), query), skb{}, true},
		{"ipv4 second port", eth, e4(tcp(51000, 19042)), skb{}, true},
		{"ipv4 other port", eth, e4(tcp(51000, 80), query), skb{}, false},
		{"ipv4 udp to 9042", eth, build(t, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolUDP), udp, query), skb{}, false},
		{"ipv4 options", eth, build(t, ether(layers.EthernetTypeIPv4), ipOptions, tcpToServer(), query), skb{}, true},
		{"ipv4 options, 9042 where the ports would be without them", eth, decoy, skb{}, false},
		{"ipv4 first fragment", eth, frag4(layers.IPv4MoreFragments, 0, layers.IPProtocolTCP, tcpStart), skb{}, true},
		{"ipv4 later fragment", eth, frag4(layers.IPv4MoreFragments, 185, layers.IPProtocolTCP, tcpStart), skb{}, false},
		{"ipv4 last fragment", eth, frag4(0, 185, layers.IPProtocolTCP, tcpStart), skb{}, false},
		{"ipv4 cut before the ports", eth, request[:14+20+1], skb{}, false},
		{"arp", eth, build(t, ether(layers.EthernetTypeARP), arp), skb{}, false},
		{"ipv6 request", eth, e6(tcpToServer(), query), skb{}, true},
		{"ipv6 other port", eth, e6(tcp(51000, 80)), skb{}, false},
		{"ipv6 udp", eth, build(t, ether(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolUDP), udp, query), skb{}, false},
		{"ipv6 first fragment", eth, frag6(0, true, layers.IPProtocolTCP, tcpStart), skb{}, true},
		{"ipv6 atomic fragment", eth, frag6(0, false, layers.IPProtocolTCP, tcpStart), skb{}, true},
		{"ipv6 later fragment", eth, frag6(100, true, layers.IPProtocolTCP, tcpStart), skb{}, false},
		{"ipv6 udp fragment", eth, frag6(0, true, layers.IPProtocolUDP, tcpStart), skb{}, false},
		{"ipv6 hop-by-hop header (not walked)", eth, build(t, ether(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolIPv6HopByHop), hopByHop, tcpToServer()), skb{}, false},
		{"802.1Q ipv4", eth, build(t, ether(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer(), query), skb{}, true},
		{"802.1Q ipv4 other port", eth, build(t, ether(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcp(1, 2)), skb{}, false},
		{"802.1Q ipv6", eth, build(t, ether(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolTCP), tcpToServer()), skb{}, true},
		{"802.1ad+802.1Q ipv4", eth, build(t, ether(layers.EthernetTypeQinQ), dot1q(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer()), skb{}, true},
		{"0x9100+802.1Q ipv6", eth, build(t, ether(0x9100), dot1q(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolTCP), tcpToServer()), skb{}, true},
		{"three tags", eth, build(t, ether(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolTCP), tcpToServer()), skb{}, false},
		{"raw ipv4", raw, request[14:], skb{}, true},
		{"raw ipv6", raw, e6(tcpToServer())[14:], skb{}, true},
		{"raw ipv4 other port", raw, e4(tcp(51000, 80))[14:], skb{}, false},
		{"raw ipv6 first fragment", raw, frag6(0, true, layers.IPProtocolTCP, tcpStart)[14:], skb{}, true},
		{"raw version 5", raw, append([]byte{0x55}, request[15:]...), skb{}, false},
		{"no ports: any tcp", with(eth, func(s *filterSpec) { s.ports = nil }), e4(tcp(1, 2)), skb{}, true},
		{"no ports: not udp", with(eth, func(s *filterSpec) { s.ports = nil }), build(t, ether(layers.EthernetTypeIPv4), ipv4(layers.IPProtocolUDP), udp), skb{}, false},
		{"host: server", with(eth, hosts("10.0.0.2")), request, skb{}, true},
		{"host: client", with(eth, hosts("10.9.9.9", "10.0.0.1")), request, skb{}, true},
		{"host: IPv4-mapped form", with(eth, hosts("::ffff:10.0.0.2")), request, skb{}, true},
		{"host: neither end", with(eth, hosts("10.0.0.3")), request, skb{}, false},
		{"host: right host, other port", with(eth, hosts("10.0.0.2")), e4(tcp(51000, 80)), skb{}, false},
		{"host: only ipv6 hosts, ipv4 packet", with(eth, hosts("fd00::2")), request, skb{}, false},
		{"host: ipv6 server", with(eth, hosts("fd00::2")), e6(tcpToServer()), skb{}, true},
		{"host: ipv6 client behind vlan", with(eth, hosts("fd00::1")), build(t, ether(layers.EthernetTypeDot1Q), dot1q(layers.EthernetTypeIPv6), ipv6(layers.IPProtocolTCP), tcpToServer()), skb{}, true},
		{"host: ipv6 differs in the last word", with(eth, hosts("fd00::3")), e6(tcpToServer()), skb{}, false},
		{"host: ipv6 differs in the first word", with(eth, hosts("fd01::2")), e6(tcpToServer()), skb{}, false},
		{"host: 41 ipv6 hosts, the last matches", with(eth, manyV6), e6(tcpToServer()), skb{}, true},
		{"host: 41 ipv6 hosts, none matches", with(eth, manyV6), build(t, ether(layers.EthernetTypeIPv6), &layers.IPv6{Version: 6, HopLimit: 64, NextHeader: layers.IPProtocolTCP, SrcIP: clientV6, DstIP: clientV6}, tcpToServer()), skb{}, false},
		{"loopback: incoming copy", with(eth, loopback), request, skb{pktType: 0}, true},
		{"loopback: outgoing copy", with(eth, loopback), request, skb{pktType: packetOutgoing}, false},
		{"any: loopback outgoing copy", with(raw, anyDevice), request[14:], skb{pktType: packetOutgoing, ifindex: 1}, false},
		{"any: loopback incoming copy", with(raw, anyDevice), request[14:], skb{pktType: 0, ifindex: 1}, true},
		{"any: outgoing on another interface", with(raw, anyDevice), request[14:], skb{pktType: packetOutgoing, ifindex: 2}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			n := runFilter(t, c.spec, c.frame, c.skb)
			if c.keep && n != len(c.frame) {
				t.Errorf("kept %d of %d bytes, want all", n, len(c.frame))
			}
			if !c.keep && n != 0 {
				t.Errorf("kept %d bytes, want the packet dropped", n)
			}
		})
	}

	t.Run("snaplen", func(t *testing.T) {
		if n := runFilter(t, with(eth, func(s *filterSpec) { s.snaplen = 60 }), request, skb{}); n != 60 {
			t.Errorf("kept %d bytes, want the 60 of the snap length", n)
		}
	})
	t.Run("too long", func(t *testing.T) {
		s := eth
		for p := 1; p <= 1100; p++ {
			s.ports = append(s.ports, uint16(p))
		}
		if _, err := buildFilter(s); !errors.Is(err, errFilterTooLong) {
			t.Errorf("1100 ports: %v, want errFilterTooLong", err)
		}
	})
}

// TestFilterAgreesWithDecoder runs the filter over every record of the
// real captures and checks it keeps exactly the TCP segments DecodePacket
// finds on the port, over Ethernet and (header stripped) raw IP: with the
// CQL port, which keeps nearly everything, and with the client port of one
// connection, which drops the other connections.
func TestFilterAgreesWithDecoder(t *testing.T) {
	var files []string
	for _, dir := range []string{filepath.Join("..", "pcaps"), filepath.Join("..", "..", "shared", "pcaps-public")} {
		filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				files = append(files, path)
			}
			return nil
		})
	}
	var captures, kept, dropped, rawChecked int
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := NewReaderSource(bytes.NewReader(data)); err != nil {
			continue
		}
		recs := readRecords(t, data)
		if len(recs) == 0 || recs[0].link != layers.LinkTypeEthernet {
			continue
		}
		captures++
		ports := []uint16{9042}
		for _, r := range recs {
			var p Packet
			if DecodePacket(r.link, r.data, r.ci.Length, 0, &p) == DecodeTCP && p.DstPort == 9042 {
				ports = append(ports, p.SrcPort)
				break
			}
		}
		for _, port := range ports {
			eth := mustVM(t, filterSpec{ethernet: true, ports: []uint16{port}, snaplen: 262144})
			raw := mustVM(t, filterSpec{ports: []uint16{port}, snaplen: 262144})
			for i, r := range recs {
				var p Packet
				res := DecodePacket(r.link, r.data, r.ci.Length, 0, &p)
				if res == DecodeFragment || res == DecodeMalformed {
					continue // first fragments are kept, malformed frames may be
				}
				want := res == DecodeTCP && (p.SrcPort == port || p.DstPort == port)
				if got := vmKeeps(t, eth, r.data); got != want {
					t.Fatalf("%s record %d (%v), port %d: the Ethernet filter keeps it: %v, the decoder: %v", path, i, res, port, got, want)
				}
				if want {
					kept++
				} else {
					dropped++
				}
				// The same packet as a SOCK_DGRAM socket gives it.
				if et := binary.BigEndian.Uint16(r.data[12:]); len(r.data) > ethernetHeaderLen && (et == etherTypeIPv4 || et == etherTypeIPv6) {
					rawChecked++
					if got := vmKeeps(t, raw, r.data[ethernetHeaderLen:]); got != want {
						t.Fatalf("%s record %d (%v), port %d: the raw filter keeps it: %v, the decoder: %v", path, i, res, port, got, want)
					}
				}
			}
		}
	}
	if captures == 0 {
		t.Skip("no Ethernet captures found")
	}
	t.Logf("%d captures: %d packets kept, %d dropped; %d also checked as raw IP", captures, kept, dropped, rawChecked)
	if kept == 0 || dropped == 0 || rawChecked == 0 {
		t.Error("the captures do not exercise the filter")
	}
}

func mustVM(t *testing.T, spec filterSpec) *bpf.VM {
	t.Helper()
	prog, err := buildFilter(spec)
	if err != nil {
		t.Fatal(err)
	}
	vm, err := bpf.NewVM(prog)
	if err != nil {
		t.Fatal(err)
	}
	return vm
}

func vmKeeps(t *testing.T, vm *bpf.VM, frame []byte) bool {
	t.Helper()
	n, err := vm.Run(frame)
	if err != nil {
		t.Fatal(err)
	}
	return n > 0
}
