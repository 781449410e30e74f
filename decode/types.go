package decode

import "strconv"

// Opcode is the CQL message type carried in byte 4 of an envelope header.
type Opcode uint8

// Opcodes of the native protocol (v1–v5) and DSE's REVISE_REQUEST.
const (
	OpError         Opcode = 0x00
	OpStartup       Opcode = 0x01
	OpReady         Opcode = 0x02
	OpAuthenticate  Opcode = 0x03
	OpCredentials   Opcode = 0x04 // v1 only
	OpOptions       Opcode = 0x05
	OpSupported     Opcode = 0x06
	OpQuery         Opcode = 0x07
	OpResult        Opcode = 0x08
	OpPrepare       Opcode = 0x09
	OpExecute       Opcode = 0x0A
	OpRegister      Opcode = 0x0B
	OpEvent         Opcode = 0x0C
	OpBatch         Opcode = 0x0D
	OpAuthChallenge Opcode = 0x0E
	OpAuthResponse  Opcode = 0x0F
	OpAuthSuccess   Opcode = 0x10
	OpRevise        Opcode = 0xFF // DSE only
)

var opcodeNames = [...]string{
	"ERROR", "STARTUP", "READY", "AUTHENTICATE", "CREDENTIALS", "OPTIONS", "SUPPORTED", "QUERY",
	"RESULT", "PREPARE", "EXECUTE", "REGISTER", "EVENT", "BATCH", "AUTH_CHALLENGE", "AUTH_RESPONSE",
	"AUTH_SUCCESS",
}

func (o Opcode) String() string {
	if int(o) < len(opcodeNames) {
		return opcodeNames[o]
	}
	if o == OpRevise {
		return "REVISE_REQUEST"
	}
	return "OPCODE_0x" + strconv.FormatUint(uint64(o), 16)
}

// IsRequest reports whether a client may send o in the given protocol version.
func (o Opcode) IsRequest(version uint8) bool {
	switch o {
	case OpStartup, OpOptions, OpQuery, OpPrepare, OpExecute, OpRegister:
		return true
	case OpCredentials:
		return version == 1
	case OpBatch, OpAuthResponse:
		return version >= 2
	case OpRevise:
		return version == VersionDSE1 || version == VersionDSE2
	}
	return false
}

// IsResponse reports whether a server may send o in the given protocol version.
func (o Opcode) IsResponse(version uint8) bool {
	switch o {
	case OpError, OpReady, OpAuthenticate, OpSupported, OpResult, OpEvent:
		return true
	case OpAuthChallenge, OpAuthSuccess:
		return version >= 2
	}
	return false
}

// Protocol versions as carried in the low 7 bits of the first header byte.
const (
	VersionDSE1 uint8 = 0x41
	VersionDSE2 uint8 = 0x42
)

// KnownVersion reports whether v (direction bit already removed) is a protocol
// version a real peer sends.
func KnownVersion(v uint8) bool {
	return (v >= 1 && v <= 6) || v == VersionDSE1 || v == VersionDSE2
}

// Flags is the envelope header flags byte.
type Flags uint8

// Envelope header flags.
const (
	FlagCompression   Flags = 0x01
	FlagTracing       Flags = 0x02
	FlagCustomPayload Flags = 0x04
	FlagWarning       Flags = 0x08
	FlagBeta          Flags = 0x10
)

// Consistency is a CQL consistency level ([consistency] on the wire).
type Consistency uint16

// Consistency levels.
const (
	Any         Consistency = 0x0000
	One         Consistency = 0x0001
	Two         Consistency = 0x0002
	Three       Consistency = 0x0003
	Quorum      Consistency = 0x0004
	All         Consistency = 0x0005
	LocalQuorum Consistency = 0x0006
	EachQuorum  Consistency = 0x0007
	Serial      Consistency = 0x0008
	LocalSerial Consistency = 0x0009
	LocalOne    Consistency = 0x000A
)

var consistencyNames = [...]string{
	"ANY", "ONE", "TWO", "THREE", "QUORUM", "ALL", "LOCAL_QUORUM", "EACH_QUORUM", "SERIAL",
	"LOCAL_SERIAL", "LOCAL_ONE",
}

func (c Consistency) String() string {
	if int(c) < len(consistencyNames) {
		return consistencyNames[c]
	}
	return "CONSISTENCY_0x" + strconv.FormatUint(uint64(c), 16)
}

// Valid reports whether c is a level Cassandra accepts; anything else in a
// parsed body means the parse went wrong.
func (c Consistency) Valid() bool { return c <= LocalOne }

// ErrorCode is the [int] code at the start of an ERROR body.
type ErrorCode int32

// Error codes (native protocol §8/§9, plus DSE and ScyllaDB's default rate-limit code).
const (
	ErrServer          ErrorCode = 0x0000
	ErrProtocol        ErrorCode = 0x000A
	ErrAuthentication  ErrorCode = 0x0100
	ErrUnavailable     ErrorCode = 0x1000
	ErrOverloaded      ErrorCode = 0x1001
	ErrIsBootstrapping ErrorCode = 0x1002
	ErrTruncate        ErrorCode = 0x1003
	ErrWriteTimeout    ErrorCode = 0x1100
	ErrReadTimeout     ErrorCode = 0x1200
	ErrReadFailure     ErrorCode = 0x1300
	ErrFunctionFailure ErrorCode = 0x1400
	ErrWriteFailure    ErrorCode = 0x1500
	ErrCDCWriteFailure ErrorCode = 0x1600
	ErrCASWriteUnknown ErrorCode = 0x1700
	ErrSyntax          ErrorCode = 0x2000
	ErrUnauthorized    ErrorCode = 0x2100
	ErrInvalid         ErrorCode = 0x2200
	ErrConfig          ErrorCode = 0x2300
	ErrAlreadyExists   ErrorCode = 0x2400
	ErrUnprepared      ErrorCode = 0x2500
	ErrClientWriteFail ErrorCode = 0x8000
	ErrScyllaRateLimit ErrorCode = 0xF000
)

var errorNames = map[ErrorCode]string{
	ErrServer: "SERVER_ERROR", ErrProtocol: "PROTOCOL_ERROR", ErrAuthentication: "AUTHENTICATION_ERROR",
	ErrUnavailable: "UNAVAILABLE", ErrOverloaded: "OVERLOADED", ErrIsBootstrapping: "IS_BOOTSTRAPPING",
	ErrTruncate: "TRUNCATE_ERROR", ErrWriteTimeout: "WRITE_TIMEOUT", ErrReadTimeout: "READ_TIMEOUT",
	ErrReadFailure: "READ_FAILURE", ErrFunctionFailure: "FUNCTION_FAILURE", ErrWriteFailure: "WRITE_FAILURE",
	ErrCDCWriteFailure: "CDC_WRITE_FAILURE", ErrCASWriteUnknown: "CAS_WRITE_UNKNOWN", ErrSyntax: "SYNTAX_ERROR",
	ErrUnauthorized: "UNAUTHORIZED", ErrInvalid: "INVALID", ErrConfig: "CONFIG_ERROR",
	ErrAlreadyExists: "ALREADY_EXISTS", ErrUnprepared: "UNPREPARED", ErrClientWriteFail: "CLIENT_WRITE_FAILURE",
	ErrScyllaRateLimit: "RATE_LIMIT_ERROR",
}

func (e ErrorCode) String() string {
	if s, ok := errorNames[e]; ok {
		return s
	}
	return "ERROR_0x" + strconv.FormatUint(uint64(uint32(e)), 16)
}

// Known reports whether e is a code some server sends.
func (e ErrorCode) Known() bool { _, ok := errorNames[e]; return ok }

// IsTimeout reports whether the coordinator gave up waiting for replicas.
func (e ErrorCode) IsTimeout() bool { return e == ErrWriteTimeout || e == ErrReadTimeout }

// ResultKind is the [int] at the start of a RESULT body.
type ResultKind int32

// RESULT kinds.
const (
	ResultVoid         ResultKind = 1
	ResultRows         ResultKind = 2
	ResultSetKeyspace  ResultKind = 3
	ResultPrepared     ResultKind = 4
	ResultSchemaChange ResultKind = 5
)

var resultNames = [...]string{"", "void", "rows", "set_keyspace", "prepared", "schema_change"}

func (k ResultKind) String() string {
	if k >= 1 && int(k) < len(resultNames) {
		return resultNames[k]
	}
	return "result_kind_" + strconv.Itoa(int(k))
}

// FailureCode is why a replica failed a read or write: the [short] of a v5
// Read_failure / Write_failure reason map.
type FailureCode uint16

// Failure reason codes Cassandra sends; newer releases add more, which
// mean UNKNOWN to older peers.
const (
	FailureUnknown               FailureCode = 0
	FailureReadTooManyTombstones FailureCode = 1
	FailureTimeout               FailureCode = 2
	FailureIncompatibleSchema    FailureCode = 3
	FailureReadSize              FailureCode = 4
	FailureNodeDown              FailureCode = 5
	FailureIndexNotAvailable     FailureCode = 6
	FailureReadTooManyIndexes    FailureCode = 7
)

var failureNames = [...]string{
	"UNKNOWN", "READ_TOO_MANY_TOMBSTONES", "TIMEOUT", "INCOMPATIBLE_SCHEMA", "READ_SIZE", "NODE_DOWN",
	"INDEX_NOT_AVAILABLE", "READ_TOO_MANY_INDEXES",
}

func (c FailureCode) String() string {
	if int(c) < len(failureNames) {
		return failureNames[c]
	}
	return "FAILURE_" + strconv.Itoa(int(c))
}

// ScyllaLWTBit is the bit Scylla sets in a Prepared result's bind-marker
// metadata flags for conditional statements, the value it advertises as
// LWT_OPTIMIZATION_META_BIT_MASK under SCYLLA_LWT_ADD_METADATA_MARK.
const ScyllaLWTBit uint32 = 0x80000000

// DSE REVISE_REQUEST revision types.
const (
	ReviseCancel    int32 = 1 // stop the continuous paging of a request
	ReviseMorePages int32 = 2 // DSE_V2 backpressure: allow more pages
)
