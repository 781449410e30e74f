package synth

import (
	"cmp"
	"encoding/hex"
	"math/rand/v2"
	"strings"
	"testing"
)

// TestFrameBytes pins the encoder's output for a few frames against
// annotated bytes from cql-wire.md. "??" matches any byte (random values).
func TestFrameBytes(t *testing.T) {
	const ts = 1704067200000000 // 2024-01-01T00:00:00Z in µs = 0x00060dd710212000
	tests := []struct {
		name  string
		proto int // 0 = 4
		comp  int
		it    item
		want  string
	}{
		{"OPTIONS", 0, compNone, item{kind: kOptions}, `
			04 00 0000 05 00000000   // v4 request, stream 0, OPTIONS, empty body`},
		{"RESULT Void", 0, compNone, item{kind: kVoid, stream: 5}, `
			84 00 0005 08 00000004   // v4 response, stream 5, RESULT, 4 bytes
			00000001                 // kind Void`},
		{"READY lz4", 0, compLZ4, item{kind: kReady, stream: 1}, `
			84 01 0001 02 00000005   // flags COMPRESSION, READY
			00000000 00              // lz4: u32 BE uncompressed length 0, empty block`},
		{"READY snappy", 0, compSnappy, item{kind: kReady, stream: 1}, `
			84 01 0001 02 00000001   // flags COMPRESSION, READY
			00                       // snappy: varint length 0`},
		{"STARTUP never compressed", 0, compLZ4, item{kind: kStartup}, `
			04 00 0000 01 00000051   // STARTUP, 81 bytes, flags 0 although lz4 is on
			0004                     // string map, 4 entries
			000b "CQL_VERSION" 0005 "3.0.0"
			000b "COMPRESSION" 0003 "lz4"
			000b "DRIVER_NAME" 0005 "synth"
			000e "DRIVER_VERSION" 0003 "1.0"`},
		{"PREPARE", 0, compNone, item{kind: kPrepare, stmt: stUpdate, stream: 2}, `
			04 00 0002 09 00000031   // PREPARE, 49 bytes
			0000002d "UPDATE ks.counters SET n = n + 1 WHERE id = ?"`},
		{"RESULT Prepared", 0, compNone, item{kind: kPrepared, stmt: stUpdate, stream: 2}, `
			84 00 0002 08 00000040   // RESULT, 64 bytes
			00000004                 // kind Prepared
			0010 b055344ef6cb7c823a08dce4d7ebfafc  // id = md5("ks" + query)
			00000001 00000001        // prepared metadata: Global_tables_spec, 1 column
			00000001 0000            // 1 partition key column, index 0
			0002 "ks" 0008 "counters"
			0002 "id" 000c           // column id uuid
			00000004 00000000        // result metadata: No_metadata, 0 columns`},
		{"EXECUTE", 0, compNone, item{kind: kExecute, stmt: stUpdate, stream: 3}, `
			04 00 0003 0a 00000037   // EXECUTE, 55 bytes
			0010 b055344ef6cb7c823a08dce4d7ebfafc
			0006                     // LOCAL_QUORUM
			25                       // VALUES | PAGE_SIZE | DEFAULT_TIMESTAMP
			0001 00000010            // 1 value, 16 bytes:
			?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ??  // random uuid
			00001388                 // page size 5000
			00060dd710212000         // timestamp µs`},
		{"ERROR Read_timeout", 0, compNone, item{kind: kReadTimeout, stmt: stSelect, stream: 7}, `
			84 00 0007 00 00000041   // ERROR, 65 bytes
			00001200                 // Read_timeout
			0030 "Operation timed out - received only 0 responses."
			000a 00000000 00000001   // LOCAL_ONE, received 0, blockfor 1
			00                       // data_present false`},

		// Protocol v5 bodies (v5 spec §4; cql-wire.md §6.4–§6.6, §6.9.4).
		{"v5 PREPARE", 5, compNone, item{kind: kPrepare, stmt: stUpdate, stream: 2}, `
			05 00 0002 09 00000035   // v5 request, PREPARE, 53 bytes
			0000002d "UPDATE ks.counters SET n = n + 1 WHERE id = ?"
			00000000                 // [int] flags: no keyspace`},
		{"v5 RESULT Prepared", 5, compNone, item{kind: kPrepared, stmt: stUpdate, stream: 2}, `
			85 00 0002 08 00000052   // v5 response, RESULT, 82 bytes
			00000004                 // kind Prepared
			0010 b055344ef6cb7c823a08dce4d7ebfafc  // id
			0010 4329624ce4271de83fc7c43fc9c7e126  // result_metadata_id = md5(result metadata)
			00000001 00000001 00000001 0000
			0002 "ks" 0008 "counters"
			0002 "id" 000c
			00000004 00000000        // result metadata: No_metadata, 0 columns`},
		{"v5 EXECUTE", 5, compNone, item{kind: kExecute, stmt: stUpdate, stream: 3}, `
			05 00 0003 0a 0000004c   // v5 request, EXECUTE, 76 bytes
			0010 b055344ef6cb7c823a08dce4d7ebfafc  // prepared id
			0010 4329624ce4271de83fc7c43fc9c7e126  // result_metadata_id
			0006                     // LOCAL_QUORUM
			00000025                 // [int] flags VALUES | PAGE_SIZE | DEFAULT_TIMESTAMP
			0001 00000010
			?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ??
			00001388 00060dd710212000`},
		{"v5 QUERY", 5, compNone, item{kind: kQuery, stmt: stSelect, stream: 4}, `
			05 00 0004 07 00000071   // v5 request, QUERY, 113 bytes
			0000005b "SELECT id, name, value, updated FROM ks.tbl WHERE id = "
			?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ?? ??
			000a                     // LOCAL_ONE
			00000024                 // [int] flags PAGE_SIZE | DEFAULT_TIMESTAMP
			00001388 00060dd710212000`},
		{"v5 READY lz4: no body compression", 5, compLZ4, item{kind: kReady, stream: 1}, `
			85 00 0001 02 00000000   // flags 0: v5 compresses segments, not bodies`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder(cmp.Or(tc.proto, 4), tc.comp, 0, 1)
			fc := frameCtx{compress: tc.comp != compNone, tsMicros: ts, rng: rand.New(rand.NewPCG(1, 2))}
			got := e.appendFrame(nil, tc.it, fc)
			want, mask := fixture(t, tc.want)
			if len(got) != len(want) {
				t.Fatalf("%d bytes, want %d:\n%x", len(got), len(want), got)
			}
			for i := range want {
				if mask[i] && got[i] != want[i] {
					t.Fatalf("byte %d is %02x, want %02x:\n got %x\nwant %x", i, got[i], want[i], got, want)
				}
			}
		})
	}
}

// fixture parses annotated bytes: hex digits (spaces optional between
// pairs), "quoted text", ?? for any byte, and // comments to end of line.
func fixture(t *testing.T, s string) (b []byte, mask []bool) {
	t.Helper()
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "//"); i >= 0 {
			line = line[:i]
		}
		for len(line) > 0 {
			switch {
			case line[0] == ' ' || line[0] == '\t':
				line = line[1:]
			case line[0] == '"':
				end := strings.IndexByte(line[1:], '"')
				if end < 0 {
					t.Fatalf("unterminated string in %q", line)
				}
				for range end {
					mask = append(mask, true)
				}
				b = append(b, line[1:1+end]...)
				line = line[2+end:]
			case strings.HasPrefix(line, "??"):
				b, mask = append(b, 0), append(mask, false)
				line = line[2:]
			default:
				v, err := hex.DecodeString(line[:2])
				if err != nil {
					t.Fatalf("bad fixture byte %q", line[:2])
				}
				b, mask = append(b, v[0]), append(mask, true)
				line = line[2:]
			}
		}
	}
	return b, mask
}
