package capture

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"testing"

	"github.com/gopacket/gopacket/layers"
)

// TestNgFilter checks the pcapng filter byte for byte: blocks without
// options pass unchanged, packet options are cut out with the block lengths
// rewritten, and oversized packet blocks are left out.
func TestNgFilter(t *testing.T) {
	recs := mixedRecords(t)
	for _, order := range []byteOrder{binary.LittleEndian, binary.BigEndian} {
		plain, withOpts, withBad := &ngBuilder{order: order}, &ngBuilder{order: order}, &ngBuilder{order: order}
		for _, b := range []*ngBuilder{plain, withOpts, withBad} {
			b.shb()
			b.idb(layers.LinkTypeEthernet, 9)
			b.block(0x0BAD, []byte("custom block, passed on")) // an unknown block type
		}
		for i, r := range recs {
			plain.epb(0, uint64(i), r.data, len(r.data), nil)
			withOpts.epb(0, uint64(i), r.data, len(r.data), withOpts.packetOptions())
			withBad.epb(0, uint64(i), r.data, len(r.data), nil)
			withBad.epb(0, uint64(i), make([]byte, 8), MaxRecordLen+1, nil) // header patched below
		}
		// Make every second packet block of withBad claim MaxRecordLen+1
		// captured bytes in its 40-byte block.
		bad := withBad.buf.Bytes()
		for off := 0; off < len(bad); {
			typ, length := order.Uint32(bad[off:]), order.Uint32(bad[off+4:])
			if typ == 6 && order.Uint32(bad[off+24:]) == MaxRecordLen+1 {
				order.PutUint32(bad[off+20:], MaxRecordLen+1)
			}
			off += int(length)
		}

		for _, c := range []struct {
			name    string
			in      []byte
			dropped uint64
		}{
			{"no options", plain.buf.Bytes(), 0},
			{"options", withOpts.buf.Bytes(), 0},
			{"oversized", bad, uint64(len(recs))},
		} {
			t.Run(fmt.Sprintf("%v/%s", order, c.name), func(t *testing.T) {
				f := &ngFilter{r: bufio.NewReaderSize(bytes.NewReader(c.in), 64)}
				// Read in small pieces, so that every state meets a short p.
				var out []byte
				buf := make([]byte, 7)
				for {
					n, err := f.Read(buf)
					out = append(out, buf[:n]...)
					if err == io.EOF {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
				}
				if !bytes.Equal(out, plain.buf.Bytes()) {
					t.Errorf("filtered stream differs from the file without options:\n got %x\nwant %x", out, plain.buf.Bytes())
				}
				if f.dropped != c.dropped {
					t.Errorf("dropped %d blocks, want %d", f.dropped, c.dropped)
				}
			})
		}
	}
}
