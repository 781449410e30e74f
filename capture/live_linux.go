package capture

import (
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// LiveSource reads packets from a network interface through an AF_PACKET
// socket with a TPACKET_V3 ring: the kernel copies each packet the filter
// keeps into memory shared with this process, in blocks, and hands over a
// block at a time, so a busy capture costs a handful of system calls per
// thousand packets and no copy or allocation per packet in user space.
//
// It is a Source. Next is called from one goroutine (the pipeline's);
// Stats and Close may be called from any goroutine, also while Next waits
// (they then wait for it, at most the read timeout), and Close makes Next
// return io.EOF.
type LiveSource struct {
	// mu is held by Next while it reads the ring, which Close unmaps:
	// Close takes it, so it never pulls the ring from under a reader.
	// It also guards the counters Stats reads.
	mu      sync.Mutex
	closing atomic.Bool

	tp   *afpacket.TPacket // nil once closed
	link layers.LinkType
	// since: packets stamped before the filter was attached are
	// skipped, up to the first one stamped after (then 0: a clock stepped
	// back later must not hide packets).
	since int64
	stats SourceStats
	err   error // sticky read or dump error
	// Packet numbers: the k-th record (from 0) is numbered k*stride +
	// member + 1, so that the members of a fanout group, each counting
	// its own records, never give two packets one number. A source on
	// its own has stride 1 and member 0: 1, 2, 3...
	stride, member uint64

	// Kernel drop counting: afpacket keeps the running sum of the
	// PACKET_STATISTICS reads (each read resets the kernel's counters)
	// in 32 bits; the difference between two sums is added here.
	dropsSum uint32
	dropped  uint64

	dump        *dumper
	dumpStarted bool // this source asked the dump for its header

	group *liveGroup // the fanout group this source is a member of, nil if none
}

var _ Source = (*LiveSource)(nil)

// ARPHRD values (linux/if_arp.h) of the devices whose frames start with an
// Ethernet header.
const (
	arphrdEther    = 1
	arphrdLoopback = 772
)

// OpenLive opens a live capture. It needs CAP_NET_RAW (root, or the file
// capability PermissionHint describes); without it the error wraps
// syscall.EPERM. Call DropPrivileges after it: the socket stays usable.
//
// On an Ethernet or loopback device the frames are Ethernet; on "any" and
// on layer-3 devices (tun, WireGuard) they are IP packets without a link
// header (LINKTYPE_RAW). For "any" libpcap makes cooked (SLL) headers out
// of the sockaddr_ll the kernel puts beside each packet, which afpacket
// does not expose; a SOCK_DGRAM socket instead starts every packet at its
// IP header whatever the device, and that is all the analysis needs.
func OpenLive(cfg LiveConfig) (*LiveSource, error) {
	ls, err := newLiveSetup(cfg)
	if err != nil {
		return nil, err
	}
	tp, err := ls.open()
	if err != nil {
		return nil, err
	}
	s := &LiveSource{tp: tp, link: ls.link, stride: 1}
	// The socket was receiving from its bind until the filter was in
	// place: whatever came in meanwhile is in the ring unfiltered (other
	// ports, loopback's outgoing copies; TestLiveStartsFiltered saw
	// hundreds). Those packets were stamped before now and come first out
	// of the ring, so Next skips packets older than now until it meets a
	// newer one. (libpcap closes the same window by running a new filter in
	// user space over what the ring already holds.)
	s.startAt(time.Now().UnixNano())
	if ls.cfg.Dump != nil {
		s.dump = ls.newDumper()
	}
	return s, nil
}

// liveSetup is how each AF_PACKET socket of a capture is opened: a
// LiveConfig checked and turned into socket options and a kernel filter.
type liveSetup struct {
	cfg     LiveConfig // with the defaults filled in
	opts    []any      // afpacket options
	filter  []bpf.RawInstruction
	link    layers.LinkType
	ifindex int // the device's index, 0 for "any"
}

func newLiveSetup(cfg LiveConfig) (liveSetup, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return liveSetup{}, err
	}
	ls := liveSetup{cfg: cfg, link: layers.LinkTypeRaw}
	spec := filterSpec{ports: cfg.Ports, hosts: cfg.Hosts, snaplen: uint32(cfg.Snaplen)}
	ls.opts = []any{
		afpacket.OptTPacketVersion(afpacket.TPacketVersion3),
		afpacket.OptBlockSize(ringBlockSize),
		afpacket.OptNumBlocks(cfg.RingMB * (1 << 20) / ringBlockSize),
		afpacket.OptBlockTimeout(blockTimeout(cfg.Timeout)),
		afpacket.OptPollTimeout(cfg.Timeout),
	}
	if cfg.Interface == "any" {
		ls.opts = append(ls.opts, afpacket.OptInterface(""), afpacket.OptSocketType(afpacket.SocketDgram))
		if lo := loopbackIndex(); lo > 0 {
			spec.dropOutgoing, spec.loopbackIfindex = true, uint32(lo)
		}
	} else {
		ifi, err := net.InterfaceByName(cfg.Interface)
		if err != nil {
			return liveSetup{}, fmt.Errorf("capture: interface %q: %w", cfg.Interface, err)
		}
		ls.ifindex = ifi.Index
		ls.opts = append(ls.opts, afpacket.OptInterface(cfg.Interface))
		switch hardwareType(cfg.Interface) {
		case arphrdEther, arphrdLoopback:
			ls.link = layers.LinkTypeEthernet
			spec.ethernet = true
			ls.opts = append(ls.opts, afpacket.OptSocketType(afpacket.SocketRaw))
		default:
			ls.opts = append(ls.opts, afpacket.OptSocketType(afpacket.SocketDgram))
		}
		spec.dropOutgoing = ifi.Flags&net.FlagLoopback != 0
	}
	if ls.filter, err = assembleFilter(spec); err != nil {
		return liveSetup{}, err
	}
	return ls, nil
}

// open opens a socket with its ring and attaches the kernel filter.
func (ls liveSetup) open() (*afpacket.TPacket, error) {
	tp, err := afpacket.NewTPacket(ls.opts...)
	if err != nil {
		return nil, fmt.Errorf("capture: opening an AF_PACKET socket on %s: %w", ls.cfg.Interface, err)
	}
	if err := tp.SetBPF(ls.filter); err != nil {
		tp.Close()
		return nil, fmt.Errorf("capture: attaching the kernel filter on %s: %w", ls.cfg.Interface, err)
	}
	return tp, nil
}

func (ls liveSetup) newDumper() *dumper {
	return newDumper(ls.cfg.Dump, ls.cfg.DumpFormat, ls.link, ls.cfg.Snaplen, ls.cfg.Interface)
}

// startAt makes the source skip the packets stamped before since, which
// came in before the socket was ready (see OpenLive), and counts the
// kernel's drops from now: the drops so far are those packets' too.
func (s *LiveSource) startAt(since int64) {
	s.since = since
	if _, st, err := s.tp.SocketStats(); err == nil {
		s.dropsSum = uint32(st.Drops())
	}
}

// loopbackIndex is the interface index of the loopback device, 0 if none.
func loopbackIndex() int {
	ifs, err := net.Interfaces()
	if err != nil {
		return 0
	}
	for _, ifi := range ifs {
		if ifi.Flags&net.FlagLoopback != 0 {
			return ifi.Index
		}
	}
	return 0
}

// hardwareType is the device's ARPHRD type (what its link header is), -1
// if unknown.
func hardwareType(name string) int {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		return -1
	}
	if err := unix.IoctlIfreq(fd, unix.SIOCGIFHWADDR, ifr); err != nil {
		return -1
	}
	return int(ifr.Uint16()) // sa_family of the hardware address
}

// LinkType is the link type of the frames Next decodes and Dump receives.
func (s *LiveSource) LinkType() layers.LinkType { return s.link }

// Next decodes the next TCP packet into p. It returns ErrTimeout when no
// packet arrived within the read timeout and io.EOF once Close was called.
// p.Payload aliases the ring and is valid until the next call to Next or
// Close. Next allocates nothing per packet.
func (s *LiveSource) Next(p *Packet) error {
	if s.closing.Load() {
		return io.EOF
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tp == nil {
		return io.EOF
	}
	if s.err != nil {
		return s.err
	}
	if s.dump != nil && !s.dumpStarted {
		s.dumpStarted = true
		if err := s.dump.start(); err != nil {
			return s.dumpError(err)
		}
	}
	for {
		data, ci, err := s.tp.ZeroCopyReadPacketData()
		if err != nil {
			if err == afpacket.ErrTimeout {
				if s.closing.Load() {
					return io.EOF
				}
				// A pause: let what was dumped reach the file.
				if s.dump != nil {
					if err := s.dump.flush(); err != nil {
						return s.dumpError(err)
					}
				}
				return ErrTimeout
			}
			s.err = fmt.Errorf("capture: reading the ring: %w", err)
			return s.err
		}
		ts := ci.Timestamp.UnixNano()
		if s.since != 0 {
			if ts < s.since {
				continue
			}
			s.since = 0
		}
		s.stats.Records++
		s.stats.Bytes += uint64(len(data))
		if s.dump != nil {
			if err := s.dump.write(ci, data); err != nil {
				return s.dumpError(err)
			}
		}
		if countDecode(&s.stats, DecodePacket(s.link, data, ci.Length, ts, p)) {
			p.Num = (s.stats.Records-1)*s.stride + s.member + 1
			return nil
		}
		if s.closing.Load() {
			return io.EOF
		}
	}
}

// dumpError makes a failed dump write the sticky error: the capture stops
// rather than go on without the file that was asked for.
func (s *LiveSource) dumpError(err error) error {
	s.err = fmt.Errorf("capture: writing the dump: %w", err)
	return s.err
}

// Stats returns the counters so far. Dropped is the number of packets the
// filter kept but the ring had no room for, read from the kernel on each
// call (after Close, as of Close).
func (s *LiveSource) Stats() SourceStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.readDrops()
	st := s.stats
	st.Dropped = s.dropped
	return st
}

// readDrops adds the kernel's drops since the last read. afpacket sums
// the counters in 32 bits; the difference of two sums is right across a
// wrap as long as fewer than 2³² packets were dropped between two reads.
func (s *LiveSource) readDrops() {
	if s.tp == nil {
		return
	}
	_, st, err := s.tp.SocketStats()
	if err != nil {
		return
	}
	sum := uint32(st.Drops())
	s.dropped += uint64(sum - s.dropsSum)
	s.dropsSum = sum
}

// Close stops the capture: a Next waiting for packets returns io.EOF
// within the read timeout, and Close waits for it before it releases the
// ring. It flushes the dump (and returns the error of that) but does not
// close the dump's writer. Close may be called more than once. On a member
// of a fanout group it closes every member (see OpenLiveFanout).
func (s *LiveSource) Close() error {
	if s.group != nil {
		return s.group.close()
	}
	s.closing.Store(true)
	if !s.closeRing() || s.dump == nil {
		return nil
	}
	if err := s.dump.finish(); err != nil {
		return fmt.Errorf("capture: writing the dump: %w", err)
	}
	return nil
}

// closeRing releases the socket and its ring once Next is done with them,
// keeping the drops counted so far. It reports whether it did (false: it
// was done before).
func (s *LiveSource) closeRing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tp == nil {
		return false
	}
	s.readDrops()
	s.tp.Close()
	s.tp = nil
	return true
}
