package capture

import (
	"bufio"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// Source is anything that yields packets (files now; a live AF_PACKET ring later).
type Source interface {
	// Next decodes the next TCP packet into p, skipping (and counting) others.
	// It returns io.EOF at the end. p.Payload is valid until the next call.
	Next(p *Packet) error
	Stats() SourceStats
	Close() error
}

// SourceStats counts what a Source read. Every record lands in exactly one
// of TCP, NotTCP, Fragments, Malformed and UnsupportedLink.
type SourceStats struct {
	Records, Bytes                                     uint64 // all records read / their captured bytes
	TCP, NotTCP, Fragments, Malformed, UnsupportedLink uint64
	Dropped                                            uint64 // kernel drops (0 for files)
}

// Add adds o's counters to s: the members of a fanout group (OpenLiveFanout)
// each count what they read, and the capture's totals are their sum.
func (s *SourceStats) Add(o SourceStats) {
	s.Records += o.Records
	s.Bytes += o.Bytes
	s.TCP += o.TCP
	s.NotTCP += o.NotTCP
	s.Fragments += o.Fragments
	s.Malformed += o.Malformed
	s.UnsupportedLink += o.UnsupportedLink
	s.Dropped += o.Dropped
}

// Errors from opening and reading capture files.
var (
	// ErrNotCapture: the input is neither pcap nor pcapng (plain or gzip).
	ErrNotCapture = errors.New("capture: not a pcap or pcapng file")
	// ErrEmpty: the input has no bytes at all.
	ErrEmpty = errors.New("capture: empty file")
	// ErrTruncated: the input ends inside a record. The records before it
	// were delivered and counted; Stats().Records says how many.
	ErrTruncated = errors.New("capture: file truncated")
)

const (
	// readBufferSize is the read-ahead buffer of a file source: large reads
	// keep the syscall and gzip costs per packet small.
	readBufferSize = 1 << 20
	// ngReadBufferSize buffers the filtered pcapng blocks pcapgo reads.
	ngReadBufferSize = 64 << 10
	// minReadBufferSize is the size of buffer pcapgo reads through
	// without adding one of its own (bufio's default size).
	minReadBufferSize = 4096
	// MaxRecordLen is the largest record a file source accepts: libpcap's
	// MAXIMUM_SNAPLEN, the most any libpcap-based tool writes. A longer
	// record is skipped without being read into memory and counted as
	// Malformed, whatever snap length the file header declares.
	MaxRecordLen = 262144
	// skipBudget bounds the work of one call to Next that finds no TCP
	// packet: records and blocks it skips cost one unit each and one more
	// per 4 KiB (skipCost). Once they cost this much, Next returns
	// ErrTimeout, so that its caller can check for cancellation (and call
	// again) during a long or endless run of other traffic: reading UDP
	// from a pipe ignored Ctrl-C.
	skipBudget = 1 << 16
)

// skipCost is what skipping a record or block of n bytes costs.
func skipCost(n uint64) int { return 1 + int(min(n>>12, skipBudget)) }

// errPause is what ngFilter returns, at a block boundary, once the blocks
// it skipped or passed without a packet exceed skipBudget. pcapgo hands it
// on from the start of a block, where it can read on at the next call.
var errPause = errors.New("capture: pause")

// File magic numbers, read little endian from the first four bytes.
const (
	magicPcapMicro        = 0xA1B2C3D4
	magicPcapNano         = 0xA1B23C4D
	magicPcapMicroSwapped = 0xD4C3B2A1
	magicPcapNanoSwapped  = 0x4D3CB2A1
	magicPcapNG           = 0x0A0D0D0A // section header block type, a palindrome
)

// FileSource reads a pcap or pcapng capture. It is a Source; it is not safe
// for concurrent use.
type FileSource struct {
	br   *bufio.Reader // the bytes the pcapgo readers read, after gzip
	pcap *pcapgo.Reader
	ng   *pcapgo.NgReader
	// ngFilter keeps oversized packet blocks and packet options from
	// pcapgo; ngDropped is how many of its drops are already counted.
	ngFilter  *ngFilter
	ngDropped uint64
	link      layers.LinkType // pcap: the file's link type
	swap      bool            // pcap: record headers are big endian
	nanos     bool            // pcap: timestamps in nanoseconds
	// pcap: the buffered bytes not yet read, as br last handed them out
	// (aliasing its buffer), and how many bytes before them are read but
	// not yet discarded from br. Records are cut from win; br is asked
	// again only when win holds no whole record, not two or three times a
	// record.
	win     []byte
	used    int
	gz      *gzip.Reader
	closer  io.Closer // the file we opened, nil for stdin and caller readers
	err     error     // sticky error once reading failed
	skipped int       // cost of the records skipped in this call to Next
	stats   SourceStats
}

var _ Source = (*FileSource)(nil)

// OpenFile opens a pcap or pcapng file, plain or gzip-compressed; "-" reads standard input.
// The format is detected from the magic number, not the file name.
func OpenFile(path string) (*FileSource, error) {
	if path == "-" {
		s, err := NewReaderSource(os.Stdin)
		if err != nil {
			return nil, fmt.Errorf("standard input: %w", err)
		}
		return s, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	s, err := NewReaderSource(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	s.closer = f
	return s, nil
}

// NewReaderSource does the same for any io.Reader (used by tests and benchmarks).
// It reads the file header before returning. Close does not close r.
func NewReaderSource(r io.Reader) (*FileSource, error) {
	return newReaderSource(r, readBufferSize)
}

// newReaderSource reads through buffers of bufSize bytes (the fuzz tests use
// small ones to reach buffer boundaries often). The buffers must be at least
// the 4 KiB pcapgo asks for, or pcapgo would put a buffer of its own between
// them and the record-header checks.
func newReaderSource(r io.Reader, bufSize int) (*FileSource, error) {
	bufSize = max(bufSize, minReadBufferSize)
	s := &FileSource{br: bufio.NewReaderSize(r, bufSize)}
	magic, err := s.br.Peek(4)
	if len(magic) == 0 && err == io.EOF {
		return nil, ErrEmpty
	}
	if len(magic) >= 2 && magic[0] == 0x1F && magic[1] == 0x8B {
		// pcapgo's readers can undo gzip, but only the pcap one and only on
		// a buffer of their own; decompressing here serves both formats.
		if s.gz, err = gzip.NewReader(s.br); err != nil {
			return nil, fmt.Errorf("capture: reading gzip header: %w", err)
		}
		s.br = bufio.NewReaderSize(s.gz, bufSize)
		magic, err = s.br.Peek(4)
		if len(magic) == 0 && err == io.EOF {
			return nil, fmt.Errorf("%w (gzip-compressed)", ErrEmpty)
		}
	}
	if len(magic) < 4 {
		if err != nil && err != io.EOF {
			return nil, err
		}
		return nil, fmt.Errorf("%w (only %d bytes)", ErrNotCapture, len(magic))
	}

	// pcapgo wraps its input in a bufio.Reader unless it already is one of at
	// least the default size. The pcap reader reads s.br directly, which lets
	// Next look at each record header before pcapgo reads it; the pcapng
	// reader reads s.br through ngFilter, which does the same per block.
	switch binary.LittleEndian.Uint32(magic) {
	case magicPcapMicro, magicPcapNano, magicPcapMicroSwapped, magicPcapNanoSwapped:
		s.swap = magic[0] == 0xA1
		s.nanos = binary.LittleEndian.Uint32(magic) == magicPcapNano || binary.LittleEndian.Uint32(magic) == magicPcapNanoSwapped
		if s.br.Size() < 16+MaxRecordLen {
			// Records are read in place (Peek): the buffer must hold the
			// largest one.
			s.br = bufio.NewReaderSize(s.br, 16+MaxRecordLen)
		}
		if s.pcap, err = pcapgo.NewReader(s.br); err != nil {
			return nil, fmt.Errorf("capture: reading pcap file header: %w", headerErr(err))
		}
		s.link = s.pcap.LinkType()
	case magicPcapNG:
		// WantMixedLinkType: a pcapng file may mix interfaces of different
		// link types (e.g. Ethernet and loopback); the reader then hands
		// each packet's link type in ci.AncillaryData[0]. (Without it,
		// pcapgo silently drops packets of any link type but the first.)
		// Boxing the link type there costs pcapgo a 2-byte allocation per
		// packet for link types above 255, of which only LINUX_SLL2 (276)
		// is decoded here; the interface's link type is not otherwise
		// available per packet.
		s.ngFilter = &ngFilter{r: s.br}
		filtered := bufio.NewReaderSize(s.ngFilter, min(bufSize, ngReadBufferSize))
		if s.ng, err = pcapgo.NewNgReader(filtered, pcapgo.NgReaderOptions{WantMixedLinkType: true}); err != nil {
			return nil, fmt.Errorf("capture: reading pcapng section header: %w", headerErr(err))
		}
	default:
		return nil, fmt.Errorf("%w (magic 0x%08x)", ErrNotCapture, binary.BigEndian.Uint32(magic))
	}
	return s, nil
}

// headerErr names a short read in a file header as truncation.
func headerErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return ErrTruncated
	}
	return err
}

// Stats returns the counters so far.
func (s *FileSource) Stats() SourceStats { return s.stats }

// Close releases the file. It does not close standard input or a reader
// given to NewReaderSource.
func (s *FileSource) Close() error {
	var err error
	if s.gz != nil {
		err = s.gz.Close()
	}
	if s.closer != nil {
		if cerr := s.closer.Close(); err == nil {
			err = cerr
		}
		s.closer = nil
	}
	if s.err == nil {
		s.err = errors.New("capture: source closed")
	}
	return err
}

// Next decodes the next TCP packet into p, skipping (and counting) others. It
// returns io.EOF at the end, an error wrapping ErrTruncated when the input
// ends inside a record, or another error when the file is corrupt beyond
// resynchronising. Errors are sticky, except ErrTimeout: Next returns it
// when it skipped a great many records (or bytes) without finding a TCP
// packet, and reads on at the next call. p.Payload aliases the reader's
// buffer and is valid until the next call. Next allocates nothing per
// packet.
func (s *FileSource) Next(p *Packet) error {
	if s.err != nil {
		return s.err
	}
	s.skipped = 0
	var err error
	if s.pcap != nil {
		err = s.nextPcap(p)
	} else {
		s.ngFilter.cost = 0
		err = s.nextNg(p)
	}
	if err != nil && err != ErrTimeout {
		s.err = err
	}
	return err
}

// count files one record under its decode result and reports whether it was
// a TCP packet.
func (s *FileSource) count(r DecodeResult) bool {
	switch r {
	case DecodeTCP:
		s.stats.TCP++
		return true
	case DecodeNotTCP:
		s.stats.NotTCP++
	case DecodeFragment:
		s.stats.Fragments++
	case DecodeUnsupportedLink:
		s.stats.UnsupportedLink++
	default:
		s.stats.Malformed++
	}
	return false
}

func (s *FileSource) nextPcap(p *Packet) error {
	for {
		// Look at the record header before pcapgo does: pcapgo fails on a
		// record longer than the file's snap length or its own wire length,
		// and cannot skip it, and it would read a record of any length the
		// header declares into memory. Such records are skipped here.
		hdr, err := s.peek(16)
		if err != nil {
			if len(hdr) == 0 && err == io.EOF {
				return io.EOF
			}
			return s.readErr(err)
		}
		capLen, wireLen := binary.LittleEndian.Uint32(hdr[8:12]), binary.LittleEndian.Uint32(hdr[12:16])
		if s.swap {
			capLen, wireLen = binary.BigEndian.Uint32(hdr[8:12]), binary.BigEndian.Uint32(hdr[12:16])
		}
		if capLen > MaxRecordLen || capLen > wireLen {
			s.stats.Records++
			s.stats.Malformed++
			if err := s.skip(16 + uint64(capLen)); err != nil {
				return s.readErr(err)
			}
			if s.skipped += skipCost(16 + uint64(capLen)); s.skipped >= skipBudget {
				return ErrTimeout
			}
			continue
		}
		// pcapgo parsed and checked the file header; the records are read
		// here, in place in the read buffer, which halves the cost per
		// packet (pcapgo's ZeroCopyReadPacketData copies each record and
		// converts its time through time.Time).
		sec, frac := binary.LittleEndian.Uint32(hdr[0:4]), binary.LittleEndian.Uint32(hdr[4:8])
		if s.swap {
			sec, frac = binary.BigEndian.Uint32(hdr[0:4]), binary.BigEndian.Uint32(hdr[4:8])
		}
		ts := int64(sec) * 1e9
		if s.nanos {
			ts += int64(frac)
		} else {
			ts += int64(frac) * 1e3
		}
		n := 16 + int(capLen)
		rec, err := s.peek(n)
		if err != nil {
			// The whole record header was there, so even io.EOF means the
			// record's bytes are missing.
			return s.readErr(err)
		}
		// The record stays in br's buffer until the next call: the packet
		// handed out aliases it.
		s.win = s.win[n:]
		s.used += n
		data := rec[16:]
		s.stats.Records++
		s.stats.Bytes += uint64(len(data))
		if s.count(DecodePacket(s.link, data, int(wireLen), ts, p)) {
			p.Num = s.stats.Records
			return nil
		}
		if s.skipped += skipCost(uint64(n)); s.skipped >= skipBudget {
			return ErrTimeout
		}
	}
}

// peek returns the next n unread bytes (n ≤ br's size). When the window
// holds fewer, the bytes read so far are discarded from br and the window
// becomes all that br has buffered, reading more if that is under n; on a
// short read it returns what there is and the error.
func (s *FileSource) peek(n int) ([]byte, error) {
	if len(s.win) >= n {
		return s.win[:n], nil
	}
	s.br.Discard(s.used) // buffered: cannot fail
	s.used = 0
	w, err := s.br.Peek(max(n, s.br.Buffered()))
	s.win = w
	if len(w) < n {
		return w, err
	}
	return w[:n], nil
}

// skip consumes n bytes, which may be more than br buffers.
func (s *FileSource) skip(n uint64) error {
	if n <= uint64(len(s.win)) {
		s.win = s.win[n:]
		s.used += int(n)
		return nil
	}
	s.br.Discard(s.used)
	s.win, s.used = nil, 0
	return discard(s.br, n)
}

func (s *FileSource) nextNg(p *Packet) error {
	for {
		data, ci, err := s.ng.ZeroCopyReadPacketData()
		if d := s.ngFilter.dropped - s.ngDropped; d > 0 {
			s.ngDropped = s.ngFilter.dropped
			s.stats.Records += d
			s.stats.Malformed += d
		}
		if err != nil {
			if err == io.EOF { // only ever at a block boundary
				return io.EOF
			}
			if err == errPause {
				return ErrTimeout
			}
			return s.readErr(err)
		}
		s.stats.Records++
		s.stats.Bytes += uint64(len(data))
		link, ok := layers.LinkType(0), false
		if len(ci.AncillaryData) > 0 {
			link, ok = ci.AncillaryData[0].(layers.LinkType)
		}
		if !ok {
			s.stats.UnsupportedLink++
		} else if s.count(DecodePacket(link, data, ci.Length, ci.Timestamp.UnixNano(), p)) {
			p.Num = s.stats.Records
			return nil
		}
		if s.skipped += skipCost(uint64(len(data))); s.skipped >= skipBudget {
			return ErrTimeout
		}
	}
}

// readErr turns a read error inside a record into the error Next returns.
func (s *FileSource) readErr(err error) error {
	if err == io.EOF || err == io.ErrUnexpectedEOF || err == ErrTruncated {
		return fmt.Errorf("%w after %d records", ErrTruncated, s.stats.Records)
	}
	return fmt.Errorf("capture: after %d records: %w", s.stats.Records, err)
}
