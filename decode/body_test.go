package decode

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// ascii marks a fixture part that is raw text rather than hex.
type ascii string

// fixture builds bytes from annotated parts: a string is hex (spaces
// ignored), an ascii is raw text, a []byte is copied as is.
func fixture(parts ...any) []byte {
	var out []byte
	for _, p := range parts {
		switch p := p.(type) {
		case string:
			b, err := hex.DecodeString(strings.ReplaceAll(p, " ", ""))
			if err != nil {
				panic("bad hex in fixture: " + p)
			}
			out = append(out, b...)
		case ascii:
			out = append(out, p...)
		case []byte:
			out = append(out, p...)
		default:
			panic("bad fixture part")
		}
	}
	return out
}

// splitFrame parses the envelope header at the start of a fixture and
// returns it with the body that follows.
func splitFrame(t testing.TB, frame []byte) (Header, []byte) {
	t.Helper()
	var h Header
	n := ParseHeader(frame, &h)
	if n <= 0 {
		t.Fatalf("fixture header does not parse: % x", frame[:min(len(frame), 9)])
	}
	return h, frame[n:]
}

// normalized returns a copy of v (a Request or Response) where empty byte
// slices and empty Children are nil, so that expectations need not care
// whether a decoder returned an empty slice of the body or nil. Bound values
// are left alone: there nil (null) and empty differ.
func normalized(v any) any {
	c := reflect.New(reflect.TypeOf(v)).Elem()
	c.Set(reflect.ValueOf(v))
	normalize(c)
	return c.Interface()
}

var bytesType = reflect.TypeOf([]byte(nil))

func normalize(v reflect.Value) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if v.Type().Field(i).Name == "Values" {
				if v.Field(i).Len() == 0 {
					v.Field(i).Set(reflect.Zero(v.Field(i).Type()))
				}
				continue
			}
			normalize(v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			v.Set(reflect.Zero(v.Type()))
			return
		}
		if v.Type() != bytesType {
			for i := 0; i < v.Len(); i++ {
				normalize(v.Index(i))
			}
		}
	}
}

func sameValues(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if (a[i] == nil) != (b[i] == nil) || !bytes.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

var (
	id16   = "00 11 22 33 44 55 66 77 88 99 aa bb cc dd ee ff"
	mdID16 = "ff ee dd cc bb aa 99 88 77 66 55 44 33 22 11 00"
)

func unhex(s string) []byte { return fixture(s) }

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

func TestFixtureLengths(t *testing.T) {
	check := func(name string, frame []byte) {
		h, body := splitFrame(t, frame)
		if int(h.Length) != len(body) {
			t.Errorf("%s: header length %d, body %d bytes", name, h.Length, len(body))
		}
	}
	for _, tc := range requestCases {
		check(tc.name, tc.frame)
	}
	for _, tc := range responseCases {
		check(tc.name, tc.frame)
	}
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

// TestPrefixBodies cuts every valid fixture at every length and decodes the
// cut body under the original header, as the analyzer does with a buffered
// prefix of a large body. The result must be an error only while the
// essential fields are incomplete, never ErrMalformed, and every field it
// does fill must agree with the full decode.
func TestPrefixBodies(t *testing.T) {
	for _, tc := range requestCases {
		if tc.err != nil {
			continue
		}
		h, body := splitFrame(t, tc.frame)
		var full, r Request
		full.KeepValues, r.KeepValues = true, true
		if err := DecodeRequest(&h, body, &full); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := 0; n < len(body); n++ {
			err := DecodeRequest(&h, body[:n], &r)
			switch {
			case err == nil:
				if msg := prefixMismatch(reflect.ValueOf(r), reflect.ValueOf(full)); msg != "" {
					t.Errorf("%s cut at %d: %s", tc.name, n, msg)
				}
			case err == ErrTruncated:
				if !requestIsReset(&r, true) {
					t.Errorf("%s cut at %d: not reset after error", tc.name, n)
				}
			default:
				t.Errorf("%s cut at %d: %v", tc.name, n, err)
			}
			// The same bytes as a whole body: any outcome but a panic.
			hw := h
			hw.Length = uint32(n)
			if err := DecodeRequest(&hw, body[:n], &r); err != nil && !requestIsReset(&r, true) {
				t.Errorf("%s whole body of %d: not reset after error", tc.name, n)
			}
		}
	}
	for _, tc := range responseCases {
		if tc.err != nil {
			continue
		}
		h, body := splitFrame(t, tc.frame)
		reset := Response{RateLimitCode: tc.rateLimit}
		full, r := reset, reset
		if err := DecodeResponse(&h, body, &full); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		for n := 0; n < len(body); n++ {
			err := DecodeResponse(&h, body[:n], &r)
			switch {
			case err == nil:
				if msg := prefixMismatch(reflect.ValueOf(r), reflect.ValueOf(full)); msg != "" {
					t.Errorf("%s cut at %d: %s", tc.name, n, msg)
				}
			case err == ErrTruncated:
				if !reflect.DeepEqual(r, reset) {
					t.Errorf("%s cut at %d: not reset after error", tc.name, n)
				}
			default:
				t.Errorf("%s cut at %d: %v", tc.name, n, err)
			}
			hw := h
			hw.Length = uint32(n)
			if err := DecodeResponse(&hw, body[:n], &r); err != nil && !reflect.DeepEqual(r, reset) {
				t.Errorf("%s whole body of %d: not reset after error", tc.name, n)
			}
		}
	}
}

// prefixMismatch reports a field of a prefix decode p that is neither zero
// (or the -1 of an absent page size) nor equal to the full decode f.
func prefixMismatch(p, f reflect.Value) string {
	switch p.Kind() {
	case reflect.Struct:
		for i := 0; i < p.NumField(); i++ {
			name := p.Type().Field(i).Name
			if name == "PageSize" && p.Field(i).Int() == -1 {
				continue
			}
			if name == "Partial" || name == "NumReasons" {
				continue // an ERROR tail cut by the prefix, the reasons kept before the cut
			}
			if msg := prefixMismatch(p.Field(i), f.Field(i)); msg != "" {
				return name + ": " + msg
			}
		}
	case reflect.Array:
		for i := 0; i < p.Len(); i++ {
			if msg := prefixMismatch(p.Index(i), f.Index(i)); msg != "" {
				return msg
			}
		}
	case reflect.Slice:
		if p.Type() == bytesType {
			if p.Len() > 0 && !bytes.Equal(p.Bytes(), f.Bytes()) {
				return "differs"
			}
			return ""
		}
		// Children and Values: a prefix of the full list.
		if p.Len() > f.Len() {
			return "longer than in the full decode"
		}
		for i := 0; i < p.Len(); i++ {
			if msg := prefixMismatch(p.Index(i), f.Index(i)); msg != "" {
				return msg
			}
		}
	default:
		if !p.IsZero() && !reflect.DeepEqual(p.Interface(), f.Interface()) {
			return "differs"
		}
	}
	return ""
}

// TestPrefixOfLargeBodies spells out the prefix contract on typical cases.
func TestPrefixOfLargeBodies(t *testing.T) {
	// 84 00 00 09 08 00 10 00 00: v4 response, stream 9, RESULT, length 1 MiB; only 16 bytes buffered.
	rows := fixture("84 00 00 09 08 00 10 00 00", "00 00 00 02", "00 00 00 04", "00 00 00 03", "00 00 27 10")
	h, body := splitFrame(t, rows)
	var resp Response
	if err := DecodeResponse(&h, body, &resp); err != nil || !resp.RowsKnown || resp.Rows != 10000 || resp.Columns != 3 {
		t.Errorf("rows prefix: err %v, %+v", err, resp)
	}
	// The same rows_count cannot fit in a 100-byte body.
	h.Length = 100
	if err := DecodeResponse(&h, body, &resp); err != ErrTruncated {
		t.Errorf("rows count over the whole length: err %v", err)
	}
	// A paging state that claims more than the whole body is an error even
	// in a prefix.
	paging := fixture("84 00 00 09 08 00 00 10 00", "00 00 00 02", "00 00 00 02", "00 00 00 01", "00 00 20 00")
	h, body = splitFrame(t, paging)
	if err := DecodeResponse(&h, body, &resp); err != ErrTruncated {
		t.Errorf("paging state over the whole length: err %v", err)
	}

	// 04 00 00 01 07 00 01 00 00: v4 request, stream 1, QUERY, length 64 KiB.
	query := fixture("04 00 00 01 07 00 01 00 00", "00 00 00 10", ascii("INSERT INTO t VA"))
	h, body = splitFrame(t, query)
	var req Request
	if err := DecodeRequest(&h, body[:10], &req); err != ErrTruncated {
		t.Errorf("query cut inside the statement: err %v", err)
	}
	if err := DecodeRequest(&h, body, &req); err != nil || string(req.Query) != "INSERT INTO t VA" || req.HasParams {
		t.Errorf("query with statement only: err %v, %+v", err, req)
	}

	// 04 00 00 01 0d 00 01 00 00: v4 request, stream 1, BATCH, length 64 KiB.
	batch := fixture("04 00 00 01 0d 00 01 00 00", "00", "01 00", // LOGGED, 256 statements
		"00", "00 00 00 08", ascii("UPDATE a"), "00 00", // first statement
		"01", "00 10", "00 11 22") // second statement cut inside its id
	h, body = splitFrame(t, batch)
	if err := DecodeRequest(&h, body, &req); err != nil || len(req.Children) != 1 || req.HasParams {
		t.Errorf("batch prefix: err %v, %+v", err, req)
	}
	if err := DecodeRequest(&h, body[:8], &req); err != ErrTruncated {
		t.Errorf("batch cut inside the first statement: err %v", err)
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

// fieldDiff lists the top-level fields where got and want (structs of one
// type) differ, one per line; "" when they are deeply equal.
func fieldDiff(got, want any) string {
	g, w := reflect.ValueOf(got), reflect.ValueOf(want)
	var b strings.Builder
	for i := 0; i < g.NumField(); i++ {
		if !reflect.DeepEqual(g.Field(i).Interface(), w.Field(i).Interface()) {
			fmt.Fprintf(&b, "%s: got %+v, want %+v\n", g.Type().Field(i).Name, g.Field(i).Interface(), w.Field(i).Interface())
		}
	}
	return b.String()
}

// requestIsReset reports whether r is in the state Reset leaves it in.
func requestIsReset(r *Request, keep bool) bool {
	c := *r
	if len(c.Children) != 0 || len(c.Params.Values) != 0 {
		return false
	}
	c.Children, c.Params.Values = nil, nil
	return reflect.DeepEqual(c, Request{KeepValues: keep})
}

// forEachSlice calls fn for every byte slice reachable from v.
func forEachSlice(v reflect.Value, fn func([]byte)) {
	switch v.Kind() {
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			forEachSlice(v.Field(i), fn)
		}
	case reflect.Slice:
		if v.Type() == bytesType {
			fn(v.Bytes())
			return
		}
		for i := 0; i < v.Len(); i++ {
			forEachSlice(v.Index(i), fn)
		}
	case reflect.Pointer:
		forEachSlice(v.Elem(), fn)
	}
}

// within reports whether s (if not empty) lies inside b.
func within(s, b []byte) bool {
	if len(s) == 0 {
		return true
	}
	if len(b) == 0 {
		return false
	}
	// Compare addresses via sub-slicing: s is inside b when some offset of b
	// shares s's first element and s fits after it.
	first := &s[0]
	for i := range b {
		if &b[i] == first {
			return i+len(s) <= len(b)
		}
	}
	return false
}

func checkWithin(t testing.TB, body []byte, v any) {
	t.Helper()
	forEachSlice(reflect.ValueOf(v), func(s []byte) {
		if !within(s, body) {
			t.Errorf("slice %q does not alias the body", s)
		}
	})
}
