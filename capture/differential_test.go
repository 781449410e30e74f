package capture

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// TestDifferentialSharedCaptures decodes every record of the public CQL
// captures in the team's shared directory (see ../shared/pcaps-public/
// SOURCES.md) with DecodePacket and with gopacket, and compares.
func TestDifferentialSharedCaptures(t *testing.T) {
	dir := filepath.Join("..", "..", "shared", "pcaps-public")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("needs %s, the team's shared directory (the GPL-2.0 cqltrace captures among others; the rest are in pcaps/public, which TestDifferentialRepoCaptures reads)", dir)
	}
	differential(t, dir)
}

// TestDifferentialRepoCaptures does the same for the captures checked into
// the repository.
func TestDifferentialRepoCaptures(t *testing.T) {
	differential(t, filepath.Join("..", "pcaps"))
}

func differential(t *testing.T, dir string) {
	found := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		// Captures are found by content: some are named .in.
		if _, err := NewReaderSource(bytes.NewReader(data)); errors.Is(err, ErrNotCapture) || errors.Is(err, ErrEmpty) {
			return nil
		}
		found++
		rel, _ := filepath.Rel(dir, path)
		t.Run(rel, func(t *testing.T) { differentialFile(t, data) })
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if found == 0 {
		t.Fatalf("no captures under %s", dir)
	}
}

// rawRecord is a record as pcapgo reads it, undecoded.
type rawRecord struct {
	link layers.LinkType
	data []byte
	ci   gopacket.CaptureInfo
}

// readRecords reads every record of a capture with pcapgo alone.
func readRecords(t *testing.T, data []byte) []rawRecord {
	t.Helper()
	var recs []rawRecord
	if bytes.HasPrefix(data, []byte{0x0a, 0x0d, 0x0d, 0x0a}) {
		r, err := pcapgo.NewNgReader(bytes.NewReader(data), pcapgo.NgReaderOptions{WantMixedLinkType: true})
		if err != nil {
			t.Fatal(err)
		}
		for {
			d, ci, err := r.ReadPacketData()
			if err == io.EOF {
				return recs
			}
			if err != nil {
				t.Fatal(err)
			}
			recs = append(recs, rawRecord{ci.AncillaryData[0].(layers.LinkType), d, ci})
		}
	}
	r, err := pcapgo.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for {
		d, ci, err := r.ReadPacketData()
		if err == io.EOF {
			return recs
		}
		if err != nil {
			t.Fatal(err)
		}
		recs = append(recs, rawRecord{r.LinkType(), d, ci})
	}
}

func differentialFile(t *testing.T, data []byte) {
	recs := readRecords(t, data)
	var counts [DecodeMalformed + 1]int
	var want []Packet
	for i, r := range recs {
		var p Packet
		res := DecodePacket(r.link, r.data, r.ci.Length, r.ci.Timestamp.UnixNano(), &p)
		p.Num = uint64(i + 1) // the record's number, as Wireshark gives it
		counts[res]++
		crossCheck(t, r.link, r.data, r.ci.Length, res, &p)
		if res == DecodeTCP {
			want = append(want, p)
		}
	}
	// Real traffic must not hit the cases where DecodePacket and gopacket
	// are allowed to disagree.
	if counts[DecodeMalformed] > 0 || counts[DecodeUnsupportedLink] > 0 {
		t.Errorf("%d malformed, %d unsupported-link records", counts[DecodeMalformed], counts[DecodeUnsupportedLink])
	}

	// The FileSource over the same bytes delivers exactly those packets.
	s := open(t, data)
	got, err := readAll(t, s)
	if err != io.EOF {
		t.Fatalf("FileSource ended with %v", err)
	}
	if len(got) != len(want) {
		t.Fatalf("FileSource read %d TCP packets, DecodePacket over pcapgo %d", len(got), len(want))
	}
	for i := range got {
		assertPacket(t, &got[i], &want[i])
	}
	st := s.Stats()
	if st.Records != uint64(len(recs)) || st.TCP != uint64(counts[DecodeTCP]) || st.NotTCP != uint64(counts[DecodeNotTCP]) {
		t.Errorf("Stats = %+v, records %d, results %v", st, len(recs), counts)
	}
	t.Logf("%d records: %d TCP, %d not TCP, %d fragments", len(recs), counts[DecodeTCP], counts[DecodeNotTCP], counts[DecodeFragment])
}
