package capture

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/gopacket/gopacket/afpacket"
	"golang.org/x/sys/unix"
)

// OpenLiveFanout opens a live capture spread over n sources, one per
// analysis worker: n AF_PACKET sockets, each with its own TPACKET_V3 ring
// and kernel filter, joined in one PACKET_FANOUT group in hash mode. The
// kernel hands every packet to one member, chosen by a hash that is the
// same both ways (fanout_demux_hash uses __skb_get_hash_symmetric, which
// sorts the addresses and the ports before hashing them with the
// protocol), so both directions of a TCP connection reach the same member
// and a worker owns whole connections. n == 1 is OpenLive: no group.
//
// Kernels without a late-2023 fix to that hash (its Fixes: tag names
// eb70db875671; the stable series have it) stop at an IPv6 flow label,
// which Linux puts on all it sends: there all connections between two
// IPv6 hosts meet in one member, and a connection one end of which labels
// its packets while the other does not is split between two members.
//
// IP fragments are not reassembled (no PACKET_FANOUT_FLAG_DEFRAG): a
// fragment hashes by its addresses alone and may reach another member
// than the rest of its connection, but no source decodes fragments; each
// is counted (Fragments) once, as by a capture of one socket. Reassembly
// would hand the members, and the dump, IPv4 datagrams that were never on
// the wire, which the members would decode where a single capture counts
// fragments; and TCP is hardly ever fragmented (path MTU discovery).
//
// The group's id is the kernel's pick (PACKET_FANOUT_FLAG_UNIQUEID), free
// in the network namespace: an id of our own, say from the PID (which
// need not fit the id's 16 bits), could be another cqlsniff's, and the
// kernel would silently share packets between the two. afpacket does not
// expose a socket's descriptor, so a probe socket of our own makes the
// group and reads its id; the members join it, then the probe leaves.
//
// Each member is a Source for one goroutine, with a ring of cfg.RingMB
// (n times the memory in all), its own Stats (SourceStats.Add sums them)
// and its own packet numbers: member i numbers its k-th record (from 0)
// k*n + i + 1, unique over the group. Every member skips the packets
// stamped before the last one joined, as OpenLive skips those from before
// its filter: until then each socket received on its own, and the group
// hashed over fewer sockets. Close on any member closes all of them (each
// waiting for its Next): a group that lost a member would re-spread that
// member's connections over the others mid-stream.
//
// With cfg.Dump the members share one dump, each writing a record whole
// (the dump is locked per record) as it reads it. Records of different
// members interleave in the order they were read, so a timestamp may be
// earlier than the one before it, by as much as one member lags another:
// up to the block timeout (50ms at most), more when a worker falls behind.
// FileSource and tshark read such a file; reordercap sorts it.
//
// afpacket's SetFanout, with which the members join, passes an 8-byte
// struct fanout_args, which kernels older than that struct refuse
// (EINVAL).
func OpenLiveFanout(cfg LiveConfig, n int) ([]*LiveSource, error) {
	if n == 1 {
		s, err := OpenLive(cfg)
		if err != nil {
			return nil, err
		}
		return []*LiveSource{s}, nil
	}
	if n < 1 || n > MaxLiveFanout {
		return nil, fmt.Errorf("capture: %d capture workers out of range (1 to %d)", n, MaxLiveFanout)
	}
	ls, err := newLiveSetup(cfg)
	if err != nil {
		return nil, err
	}
	return openFanout(ls, n, ls.open)
}

// liveGroup is what the members of a fanout group share.
type liveGroup struct {
	members []*LiveSource
	dump    *dumper // nil without cfg.Dump
	once    sync.Once
}

// openFanout opens the members of a group with open (a parameter so that
// tests can make member k fail). When a member cannot be opened or join,
// the ones before it are closed, and so is the probe.
func openFanout(ls liveSetup, n int, open func() (*afpacket.TPacket, error)) ([]*LiveSource, error) {
	probe, id, err := newFanoutGroup(ls.ifindex)
	if err != nil {
		return nil, fmt.Errorf("capture: making a fanout group on %s: %w", ls.cfg.Interface, err)
	}
	tps := make([]*afpacket.TPacket, 0, n)
	fail := func(err error) ([]*LiveSource, error) {
		for _, tp := range tps {
			tp.Close()
		}
		unix.Close(probe)
		return nil, err
	}
	for range n {
		tp, err := open()
		if err != nil {
			return fail(err)
		}
		tps = append(tps, tp)
		// The filter is in place (open attached it): from here the
		// member receives only what it keeps.
		if err := tp.SetFanout(afpacket.FanoutHash, id); err != nil {
			return fail(fmt.Errorf("capture: joining fanout group %d on %s: %w", id, ls.cfg.Interface, err))
		}
	}
	// The probe leaves the group, which is then the n members. Closing
	// it returns after the kernel has waited for every delivery under way
	// (packet_release calls synchronize_net): any packet stamped after now
	// was handed out by the whole group, and only to it.
	unix.Close(probe)
	since := time.Now().UnixNano()

	g := &liveGroup{members: make([]*LiveSource, n)}
	if ls.cfg.Dump != nil {
		g.dump = ls.newDumper()
	}
	for i, tp := range tps {
		s := &LiveSource{tp: tp, link: ls.link, stride: uint64(n), member: uint64(i), group: g, dump: g.dump}
		s.startAt(since)
		g.members[i] = s
	}
	return g.members, nil
}

// close closes every member, then ends the dump. Later calls, also
// concurrent ones, wait for the first and return nil, as a second Close
// of a single source does.
func (g *liveGroup) close() error {
	var err error
	g.once.Do(func() {
		// Every Next returns io.EOF from now, before the first ring
		// goes and the kernel re-spreads its connections over the rest.
		for _, m := range g.members {
			m.closing.Store(true)
		}
		for _, m := range g.members {
			m.closeRing()
		}
		if g.dump != nil {
			if e := g.dump.finish(); e != nil {
				err = fmt.Errorf("capture: writing the dump: %w", e)
			}
		}
	})
	return err
}

// newFanoutGroup makes a hash fanout group whose id the kernel picks, on
// the device of index ifindex (0: all), and returns the probe socket that
// holds it. The probe keeps nothing (its filter returns 0), and is bound
// like the members (protocol ETH_P_ALL, the same device): the kernel only
// lets sockets so bound join the group.
func newFanoutGroup(ifindex int) (probe int, id uint16, err error) {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return -1, 0, err
	}
	dropAll := []unix.SockFilter{{Code: unix.BPF_RET | unix.BPF_K, K: 0}}
	if err := unix.SetsockoptSockFprog(fd, unix.SOL_SOCKET, unix.SO_ATTACH_FILTER, &unix.SockFprog{Len: 1, Filter: &dropAll[0]}); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	if err := unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: htons(unix.ETH_P_ALL), Ifindex: ifindex}); err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	// Type and flags in the high half, the id (0: the kernel's pick) in
	// the low one, as a 4-byte int, which every kernel with fanout takes.
	arg := (unix.PACKET_FANOUT_HASH | unix.PACKET_FANOUT_FLAG_UNIQUEID) << 16
	if err := unix.SetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT, arg); err != nil {
		unix.Close(fd)
		if errors.Is(err, unix.EINVAL) {
			err = fmt.Errorf("%w (a kernel-assigned fanout id needs PACKET_FANOUT_FLAG_UNIQUEID)", err)
		}
		return -1, 0, err
	}
	v, err := unix.GetsockoptInt(fd, unix.SOL_PACKET, unix.PACKET_FANOUT)
	if err != nil {
		unix.Close(fd)
		return -1, 0, err
	}
	return fd, uint16(v), nil
}

// htons puts v in network byte order, as sockaddr_ll's protocol is.
func htons(v uint16) uint16 {
	var b [2]byte
	binary.BigEndian.PutUint16(b[:], v)
	return binary.NativeEndian.Uint16(b[:])
}
