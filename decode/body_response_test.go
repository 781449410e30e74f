package decode

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

type responseCase struct {
	name      string
	frame     []byte
	rateLimit ErrorCode // Response.RateLimitCode, an input
	want      Response
	err       error
}

var responseCases = []responseCase{
	{
		name:  "READY",
		frame: fixture("84 00 00 01 02 00 00 00 00"), // v4 response, stream 1, READY, length 0
		want:  Response{Opcode: OpReady},
	},
	{
		name: "ERROR Config_error, real (elastic-beats cassandra_trace_err.pcap)",
		frame: fixture(
			"84 00 01 13 00 00 00 00 35", // v4 response, stream 0x0113, ERROR, length 53 (no tracing flag)
			"00 00 23 00",                // code Config_error
			"00 2f", ascii("Cannot drop non existing keyspace 'mykeyspace'."),
		),
		want: Response{Opcode: OpError, ErrCode: ErrConfig,
			ErrMessage: []byte("Cannot drop non existing keyspace 'mykeyspace'.")},
	},
	{
		name: "ERROR Unavailable",
		frame: fixture(
			"84 00 00 02 00 00 00 00 14", // v4 response, stream 2, ERROR, length 20
			"00 00 10 00",                // code Unavailable
			"00 04", ascii("oops"),
			"00 04 00 00 00 03 00 00 00 01", // QUORUM, required 3, alive 1
		),
		want: Response{Opcode: OpError, ErrCode: ErrUnavailable, ErrMessage: []byte("oops"),
			Error: ErrorDetail{Consistency: Quorum, Required: 3, Alive: 1}},
	},
	{
		name: "ERROR Unprepared with the unknown id",
		frame: fixture(
			"84 00 00 03 00 00 00 00 1a", // v4 response, stream 3, ERROR, length 26
			"00 00 25 00",                // code Unprepared
			"00 02", ascii("no"),
			"00 10", id16, // [short bytes] id
		),
		want: Response{Opcode: OpError, ErrCode: ErrUnprepared, ErrMessage: []byte("no"), PreparedID: unhex(id16),
			Error: ErrorDetail{PreparedID: unhex(id16)}},
	},
	{
		name: "ERROR Unprepared without its id still decodes",
		frame: fixture(
			"84 00 00 03 00 00 00 00 08", // v4 response, stream 3, ERROR, length 8
			"00 00 25 00", "00 02", ascii("no"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrUnprepared, ErrMessage: []byte("no"), Error: ErrorDetail{Partial: true}},
	},
	{
		name: "AUTHENTICATE",
		frame: fixture(
			"84 00 00 01 03 00 00 00 31", // v4 response, stream 1, AUTHENTICATE, length 49
			"00 2f", ascii("org.apache.cassandra.auth.PasswordAuthenticator"),
		),
		want: Response{Opcode: OpAuthenticate, Authenticator: []byte("org.apache.cassandra.auth.PasswordAuthenticator")},
	},
	{
		name: "SUPPORTED, real (elastic-beats cassandra_mixed_frame.pcap)",
		frame: fixture(
			"84 00 00 00 06 00 00 00 34", // v4 response, stream 0, SUPPORTED, length 52
			"00 02",                      // [string multimap] 2 keys
			"00 0b", ascii("COMPRESSION"), "00 02", "00 06", ascii("snappy"), "00 03", ascii("lz4"),
			"00 0b", ascii("CQL_VERSION"), "00 01", "00 05", ascii("3.4.2"),
		),
		want: Response{Opcode: OpSupported, Supported: fixture(
			"00 02",
			"00 0b", ascii("COMPRESSION"), "00 02", "00 06", ascii("snappy"), "00 03", ascii("lz4"),
			"00 0b", ascii("CQL_VERSION"), "00 01", "00 05", ascii("3.4.2"),
		)},
	},
	{
		name:  "RESULT Void, real (elastic-beats cassandra_insert.pcap)",
		frame: fixture("84 00 00 fc 08 00 00 00 04", "00 00 00 01"), // v4 response, stream 252, RESULT, length 4; Void
		want:  Response{Opcode: OpResult, Kind: ResultVoid},
	},
	{
		name: "RESULT Rows, real (elastic-beats cassandra_select.pcap)",
		frame: fixture(
			"84 00 00 fd 08 00 00 00 59", // v4 response, stream 253, RESULT, length 89
			"00 00 00 02",                // Rows
			"00 00 00 01",                // flags Global_tables_spec
			"00 00 00 03",                // 3 columns
			"00 0a", ascii("mykeyspace"), "00 05", ascii("users"),
			"00 07", ascii("user_id"), "00 09", // int
			"00 05", ascii("fname"), "00 0d", // varchar
			"00 05", ascii("lname"), "00 0d", // varchar
			"00 00 00 01",             // 1 row
			"00 00 00 04 00 00 06 d1", // 1745
			"00 00 00 04", ascii("john"),
			"00 00 00 05", ascii("smith"),
		),
		want: Response{Opcode: OpResult, Kind: ResultRows, Columns: 3, Rows: 1, RowsKnown: true,
			Keyspace: []byte("mykeyspace"), Table: []byte("users")},
	},
	{
		name: "RESULT Rows with paging state, per-column specs, map/tuple/UDT types",
		frame: fixture(
			"84 00 00 07 08 00 00 00 5c", // v4 response, stream 7, RESULT, length 92
			"00 00 00 02",                // Rows
			"00 00 00 02",                // flags Has_more_pages
			"00 00 00 02",                // 2 columns
			"00 00 00 02 ca fe",          // paging state
			"00 02", ascii("ks"), "00 01", ascii("t"), "00 01", ascii("m"),
			"00 21 00 0d 00 31 00 02 00 09 00 0b", // map<varchar, tuple<int, timestamp>>
			"00 02", ascii("ks"), "00 01", ascii("t"), "00 01", ascii("u"),
			"00 30", "00 02", ascii("ks"), "00 04", ascii("addr"), "00 01", "00 04", ascii("city"), "00 0d", // UDT ks.addr{city varchar}
			"00 00 00 02",             // 2 rows
			"00 00 00 00 ff ff ff ff", // row 1: empty map, null UDT
			"00 00 00 00 00 00 00 00", // row 2
		),
		want: Response{Opcode: OpResult, Kind: ResultRows, Columns: 2, Rows: 2, RowsKnown: true,
			HasMorePages: true, PagingState: []byte{0xca, 0xfe}},
	},
	{
		name: "RESULT Rows v5 Metadata_changed carries a new id",
		frame: fixture(
			"85 00 00 08 08 00 00 00 28", // v5 response, stream 8, RESULT, length 40
			"00 00 00 02",                // Rows
			"00 00 00 09",                // flags Global_tables_spec|Metadata_changed
			"00 00 00 01",                // 1 column
			"00 04 de ad be ef",          // new metadata id
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("v"), "00 0d",
			"00 00 00 01",    // 1 row
			"00 00 00 01 78", // "x"
		),
		want: Response{Opcode: OpResult, Kind: ResultRows, Columns: 1, Rows: 1, RowsKnown: true,
			ResultMetadataID: []byte{0xde, 0xad, 0xbe, 0xef}, Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Rows No_metadata",
		frame: fixture(
			"84 00 00 09 08 00 00 00 1d", // v4 response, stream 9, RESULT, length 29
			"00 00 00 02",                // Rows
			"00 00 00 04",                // flags No_metadata
			"00 00 00 01",                // 1 column
			"00 00 00 03",                // 3 rows
			"00 00 00 01 61", "ff ff ff ff", "00 00 00 00",
		),
		want: Response{Opcode: OpResult, Kind: ResultRows, Columns: 1, Rows: 3, RowsKnown: true},
	},
	{
		name:  "RESULT Set_keyspace",
		frame: fixture("84 00 00 01 08 00 00 00 0a", "00 00 00 03", "00 04", ascii("test")), // v4 RESULT, length 10
		want:  Response{Opcode: OpResult, Kind: ResultSetKeyspace, Keyspace: []byte("test")},
	},
	{
		name: "RESULT Prepared v4 with pk indexes",
		frame: fixture(
			"84 00 00 05 08 00 00 00 40", // v4 response, stream 5, RESULT, length 64
			"00 00 00 04",                // Prepared
			"00 10", id16,                // id
			"00 00 00 01", // prepared metadata: flags Global_tables_spec
			"00 00 00 02", // 2 bind markers
			"00 00 00 01", // 1 pk index
			"00 00",       // pk index 0
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09", // int
			"00 01", ascii("c"), "00 20 00 0d", // list<varchar>
			"00 00 00 04", // result metadata: No_metadata
			"00 00 00 00", // 0 columns
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), BindMarkers: 2, PKIndexes: 1, PreparedFlags: 1,
			Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Prepared v3 has no pk indexes",
		frame: fixture(
			"83 00 00 05 08 00 00 00 3a", // v3 response, stream 5, RESULT, length 58
			"00 00 00 04",                // Prepared
			"00 10", id16,
			"00 00 00 01", "00 00 00 02", // flags global, 2 bind markers
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09",
			"00 01", ascii("c"), "00 20 00 0d",
			"00 00 00 04", "00 00 00 00", // result metadata: No_metadata, 0 columns
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), BindMarkers: 2, PreparedFlags: 1,
			Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Prepared v5 with result metadata id and result columns",
		frame: fixture(
			"85 00 00 06 08 00 00 00 58", // v5 response, stream 6, RESULT, length 88
			"00 00 00 04",                // Prepared
			"00 10", id16,                // id
			"00 10", mdID16, // result metadata id
			"00 00 00 01", "00 00 00 01", // prepared metadata: global, 1 bind marker
			"00 00 00 01 00 00", // 1 pk index: 0
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09",
			"00 00 00 01", "00 00 00 01", // result metadata: global, 1 column
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("v"), "00 0d",
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16),
			BindMarkers: 1, PKIndexes: 1, PreparedFlags: 1, Columns: 1, Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Prepared v4 with Scylla's metadata id extension",
		frame: fixture(
			"84 00 00 05 08 00 00 00 52", // v4 response, stream 5, RESULT, length 82
			"00 00 00 04",                // Prepared
			"00 10", id16,
			"00 10", mdID16, // result metadata id (SCYLLA_USE_METADATA_ID)
			"00 00 00 01", "00 00 00 02", "00 00 00 01", "00 00",
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09",
			"00 01", ascii("c"), "00 20 00 0d",
			"00 00 00 04", "00 00 00 00",
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16),
			BindMarkers: 2, PKIndexes: 1, PreparedFlags: 1, Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Schema_change table, real (elastic-beats cassandra_create_table.pcap)",
		frame: fixture(
			"84 00 00 31 08 00 00 00 27", // v4 response, stream 49, RESULT, length 39
			"00 00 00 05",                // Schema_change
			"00 07", ascii("CREATED"), "00 05", ascii("TABLE"),
			"00 0a", ascii("mykeyspace"), "00 05", ascii("users"),
		),
		want: Response{Opcode: OpResult, Kind: ResultSchemaChange, Schema: SchemaChange{Change: []byte("CREATED"),
			Target: []byte("TABLE"), Keyspace: []byte("mykeyspace"), Name: []byte("users")}},
	},
	{
		name: "RESULT Schema_change keyspace, real (elastic-beats cassandra_create_keyspace.pcap)",
		frame: fixture(
			"84 00 00 14 08 00 00 00 23", // v4 response, stream 20, RESULT, length 35
			"00 00 00 05",
			"00 07", ascii("CREATED"), "00 08", ascii("KEYSPACE"), "00 0a", ascii("mykeyspace"),
		),
		want: Response{Opcode: OpResult, Kind: ResultSchemaChange, Schema: SchemaChange{Change: []byte("CREATED"),
			Target: []byte("KEYSPACE"), Keyspace: []byte("mykeyspace")}},
	},
	{
		name: "RESULT Schema_change function with argument types",
		frame: fixture(
			"84 00 00 15 08 00 00 00 2c", // v4 response, stream 21, RESULT, length 44
			"00 00 00 05",
			"00 07", ascii("CREATED"), "00 08", ascii("FUNCTION"),
			"00 02", ascii("ks"), "00 02", ascii("fn"),
			"00 02", "00 03", ascii("int"), "00 04", ascii("text"), // [string list] argument types
		),
		want: Response{Opcode: OpResult, Kind: ResultSchemaChange, Schema: SchemaChange{Change: []byte("CREATED"),
			Target: []byte("FUNCTION"), Keyspace: []byte("ks"), Name: []byte("fn"), ArgTypes: 2}},
	},
	{
		name: "RESULT Schema_change v2: change, keyspace, table",
		frame: fixture(
			"82 00 05 08 00 00 00 13", // v2 response (8-byte header), stream 5, RESULT, length 19
			"00 00 00 05",
			"00 07", ascii("DROPPED"), "00 02", ascii("ks"), "00 00",
		),
		want: Response{Opcode: OpResult, Kind: ResultSchemaChange,
			Schema: SchemaChange{Change: []byte("DROPPED"), Keyspace: []byte("ks")}},
	},
	{
		name: "EVENT SCHEMA_CHANGE",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 26", // v4 response, stream -1, EVENT, length 38
			"00 0d", ascii("SCHEMA_CHANGE"),
			"00 07", ascii("UPDATED"), "00 05", ascii("TABLE"), "00 02", ascii("ks"), "00 01", ascii("t"),
		),
		want: Response{Opcode: OpEvent, EventType: []byte("SCHEMA_CHANGE"), Schema: SchemaChange{
			Change: []byte("UPDATED"), Target: []byte("TABLE"), Keyspace: []byte("ks"), Name: []byte("t")}},
	},
	{
		name: "EVENT STATUS_CHANGE IPv4",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 1c", // v4 response, stream -1, EVENT, length 28
			"00 0d", ascii("STATUS_CHANGE"),
			"00 02", ascii("UP"),
			"04 7f 00 00 01 00 00 23 52", // [inet] 127.0.0.1:9042
		),
		want: Response{Opcode: OpEvent, EventType: []byte("STATUS_CHANGE"), Change: []byte("UP"),
			NodeAddr: []byte{127, 0, 0, 1}, NodePort: 9042},
	},
	{
		name: "EVENT TOPOLOGY_CHANGE IPv6",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 30", // v4 response, stream -1, EVENT, length 48
			"00 0f", ascii("TOPOLOGY_CHANGE"),
			"00 08", ascii("NEW_NODE"),
			"10 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01 00 00 23 52", // [inet] [::1]:9042
		),
		want: Response{Opcode: OpEvent, EventType: []byte("TOPOLOGY_CHANGE"), Change: []byte("NEW_NODE"),
			NodeAddr: unhex("00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01"), NodePort: 9042},
	},
	{
		name:  "AUTH_CHALLENGE",
		frame: fixture("84 00 00 02 0e 00 00 00 0f", "00 00 00 0b", ascii("PLAIN-START")), // v4 AUTH_CHALLENGE, length 15
		want:  Response{Opcode: OpAuthChallenge, AuthTokenLen: 11},
	},
	{
		name:  "AUTH_SUCCESS null token",
		frame: fixture("84 00 00 02 10 00 00 00 04", "ff ff ff ff"), // v4 AUTH_SUCCESS, length 4
		want:  Response{Opcode: OpAuthSuccess},
	},
	{
		name: "tracing id, warnings and custom payload, in that order",
		frame: fixture(
			"84 0e 00 0a 08 00 00 00 2d",                      // v4 response, flags TRACING|CUSTOM_PAYLOAD|WARNING, stream 10, RESULT, length 45
			"01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10", // [uuid] tracing id
			"00 02", "00 04", ascii("warn"), "00 05", ascii("again"), // [string list] warnings
			"00 01", "00 01", ascii("k"), "00 00 00 01 ff", // [bytes map] custom payload
			"00 00 00 01", // Void
		),
		want: Response{Opcode: OpResult, Kind: ResultVoid, Warnings: 2, CustomPayload: 1,
			CustomPayloadRaw: unhex("00 01 00 01 6b 00 00 00 01 ff"),
			TracingID:        unhex("01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10")},
	},
	{
		name: "v3 tracing id",
		frame: fixture(
			"83 02 00 0b 08 00 00 00 14", // v3 response, flags TRACING, stream 11, RESULT, length 20
			"01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10",
			"00 00 00 01",
		),
		want: Response{Opcode: OpResult, Kind: ResultVoid, TracingID: unhex("01 02 03 04 05 06 07 08 09 0a 0b 0c 0d 0e 0f 10")},
	},
	{
		name:  "v3 ignores the warning flag (defined from v4 on)",
		frame: fixture("83 08 00 0b 08 00 00 00 04", "00 00 00 01"), // v3 response, flags WARNING, RESULT, length 4
		want:  Response{Opcode: OpResult, Kind: ResultVoid},
	},

	// Malformed and truncated bodies.
	{
		name:  "RESULT kind 6",
		frame: fixture("84 00 00 01 08 00 00 00 04", "00 00 00 06"),
		err:   ErrMalformed,
	},
	{
		name:  "RESULT cut inside the kind",
		frame: fixture("84 00 00 01 08 00 00 00 02", "00 00"),
		err:   ErrTruncated,
	},
	{
		name:  "Rows with a negative column count",
		frame: fixture("84 00 00 01 08 00 00 00 0c", "00 00 00 02", "00 00 00 00", "ff ff ff ff"),
		err:   ErrMalformed,
	},
	{
		name:  "Rows with a negative row count",
		frame: fixture("84 00 00 01 08 00 00 00 10", "00 00 00 02", "00 00 00 04", "00 00 00 01", "ff ff ff ff"),
		err:   ErrMalformed,
	},
	{
		name: "Rows count larger than the body can hold",
		frame: fixture(
			"84 00 00 01 08 00 00 00 18",                // v4 response, stream 1, RESULT, length 24
			"00 00 00 02", "00 00 00 04", "00 00 00 02", // Rows, No_metadata, 2 columns
			"00 00 00 02",                // 2 rows need at least 16 bytes
			"00 00 00 00", "00 00 00 00", // 8 present
		),
		err: ErrTruncated,
	},
	{
		name: "Rows with more column specs than bytes",
		frame: fixture(
			"84 00 00 01 08 00 00 00 10",                // v4 response, stream 1, RESULT, length 16
			"00 00 00 02", "00 00 00 01", "7f ff ff ff", // Rows, global, 2^31-1 columns
			"00 00 00 00", // empty keyspace and table
		),
		err: ErrTruncated,
	},
	{
		name: "type nesting deeper than 32",
		frame: fixture(
			"84 00 00 01 08 00 00 00 69",                // v4 response, stream 1, RESULT, length 105
			"00 00 00 02", "00 00 00 01", "00 00 00 01", // Rows, global, 1 column
			"00 00 00 00", // keyspace "", table ""
			"00 01", ascii("x"),
			strings.Repeat("00 20 ", 40), "00 09", // list<list<...40 deep...<int>>>
			"00 00 00 00", // 0 rows
		),
		err: ErrMalformed,
	},
	{
		name: "unknown type id",
		frame: fixture(
			"84 00 00 01 08 00 00 00 19", // v4 response, stream 1, RESULT, length 25
			"00 00 00 02", "00 00 00 01", "00 00 00 01", "00 00 00 00",
			"00 01", ascii("x"), "00 40", // type 0x0040
			"00 00 00 00",
		),
		err: ErrMalformed,
	},
	{
		name: "UDT with more fields than bytes",
		frame: fixture(
			"84 00 00 01 08 00 00 00 1d", // v4 response, stream 1, RESULT, length 29
			"00 00 00 02", "00 00 00 01", "00 00 00 01", "00 00 00 00",
			"00 01", ascii("x"),
			"00 30 00 00 00 00 ff ff", // UDT "", "", 65535 fields
			"00 00",
		),
		err: ErrTruncated,
	},
	{
		name:  "Prepared with a negative pk count",
		frame: fixture("84 00 00 01 08 00 00 00 14", "00 00 00 04", "00 02 ab cd", "00 00 00 00", "00 00 00 00", "ff ff ff ff"),
		err:   ErrMalformed,
	},
	{
		name:  "tracing id cut",
		frame: fixture("84 02 00 01 08 00 00 00 0a", "01 02 03 04 05 06 07 08 09 0a"),
		err:   ErrTruncated,
	},
	{
		name:  "more warnings than bytes",
		frame: fixture("84 08 00 01 08 00 00 00 04", "00 05 00 01"),
		err:   ErrTruncated,
	},
	{
		name: "EVENT inet of length 5",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 1d", // v4 response, stream -1, EVENT, length 29
			"00 0d", ascii("STATUS_CHANGE"), "00 02", ascii("UP"),
			"05 7f 00 00 01 00 00 00 23 52",
		),
		err: ErrMalformed,
	},
	{
		name:  "SUPPORTED cut",
		frame: fixture("84 00 00 00 06 00 00 00 05", "00 01 00 05 41"),
		err:   ErrTruncated,
	},
	{
		name:  "Set_keyspace name longer than the body",
		frame: fixture("84 00 00 01 08 00 00 00 08", "00 00 00 03", "00 09 61 62"),
		err:   ErrTruncated,
	},
	{
		name:  "request opcode in a response",
		frame: fixture("84 00 00 01 07 00 00 00 00"),
		err:   ErrMalformed,
	},
}

func TestDecodeResponse(t *testing.T) {
	for _, tc := range responseCases {
		t.Run(tc.name, func(t *testing.T) {
			h, body := splitFrame(t, tc.frame)
			r := Response{RateLimitCode: tc.rateLimit, Keyspace: []byte("stale"), Rows: 7, RowsKnown: true,
				Error: ErrorDetail{Partial: true, NumReasons: 2}}
			err := DecodeResponse(&h, body, &r)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				if !reflect.DeepEqual(r, Response{RateLimitCode: tc.rateLimit}) {
					t.Fatalf("response not reset after error: %+v", r)
				}
				return
			}
			want := tc.want
			want.RateLimitCode = tc.rateLimit
			if diff := fieldDiff(normalized(r), normalized(want)); diff != "" {
				t.Error(diff)
			}
			checkWithin(t, body, &r)
		})
	}
}

func TestForEachMultimap(t *testing.T) {
	b := fixture("00 02",
		"00 0b", ascii("COMPRESSION"), "00 02", "00 06", ascii("snappy"), "00 03", ascii("lz4"),
		"00 0b", ascii("CQL_VERSION"), "00 01", "00 05", ascii("3.4.2"),
		"ff") // trailing byte, ignored
	var got []string
	err := ForEachMultimap(b, func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
	want := []string{"COMPRESSION=snappy", "COMPRESSION=lz4", "CQL_VERSION=3.4.2"}
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v", got, err)
	}
	for n := range len(b) - 1 {
		if err := ForEachMultimap(b[:n], func(k, v []byte) {}); err != ErrTruncated {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
}
