package capture

// TCP header flags as they appear in Packet.Flags.
const (
	FlagFIN = 0x01
	FlagSYN = 0x02
	FlagRST = 0x04
	FlagPSH = 0x08
	FlagACK = 0x10
	FlagURG = 0x20
	FlagECE = 0x40
	FlagCWR = 0x80
)

// Packet is one TCP segment as the capture saw it. Addresses are 16 bytes:
// IPv4 addresses are stored IPv4-mapped (::ffff:a.b.c.d) with IPv6 false.
// Payload aliases the buffer the packet was decoded from and is valid until
// the source reads the next packet.
type Packet struct {
	TS int64 // capture time, Unix nanoseconds
	// Num is the packet's number in its source, counting from 1 every
	// record read (TCP or not), as Wireshark numbers frames: a connection
	// is named by the number of its first packet, which any number of
	// analysis workers agree on. Member i of a fanout group of n
	// (OpenLiveFanout) numbers its records i+1, i+1+n, i+1+2n...: unique
	// over the group, though not in order of arrival across members.
	Num     uint64
	SrcIP   [16]byte
	DstIP   [16]byte
	IPv6    bool
	SrcPort uint16
	DstPort uint16
	Seq     uint32
	Ack     uint32
	Flags   uint8
	Window  uint16
	Payload []byte
	Missing int // payload bytes the snap length cut off (they exist on the wire, not in Payload)
	WireLen int // original length of the frame on the wire (never less than the captured length)
}
