package decode

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"testing"

	"github.com/golang/snappy"
	"github.com/pierrec/lz4/v4"
)

// lz4Body frames data the way v3/v4 peers do: big-endian length + raw block.
func lz4Body(t testing.TB, data []byte) []byte {
	t.Helper()
	out := make([]byte, 4+lz4.CompressBlockBound(len(data)))
	binary.BigEndian.PutUint32(out, uint32(len(data)))
	n, err := lz4.CompressBlock(data, out[4:], nil)
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 && len(data) > 0 {
		// Incompressible: pierrec/lz4 declines; store it as one literal run.
		return append(out[:4], literalBlock(data)...)
	}
	return out[:4+n]
}

// literalBlock is an LZ4 block made of a single literal run.
func literalBlock(data []byte) []byte {
	var b []byte
	if n := len(data); n < 15 {
		b = append(b, byte(n<<4))
	} else {
		b = append(b, 0xF0)
		n -= 15
		for ; n >= 255; n -= 255 {
			b = append(b, 255)
		}
		b = append(b, byte(n))
	}
	return append(b, data...)
}

func testPayloads() map[string][]byte {
	rnd := rand.New(rand.NewPCG(1, 2))
	random := make([]byte, 70000)
	for i := range random {
		random[i] = byte(rnd.Uint32())
	}
	text := bytes.Repeat([]byte("SELECT k, c, v FROM cqlsniff_lab.kv WHERE k = ? AND c = ?; "), 2000)
	return map[string][]byte{
		"one byte":      {0x2a},
		"short":         []byte("hello, cassandra"),
		"repetitive":    text,
		"random":        random,
		"zeros 1 MiB":   make([]byte, 1<<20),
		"rows result":   fixture("00 00 00 02 00 00 00 04 00 00 00 01 00 00 00 03 00 00 00 01 61 ff ff ff ff 00 00 00 00"),
		"just over 64K": bytes.Repeat([]byte{1, 2, 3, 4, 5, 6, 7}, 65536/7+1),
	}
}

func TestDecompressLZ4RoundTrip(t *testing.T) {
	for name, data := range testPayloads() {
		t.Run(name, func(t *testing.T) {
			src := lz4Body(t, data)
			out, err := DecompressLZ4(nil, src, 16<<20)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("err %v, equal %v", err, bytes.Equal(out, data))
			}
			// Into a buffer that is large enough: no new allocation.
			buf := make([]byte, 0, len(data)+10)
			out, err = DecompressLZ4(buf, src, 16<<20)
			if err != nil || !bytes.Equal(out, data) || &out[:1][0] != &buf[:1][0] {
				t.Fatalf("reuse: err %v", err)
			}
			// One byte over the limit.
			if _, err := DecompressLZ4(nil, src, len(data)-1); err != ErrTooLarge {
				t.Fatalf("limit: err %v", err)
			}
		})
	}
}

func TestDecompressSnappyRoundTrip(t *testing.T) {
	for name, data := range testPayloads() {
		t.Run(name, func(t *testing.T) {
			src := snappy.Encode(nil, data)
			out, err := DecompressSnappy(nil, src, 16<<20)
			if err != nil || !bytes.Equal(out, data) {
				t.Fatalf("err %v, equal %v", err, bytes.Equal(out, data))
			}
			buf := make([]byte, 0, len(data))
			out, err = DecompressSnappy(buf, src, 16<<20)
			if err != nil || !bytes.Equal(out, data) || &out[:1][0] != &buf[:1][0] {
				t.Fatalf("reuse: err %v", err)
			}
			if _, err := DecompressSnappy(nil, src, len(data)-1); err != ErrTooLarge {
				t.Fatalf("limit: err %v", err)
			}
		})
	}
}

func TestDecompressEmpty(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []byte
		lz4  bool
		err  error
	}{
		{"lz4 length 0, no block", fixture("00 00 00 00"), true, nil},
		{"lz4 length 0, zero token (compressed READY, gocql lab capture)", fixture("00 00 00 00 00"), true, nil},
		{"lz4 length 0 with a literal", fixture("00 00 00 00 10 41"), true, ErrMalformed},
		{"lz4 shorter than its length prefix", fixture("00 00 00"), true, ErrMalformed},
		{"snappy empty (compressed READY, elastic-beats cassandra_compressed.pcap)", fixture("00"), false, nil},
		{"snappy nothing at all", nil, false, ErrMalformed},
	} {
		var out []byte
		var err error
		if tc.lz4 {
			out, err = DecompressLZ4(nil, tc.src, 1<<20)
		} else {
			out, err = DecompressSnappy(nil, tc.src, 1<<20)
		}
		if err != tc.err || len(out) != 0 {
			t.Errorf("%s: %d bytes, err %v, want %v", tc.name, len(out), err, tc.err)
		}
	}
}

func TestDecompressCorrupt(t *testing.T) {
	data := bytes.Repeat([]byte("abcdefgh"), 100)
	lz := lz4Body(t, data)
	sn := snappy.Encode(nil, data)
	cases := map[string]func() error{
		"lz4 claims one byte more": func() error {
			b := bytes.Clone(lz)
			binary.BigEndian.PutUint32(b, uint32(len(data)+1))
			_, err := DecompressLZ4(nil, b, 1<<20)
			return err
		},
		"lz4 claims one byte less": func() error {
			b := bytes.Clone(lz)
			binary.BigEndian.PutUint32(b, uint32(len(data)-1))
			_, err := DecompressLZ4(nil, b, 1<<20)
			return err
		},
		"lz4 trailing garbage": func() error {
			_, err := DecompressLZ4(nil, append(bytes.Clone(lz), 0xff, 0xff), 1<<20)
			return err
		},
		"lz4 block cut": func() error {
			_, err := DecompressLZ4(nil, lz[:len(lz)-3], 1<<20)
			return err
		},
		"lz4 claim beyond 255:1": func() error {
			_, err := DecompressLZ4(nil, fixture("00 01 00 00 00"), 1<<20) // 64 KiB from one byte
			return err
		},
		"snappy claims one byte more": func() error {
			b := append(binary.AppendUvarint(nil, uint64(len(data)+1)), sn[uvarintLen(sn):]...)
			_, err := DecompressSnappy(nil, b, 1<<20)
			return err
		},
		"snappy block cut": func() error {
			_, err := DecompressSnappy(nil, sn[:len(sn)-2], 1<<20)
			return err
		},
		"snappy claim beyond 32:1": func() error {
			_, err := DecompressSnappy(nil, fixture("80 80 04 00"), 1<<20) // 64 KiB from 4 bytes
			return err
		},
	}
	for name, fn := range cases {
		if err := fn(); err != ErrMalformed {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func uvarintLen(b []byte) int {
	_, n := binary.Uvarint(b)
	return n
}

// TestDecompressionBombs checks that absurd claims are refused before any
// buffer is sized for them.
func TestDecompressionBombs(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    []byte
		snappy bool
		err    error
	}{
		{"lz4 256 MiB claim, max 16 MiB", fixture("10 00 00 00 00"), false, ErrTooLarge},
		{"lz4 2 GiB claim", fixture("80 00 00 00 1f 00 01 00"), false, ErrTooLarge},
		{"lz4 4 GiB-1 claim", fixture("ff ff ff ff 00"), false, ErrTooLarge},
		{"snappy 256 MiB claim", append(binary.AppendUvarint(nil, 256<<20), 0), true, ErrTooLarge},
		{"snappy 2 GiB claim", append(binary.AppendUvarint(nil, 2<<30), 0), true, ErrTooLarge},
		// Under the limit but far beyond what the input can expand to.
		{"lz4 15 MiB from 1 byte", fixture("00 f0 00 00 00"), false, ErrMalformed},
		{"snappy 15 MiB from 1 byte", append(binary.AppendUvarint(nil, 15<<20), 0), true, ErrMalformed},
	} {
		var err error
		allocs := testing.AllocsPerRun(100, func() {
			if tc.snappy {
				_, err = DecompressSnappy(nil, tc.src, 16<<20)
			} else {
				_, err = DecompressLZ4(nil, tc.src, 16<<20)
			}
		})
		if err != tc.err || allocs != 0 {
			t.Errorf("%s: err %v, %v allocs", tc.name, err, allocs)
		}
	}
}

func TestDecompressNoAllocsWithBuffer(t *testing.T) {
	data := bytes.Repeat([]byte("row data "), 1000)
	lz := lz4Body(t, data)
	sn := snappy.Encode(nil, data)
	buf := make([]byte, 0, len(data))
	if a := testing.AllocsPerRun(100, func() { _, _ = DecompressLZ4(buf, lz, 1<<20) }); a != 0 {
		t.Errorf("lz4: %v allocs", a)
	}
	if a := testing.AllocsPerRun(100, func() { _, _ = DecompressSnappy(buf, sn, 1<<20) }); a != 0 {
		t.Errorf("snappy: %v allocs", a)
	}
}

// Real compressed bodies. The snappy ones come from elastic-beats
// cassandra_compressed.pcap (Apache-2.0, Cassandra 3.x); the lz4 ones from
// this repository's pcaps/gocql-1.7.0-v4-lz4-coalesced-c64.pcap (gocql
// 1.7.0 against Cassandra 5.0.9).
func TestRealCompressedBodies(t *testing.T) {
	type check func(t *testing.T, req *Request, resp *Response)
	for _, tc := range []struct {
		name   string
		frame  []byte
		snappy bool
		check  check
	}{
		{
			name: "snappy QUERY",
			frame: fixture(
				"04 01 00 00 07 00 00 00 35", // v4 request, flags COMPRESSION, stream 0, QUERY, length 53
				"33",                         // varint: 51 bytes uncompressed
				"c8 00 00 00 2c", ascii("SELECT * FROM system.local WHERE key='local'"), "00 01 00",
			),
			snappy: true,
			check: func(t *testing.T, req *Request, _ *Response) {
				if string(req.Query) != "SELECT * FROM system.local WHERE key='local'" || req.Params.Consistency != One {
					t.Errorf("%+v", req)
				}
			},
		},
		{
			name: "snappy RESULT Void",
			frame: fixture(
				"84 01 00 80 08 00 00 00 06", // v4 response, flags COMPRESSION, stream 128, RESULT, length 6
				"04 0c 00 00 00 01",          // varint 4, literal of 4 bytes: Void
			),
			snappy: true,
			check: func(t *testing.T, _ *Request, resp *Response) {
				if resp.Kind != ResultVoid {
					t.Errorf("%+v", resp)
				}
			},
		},
		{
			name: "snappy RESULT Rows",
			frame: fixture(
				"84 01 00 40 08 00 00 00 3d", // v4 response, flags COMPRESSION, stream 64, RESULT, length 61
				"3f 1c 00 00 00 02 00 00 00 01 05 04 74 06 73 79 73 74 65 6d 00 05 6c 6f 63 61 6c 00 0c 63 6c 75",
				"73 74 65 72 5f 6e 61 6d 65 00 0d 05 23 38 00 00 0c 54 65 73 74 20 43 6c 75 73 74 65 72",
			),
			snappy: true,
			check: func(t *testing.T, _ *Request, resp *Response) {
				if resp.Kind != ResultRows || resp.Columns != 1 || resp.Rows != 1 || string(resp.Table) != "local" {
					t.Errorf("%+v", resp)
				}
			},
		},
		{
			name: "lz4 RESULT Set_keyspace",
			frame: fixture(
				"84 01 00 80 08 00 00 00 18", // v4 response, flags COMPRESSION, stream 128, RESULT, length 24
				"00 00 00 12",                // 18 bytes uncompressed
				"f0 03 00 00 00 03 00 0c", ascii("cqlsniff_lab"),
			),
			check: func(t *testing.T, _ *Request, resp *Response) {
				if resp.Kind != ResultSetKeyspace || string(resp.Keyspace) != "cqlsniff_lab" {
					t.Errorf("%+v", resp)
				}
			},
		},
		{
			name: "lz4 PREPARE",
			frame: fixture(
				"04 01 00 c0 09 00 00 00 33", // v4 request, flags COMPRESSION, stream 192, PREPARE, length 51
				"00 00 00 2d",                // 45 bytes uncompressed
				"f0 1e 00 00 00 29", ascii("INSERT INTO kv (k, c, v) VALUES (?, ?, ?)"),
			),
			check: func(t *testing.T, req *Request, _ *Response) {
				if string(req.Query) != "INSERT INTO kv (k, c, v) VALUES (?, ?, ?)" {
					t.Errorf("%+v", req)
				}
			},
		},
		{
			name: "lz4 RESULT Prepared with pk indexes",
			frame: fixture(
				"84 01 00 c0 08 00 00 00 4f", // v4 response, flags COMPRESSION, stream 192, RESULT, length 79
				"00 00 00 4d",                // 77 bytes uncompressed
				"f3 0f 00 00 00 04 00 10 cd 10 c1 43 84 80 f7 44 97 9f 5f 9e 7f ef 7d 57 00 00 00 01 00 00 00 03",
				"08 00 f0 0a 0c 63 71 6c 73 6e 69 66 66 5f 6c 61 62 00 02 6b 76 00 01 6b 00 09 00 01 63 05 00 b0",
				"76 00 0d 00 00 00 04 00 00 00 00",
			),
			check: func(t *testing.T, _ *Request, resp *Response) {
				if resp.Kind != ResultPrepared || len(resp.PreparedID) != 16 || resp.BindMarkers != 3 ||
					resp.PKIndexes != 1 || string(resp.Keyspace) != "cqlsniff_lab" || string(resp.Table) != "kv" {
					t.Errorf("%+v", resp)
				}
			},
		},
		{
			name: "lz4 EXECUTE with values",
			frame: fixture(
				"04 01 04 40 0a 00 00 00 38", // v4 request, flags COMPRESSION, stream 1088, EXECUTE, length 56
				"00 00 00 33",                // 51 bytes uncompressed
				"f1 10 00 10 60 8b 94 6b 6c af 94 f4 e5 54 d4 bf 91 c7 a2 c4 00 01 27 00 02 00 00 00 04 00 00 00",
				"05 08 00 f0 00 00 00 05 00 00 13 88 00 06 61 20 16 86 4d 23",
			),
			check: func(t *testing.T, req *Request, _ *Response) {
				p := req.Params
				if len(req.PreparedID) != 16 || p.Consistency != One || p.Flags != 0x27 || p.ValuesCount != 2 ||
					len(p.Values) != 2 || !bytes.Equal(p.Values[0], []byte{0, 0, 0, 5}) || p.PageSize != 5000 || !p.HasTimestamp {
					t.Errorf("%+v", req)
				}
			},
		},
		{
			name: "lz4 RESULT Rows, no metadata",
			frame: fixture(
				"84 01 04 40 08 00 00 00 16", // v4 response, flags COMPRESSION, stream 1088, RESULT, length 22
				"00 00 00 10",                // 16 bytes uncompressed
				"f0 01 00 00 00 02 00 00 00 05 00 00 00 01 00 00 00 00",
			),
			check: func(t *testing.T, _ *Request, resp *Response) {
				if resp.Kind != ResultRows || resp.Columns != 1 || !resp.RowsKnown || resp.Rows != 0 {
					t.Errorf("%+v", resp)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, body := splitFrame(t, tc.frame)
			if int(h.Length) != len(body) {
				t.Fatalf("header length %d, body %d", h.Length, len(body))
			}
			var plain []byte
			var err error
			if tc.snappy {
				plain, err = DecompressSnappy(nil, body, 1<<20)
			} else {
				plain, err = DecompressLZ4(nil, body, 1<<20)
			}
			if err != nil {
				t.Fatal(err)
			}
			req := Request{KeepValues: true}
			var resp Response
			if h.Response {
				err = DecodeResponse(&h, plain, &resp)
			} else {
				err = DecodeRequest(&h, plain, &req)
			}
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, &req, &resp)
		})
	}
}

func snappyEncode(data []byte) []byte { return snappy.Encode(nil, data) }
