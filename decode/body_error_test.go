package decode

import (
	"reflect"
	"testing"
)

// The cases below join responseCases, so the prefix, fuzz-seed and reuse
// tests cover them too.
func init() { responseCases = append(responseCases, errorCases...) }

// errorCases are ERROR bodies hand-built from the v4/v5 specs §9/§8 and
// Scylla's protocol-extensions.md.
var errorCases = []responseCase{
	{
		name: "ERROR Write_timeout v4",
		frame: fixture(
			"84 00 00 04 00 00 00 00 1f", // v4 response, stream 4, ERROR, length 31
			"00 00 11 00",                // code Write_timeout
			"00 07", ascii("timeout"),
			"00 06",       // LOCAL_QUORUM
			"00 00 00 01", // received 1
			"00 00 00 02", // blockfor 2
			"00 06", ascii("SIMPLE"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteTimeout, ErrMessage: []byte("timeout"),
			Error: ErrorDetail{Consistency: LocalQuorum, Received: 1, BlockFor: 2, WriteType: []byte("SIMPLE")}},
	},
	{
		name: "ERROR Write_timeout v5 CAS with contentions",
		frame: fixture(
			"85 00 00 04 00 00 00 00 1a", // v5 response, stream 4, ERROR, length 26
			"00 00 11 00",                // code Write_timeout
			"00 03", ascii("cas"),
			"00 08",       // SERIAL
			"00 00 00 00", // received 0
			"00 00 00 02", // blockfor 2
			"00 03", ascii("CAS"),
			"00 05", // [short] contentions 5
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteTimeout, ErrMessage: []byte("cas"),
			Error: ErrorDetail{Consistency: Serial, BlockFor: 2, WriteType: []byte("CAS"), Contentions: 5, HasContentions: true}},
	},
	{
		name: "ERROR Write_timeout v5 CAS without contentions",
		frame: fixture(
			"85 00 00 04 00 00 00 00 18", // v5 response, stream 4, ERROR, length 24
			"00 00 11 00",                // code Write_timeout
			"00 03", ascii("cas"),
			"00 09 00 00 00 01 00 00 00 02", // LOCAL_SERIAL, received 1, blockfor 2
			"00 03", ascii("CAS"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteTimeout, ErrMessage: []byte("cas"),
			Error: ErrorDetail{Consistency: LocalSerial, Received: 1, BlockFor: 2, WriteType: []byte("CAS")}},
	},
	{
		name: "ERROR Write_timeout v4 CAS has no contentions",
		frame: fixture(
			"84 00 00 04 00 00 00 00 1a", // v4 response, stream 4, ERROR, length 26
			"00 00 11 00",                // code Write_timeout
			"00 03", ascii("cas"),
			"00 08 00 00 00 00 00 00 00 02", // SERIAL, received 0, blockfor 2
			"00 03", ascii("CAS"),
			"00 05", // trailing bytes: not a v4 field
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteTimeout, ErrMessage: []byte("cas"),
			Error: ErrorDetail{Consistency: Serial, BlockFor: 2, WriteType: []byte("CAS")}},
	},
	{
		name: "ERROR Read_timeout, data present",
		frame: fixture(
			"84 00 00 05 00 00 00 00 12", // v4 response, stream 5, ERROR, length 18
			"00 00 12 00",                // code Read_timeout
			"00 01", ascii("r"),
			"00 01",       // ONE
			"00 00 00 00", // received 0
			"00 00 00 01", // blockfor 1
			"01",          // data_present
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadTimeout, ErrMessage: []byte("r"),
			Error: ErrorDetail{Consistency: One, BlockFor: 1, DataPresent: true}},
	},
	{
		name: "ERROR Read_failure v4: numfailures",
		frame: fixture(
			"84 00 00 06 00 00 00 00 16", // v4 response, stream 6, ERROR, length 22
			"00 00 13 00",                // code Read_failure
			"00 01", ascii("f"),
			"00 04",       // QUORUM
			"00 00 00 01", // received 1
			"00 00 00 02", // blockfor 2
			"00 00 00 01", // numfailures 1
			"00",          // data_present: no
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadFailure, ErrMessage: []byte("f"),
			Error: ErrorDetail{Consistency: Quorum, Received: 1, BlockFor: 2, NumFailures: 1}},
	},
	{
		name: "ERROR Read_failure v5: reason map with more entries than kept",
		frame: fixture(
			"85 00 00 06 00 00 00 00 45", // v5 response, stream 6, ERROR, length 69
			"00 00 13 00",                // code Read_failure
			"00 01", ascii("f"),
			"00 05",                   // ALL
			"00 00 00 00",             // received 0
			"00 00 00 05",             // blockfor 5
			"00 00 00 05",             // [int] 5 entries
			"04 0a 00 00 01", "00 01", // 10.0.0.1: READ_TOO_MANY_TOMBSTONES
			"04 0a 00 00 02", "00 02", // 10.0.0.2: TIMEOUT
			"10 20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 03", "00 00", // 2001:db8::3: UNKNOWN
			"04 0a 00 00 04", "00 05", // 10.0.0.4: NODE_DOWN
			"04 0a 00 00 05", "00 06", // 10.0.0.5: INDEX_NOT_AVAILABLE, not kept
			"01", // data_present
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadFailure, ErrMessage: []byte("f"),
			Error: ErrorDetail{Consistency: All, BlockFor: 5, NumFailures: 5, NumReasons: 4, DataPresent: true,
				Reasons: [MaxFailureReasons]FailureReason{
					{Endpoint: []byte{10, 0, 0, 1}, Code: FailureReadTooManyTombstones},
					{Endpoint: []byte{10, 0, 0, 2}, Code: FailureTimeout},
					{Endpoint: unhex("20 01 0d b8 00 00 00 00 00 00 00 00 00 00 00 03"), Code: FailureUnknown},
					{Endpoint: []byte{10, 0, 0, 4}, Code: FailureNodeDown},
				}}},
	},
	{
		name: "ERROR Write_failure v4: numfailures and write type",
		frame: fixture(
			"84 00 00 07 00 00 00 00 20", // v4 response, stream 7, ERROR, length 32
			"00 00 15 00",                // code Write_failure
			"00 01", ascii("w"),
			"00 06",       // LOCAL_QUORUM
			"00 00 00 00", // received 0
			"00 00 00 02", // blockfor 2
			"00 00 00 02", // numfailures 2
			"00 09", ascii("BATCH_LOG"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteFailure, ErrMessage: []byte("w"),
			Error: ErrorDetail{Consistency: LocalQuorum, BlockFor: 2, NumFailures: 2, WriteType: []byte("BATCH_LOG")}},
	},
	{
		name: "ERROR Write_failure v5: reason map and write type",
		frame: fixture(
			"85 00 00 07 00 00 00 00 25", // v5 response, stream 7, ERROR, length 37
			"00 00 15 00",                // code Write_failure
			"00 01", ascii("w"),
			"00 01 00 00 00 00 00 00 00 01", // ONE, received 0, blockfor 1
			"00 00 00 01",                   // 1 entry
			"04 c0 a8 00 07", "00 03",       // 192.168.0.7: INCOMPATIBLE_SCHEMA
			"00 07", ascii("COUNTER"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteFailure, ErrMessage: []byte("w"),
			Error: ErrorDetail{Consistency: One, BlockFor: 1, NumFailures: 1, NumReasons: 1, WriteType: []byte("COUNTER"),
				Reasons: [MaxFailureReasons]FailureReason{{Endpoint: []byte{192, 168, 0, 7}, Code: FailureIncompatibleSchema}}}},
	},
	{
		name: "ERROR Read_failure DSE_V2 uses the reason map",
		frame: fixture(
			"c2 00 00 06 00 00 00 00 1c",             // DSE_V2 response, stream 6, ERROR, length 28
			"00 00 13 00",                            // code Read_failure
			"00 00",                                  // empty message
			"00 04 00 00 00 01 00 00 00 02",          // QUORUM, received 1, blockfor 2
			"00 00 00 01", "04 0a 00 00 09", "00 02", // 1 entry: 10.0.0.9 TIMEOUT
			"00",
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadFailure,
			Error: ErrorDetail{Consistency: Quorum, Received: 1, BlockFor: 2, NumFailures: 1, NumReasons: 1,
				Reasons: [MaxFailureReasons]FailureReason{{Endpoint: []byte{10, 0, 0, 9}, Code: FailureTimeout}}}},
	},
	{
		name: "ERROR Function_failure",
		frame: fixture(
			"84 00 00 08 00 00 00 00 1c", // v4 response, stream 8, ERROR, length 28
			"00 00 14 00",                // code Function_failure
			"00 01", ascii("x"),
			"00 02", ascii("ks"),
			"00 02", ascii("fn"),
			"00 02", "00 03", ascii("int"), "00 04", ascii("text"), // [string list] arg types
		),
		want: Response{Opcode: OpError, ErrCode: ErrFunctionFailure, ErrMessage: []byte("x"),
			Error: ErrorDetail{Keyspace: []byte("ks"), Function: []byte("fn"), ArgTypes: 2}},
	},
	{
		name: "ERROR CAS_write_unknown v5",
		frame: fixture(
			"85 00 00 09 00 00 00 00 11", // v5 response, stream 9, ERROR, length 17
			"00 00 17 00",                // code CAS_write_unknown
			"00 01", ascii("u"),
			"00 04",       // QUORUM
			"00 00 00 01", // received 1
			"00 00 00 02", // blockfor 2
		),
		want: Response{Opcode: OpError, ErrCode: ErrCASWriteUnknown, ErrMessage: []byte("u"),
			Error: ErrorDetail{Consistency: Quorum, Received: 1, BlockFor: 2}},
	},
	{
		name: "ERROR Already_exists table",
		frame: fixture(
			"84 00 00 0a 00 00 00 00 11", // v4 response, stream 10, ERROR, length 17
			"00 00 24 00",                // code Already_exists
			"00 04", ascii("dupe"),
			"00 02", ascii("ks"), "00 01", ascii("t"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrAlreadyExists, ErrMessage: []byte("dupe"),
			Error: ErrorDetail{Keyspace: []byte("ks"), Table: []byte("t")}},
	},
	{
		name: "ERROR Already_exists keyspace: empty table",
		frame: fixture(
			"84 00 00 0a 00 00 00 00 0e", // v4 response, stream 10, ERROR, length 14
			"00 00 24 00",                // code Already_exists
			"00 02", ascii("ks"),
			"00 02", ascii("ks"), "00 00",
		),
		want: Response{Opcode: OpError, ErrCode: ErrAlreadyExists, ErrMessage: []byte("ks"),
			Error: ErrorDetail{Keyspace: []byte("ks")}},
	},
	{
		name: "ERROR Scylla rate limit at the usual code",
		frame: fixture(
			"84 00 00 0b 00 00 00 00 0b", // v4 response, stream 11, ERROR, length 11
			"00 00 f0 00",                // code 0xF000
			"00 03", ascii("hot"),
			"01", // op_type write
			"01", // rejected_by_coordinator
		),
		want: Response{Opcode: OpError, ErrCode: ErrScyllaRateLimit, ErrMessage: []byte("hot"),
			Error: ErrorDetail{RateLimit: true, OpType: 1, RejectedByCoordinator: true}},
	},
	{
		name: "ERROR Scylla rate limit at an advertised code",
		frame: fixture(
			"84 00 00 0b 00 00 00 00 0b", // v4 response, stream 11, ERROR, length 11
			"00 00 f0 01",                // code 0xF001, as SUPPORTED said
			"00 03", ascii("hot"),
			"00", // op_type read
			"00", // rejected by a replica
		),
		rateLimit: 0xF001,
		want: Response{Opcode: OpError, ErrCode: 0xF001, ErrMessage: []byte("hot"),
			Error: ErrorDetail{RateLimit: true}},
	},
	{
		name: "ERROR 0xF000 is no rate limit when another code was advertised",
		frame: fixture(
			"84 00 00 0b 00 00 00 00 0b", // v4 response, stream 11, ERROR, length 11
			"00 00 f0 00", "00 03", ascii("hot"), "01 01",
		),
		rateLimit: 0xF001,
		want:      Response{Opcode: OpError, ErrCode: ErrScyllaRateLimit, ErrMessage: []byte("hot")},
	},
	{
		name: "ERROR unknown code: code and message, the rest skipped",
		frame: fixture(
			"84 00 00 0c 00 00 00 00 0d", // v4 response, stream 12, ERROR, length 13
			"00 00 55 55",                // code 0x5555
			"00 03", ascii("new"),
			"ff ff ff ff", // whatever it carries
		),
		want: Response{Opcode: OpError, ErrCode: 0x5555, ErrMessage: []byte("new")},
	},
	{
		name: "ERROR v1 Read_timeout (8-byte header)",
		frame: fixture(
			"81 00 02 00 00 00 00 12", // v1 response, stream 2, ERROR, length 18
			"00 00 12 00",             // code Read_timeout
			"00 01", ascii("r"),
			"00 04 00 00 00 01 00 00 00 02", // QUORUM, received 1, blockfor 2
			"00",
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadTimeout, ErrMessage: []byte("r"),
			Error: ErrorDetail{Consistency: Quorum, Received: 1, BlockFor: 2}},
	},

	// Bad tails: never an error, Partial instead.
	{
		name: "ERROR Unavailable cut after the consistency",
		frame: fixture(
			"84 00 00 02 00 00 00 00 0d", // v4 response, stream 2, ERROR, length 13
			"00 00 10 00",                // code Unavailable
			"00 04", ascii("oops"),
			"00 04", // QUORUM, then nothing
			"00",    // one byte of required
		),
		want: Response{Opcode: OpError, ErrCode: ErrUnavailable, ErrMessage: []byte("oops"),
			Error: ErrorDetail{Partial: true, Consistency: Quorum}},
	},
	{
		name: "ERROR Unavailable with an impossible consistency",
		frame: fixture(
			"84 00 00 02 00 00 00 00 14", // v4 response, stream 2, ERROR, length 20
			"00 00 10 00",                // code Unavailable
			"00 04", ascii("oops"),
			"00 20",       // consistency 0x0020
			"00 00 00 03", // required 3
			"00 00 00 01", // alive 1
		),
		want: Response{Opcode: OpError, ErrCode: ErrUnavailable, ErrMessage: []byte("oops"),
			Error: ErrorDetail{Partial: true}},
	},
	{
		name: "ERROR Read_failure v5 with more entries than bytes",
		frame: fixture(
			"85 00 00 06 00 00 00 00 16", // v5 response, stream 6, ERROR, length 22
			"00 00 13 00",                // code Read_failure
			"00 01", ascii("f"),
			"00 04 00 00 00 01 00 00 00 02", // QUORUM, received 1, blockfor 2
			"00 00 03 e8",                   // 1000 entries
			"00",
		),
		want: Response{Opcode: OpError, ErrCode: ErrReadFailure, ErrMessage: []byte("f"),
			Error: ErrorDetail{Partial: true, Consistency: Quorum, Received: 1, BlockFor: 2}},
	},
	{
		name: "ERROR Write_failure v5 endpoint of 5 bytes",
		frame: fixture(
			"85 00 00 07 00 00 00 00 23", // v5 response, stream 7, ERROR, length 35
			"00 00 15 00",                // code Write_failure
			"00 01", ascii("w"),
			"00 01 00 00 00 00 00 00 00 01", // ONE, received 0, blockfor 1
			"00 00 00 01",                   // 1 entry
			"05 0a 00 00 01 02", "00 03",    // [inetaddr] of length 5
			"00 04", ascii("CDC!"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteFailure, ErrMessage: []byte("w"),
			Error: ErrorDetail{Partial: true, Consistency: One, BlockFor: 1, NumFailures: 1}},
	},
	{
		name: "ERROR Write_timeout write type cut",
		frame: fixture(
			"84 00 00 04 00 00 00 00 16", // v4 response, stream 4, ERROR, length 22
			"00 00 11 00", "00 01", ascii("t"),
			"00 06 00 00 00 01 00 00 00 02", // LOCAL_QUORUM, received 1, blockfor 2
			"00 06", ascii("SIM"),           // write type of 6 bytes, 3 present
		),
		want: Response{Opcode: OpError, ErrCode: ErrWriteTimeout, ErrMessage: []byte("t"),
			Error: ErrorDetail{Partial: true, Consistency: LocalQuorum, Received: 1, BlockFor: 2}},
	},
	{
		name: "ERROR Scylla rate limit without its fields",
		frame: fixture(
			"84 00 00 0b 00 00 00 00 09", // v4 response, stream 11, ERROR, length 9
			"00 00 f0 00", "00 03", ascii("hot"),
		),
		want: Response{Opcode: OpError, ErrCode: ErrScyllaRateLimit, ErrMessage: []byte("hot"),
			Error: ErrorDetail{RateLimit: true, Partial: true}},
	},
	{
		name:  "ERROR message longer than the body",
		frame: fixture("84 00 00 02 00 00 00 00 08", "00 00 10 00", "00 09", ascii("oo")), // v4 ERROR, length 8
		err:   ErrTruncated,
	},
	{
		name:  "ERROR cut inside the code",
		frame: fixture("84 00 00 02 00 00 00 00 03", "00 00 10"), // v4 ERROR, length 3
		err:   ErrTruncated,
	},
}

// TestErrorPrefix: a buffered prefix that stops inside the tail keeps code,
// message and the fields before the cut, and says Partial.
func TestErrorPrefix(t *testing.T) {
	// 84 00 00 04 00 00 01 00 00: v4 response, stream 4, ERROR, length 256; 21 bytes buffered.
	frame := fixture("84 00 00 04 00 00 01 00 00", "00 00 11 00", "00 01", ascii("t"),
		"00 06 00 00 00 01 00 00 00 02", "00 f0") // write type of 240 bytes, not buffered
	h, body := splitFrame(t, frame)
	var r Response
	if err := DecodeResponse(&h, body, &r); err != nil {
		t.Fatal(err)
	}
	want := ErrorDetail{Partial: true, Consistency: LocalQuorum, Received: 1, BlockFor: 2}
	if r.ErrCode != ErrWriteTimeout || string(r.ErrMessage) != "t" || !reflect.DeepEqual(normalized(r.Error), normalized(want)) {
		t.Errorf("%v %q %+v", r.ErrCode, r.ErrMessage, r.Error)
	}
	// The same write type past the whole body is no error either.
	h.Length = uint32(len(body))
	if err := DecodeResponse(&h, body, &r); err != nil || !r.Error.Partial || r.Error.BlockFor != 2 {
		t.Errorf("err %v, %+v", err, r.Error)
	}
}

func TestFailureCodeString(t *testing.T) {
	for c, want := range map[FailureCode]string{FailureUnknown: "UNKNOWN", FailureReadTooManyIndexes: "READ_TOO_MANY_INDEXES",
		FailureNodeDown: "NODE_DOWN", 99: "FAILURE_99"} {
		if got := c.String(); got != want {
			t.Errorf("%d: %q, want %q", c, got, want)
		}
	}
}
