package decode

import (
	"reflect"
	"testing"
)

// Events, authentication, LWT marks, custom payloads, DSE continuous paging
// and BATCH variants. Like errorCases, these join the shared case lists.
func init() {
	requestCases = append(requestCases, extRequestCases...)
	responseCases = append(responseCases, extResponseCases...)
}

var (
	hostID1 = "6b 8b 45 67 32 7b 4d 0c 9f 8a 1e 2d 3c 4b 5a 69"
	hostID2 = "11 22 33 44 55 66 47 88 99 aa bb cc dd ee ff 00"
	// tabletsV1 is the [bytes] value of a tablets-routing-v1 entry (§10.4):
	// tuple<bigint, bigint, list<tuple<uuid, int>>>, 96 bytes.
	tabletsV1 = fixture(
		"00 00 00 08", "ff ff ff ff ff ff ff 9c", // first_token -100 (excluded)
		"00 00 00 08", "00 00 00 00 00 00 00 c8", // last_token 200
		"00 00 00 44",                                                       // the list, 68 bytes
		"00 00 00 02",                                                       // 2 replicas
		"00 00 00 1c", "00 00 00 10", hostID1, "00 00 00 04", "00 00 00 03", // (host 1, shard 3)
		"00 00 00 1c", "00 00 00 10", hostID2, "00 00 00 04", "00 00 00 00", // (host 2, shard 0)
	)
)

var extRequestCases = []requestCase{
	{
		name: "CREDENTIALS v1: counted, never exposed",
		frame: fixture(
			"01 00 01 04 00 00 00 29", // v1 request (8-byte header), stream 1, CREDENTIALS, length 41
			"00 02",                   // [string map] 2 entries
			"00 08", ascii("username"), "00 09", ascii("cassandra"),
			"00 08", ascii("password"), "00 06", ascii("secret"),
		),
		want: Request{Opcode: OpCredentials, Credentials: 2},
	},
	{
		name: "QUERY DSE_V1 continuous paging, page size in bytes",
		frame: fixture(
			"41 00 00 10 07 00 00 00 1e", // DSE_V1 request, stream 16, QUERY, length 30
			"00 00 00 08", ascii("SELECT 1"),
			"00 01",       // ONE
			"c0 00 00 04", // flags CONTINUOUS_PAGING|PAGE_SIZE_BYTES|PAGE_SIZE
			"00 01 00 00", // page size 65536 bytes
			"00 00 00 00", // max_pages: no limit
			"00 00 00 0a", // pages_per_second 10
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0xc0000004, PageSize: 65536, PageSizeInBytes: true,
				ContinuousPaging: true, PagesPerSecond: 10}},
	},
	{
		name: "QUERY DSE_V2 continuous paging with keyspace and next pages",
		frame: fixture(
			"42 00 00 11 07 00 00 00 2e", // DSE_V2 request, stream 17, QUERY, length 46
			"00 00 00 08", ascii("SELECT 1"),
			"00 06",                   // LOCAL_QUORUM
			"80 00 00 a4",             // flags CONTINUOUS_PAGING|KEYSPACE|DEFAULT_TIMESTAMP|PAGE_SIZE
			"00 00 13 88",             // page size 5000 rows
			"00 00 00 00 00 00 00 2a", // timestamp 42
			"00 02", ascii("ks"),      // keyspace
			"00 00 00 64", // max_pages 100
			"00 00 00 00", // pages_per_second: no limit
			"00 00 00 04", // next_pages 4
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: LocalQuorum, Flags: 0x800000a4, PageSize: 5000, Timestamp: 42, HasTimestamp: true,
				Keyspace: []byte("ks"), ContinuousPaging: true, MaxPages: 100, NextPages: 4}},
	},
	{
		name: "EXECUTE DSE_V2: no now_in_seconds in DSE, paging options follow",
		frame: fixture(
			"42 00 00 12 0a 00 00 00 1a", // DSE_V2 request, stream 18, EXECUTE, length 26
			"00 02 ab cd",                // prepared id
			"00 02 ef 01",                // result metadata id
			"00 01",                      // ONE
			"80 00 01 00",                // flags CONTINUOUS_PAGING|0x100 (not a DSE flag)
			"00 00 00 02",                // max_pages 2
			"00 00 00 00",                // pages_per_second
			"00 00 00 01",                // next_pages 1
		),
		want: Request{Opcode: OpExecute, PreparedID: []byte{0xab, 0xcd}, ResultMetadataID: []byte{0xef, 0x01}, HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0x80000100, PageSize: -1, ContinuousPaging: true, MaxPages: 2, NextPages: 1}},
	},
	{
		name: "QUERY v5 ignores the DSE flags",
		frame: fixture(
			"05 00 00 13 07 00 00 00 16", // v5 request, stream 19, QUERY, length 22
			"00 00 00 08", ascii("SELECT 1"),
			"00 01",       // ONE
			"c0 00 00 00", // DSE bits, meaningless in v5
			"00 00 00 00", // trailing bytes
		),
		want: Request{Opcode: OpQuery, Query: []byte("SELECT 1"), HasParams: true,
			Params: QueryParams{Consistency: One, Flags: 0xc0000000, PageSize: -1}},
	},
	{
		name: "REVISE_REQUEST DSE_V2: more pages",
		frame: fixture(
			"42 00 00 14 ff 00 00 00 0c", // DSE_V2 request, stream 20, REVISE_REQUEST, length 12
			"00 00 00 02",                // revision type: more continuous pages
			"00 00 00 11",                // of the request on stream 17
			"00 00 00 04",                // next_pages 4
		),
		want: Request{Opcode: OpRevise, RevisionType: ReviseMorePages, RevisionStream: 17, RevisionNextPages: 4},
	},
	{
		name: "REVISE_REQUEST DSE_V1: cancel",
		frame: fixture(
			"41 00 00 15 ff 00 00 00 08", // DSE_V1 request, stream 21, REVISE_REQUEST, length 8
			"00 00 00 01",                // revision type: cancel continuous paging
			"00 00 00 10",                // of the request on stream 16
		),
		want: Request{Opcode: OpRevise, RevisionType: ReviseCancel, RevisionStream: 16},
	},
	{
		name: "BATCH v5 prepared children with values, timestamp and now_in_seconds",
		frame: fixture(
			"05 00 00 16 0d 00 00 00 50", // v5 request, stream 22, BATCH, length 80
			"00",                         // LOGGED
			"00 02",                      // 2 statements
			"01", "00 10", id16,          // kind 1: prepared id (no metadata id in BATCH, even in v5)
			"00 01", "00 00 00 04 00 00 00 01", // 1 value
			"01", "00 10", mdID16, // kind 1: another prepared id
			"00 02", "00 00 00 01 61", "ff ff ff ff", // 2 values: "a", null
			"00 04",                   // QUORUM
			"00 00 01 20",             // [int] flags NOW_IN_SECONDS|DEFAULT_TIMESTAMP
			"00 00 00 00 00 00 00 07", // timestamp 7
			"5f 5e 10 00",             // now_in_seconds
		),
		keep: true,
		want: Request{Opcode: OpBatch, KeepValues: true, HasParams: true,
			Children: []BatchChild{
				{Kind: 1, PreparedID: unhex(id16), ValuesCount: 1},
				{Kind: 1, PreparedID: unhex(mdID16), ValuesCount: 2, FirstValue: 1},
			},
			Params: QueryParams{Consistency: Quorum, Flags: 0x120, ValuesCount: 3, Values: [][]byte{{0, 0, 0, 1}, {0x61}, nil},
				PageSize: -1, Timestamp: 7, HasTimestamp: true, NowInSeconds: 0x5f5e1000, HasNowInSeconds: true}},
	},
	{
		name: "BATCH v4 from a Scylla driver with SCYLLA_USE_METADATA_ID: children unchanged",
		frame: fixture(
			"04 00 00 17 0d 00 00 00 35", // v4 request, stream 23, BATCH, length 53
			"01",                         // UNLOGGED
			"00 02",                      // 2 statements
			"01", "00 10", id16, "00 00", // prepared id, no values (the extension adds no metadata id here)
			"01", "00 10", mdID16, "00 01", "00 00 00 01 02", // prepared id, 1 value
			"00 06", // LOCAL_QUORUM
			"00",    // [byte] flags
		),
		want: Request{Opcode: OpBatch, BatchType: 1, HasParams: true,
			Children: []BatchChild{
				{Kind: 1, PreparedID: unhex(id16)},
				{Kind: 1, PreparedID: unhex(mdID16), ValuesCount: 1},
			},
			Params: QueryParams{Consistency: LocalQuorum, ValuesCount: 1, PageSize: -1}},
	},
	{
		name: "BATCH DSE_V2: [int] flags, serial consistency and keyspace",
		frame: fixture(
			"42 00 00 18 0d 00 00 00 16", // DSE_V2 request, stream 24, BATCH, length 22
			"00",                         // LOGGED
			"00 01",                      // 1 statement
			"01", "00 02 ab cd", "00 00", // prepared id, no values
			"00 01",       // ONE
			"00 00 00 90", // flags KEYSPACE|SERIAL_CONSISTENCY
			"00 09",       // LOCAL_SERIAL
			"00 02", ascii("ks"),
		),
		want: Request{Opcode: OpBatch, HasParams: true, Children: []BatchChild{{Kind: 1, PreparedID: []byte{0xab, 0xcd}}},
			Params: QueryParams{Consistency: One, Flags: 0x90, PageSize: -1, SerialConsistency: LocalSerial, HasSerial: true,
				Keyspace: []byte("ks")}},
	},
	{
		name: "EXECUTE v4 Scylla metadata id and tablet_version_block",
		frame: fixture(
			"04 00 00 19 0a 00 00 00 28", // v4 request, stream 25, EXECUTE, length 40
			"00 10", id16,                // prepared id
			"00 10", mdID16, // result metadata id (SCYLLA_USE_METADATA_ID)
			"00 01", // ONE
			"00",    // [byte] flags
			"a3",    // TABLETS_ROUTING_V2 block 0xA, value 3: trailing, ignored
		),
		want: Request{Opcode: OpExecute, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16), HasParams: true,
			Params: QueryParams{Consistency: One, PageSize: -1}},
	},
	{
		name: "QUERY v4 with a tablets-routing custom payload, kept raw",
		frame: fixture(
			"04 04 00 1a 07 00 00 00 24",        // v4 request, flags CUSTOM_PAYLOAD, stream 26, QUERY, length 36
			"00 02",                             // [bytes map] 2 entries
			"00 02", ascii("k1"), "ff ff ff ff", // null value
			"00 02", ascii("k2"), "00 00 00 03", ascii("abc"),
			"00 00 00 08", ascii("SELECT 1"),
			"00 01 00", // ONE, no flags
		),
		want: Request{Opcode: OpQuery, CustomPayload: 2,
			CustomPayloadRaw: fixture("00 02", "00 02", ascii("k1"), "ff ff ff ff", "00 02", ascii("k2"), "00 00 00 03", ascii("abc")),
			Query:            []byte("SELECT 1"), HasParams: true, Params: QueryParams{Consistency: One, PageSize: -1}},
	},

	// Malformed and truncated bodies.
	{
		name:  "REVISE_REQUEST more pages without next_pages",
		frame: fixture("42 00 00 14 ff 00 00 00 08", "00 00 00 02", "00 00 00 11"), // DSE_V2 REVISE_REQUEST, length 8
		err:   ErrTruncated,
	},
	{
		name:  "REVISE_REQUEST in v4",
		frame: fixture("04 00 00 14 ff 00 00 00 08", "00 00 00 01", "00 00 00 11"), // v4 request with opcode 0xFF
		err:   ErrMalformed,
	},
	{
		name:  "CREDENTIALS in v2",
		frame: fixture("02 00 01 04 00 00 00 02", "00 00"), // v2 request with opcode CREDENTIALS
		err:   ErrMalformed,
	},
	{
		name: "DSE_V2 continuous paging options cut",
		frame: fixture(
			"42 00 00 11 07 00 00 00 18", // DSE_V2 request, stream 17, QUERY, length 24
			"00 00 00 08", ascii("SELECT 1"),
			"00 01", "80 00 00 00", // ONE, CONTINUOUS_PAGING
			"00 00 00 01", "00 00", // max_pages, half of pages_per_second
		),
		err: ErrTruncated,
	},
}

var extResponseCases = []responseCase{
	{
		name: "EVENT SCHEMA_CHANGE AGGREGATE with argument types",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 33", // v4 response, stream -1, EVENT, length 51
			"00 0d", ascii("SCHEMA_CHANGE"),
			"00 07", ascii("CREATED"), "00 09", ascii("AGGREGATE"),
			"00 02", ascii("ks"), "00 03", ascii("agg"),
			"00 01", "00 03", ascii("int"), // [string list] 1 argument type
		),
		want: Response{Opcode: OpEvent, EventType: []byte("SCHEMA_CHANGE"), Schema: SchemaChange{Change: []byte("CREATED"),
			Target: []byte("AGGREGATE"), Keyspace: []byte("ks"), Name: []byte("agg"), ArgTypes: 1}},
	},
	{
		name: "EVENT SCHEMA_CHANGE TYPE",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 28", // v4 response, stream -1, EVENT, length 40
			"00 0d", ascii("SCHEMA_CHANGE"),
			"00 07", ascii("DROPPED"), "00 04", ascii("TYPE"),
			"00 02", ascii("ks"), "00 04", ascii("addr"),
		),
		want: Response{Opcode: OpEvent, EventType: []byte("SCHEMA_CHANGE"), Schema: SchemaChange{Change: []byte("DROPPED"),
			Target: []byte("TYPE"), Keyspace: []byte("ks"), Name: []byte("addr")}},
	},
	{
		name: "EVENT SCHEMA_CHANGE KEYSPACE",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 26", // v4 response, stream -1, EVENT, length 38
			"00 0d", ascii("SCHEMA_CHANGE"),
			"00 07", ascii("UPDATED"), "00 08", ascii("KEYSPACE"),
			"00 02", ascii("ks"),
		),
		want: Response{Opcode: OpEvent, EventType: []byte("SCHEMA_CHANGE"), Schema: SchemaChange{Change: []byte("UPDATED"),
			Target: []byte("KEYSPACE"), Keyspace: []byte("ks")}},
	},
	{
		name: "EVENT STATUS_CHANGE DOWN v3",
		frame: fixture(
			"83 00 ff ff 0c 00 00 00 1e", // v3 response, stream -1, EVENT, length 30
			"00 0d", ascii("STATUS_CHANGE"),
			"00 04", ascii("DOWN"),
			"04 0a 00 00 07 00 00 23 52", // [inet] 10.0.0.7:9042
		),
		want: Response{Opcode: OpEvent, EventType: []byte("STATUS_CHANGE"), Change: []byte("DOWN"),
			NodeAddr: []byte{10, 0, 0, 7}, NodePort: 9042},
	},
	{
		name: "EVENT CLIENT_ROUTES_CHANGE (Scylla)",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 56", // v4 response, stream -1, EVENT, length 86
			"00 14", ascii("CLIENT_ROUTES_CHANGE"),
			"00 0c", ascii("UPDATE_NODES"),
			"00 02", "00 02", ascii("c1"), "00 02", ascii("c2"), // [string list] 2 connection ids
			"00 01", "00 24", ascii("6b8b4567-327b-4d0c-9f8a-1e2d3c4b5a69"), // [string list] 1 host id
		),
		want: Response{Opcode: OpEvent, EventType: []byte("CLIENT_ROUTES_CHANGE"), Change: []byte("UPDATE_NODES"),
			ConnectionIDs: 2, HostIDs: 1},
	},
	{
		name:  "AUTH_SUCCESS token: length only",
		frame: fixture("84 00 00 02 10 00 00 00 08", "00 00 00 04 de ad be ef"), // v4 AUTH_SUCCESS, length 8
		want:  Response{Opcode: OpAuthSuccess, AuthTokenLen: 4},
	},
	{
		name: "RESULT Prepared v4 Scylla LWT mark",
		frame: fixture(
			"84 00 00 1b 08 00 00 00 39", // v4 response, stream 27, RESULT, length 57
			"00 00 00 04",                // Prepared
			"00 10", id16,                // id
			"80 00 00 01",       // prepared metadata flags: LWT bit|Global_tables_spec
			"00 00 00 01",       // 1 bind marker
			"00 00 00 01 00 00", // 1 pk index: 0
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09", // int
			"00 00 00 04", "00 00 00 00", // result metadata: No_metadata, 0 columns
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), BindMarkers: 1, PKIndexes: 1,
			PreparedFlags: 0x80000001, LWT: true, Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Prepared v4 Scylla LWT mark with metadata id",
		frame: fixture(
			"84 00 00 1b 08 00 00 00 4b", // v4 response, stream 27, RESULT, length 75
			"00 00 00 04",                // Prepared
			"00 10", id16,                // id
			"00 10", mdID16, // result metadata id
			"80 00 00 01", "00 00 00 01", "00 00 00 01 00 00", // LWT|global, 1 bind marker, pk 0
			"00 02", ascii("ks"), "00 02", ascii("kv"),
			"00 01", ascii("k"), "00 09",
			"00 00 00 04", "00 00 00 00",
		),
		want: Response{Opcode: OpResult, Kind: ResultPrepared, PreparedID: unhex(id16), ResultMetadataID: unhex(mdID16),
			BindMarkers: 1, PKIndexes: 1, PreparedFlags: 0x80000001, LWT: true, Keyspace: []byte("ks"), Table: []byte("kv")},
	},
	{
		name: "RESULT Void with a tablets-routing-v1 custom payload",
		frame: fixture(
			"84 04 00 1c 08 00 00 00 7e", // v4 response, flags CUSTOM_PAYLOAD, stream 28, RESULT, length 126
			"00 01",                      // [bytes map] 1 entry
			"00 12", ascii("tablets-routing-v1"),
			"00 00 00 60", tabletsV1, // [bytes] 96
			"00 00 00 01", // Void
		),
		want: Response{Opcode: OpResult, Kind: ResultVoid, CustomPayload: 1,
			CustomPayloadRaw: fixture("00 01", "00 12", ascii("tablets-routing-v1"), "00 00 00 60", tabletsV1)},
	},
	{
		name: "SUPPORTED Scylla",
		frame: fixture(
			"84 00 00 00 06 00 00 02 24", // v4 response, stream 0, SUPPORTED, length 548
			"00 0e",                      // [string multimap] 14 keys, each [string] key + [string list] values
			str("COMPRESSION"), "00 02", str("lz4"), str("snappy"),
			str("CQL_VERSION"), "00 01", str("3.3.1"),
			str("SCYLLA_LWT_ADD_METADATA_MARK"), "00 01", str("LWT_OPTIMIZATION_META_BIT_MASK=2147483648"),
			str("SCYLLA_NR_SHARDS"), "00 01", str("2"),
			str("SCYLLA_PARTITIONER"), "00 01", str("org.apache.cassandra.dht.Murmur3Partitioner"),
			str("SCYLLA_RATE_LIMIT_ERROR"), "00 01", str("ERROR_CODE=61440"),
			str("SCYLLA_SHARD"), "00 01", str("1"),
			str("SCYLLA_SHARDING_ALGORITHM"), "00 01", str("biased-token-round-robin"),
			str("SCYLLA_SHARDING_IGNORE_MSB"), "00 01", str("12"),
			str("SCYLLA_SHARD_AWARE_PORT"), "00 01", str("19042"),
			str("SCYLLA_SHARD_AWARE_PORT_SSL"), "00 01", str("19142"),
			str("SCYLLA_USE_METADATA_ID"), "00 01", str(""), // one empty value
			str("TABLETS_ROUTING_V1"), "00 00", // no value at all
			str("SCYLLA_HOST_ID"), "00 01", str("6b8b4567-327b-4d0c-9f8a-1e2d3c4b5a69"),
		),
		want: Response{Opcode: OpSupported}, // Supported is filled in by TestParseScyllaSupported
	},

	// Malformed and truncated bodies.
	{
		name: "EVENT CLIENT_ROUTES_CHANGE host list longer than the body",
		frame: fixture(
			"84 00 ff ff 0c 00 00 00 28", // v4 response, stream -1, EVENT, length 40
			"00 14", ascii("CLIENT_ROUTES_CHANGE"),
			"00 0c", ascii("UPDATE_NODES"),
			"00 00", // no connection ids
			"00 05", // 5 host ids, none present
		),
		err: ErrTruncated,
	},
	{
		name:  "AUTH_CHALLENGE token longer than the body",
		frame: fixture("84 00 00 02 0e 00 00 00 06", "00 00 00 10 00 01"), // v4 AUTH_CHALLENGE, length 6
		err:   ErrTruncated,
	},
	{
		name:  "custom payload value longer than the body",
		frame: fixture("84 04 00 01 08 00 00 00 0a", "00 01", "00 01", ascii("k"), "00 00 00 09", "00"), // v4 RESULT, length 10
		err:   ErrTruncated,
	},
}

// str builds a [string]: a [short] length, then the bytes.
func str(s string) []byte {
	return append([]byte{byte(len(s) >> 8), byte(len(s))}, s...)
}

func init() {
	// The SUPPORTED body is the multimap itself.
	for i := range responseCases {
		if responseCases[i].name == "SUPPORTED Scylla" {
			responseCases[i].want.Supported = responseCases[i].frame[9:]
		}
	}
}

// TestAuthTokensNeverExposed: no slice of a decoded AUTH_* or CREDENTIALS
// message points into its token or map.
func TestAuthTokensNeverExposed(t *testing.T) {
	h, body := responseFixture(t, "AUTH_SUCCESS token: length only")
	var resp Response
	if err := DecodeResponse(&h, body, &resp); err != nil {
		t.Fatal(err)
	}
	forEachSlice(reflect.ValueOf(&resp).Elem(), func(s []byte) {
		if len(s) > 0 {
			t.Errorf("AUTH_SUCCESS exposed %q", s)
		}
	})
	h, body = requestFixture(t, "CREDENTIALS v1: counted, never exposed")
	var req Request
	if err := DecodeRequest(&h, body, &req); err != nil {
		t.Fatal(err)
	}
	forEachSlice(reflect.ValueOf(&req).Elem(), func(s []byte) {
		if len(s) > 0 {
			t.Errorf("CREDENTIALS exposed %q", s)
		}
	})
}

func TestForEachBytesMap(t *testing.T) {
	h, body := responseFixture(t, "RESULT Void with a tablets-routing-v1 custom payload")
	var r Response
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	var keys []string
	var value []byte
	err := ForEachBytesMap(r.CustomPayloadRaw, func(k, v []byte) {
		keys = append(keys, string(k))
		value = v
	})
	if err != nil || len(keys) != 1 || keys[0] != "tablets-routing-v1" || !reflect.DeepEqual(value, tabletsV1) {
		t.Fatalf("keys %q, value % x, %v", keys, value, err)
	}
	if !within(value, body) {
		t.Errorf("value does not alias the body")
	}

	// A null value is nil, an empty one is not.
	m := fixture("00 02", "00 01", ascii("a"), "ff ff ff ff", "00 01", ascii("b"), "00 00 00 00", "ff") // trailing byte ignored
	var nulls []bool
	if err := ForEachBytesMap(m, func(k, v []byte) { nulls = append(nulls, v == nil) }); err != nil || !reflect.DeepEqual(nulls, []bool{true, false}) {
		t.Errorf("nulls %v, %v", nulls, err)
	}
	for n := range len(m) - 1 {
		if err := ForEachBytesMap(m[:n], nil); err != ErrTruncated {
			t.Errorf("cut at %d: %v", n, err)
		}
	}
	if err := ForEachBytesMap(fixture("00 01 00 01", ascii("a"), "00 00 00 05 01"), nil); err != ErrTruncated {
		t.Errorf("value past the end: %v", err)
	}
	if err := ForEachBytesMap(nil, nil); err != ErrTruncated {
		t.Errorf("empty: %v", err)
	}
}
