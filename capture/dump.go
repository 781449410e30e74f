package capture

import (
	"bufio"
	"io"
	"os"
	"runtime"
	"sync"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// dumpBufferSize buffers the dump: pcapgo's pcap writer makes two writes
// per packet (record header, data), which unbuffered would be two system
// calls per packet.
const dumpBufferSize = 1 << 20

// dumper writes the frames of a live capture to a pcap or pcapng file,
// exactly as captured, with nanosecond timestamps (the kernel's
// resolution). Both formats read back with FileSource, tcpdump and tshark.
//
// The members of a fanout group share one dumper, each writing from its
// own goroutine: every method holds mu, so a record is always written
// whole, and records of different members interleave only between
// records. The first failure is sticky: every later call returns it, so
// that each member stops rather than go on without the file asked for.
type dumper struct {
	mu      sync.Mutex
	started bool  // the file header was written (or tried)
	err     error // the first failure
	w       *bufio.Writer
	format  string
	link    layers.LinkType
	snaplen int
	iface   string
	pcap    *pcapgo.Writer
	ng      *pcapgo.NgWriter
}

func newDumper(w io.Writer, format string, link layers.LinkType, snaplen int, iface string) *dumper {
	return &dumper{w: bufio.NewWriterSize(w, dumpBufferSize), format: format, link: link, snaplen: snaplen, iface: iface}
}

// start writes the file header and flushes it, so that a file that cannot
// be written fails at once rather than at the first full buffer. Only the
// first call writes; later ones return its error.
func (d *dumper) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.startLocked()
}

func (d *dumper) startLocked() error {
	if d.started || d.err != nil {
		return d.err
	}
	d.started = true
	if d.format == "pcapng" {
		ng, err := pcapgo.NewNgWriterInterface(d.w, pcapgo.NgInterface{
			Name:                d.iface,
			OS:                  runtime.GOOS,
			LinkType:            d.link,
			SnapLength:          uint32(d.snaplen),
			TimestampResolution: 9,
		}, pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{
			Hardware: runtime.GOARCH, OS: runtime.GOOS, Application: "cqlsniff",
		}})
		if err != nil {
			d.err = err
			return err
		}
		d.ng = ng
	} else {
		d.pcap = pcapgo.NewWriterNanos(d.w)
		if err := d.pcap.WriteFileHeader(uint32(d.snaplen), d.link); err != nil {
			d.err = err
			return err
		}
	}
	return d.flushLocked()
}

// write appends one frame. ci is the capture's: its interface index is
// the kernel's, while the file has one interface, numbered 0.
func (d *dumper) write(ci gopacket.CaptureInfo, data []byte) error {
	ci.InterfaceIndex = 0
	ci.CaptureLength = len(data)
	if ci.Length < len(data) {
		ci.Length = len(data)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return d.err
	}
	var err error
	if d.ng != nil {
		err = d.ng.WritePacket(ci, data)
	} else {
		err = d.pcap.WritePacket(ci, data)
	}
	if err != nil {
		d.err = err
	}
	return err
}

// flush pushes the buffered records to the writer.
func (d *dumper) flush() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.flushLocked()
}

func (d *dumper) flushLocked() error {
	if d.err != nil {
		return d.err
	}
	if d.ng != nil {
		if err := d.ng.Flush(); err != nil {
			d.err = err
			return err
		}
	}
	if err := d.w.Flush(); err != nil {
		d.err = err
		return err
	}
	return nil
}

// finish ends the dump when the capture closes: a file nothing was read
// into still gets its header, so that it is a valid empty capture, and
// what is buffered is flushed. It returns nil after an earlier failure,
// which the call that met it returned already.
func (d *dumper) finish() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.err != nil {
		return nil
	}
	if err := d.startLocked(); err != nil {
		return err
	}
	return d.flushLocked()
}

// DumpFile is an io.WriteCloser for LiveConfig.Dump that creates its file
// at the first write rather than when it is made. A live capture starts
// as root, opens its socket, then drops privileges (DropPrivileges) before
// it reads the first packet; the file, created then, belongs to the user
// the capture runs as, not to root, as with tcpdump -w.
type DumpFile struct {
	path string
	f    *os.File
	err  error
}

// NewDumpFile returns a DumpFile for path; "-" writes to standard output.
func NewDumpFile(path string) *DumpFile { return &DumpFile{path: path} }

// Write creates the file on the first call and writes b to it.
func (d *DumpFile) Write(b []byte) (int, error) {
	if d.f == nil && d.err == nil {
		if d.path == "-" {
			d.f = os.Stdout
		} else {
			d.f, d.err = os.Create(d.path)
		}
	}
	if d.err != nil {
		return 0, d.err
	}
	return d.f.Write(b)
}

// Close closes the file if it was created (never standard output).
func (d *DumpFile) Close() error {
	if d.f == nil || d.f == os.Stdout {
		return nil
	}
	err := d.f.Close()
	d.f, d.err = nil, os.ErrClosed
	return err
}
