package decode

import (
	"errors"
	"reflect"
	"testing"
)

type requestCase struct {
	name  string
	frame []byte
	keep  bool // KeepValues
	want  Request
	err   error
}

// requestCases are hand-built from the v3/v4/v5 specs unless marked real.
var requestCases = []requestCase{
	{
		name: "STARTUP v4, keys in any case",
		frame: fixture(
			"04 00 00 00 01 00 00 00 53", // v4 request, stream 0, STARTUP, length 83
			"00 04",                      // [string map] 4 entries
			"00 0b", ascii("CQL_VERSION"), "00 05", ascii("3.0.0"),
			"00 0b", ascii("COMPRESSION"), "00 03", ascii("lz4"),
			"00 0b", ascii("driver_name"), "00 05", ascii("gocql"),
			"00 0e", ascii("DRIVER_VERSION"), "00 05", ascii("1.7.0"),
		),
		want: Request{Opcode: OpStartup, CQLVersion: []byte("3.0.0"), Compression: []byte("lz4"),
			DriverName: []byte("gocql"), DriverVersion: []byte("1.7.0")},
	},
	{
		name: "STARTUP v4, real (elastic-beats cassandra_mixed_frame.pcap)",
		frame: fixture(
			"04 00 00 01 01 00 00 00 16", // v4 request, stream 1, STARTUP, length 22
			"00 01",                      // 1 entry
			"00 0b", ascii("CQL_VERSION"), "00 05", ascii("3.4.2"),
		),
		want: Request{Opcode: OpStartup, CQLVersion: []byte("3.4.2")},
	},
	{
		name:  "OPTIONS v4",
		frame: fixture("04 00 00 07 05 00 00 00 00"), // v4 request, stream 7, OPTIONS, length 0
		want:  Request{Opcode: OpOptions},
	},
	{
		name: "QUERY v4 with tracing flag, real (elastic-beats cassandra_trace_err.pcap)",
		frame: fixture(
			"04 02 01 13 07 00 00 00 2e",                      // v4 request, flags TRACING, stream 0x0113, QUERY, length 46
			"00 00 00 19", ascii("DROP KEYSPACE mykeyspace;"), // [long string] query, 25 bytes
			"00 01",                   // consistency ONE
			"34",                      // flags PAGE_SIZE|SERIAL_CONSISTENCY|DEFAULT_TIMESTAMP
			"00 00 00 64",             // page size 100
			"00 08",                   // serial consistency SERIAL
			"00 05 39 39 fe ab 91 c4", // default timestamp, µs
		),
		want: Request{Opcode: OpQuery, Query: []byte("DROP KEYSPACE mykeyspace;"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x34, PageSize: 100, SerialConsistency: Serial,
				HasSerial: true, Timestamp: 0x00053939feab91c4, HasTimestamp: true}},
	},
	{
		name: "QUERY v4 SELECT, real (elastic-beats cassandra_select.pcap)",
		frame: fixture(
			"04 00 00 fd 07 00 00 00 29", // v4 request, stream 253, QUERY, length 41
			"00 00 00 14", ascii("SELECT * FROM users;"),
			"00 01 34 00 00 00 64 00 08 00 05 36 2e 68 1f c0 f7", // ONE, flags 0x34, 100, SERIAL, timestamp
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT * FROM users;"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x34, PageSize: 100, SerialConsistency: Serial,
				HasSerial: true, Timestamp: 0x0005362e681fc0f7, HasTimestamp: true}},
	},
	{
		name: "QUERY v3 values are [bytes]: any negative length is null",
		frame: fixture(
			"03 00 00 01 07 00 00 00 1e", // v3 request, stream 1, QUERY, length 30
			"00 00 00 08", ascii("SELECT ?"),
			"00 06",          // LOCAL_QUORUM
			"05",             // flags VALUES|PAGE_SIZE
			"00 02",          // 2 values
			"00 00 00 01 2a", // [bytes] 0x2a
			"ff ff ff fe",    // [bytes] -2: null in v3
			"00 00 13 88",    // page size 5000
		),
		keep: true,
		want: Request{Opcode: OpQuery, KeepValues: true, Query: []byte("SELECT ?"), HasParams: true,
			Params: QueryParams{Consistency: LocalQuorum, Flags: 0x05, ValuesCount: 2,
				Values: [][]byte{{0x2a}, nil}, PageSize: 5000}},
	},
	{
		name: "QUERY v4 named values, one not set",
		frame: fixture(
			"04 00 00 02 07 00 00 00 26", // v4 request, stream 2, QUERY, length 38
			"00 00 00 0d", ascii("SELECT :a, :b"),
			"00 01",                                  // ONE
			"41",                                     // flags VALUES|NAMES_FOR_VALUES
			"00 02",                                  // 2 values
			"00 01", ascii("a"), "00 00 00 02 00 07", // name a, [value] 2 bytes
			"00 01", ascii("b"), "ff ff ff fe", // name b, [value] -2: not set
		),
		keep: true,
		want: Request{Opcode: OpQuery, KeepValues: true, Query: []byte("SELECT :a, :b"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x41, ValuesCount: 2,
				Values: [][]byte{{0x00, 0x07}, nil}, PageSize: -1}},
	},
	{
		name: "QUERY v4 values counted but not kept without KeepValues",
		frame: fixture(
			"04 00 00 02 07 00 00 00 17", // v4 request, stream 2, QUERY, length 23
			"00 00 00 08", ascii("SELECT ?"),
			"00 01 01",                // ONE, flags VALUES
			"00 01 00 00 00 02 00 07", // 1 value, 2 bytes
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT ?"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x01, ValuesCount: 1, PageSize: -1}},
	},
	{
		name: "QUERY v4 paging state",
		frame: fixture(
			"04 00 00 04 07 00 00 00 1a", // v4 request, stream 4, QUERY, length 26
			"00 00 00 08", ascii("SELECT 1"),
			"00 04",                // QUORUM
			"0c",                   // flags PAGE_SIZE|WITH_PAGING_STATE
			"00 00 00 64",          // page size 100
			"00 00 00 03 01 02 03", // paging state [bytes]
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: Quorum, Flags: 0x0c, PageSize: 100, PagingState: []byte{1, 2, 3}}},
	},
	{
		name: "QUERY v5 [int] flags, keyspace and now_in_seconds",
		frame: fixture(
			"05 00 00 03 07 00 00 00 26", // v5 request, stream 3, QUERY, length 38
			"00 00 00 08", ascii("SELECT 1"),
			"00 0a",                   // LOCAL_ONE
			"00 00 01 a4",             // flags NOW_IN_SECONDS|KEYSPACE|DEFAULT_TIMESTAMP|PAGE_SIZE
			"00 00 00 0a",             // page size 10
			"00 00 00 00 00 00 00 2a", // timestamp 42
			"00 02", ascii("ks"),      // keyspace
			"5f 5e 10 00", // now_in_seconds
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: LocalOne, Flags: 0x1a4, PageSize: 10, Timestamp: 42,
				HasTimestamp: true, Keyspace: []byte("ks"), NowInSeconds: 0x5f5e1000, HasNowInSeconds: true}},
	},
	{
		name: "QUERY v4 custom payload prefix",
		frame: fixture(
			"04 04 00 0b 07 00 00 00 1c", // v4 request, flags CUSTOM_PAYLOAD, stream 11, QUERY, length 28
			"00 01",                      // [bytes map] 1 entry
			"00 03", ascii("key"), "00 00 00 02 ab cd",
			"00 00 00 08", ascii("SELECT 1"),
			"00 01 00", // ONE, no flags
		),
		want: Request{Opcode: OpQuery, CustomPayload: 1, CustomPayloadRaw: unhex("00 01 00 03 6b 65 79 00 00 00 02 ab cd"),
			Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: One, PageSize: -1}},
	},
	{
		name: "QUERY v1: query and consistency only",
		frame: fixture(
			"01 00 01 07 00 00 00 0e", // v1 request (8-byte header), stream 1, QUERY, length 14
			"00 00 00 08", ascii("SELECT 1"),
			"00 05", // ALL
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: All, PageSize: -1}},
	},
	{
		name: "PREPARE v4",
		frame: fixture(
			"04 00 00 05 09 00 00 00 20", // v4 request, stream 5, PREPARE, length 32
			"00 00 00 1c", ascii("SELECT v FROM kv WHERE k = ?"),
		),
		want: Request{Opcode: OpPrepare, Query: []byte("SELECT v FROM kv WHERE k = ?")},
	},
	{
		name: "PREPARE v5 with keyspace",
		frame: fixture(
			"05 00 00 06 09 00 00 00 1e", // v5 request, stream 6, PREPARE, length 30
			"00 00 00 08", ascii("SELECT 1"),
			"00 00 00 01", // flags WITH_KEYSPACE
			"00 0c", ascii("cqlsniff_lab"),
		),
		want: Request{Opcode: OpPrepare, Query: []byte("SELECT 1"), Keyspace: []byte("cqlsniff_lab")},
	},
	{
		name: "EXECUTE v4 with values",
		frame: fixture(
			"04 00 00 07 0a 00 00 00 27", // v4 request, stream 7, EXECUTE, length 39
			"00 10", id16,                // [short bytes] prepared id
			"00 01",                   // ONE
			"07",                      // flags VALUES|SKIP_METADATA|PAGE_SIZE
			"00 02",                   // 2 values
			"00 00 00 04 00 00 00 2a", // int 42
			"ff ff ff ff",             // null
			"00 00 13 88",             // page size 5000
		),
		keep: true,
		want: Request{Opcode: OpExecute, KeepValues: true, PreparedID: unhex(id16), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x07, ValuesCount: 2,
				Values: [][]byte{{0, 0, 0, 42}, nil}, PageSize: 5000}},
	},
	{
		name: "EXECUTE v3 values: a negative length below -2 is still null",
		frame: fixture(
			"03 00 00 07 0a 00 00 00 11", // v3 request, stream 7, EXECUTE, length 17
			"00 02 ab cd",                // prepared id
			"00 01 01",                   // ONE, flags VALUES
			"00 02",                      // 2 values
			"ff ff ff fb",                // -5: null
			"00 00 00 00",                // empty
		),
		keep: true,
		want: Request{Opcode: OpExecute, KeepValues: true, PreparedID: []byte{0xab, 0xcd}, HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x01, ValuesCount: 2, Values: [][]byte{nil, {}}, PageSize: -1}},
	},
	{
		name: "EXECUTE v5 carries the result metadata id",
		frame: fixture(
			"05 00 00 08 0a 00 00 00 2a", // v5 request, stream 8, EXECUTE, length 42
			"00 10", id16,                // prepared id
			"00 10", mdID16, // result metadata id
			"00 06",       // LOCAL_QUORUM
			"00 00 00 00", // [int] flags
		),
		want: Request{Opcode: OpExecute, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16), HasParams: true,
			Params: QueryParams{Consistency: LocalQuorum, PageSize: -1}},
	},
	{
		name: "EXECUTE v4 with Scylla's metadata id extension",
		frame: fixture(
			"04 00 00 08 0a 00 00 00 27", // v4 request, stream 8, EXECUTE, length 39
			"00 10", id16,                // prepared id
			"00 10", mdID16, // result metadata id (0x0010 cannot be a consistency)
			"00 06", // LOCAL_QUORUM
			"00",    // [byte] flags
		),
		want: Request{Opcode: OpExecute, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16), HasParams: true,
			Params: QueryParams{Consistency: LocalQuorum, PageSize: -1}},
	},
	{
		name: "EXECUTE v1: values before the consistency",
		frame: fixture(
			"01 00 02 0a 00 00 00 0d", // v1 request, stream 2, EXECUTE, length 13
			"00 02 ab cd",             // prepared id
			"00 01 00 00 00 01 07",    // 1 value
			"00 01",                   // ONE
		),
		keep: true,
		want: Request{Opcode: OpExecute, KeepValues: true, PreparedID: []byte{0xab, 0xcd}, HasParams: true,
			Params: QueryParams{Consistency: One, ValuesCount: 1, Values: [][]byte{{7}}, PageSize: -1}},
	},
	{
		name: "EXECUTE DSE_V1: [int] flags, no metadata id",
		frame: fixture(
			"41 00 00 0c 0a 00 00 00 0a", // DSE_V1 request, stream 12, EXECUTE, length 10
			"00 02 ab cd",                // prepared id
			"00 01",                      // ONE
			"00 00 00 00",                // [int] flags
		),
		want: Request{Opcode: OpExecute, PreparedID: []byte{0xab, 0xcd}, HasParams: true,
			Params: QueryParams{Consistency: One, PageSize: -1}},
	},
	{
		name: "EXECUTE DSE_V2: metadata id like v5",
		frame: fixture(
			"42 00 00 0d 0a 00 00 00 0e", // DSE_V2 request, stream 13, EXECUTE, length 14
			"00 02 ab cd",                // prepared id
			"00 02 ef 01",                // result metadata id
			"00 01",                      // ONE
			"00 00 00 00",                // [int] flags
		),
		want: Request{Opcode: OpExecute, PreparedID: []byte{0xab, 0xcd}, ResultMetadataID: []byte{0xef, 0x01},
			HasParams: true, Params: QueryParams{Consistency: One, PageSize: -1}},
	},
	{
		name: "BATCH v4 mixed statements",
		frame: fixture(
			"04 00 00 09 0d 00 00 00 48",                  // v4 request, stream 9, BATCH, length 72
			"01",                                          // UNLOGGED
			"00 02",                                       // 2 statements
			"00", "00 00 00 0f", ascii("INSERT INTO t ?"), // kind 0: [long string]
			"00 01 00 00 00 01 01", // 1 value
			"01", "00 10", id16,    // kind 1: [short bytes] prepared id
			"00 02 00 00 00 00 ff ff ff fe", // 2 values: empty, not set
			"00 04",                         // QUORUM
			"30",                            // flags SERIAL_CONSISTENCY|DEFAULT_TIMESTAMP
			"00 09",                         // LOCAL_SERIAL
			"00 00 00 00 00 00 00 01",       // timestamp 1
		),
		keep: true,
		want: Request{Opcode: OpBatch, KeepValues: true, BatchType: 1, HasParams: true,
			Children: []BatchChild{
				{Kind: 0, Query: []byte("INSERT INTO t ?"), ValuesCount: 1},
				{Kind: 1, PreparedID: unhex(id16), ValuesCount: 2, FirstValue: 1},
			},
			Params: QueryParams{Consistency: Quorum, Flags: 0x30, ValuesCount: 3, Values: [][]byte{{1}, {}, nil},
				PageSize: -1, SerialConsistency: LocalSerial, HasSerial: true, Timestamp: 1, HasTimestamp: true}},
	},
	{
		name: "BATCH v2 has no flags",
		frame: fixture(
			"02 00 05 0d 00 00 00 14", // v2 request (8-byte header), stream 5, BATCH, length 20
			"00",                      // LOGGED
			"00 01",                   // 1 statement
			"00", "00 00 00 08", ascii("UPDATE x"),
			"00 00", // no values
			"00 01", // ONE
		),
		want: Request{Opcode: OpBatch, HasParams: true, Children: []BatchChild{{Query: []byte("UPDATE x")}},
			Params: QueryParams{Consistency: One, PageSize: -1}},
	},
	{
		name: "BATCH v5 [int] flags and keyspace",
		frame: fixture(
			"05 00 00 0a 0d 00 00 00 22", // v5 request, stream 10, BATCH, length 34
			"02",                         // COUNTER
			"00 01",                      // 1 statement
			"01", "00 10", id16,
			"00 00",       // no values
			"00 01",       // ONE
			"00 00 00 80", // flags WITH_KEYSPACE
			"00 02", ascii("ks"),
		),
		want: Request{Opcode: OpBatch, BatchType: 2, HasParams: true,
			Children: []BatchChild{{Kind: 1, PreparedID: unhex(id16)}},
			Params:   QueryParams{Consistency: One, Flags: 0x80, PageSize: -1, Keyspace: []byte("ks")}},
	},
	{
		name: "REGISTER v4, real (elastic-beats cassandra_mixed_frame.pcap)",
		frame: fixture(
			"04 00 00 02 0b 00 00 00 31", // v4 request, stream 2, REGISTER, length 49
			"00 03",                      // [string list] 3 entries
			"00 0f", ascii("TOPOLOGY_CHANGE"),
			"00 0d", ascii("STATUS_CHANGE"),
			"00 0d", ascii("SCHEMA_CHANGE"),
		),
		want: Request{Opcode: OpRegister, EventTypes: 3},
	},
	{
		name: "AUTH_RESPONSE v4: only the token length",
		frame: fixture(
			"04 00 00 03 0f 00 00 00 15",                                   // v4 request, stream 3, AUTH_RESPONSE, length 21
			"00 00 00 11", "00", ascii("cassandra"), "00", ascii("secret"), // SASL PLAIN
		),
		want: Request{Opcode: OpAuthResponse, AuthTokenLen: 17},
	},

	// Malformed and truncated bodies.
	{
		name: "consistency above LOCAL_ONE",
		frame: fixture(
			"04 00 00 01 07 00 00 00 08", // v4 request, stream 1, QUERY, length 8
			"00 00 00 01", ascii("x"),
			"00 0b", // consistency 0x000B
			"00",
		),
		err: ErrMalformed,
	},
	{
		name: "v4 flags byte over 0x7F",
		frame: fixture(
			"04 00 00 01 07 00 00 00 08", // v4 request, stream 1, QUERY, length 8
			"00 00 00 01", ascii("x"),
			"00 01", "80", // ONE, flags 0x80
		),
		err: ErrMalformed,
	},
	{
		name: "v4 value length below -2",
		frame: fixture(
			"04 00 00 01 07 00 00 00 0e", // v4 request, stream 1, QUERY, length 14
			"00 00 00 01", ascii("x"),
			"00 01 01",    // ONE, VALUES
			"00 01",       // 1 value
			"ff ff ff fd", // -3
		),
		err: ErrMalformed,
	},
	{
		name:  "negative [long string] length",
		frame: fixture("04 00 00 01 07 00 00 00 04", "80 00 00 00"), // v4 QUERY, length 4
		err:   ErrMalformed,
	},
	{
		name:  "query string longer than the body",
		frame: fixture("04 00 00 01 07 00 00 00 05", "00 00 01 00", ascii("x")), // v4 QUERY, length 5
		err:   ErrTruncated,
	},
	{
		name: "more values than the body can hold",
		frame: fixture(
			"04 00 00 01 07 00 00 00 0a", // v4 request, stream 1, QUERY, length 10
			"00 00 00 01", ascii("x"),
			"00 01 01", // ONE, VALUES
			"ff ff",    // 65535 values
		),
		err: ErrTruncated,
	},
	{
		name: "serial consistency out of range",
		frame: fixture(
			"04 00 00 01 07 00 00 00 0a", // v4 request, stream 1, QUERY, length 10
			"00 00 00 01", ascii("x"),
			"00 01 10", // ONE, SERIAL_CONSISTENCY
			"00 20",    // 0x0020
		),
		err: ErrMalformed,
	},
	{
		name:  "batch type 3",
		frame: fixture("04 00 00 01 0d 00 00 00 06", "03 00 00 00 01 00"), // v4 BATCH, length 6
		err:   ErrMalformed,
	},
	{
		name: "batch statement kind 2",
		frame: fixture(
			"04 00 00 01 0d 00 00 00 0b", // v4 request, stream 1, BATCH, length 11
			"00 00 01",                   // LOGGED, 1 statement
			"02",                         // kind 2
			"00 00 00 00 00 00 00",
		),
		err: ErrMalformed,
	},
	{
		name:  "batch with more statements than bytes",
		frame: fixture("04 00 00 01 0d 00 00 00 06", "00 ff ff 00 01 00"), // v4 BATCH, length 6
		err:   ErrTruncated,
	},
	{
		name: "STARTUP map with more entries than bytes",
		frame: fixture(
			"04 00 00 00 01 00 00 00 08",                      // v4 request, stream 0, STARTUP, length 8
			"00 02", "00 01", ascii("a"), "00 01", ascii("b"), // 2 entries announced, 1 present
		),
		err: ErrTruncated,
	},
	{
		name:  "AUTH_RESPONSE token longer than the body",
		frame: fixture("04 00 00 03 0f 00 00 00 06", "00 00 00 10 00 01"), // v4 AUTH_RESPONSE, length 6
		err:   ErrTruncated,
	},
	{
		name:  "response opcode in a request",
		frame: fixture("04 00 00 01 08 00 00 00 04", "00 00 00 01"), // v4 request with opcode RESULT
		err:   ErrMalformed,
	},
	{
		name:  "custom payload map cut",
		frame: fixture("04 04 00 01 05 00 00 00 02", "00 01"), // v4 OPTIONS with CUSTOM_PAYLOAD, 1 entry missing
		err:   ErrTruncated,
	},
}

func TestDecodeRequest(t *testing.T) {
	for _, tc := range requestCases {
		t.Run(tc.name, func(t *testing.T) {
			h, body := splitFrame(t, tc.frame)
			// A dirty, reused Request must come out the same as a fresh one.
			r := Request{KeepValues: tc.keep, Query: []byte("stale"), Children: make([]BatchChild, 3, 8),
				Params: QueryParams{Values: [][]byte{{1}, {2}}}}
			err := DecodeRequest(&h, body, &r)
			if !errors.Is(err, tc.err) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				if !requestIsReset(&r, tc.keep) {
					t.Fatalf("request not reset after error: %+v", r)
				}
				return
			}
			if !sameValues(r.Params.Values, tc.want.Params.Values) {
				t.Errorf("values = %q, want %q", r.Params.Values, tc.want.Params.Values)
			}
			if diff := fieldDiff(normalized(r), normalized(tc.want)); diff != "" {
				t.Error(diff)
			}
			checkWithin(t, body, &r)
		})
	}
}

func TestAuthResponseTokenNeverExposed(t *testing.T) {
	frame := fixture("04 00 00 03 0f 00 00 00 15", "00 00 00 11 00", ascii("cassandra"), "00", ascii("secret"))
	h, body := splitFrame(t, frame)
	var r Request
	if err := DecodeRequest(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	forEachSlice(reflect.ValueOf(&r).Elem(), func(s []byte) {
		if len(s) > 0 {
			t.Errorf("AUTH_RESPONSE exposed bytes %q", s)
		}
	})
}

func TestForEachStringMap(t *testing.T) {
	b := fixture("00 02", "00 0b", ascii("CQL_VERSION"), "00 05", ascii("3.0.0"), "00 0b", ascii("COMPRESSION"), "00 03", ascii("lz4"))
	var got []string
	err := ForEachStringMap(b, func(k, v []byte) { got = append(got, string(k)+"="+string(v)) })
	if want := []string{"CQL_VERSION=3.0.0", "COMPRESSION=lz4"}; err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("got %q, %v", got, err)
	}
	if err := ForEachStringMap(b[:5], nil); err != ErrTruncated {
		t.Errorf("cut: %v", err)
	}
}
