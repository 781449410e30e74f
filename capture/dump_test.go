package capture

import (
	"bytes"
	"errors"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestDumperShared has four goroutines write into one dumper, as the
// members of a fanout group do: every record reads back whole, each
// writer's records in its order.
func TestDumperShared(t *testing.T) {
	for _, format := range []string{"pcap", "pcapng"} {
		t.Run(format, func(t *testing.T) {
			var buf bytes.Buffer
			d := newDumper(&buf, format, layers.LinkTypeEthernet, MaxRecordLen, "lo")
			const writers, each = 4, 300
			var wg sync.WaitGroup
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					if err := d.start(); err != nil {
						t.Error(err)
						return
					}
					for i := range each {
						// Lengths vary so that a record cut short or
						// spliced into another shows.
						n := 1 + (w*each+i)*7%1500
						ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, int64(w)<<32|int64(i)), Length: n, CaptureLength: n}
						if err := d.write(ci, bytes.Repeat([]byte{byte(w)}, n)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
			if err := d.finish(); err != nil {
				t.Fatal(err)
			}

			var read func() ([]byte, gopacket.CaptureInfo, error)
			if format == "pcap" {
				r, err := pcapgo.NewReader(&buf)
				if err != nil {
					t.Fatal(err)
				}
				read = r.ReadPacketData
			} else {
				r, err := pcapgo.NewNgReader(&buf, pcapgo.DefaultNgReaderOptions)
				if err != nil {
					t.Fatal(err)
				}
				read = r.ReadPacketData
			}
			var next [writers]int
			for {
				data, ci, err := read()
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatalf("after %v records: %v", next, err)
				}
				w, i := int(ci.Timestamp.UnixNano()>>32), int(ci.Timestamp.UnixNano()&0xFFFFFFFF)
				if w >= writers || i != next[w] {
					t.Fatalf("record %d of writer %d after %v", i, w, next)
				}
				next[w]++
				if n := 1 + (w*each+i)*7%1500; len(data) != n || ci.Length != n || !bytes.Equal(data, bytes.Repeat([]byte{byte(w)}, n)) {
					t.Fatalf("writer %d, record %d: %d bytes (wire %d), want %d of %d", w, i, len(data), ci.Length, n, w)
				}
			}
			if next != [writers]int{each, each, each, each} {
				t.Errorf("records read back per writer: %v, want %d each", next, each)
			}
		})
	}
}

// failAfter accepts n bytes, then fails.
type failAfter struct{ n int }

var errDiskFull = errors.New("disk full")

func (f *failAfter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		k := f.n
		f.n = 0
		return k, errDiskFull
	}
	f.n -= len(b)
	return len(b), nil
}

// TestDumperFailureSticks: after the first failure every call returns it,
// to every member sharing the dumper, and finish does not report it again.
func TestDumperFailureSticks(t *testing.T) {
	ci := gopacket.CaptureInfo{Timestamp: testStart, Length: 200, CaptureLength: 200}
	d := newDumper(&failAfter{n: 100}, "pcap", layers.LinkTypeEthernet, MaxRecordLen, "lo")
	if err := d.start(); err != nil { // the 24-byte header fits
		t.Fatal(err)
	}
	if err := d.write(ci, make([]byte, 200)); err != nil { // buffered
		t.Fatal(err)
	}
	if err := d.flush(); !errors.Is(err, errDiskFull) {
		t.Fatalf("flush: %v", err)
	}
	if err := d.write(ci, make([]byte, 200)); !errors.Is(err, errDiskFull) {
		t.Errorf("write after the failure: %v", err)
	}
	if err := d.start(); !errors.Is(err, errDiskFull) {
		t.Errorf("start after the failure: %v", err)
	}
	if err := d.finish(); err != nil {
		t.Errorf("finish reported the failure again: %v", err)
	}

	d = newDumper(&failAfter{}, "pcapng", layers.LinkTypeEthernet, MaxRecordLen, "lo")
	if err := d.start(); !errors.Is(err, errDiskFull) {
		t.Fatalf("start on a full disk: %v", err)
	}
	if err := d.write(ci, make([]byte, 200)); !errors.Is(err, errDiskFull) {
		t.Errorf("write after a failed start: %v", err)
	}
	if err := d.finish(); err != nil {
		t.Errorf("finish reported the failure again: %v", err)
	}
}
