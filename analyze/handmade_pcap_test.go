package analyze

import "encoding/binary"

// Hand-made captures for tests that need exact control of every byte: TCP
// connections between clients at 10.0.0.1 and a server at 10.0.0.2, caught
// mid-stream (no handshake).

// tcpPcap writes a classic pcap of Ethernet/IPv4/TCP packets carrying the
// given payloads, alternating client → server and server → client, one
// segment each, 100 µs apart. An empty payload is a bare ACK.
func tcpPcap(payloads ...[]byte) []byte { return tcpPcapPort(9042, payloads...) }

func tcpPcapPort(server uint16, payloads ...[]byte) []byte {
	return tcpPcapClient(40000, server, payloads...)
}

// tcpPcapClient is tcpPcapPort from the client port given.
func tcpPcapClient(client, server uint16, payloads ...[]byte) []byte {
	pkts := make([]rpkt, len(payloads))
	for i, pl := range payloads {
		pkts[i] = rpkt{cport: client, sport: server, dir: i % 2, payload: pl}
	}
	return multiPcap(pkts)
}

// rpkt is one packet of a hand-made multi-connection capture.
type rpkt struct {
	cport, sport uint16
	dir          int // 0 client->server
	payload      []byte
	fin          bool
}

// multiPcap writes an Ethernet/IPv4 pcap of several connections between
// 10.0.0.1 (clients) and 10.0.0.2 (server), 100 µs apart.
func multiPcap(pkts []rpkt) []byte {
	var b []byte
	b = binary.LittleEndian.AppendUint32(b, 0xA1B2C3D4)
	b = binary.LittleEndian.AppendUint16(b, 2)
	b = binary.LittleEndian.AppendUint16(b, 4)
	b = append(b, make([]byte, 8)...)
	b = binary.LittleEndian.AppendUint32(b, 65535)
	b = binary.LittleEndian.AppendUint32(b, 1)
	type ck struct{ c, s uint16 }
	seqs := map[ck]*[2]uint32{}
	for i, p := range pkts {
		k := ck{p.cport, p.sport}
		seq := seqs[k]
		if seq == nil {
			seq = &[2]uint32{1000, 5000}
			seqs[k] = seq
		}
		pl := p.payload
		dir := p.dir
		pkt := make([]byte, 14+20+20)
		binary.BigEndian.PutUint16(pkt[12:], 0x0800)
		ip := pkt[14:]
		ip[0] = 0x45
		binary.BigEndian.PutUint16(ip[2:], uint16(40+len(pl)))
		ip[8], ip[9] = 64, 6
		src, dst := []byte{10, 0, 0, 1}, []byte{10, 0, 0, 2}
		sport, dport := p.cport, p.sport
		if dir == 1 {
			src, dst, sport, dport = dst, src, dport, sport
		}
		copy(ip[12:], src)
		copy(ip[16:], dst)
		tcp := pkt[34:]
		binary.BigEndian.PutUint16(tcp[0:], sport)
		binary.BigEndian.PutUint16(tcp[2:], dport)
		binary.BigEndian.PutUint32(tcp[4:], seq[dir])
		binary.BigEndian.PutUint32(tcp[8:], seq[1-dir])
		tcp[12] = 5 << 4
		tcp[13] = 0x18
		if p.fin {
			tcp[13] |= 0x01
		}
		seq[dir] += uint32(len(pl))
		if p.fin {
			seq[dir]++
		}
		pkt = append(pkt, pl...)
		us := i * 100
		b = binary.LittleEndian.AppendUint32(b, uint32(1700000000+us/1000000))
		b = binary.LittleEndian.AppendUint32(b, uint32(us%1000000))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = binary.LittleEndian.AppendUint32(b, uint32(len(pkt)))
		b = append(b, pkt...)
	}
	return b
}

// frame is a v3/v4 envelope: version (0x84 for a v4 response), flags,
// stream, opcode, body length, body.
func frame(ver, flags byte, stream uint16, op byte, body []byte) []byte {
	b := []byte{ver, flags, byte(stream >> 8), byte(stream), op}
	b = binary.BigEndian.AppendUint32(b, uint32(len(body)))
	return append(b, body...)
}

// str is a [string]: a 2-byte length, then the bytes.
// queryBody is a QUERY body: the text, consistency ONE, no flags.
func queryBody(q string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(q)))
	return append(append(b, q...), 0x00, 0x01, 0x00)
}

func str(s string) []byte { return append(binary.BigEndian.AppendUint16(nil, uint16(len(s))), s...) }

// multimap builds a [string multimap] of single-valued keys.
func multimap(kv ...string) []byte {
	b := binary.BigEndian.AppendUint16(nil, uint16(len(kv)/2))
	for i := 0; i < len(kv); i += 2 {
		b = append(b, str(kv[i])...)
		b = append(b, 0, 1)
		b = append(b, str(kv[i+1])...)
	}
	return b
}

// cat joins payloads, e.g. several frames into one segment.
func cat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}
