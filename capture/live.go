package capture

import (
	"errors"
	"fmt"
	"io"
	"net/netip"
	"time"
)

// LiveConfig says what a live capture listens to. The zero values of the
// sizes and the timeout pick the defaults below.
type LiveConfig struct {
	Interface string       // "lo", "eth0", or "any" for every interface
	Ports     []uint16     // CQL server ports for the kernel filter; none keeps every TCP segment
	Hosts     []netip.Addr // optional: only traffic to or from these hosts
	Snaplen   int          // bytes kept of each packet, at most MaxRecordLen; 0 = DefaultSnaplen
	RingMB    int          // ring size in MiB; 0 = DefaultRingMB
	// Timeout bounds how long Next waits: it returns ErrTimeout when no
	// packet arrived within it. 0 = DefaultTimeout.
	Timeout time.Duration
	// Dump, when set, receives every captured frame exactly as the kernel
	// delivered it, in DumpFormat. Nothing is written before the first
	// call to Next, which writes the file header: a file created on first
	// write (NewDumpFile) is then created after DropPrivileges, owned by
	// the user the capture runs as. Writes are buffered and flushed
	// whenever Next waits for packets and at Close. Close does not close
	// Dump: close it after Close, or the last buffered frames (up to 1
	// MiB) are lost.
	Dump       io.Writer
	DumpFormat string // "pcap" (the default) or "pcapng"
}

// Defaults of LiveConfig.
const (
	// DefaultSnaplen is libpcap's default: whole packets, also the 64 KiB
	// ones TSO and GRO make (and loopback's 64 KiB MTU).
	DefaultSnaplen = MaxRecordLen
	// DefaultRingMB holds about a quarter of a second of 1 Gbit/s line
	// rate, or 100k small CQL packets: the slack for the analyzer's
	// pauses (a report, a garbage collection) without drops.
	DefaultRingMB = 32
	// DefaultTimeout is how often an idle capture lets its caller look
	// up (publish a snapshot, notice a cancellation).
	DefaultTimeout = 100 * time.Millisecond
)

// ringBlockSize is the size of a TPACKET_V3 block: the kernel fills a
// block with packets back to back and hands the whole block over when it
// is full or its timer expires. A block must hold the largest packet
// (MaxRecordLen plus headers) and several of them.
const ringBlockSize = 1 << 20

// MaxLiveFanout is the most members OpenLiveFanout opens: a fanout group
// takes 256 sockets (the kernel's legacy PACKET_FANOUT_MAX), one of them
// a probe while the members join.
const MaxLiveFanout = 255

// ErrLiveUnsupported is returned by OpenLive where there is no AF_PACKET.
var ErrLiveUnsupported = errors.New("capture: live capture needs Linux (AF_PACKET)")

// withDefaults checks c and fills in the defaults.
func (c LiveConfig) withDefaults() (LiveConfig, error) {
	if c.Interface == "" {
		return c, errors.New("capture: no interface to capture on")
	}
	if c.Snaplen == 0 {
		c.Snaplen = DefaultSnaplen
	}
	if c.Snaplen < 0 || c.Snaplen > MaxRecordLen {
		// Longer records would not read back: FileSource, like libpcap,
		// takes none longer than MaxRecordLen.
		return c, fmt.Errorf("capture: snap length %d out of range (1 to %d)", c.Snaplen, MaxRecordLen)
	}
	if c.RingMB == 0 {
		c.RingMB = DefaultRingMB
	}
	if c.RingMB < 1 || c.RingMB > 4096 {
		return c, fmt.Errorf("capture: ring size %d MiB out of range (1 to 4096)", c.RingMB)
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Timeout < time.Millisecond {
		// poll(2) counts in milliseconds.
		return c, fmt.Errorf("capture: read timeout %v below 1ms", c.Timeout)
	}
	for _, h := range c.Hosts {
		if !h.IsValid() {
			return c, errors.New("capture: invalid host address")
		}
	}
	switch c.DumpFormat {
	case "":
		c.DumpFormat = "pcap"
	case "pcap", "pcapng":
	default:
		return c, fmt.Errorf("capture: dump format %q is neither pcap nor pcapng", c.DumpFormat)
	}
	return c, nil
}

// blockTimeout is how long the kernel leaves a partly filled block open:
// half the read timeout (at most 50ms), so a packet waits in the ring at
// most that long before Next can see it, and an idle capture still wakes
// up within its timeout. Packet times are stamped by the kernel on
// arrival, so the wait does not change any latency measured.
func blockTimeout(readTimeout time.Duration) time.Duration {
	return min(max(readTimeout/2, time.Millisecond), 50*time.Millisecond)
}

// countDecode files one record under its decode result and reports whether
// it was a TCP packet.
func countDecode(st *SourceStats, r DecodeResult) bool {
	switch r {
	case DecodeTCP:
		st.TCP++
		return true
	case DecodeNotTCP:
		st.NotTCP++
	case DecodeFragment:
		st.Fragments++
	case DecodeUnsupportedLink:
		st.UnsupportedLink++
	default:
		st.Malformed++
	}
	return false
}
